"""Stochastic gradient descent, with optional (Nesterov) momentum."""

from __future__ import annotations

import numpy as np

from ..validation import check_bool
from .optimizer import Optimizer, check_number


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    With g_t the gradient (plus ``weight_decay * theta`` when weight decay is set)::

        if momentum != 0:
            b_1 = g_1;   b_t = momentum * b_{t-1} + (1 - dampening) * g_t
            g_t = g_t + momentum * b_t   if nesterov   else   b_t
        theta_t = theta_{t-1} - lr * g_t

    *Gradient descent* (GD) is SGD on the full batch: train with ``batch_size=None``.
    Arguments, their order and defaults are torch's (``lr=1e-3``; ``weight_decay`` before
    ``nesterov``), so a positional call written for torch means the same here.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None):
        check_number("SGD", "momentum", momentum, low=0.0)
        check_number("SGD", "dampening", dampening, low=0.0, high=1.0)
        nesterov = check_bool("SGD", "nesterov", nesterov)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=float(momentum),
                         dampening=float(dampening), nesterov=bool(nesterov),
                         foreach=foreach, fused=fused)

    def init_state(self, param):
        if self.defaults["momentum"]:
            return {"momentum_buffer": np.zeros_like(param.data)}
        return {}

    def update(self, param, grad, state, lr):
        momentum = self.defaults["momentum"]
        if momentum:
            buf = state["momentum_buffer"]
            if state["step"] == 1:
                np.copyto(buf, grad)
            else:
                buf *= momentum
                buf += (1 - self.defaults["dampening"]) * grad
            grad = grad + momentum * buf if self.defaults["nesterov"] else buf
        param -= lr * grad
