"""Adagrad."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_eps, check_number


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    With g_t the gradient (plus ``weight_decay * theta`` when set) and
    s_0 = ``initial_accumulator_value``::

        lr_t    = lr / (1 + (t - 1) * lr_decay)
        s_t     = s_{t-1} + g_t^2
        theta_t = theta_{t-1} - lr_t * g_t / (sqrt(s_t) + eps)

    The QA study's AdaGrad is ``Adagrad(params, lr=0.01, eps=1e-8)``. ``AdaGrad`` is an alias
    (minidl's first name for it).
    """

    former_names = ("AdaGrad",)

    nonnegative_state = ("sum",)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, foreach: bool | None = None, fused: bool | None = None):
        check_number("Adagrad", "lr_decay", lr_decay, low=0.0)
        check_number("Adagrad", "initial_accumulator_value", initial_accumulator_value, low=0.0)
        if initial_accumulator_value == 0:  # else sqrt(s_t) > 0 always
            check_eps("Adagrad", eps, "where every gradient so far was exactly 0 and "
                      "initial_accumulator_value is 0")
        check_number("Adagrad", "eps", eps, low=0.0)
        super().__init__(params, lr=lr, weight_decay=weight_decay, lr_decay=float(lr_decay),
                         initial_accumulator_value=float(initial_accumulator_value),
                         eps=float(eps), foreach=foreach, fused=fused)

    def init_state(self, param):
        return {"sum": np.full_like(param.data, self.defaults["initial_accumulator_value"])}

    def update(self, param, grad, state, lr):
        clr = lr / (1 + (state["step"] - 1) * self.defaults["lr_decay"])
        s = state["sum"]
        s += grad * grad
        std = np.sqrt(s)
        std += self.defaults["eps"]
        param -= clr * (grad / std)


#: The name minidl used first; ``torch.optim`` spells it ``Adagrad``.
AdaGrad = Adagrad
