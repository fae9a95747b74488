"""The Lion optimizer of docs/custom_optimizer.md, as a file to benchmark:

    python -m benchmarks optimizer examples/lion.py:Lion

(tests/test_benchmark_protocol.py checks that the class here is the docs' one, word for word).
"""

import numpy as np

import minidl


class Lion(minidl.Optimizer):
    """Lion (Chen et al., 2023): step by the sign of a mix of momentum and gradient."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))

    def init_state(self, param):
        return {"exp_avg": np.zeros_like(param.data)}

    def update(self, param, grad, state, lr):
        beta1, beta2 = self.hparams["betas"]
        m = state["exp_avg"]
        param -= lr * np.sign(beta1 * m + (1 - beta1) * grad)
        m *= beta2
        m += (1 - beta2) * grad
