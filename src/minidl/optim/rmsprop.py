"""RMSprop."""

from __future__ import annotations

import numpy as np

from ..validation import check_bool
from .optimizer import Optimizer, check_eps, check_number


class RMSprop(Optimizer):
    r"""RMSProp (Hinton, 2012), as ``torch.optim.RMSprop``.

    With g_t the gradient (plus ``weight_decay * theta`` when set) and v_0 = a_0 = b_0 = 0::

        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
        a_t = a_{t-1} + (1 - alpha) * (g_t - a_{t-1})          (centered only)
        d_t = sqrt(v_t - a_t^2) + eps   if centered   else   sqrt(v_t) + eps
        b_t = momentum * b_{t-1} + g_t / d_t;   theta_t = theta_{t-1} - lr * b_t   (momentum > 0)
        theta_t = theta_{t-1} - lr * g_t / d_t                                     (otherwise)

    The QA study's RMSProp is ``RMSprop(params, lr=0.01, alpha=0.9, eps=1e-8)``. ``RMSProp`` is
    an alias (minidl's first name for it).
    """

    former_names = ("RMSProp",)

    nonnegative_state = ("square_avg",)

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None):
        check_number("RMSprop", "alpha", alpha, low=0.0, high=1.0)
        check_eps("RMSprop", eps, "where every gradient so far was exactly 0 (and, centered, "
                  "where the gradients were all equal)")
        check_number("RMSprop", "momentum", momentum, low=0.0)
        centered = check_bool("RMSprop", "centered", centered)
        super().__init__(params, lr=lr, weight_decay=weight_decay, alpha=float(alpha),
                         eps=float(eps), momentum=float(momentum), centered=centered,
                         foreach=foreach, fused=fused)

    def init_state(self, param):
        state = {"square_avg": np.zeros_like(param.data)}
        if self.defaults["momentum"]:
            state["momentum_buffer"] = np.zeros_like(param.data)
        if self.defaults["centered"]:
            state["grad_avg"] = np.zeros_like(param.data)
        return state

    def update(self, param, grad, state, lr):
        alpha = self.defaults["alpha"]
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * (grad * grad)
        if self.defaults["centered"]:
            a = state["grad_avg"]
            a += (1 - alpha) * (grad - a)
            avg = np.sqrt(v - a * a)
        else:
            avg = np.sqrt(v)
        avg += self.defaults["eps"]
        if self.defaults["momentum"]:
            buf = state["momentum_buffer"]
            buf *= self.defaults["momentum"]
            buf += grad / avg
            param -= lr * buf
        else:
            param -= lr * (grad / avg)


#: The name minidl used first; ``torch.optim`` spells it ``RMSprop``.
RMSProp = RMSprop
