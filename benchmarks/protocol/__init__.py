"""``python -m benchmarks optimizer MODULE:CLASS``: a DeepOBS-style protocol for your optimizer.

- :mod:`.problems`: the fixed test problems (the quadratic study's noisy quadratic, the QA
  TwoLayerMLP, an MNIST MLP, a small MNIST CNN), each with data, model, loss, batch size,
  epochs, metric and target.
- :mod:`.tuning`: the learning rates tried and the choice of the best.
- :mod:`.runs`: one run, its cache key, the cache.
- :mod:`.stats`: when a difference is called.
- :mod:`.report`: summary.md, figures, CSV.
- :mod:`.run`: the command.
"""
