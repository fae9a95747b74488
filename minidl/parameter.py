"""``Parameter``: a trainable array and its gradient."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array ``data`` together with ``grad``, its gradient, of the same shape and dtype.

    Parameters are compared and hashed by identity, so optimizers can key their state by the
    parameter object itself (two layers that both call their weight ``weight`` never collide).

    ``grad`` is preallocated and written in place by ``Layer.backward``; ``data`` is updated in
    place by optimizers. Code that hands out views of either (a flat buffer, say) can rely on the
    arrays never being replaced, except by an explicit dtype conversion (:meth:`astype`).
    """

    __slots__ = ("__weakref__", "data", "grad")

    def __init__(self, data, dtype=None):
        data = np.array(data, dtype=dtype, copy=True)
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"Parameter data must be a floating-point array, got dtype {data.dtype}"
            )
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        """Set the gradient to zero, in place."""
        self.grad.fill(0)

    def astype(self, dtype) -> None:
        """Convert ``data`` and ``grad`` to ``dtype`` (this allocates new arrays)."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"Parameter dtype must be floating-point, got {dtype}")
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
