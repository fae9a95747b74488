"""Adam and AdamW."""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_bool
from .optimizer import Optimizer, check_betas, check_eps


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    With g_t the gradient (plus ``weight_decay * theta``, L2 style, when set)::

        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        v_max_t = max(v_max_{t-1}, v_t)                    (amsgrad only; used instead of v_t)
        theta_t = theta_{t-1} - (lr / (1 - beta1^t)) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    with m_0 = v_0 = 0. The first update is about ``lr * sign(g_1)``.
    """

    nonnegative_state = ("exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None):
        name = type(self).__name__
        betas = check_betas(name, betas)
        check_eps(name, eps, "where every gradient so far was exactly 0 (a fresh model, a "
                  "dead unit)")
        amsgrad = check_bool(name, "amsgrad", amsgrad)
        super().__init__(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=float(eps),
                         amsgrad=amsgrad, foreach=foreach, fused=fused)

    def init_state(self, param):
        state = {"exp_avg": np.zeros_like(param.data), "exp_avg_sq": np.zeros_like(param.data)}
        if self.defaults["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param.data)
        return state

    def update(self, param, grad, state, lr):
        beta1, beta2 = self.defaults["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        if self.defaults["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        t = state["step"]
        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - beta2**t)
        denom += self.defaults["eps"]
        param -= step_size * (m / denom)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Each step first shrinks the parameter, ``theta <- theta * (1 - lr * weight_decay)``, then
    applies the Adam update of :class:`Adam` to the plain gradient.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, fused=fused)
