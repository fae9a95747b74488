"""``Parameter``: a trainable array and its gradient."""

from __future__ import annotations

import numpy as np

from .validation import check_bool


class Parameter:
    """A trainable array ``data`` together with ``grad``, its gradient, of the same shape and dtype.

    Parameters are compared and hashed by identity, so optimizers can key their state by the
    parameter object itself (two layers that both call their weight ``weight`` never collide).

    ``grad`` is preallocated and written in place by a layer's ``backward``; ``data`` is updated in
    place by optimizers, on every path (the fused kernels take the arrays as they are). So
    ``W = layer.weight.data`` stays the parameter's array after ``optimizer.step()``: minidl
    never replaces ``data`` or ``grad``, except by an explicit dtype conversion
    (:meth:`astype`). You may assign either yourself (``p.grad = ...`` in a layer, or
    ``dec.weight.data = enc.weight.data.T`` to tie weights); optimizers then update the new
    array.

    Whether the parameter *has* a gradient this step (:attr:`has_grad`, what torch says with
    ``grad is not None``) is derived, since ``grad`` is always an array: :meth:`zero_grad` marks
    it as having none, and it has one again once ``Layer.backprop`` runs the layer's
    ``backward``, which writes it (even with zeros), or once it holds a nonzero value (a
    gradient written by hand). A new parameter's zeros count as a gradient: it has never been
    zeroed, and a gradient written into it by hand may be exactly zero. Optimizers skip a
    parameter without a gradient entirely.

    ``requires_grad = False`` freezes the parameter, as in torch: it never has a gradient for an
    optimizer (:attr:`has_grad` is False), so ``step()`` leaves it, its state and its weight
    decay alone, in ``fit`` as in a loop of your own. Backward passes still compute ``grad``
    (there is no graph to prune), so ``gradcheck`` checks a frozen layer's maths as any other.
    Freeze a layer with ``for p in layer.parameters(): p.requires_grad = False``.
    """

    __slots__ = ("__weakref__", "_requires_grad", "_zeroed", "data", "grad")

    def __init__(self, data, dtype=None, requires_grad: bool = True):
        data = np.array(data, dtype=dtype, copy=True)
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"Parameter data must be a floating-point array, got dtype {data.dtype}"
            )
        self.data = data
        self.grad = np.zeros_like(data)
        self._zeroed = False
        self.requires_grad = requires_grad

    @property
    def requires_grad(self) -> bool:
        """False freezes the parameter: optimizers skip it (see the class docstring)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._requires_grad = check_bool("Parameter", "requires_grad", value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def has_grad(self) -> bool:
        """Whether ``grad`` holds a gradient for the next optimizer step: not zeroed by
        :meth:`zero_grad` since a layer's ``backward`` last wrote it, or holding a nonzero
        value. ``step()`` skips a parameter without one (no weight decay, no state update).
        A frozen parameter (``requires_grad=False``) never has one."""
        if not self._requires_grad:
            return False
        if not self._zeroed:
            return True
        grad = self.grad
        if not isinstance(grad, np.ndarray):  # torch's habit: p.grad = None
            raise TypeError(
                f"{self!r}: grad is {type(grad).__name__}, not an array; minidl allocates each "
                f"gradient once and zero_grad() marks it as absent: call p.zero_grad() instead "
                f"of assigning {grad!r}")
        return bool(grad.any())

    def zero_grad(self) -> None:
        """Set the gradient to zero, in place, and mark it as no gradient (:attr:`has_grad`)
        until a backward pass or a nonzero value writes it again."""
        self.grad.fill(0)
        self._zeroed = True

    def mark_grad(self) -> None:
        """Record that ``grad`` now holds a gradient, whatever its values (``Layer.backprop``
        calls this for the layer's parameters after their backward; call it after writing an
        all-zero gradient by hand that an optimizer step should use)."""
        self._zeroed = False

    def astype(self, dtype) -> None:
        """Convert ``data`` and ``grad`` to ``dtype`` (this allocates new arrays)."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"Parameter dtype must be floating-point, got {dtype}")
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)

    def __repr__(self) -> str:
        frozen = "" if self._requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"
