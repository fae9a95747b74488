"""A deliberately bad optimizer, to see the benchmark say so: plain SGD whose declared range of
learning rates (``lr_range``, which the tuning searches) holds only rates at which SGD diverges
on every test problem.

    python -m benchmarks optimizer examples/too_fast_sgd.py:TooFastSGD
"""

import minidl


class TooFastSGD(minidl.SGD):
    """minidl.SGD, tuned only over learning rates from 10 to 1000."""

    lr_range = (10.0, 1000.0)
