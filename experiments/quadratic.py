"""Study 10, quadratic: SGD with noisy gradients on f(x1, x2) = x1^2 + 2 x2^2, lr 0.1.

The source: the iterates fluctuate near the minimum, their mean lands closer than the last one.
Unrecorded there, here (``experiments.settings``): start (2, 2), gradient noise N(0, 1), 200
steps (--epochs), 5 seeds; also momentum 0.9 (lr 0.01), Adam (lr 0.1); x is a Dense(1, 2)
weight fed 1, trained by minidl.fit one step per row."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

import minidl as md
from experiments import common, plots
from experiments.settings import (
    QUADRATIC_NOISE,
    QUADRATIC_OPTIMIZERS,
    QUADRATIC_START,
    QUADRATIC_STEPS,
)

STUDY = "quadratic"
NOISE = QUADRATIC_NOISE  # a module attribute, so a test can switch the noise off


def f(x1, x2):
    return x1 ** 2 + 2 * x2 ** 2


class NoisyQuadratic(md.Loss):
    """f(x) of the prediction x; its gradient plus N(0, noise^2) noise."""

    def __init__(self, noise: float, seed: int):
        super().__init__()
        self.noise, self.rng = noise, np.random.default_rng(seed)

    def value(self, pred, target):
        return float(np.mean(f(pred[:, 0], pred[:, 1])))

    def gradient(self, pred, target):
        return pred * [2.0, 4.0] / len(pred) + self.noise * self.rng.standard_normal(pred.shape)


def descend(name: str, seed: int, steps: int) -> pd.DataFrame:
    """The iterates x_0 .. x_steps (x1, x2) of one optimizer, and elapsed seconds at both ends."""
    setting = QUADRATIC_OPTIMIZERS[name]
    point = md.Dense(1, 2, bias=False, init=lambda *_: np.array([QUADRATIC_START]), rng=seed)
    path = md.callbacks.WeightTrajectory(unit="step")
    history = md.fit(point, NoisyQuadratic(NOISE, seed), setting.build(point.parameters()),
                     np.ones((steps, 1)), np.zeros((steps, 2)), epochs=1,
                     batch_size=setting.batch_size, shuffle=False, callbacks=[path], verbose=0)
    return pd.DataFrame(path.weights, columns=["x1", "x2"]).assign(
        elapsed=[0.0, *[np.nan] * (steps - 1), history["time"][-1]])


def paths(steps: int, seeds: list[int]) -> pd.DataFrame:
    """Every optimizer's and seed's iterates, their running mean and distances to the minimum."""
    ep = pd.concat([descend(o, s, steps).assign(study=STUDY, optimizer=o, seed=s,
                                                epoch=range(steps + 1))
                    for o, s in itertools.product(QUADRATIC_OPTIMIZERS, seeds)],
                   ignore_index=True)
    g = ep.groupby(["optimizer", "seed"], sort=False)  # the running mean of each path:
    ep[["mean_x1", "mean_x2"]] = g[["x1", "x2"]].cumsum().div(g.cumcount() + 1, axis=0)
    return ep.assign(train_loss=f(ep.x1, ep.x2), last_distance=np.hypot(ep.x1, ep.x2),
                     mean_distance=np.hypot(ep.mean_x1, ep.mean_x2))


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    steps, seeds = common.settings(args, QUADRATIC_STEPS)
    ep = paths(steps, seeds)
    summary = common.summarise(ep[ep["epoch"] == steps],
                               ("last_distance", "mean_distance", "train_loss"), by=("optimizer",))
    optimizers = {k: s.describe() for k, s in QUADRATIC_OPTIMIZERS.items()}
    folder = common.write_results(args.out, STUDY, args, ep, summary, steps=steps, seeds=seeds,
                                  start=QUADRATIC_START, noise=NOISE, optimizers=optimizers)
    fig = plots.contour_paths(ep[ep["seed"] == seeds[0]], f, f"{STUDY}: f = x₁² + 2x₂², noisy "
                              f"gradients, seed {seeds[0]}",
                              {k: f"{k}, lr {o['lr']}" for k, o in optimizers.items()})
    plots.save_figure(fig, folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
