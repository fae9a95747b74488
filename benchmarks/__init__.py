"""minidl's benchmark suite: ``python -m benchmarks`` (see docs/performance.md).

- :mod:`.timing`: interleaved timing (warm-up, rounds of A B C ..., medians), the environment
  report (versions, BLAS library and kernel, threads, load) and the memory bandwidth.
- :mod:`.optim`: one optimizer step on four parameter sets, minidl's three paths against
  torch.optim's three and against the bandwidth bound; a user's optimizer beside them.
- :mod:`.train`: training steps and an epoch against an equivalent torch model, and
  :func:`.train.conv2d`, the hook for the Conv2D comparison (waiting for minidl's Conv2D).
- :mod:`.report`: the JSON, the tables of docs/performance.md and the plot.
"""
