"""Study 2, adaptive: AdaGrad and RMSProp beside GD, SGD and Adam, on the TwoLayerMLP.

The source's settings: AdaGrad batch 32 lr 0.01 eps 1e-8; RMSProp batch 32 lr 0.01 decay 0.9
eps 1e-8; the other three as in `optimizers`; 100 epochs, 5 seeds. The source gave numbers for
GD, SGD and Adam only.
"""

from __future__ import annotations

from experiments import common, optimizers

STUDY = "adaptive"
OPTIMIZERS = ("gd", "sgd", "adam", "adagrad", "rmsprop")


def main(argv=None):
    optimizers.main(argv, study=STUDY, optimizers=OPTIMIZERS, doc=__doc__)


def report_section(results) -> str:
    s = common.read_summary(results, STUDY)
    best = s.loc[s["test_accuracy_mean"].idxmax()]
    fastest = s.loc[s["train_loss_mean"].idxmin()]
    adaptive = ("an adaptive method" if fastest.optimizer in ("adagrad", "rmsprop", "adam")
                else "not an adaptive method")
    verdict = common.chance_verdict(best.test_accuracy_mean, best.test_accuracy_std, best.n_test)
    return f"""## 2. `adaptive`: AdaGrad and RMSProp beside them

![adaptive](figures/{STUDY}/{STUDY}.png)

{common.source_table(s, optimizers.SOURCE)}

Lowest final training MSE: {common.LABELS[fastest.optimizer]} ({fastest.train_loss_mean:.3f}).
Highest test accuracy: {common.LABELS[best.optimizer]},
{common.fmt(best.test_accuracy_mean, best.test_accuracy_std)}
({verdict}). The lowest training loss comes from {adaptive}, which scale each weight's step
by its own gradient history; whether that buys test accuracy is the test column, not the loss.
"""
