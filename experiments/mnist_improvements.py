"""MNIST improvements the source proposed but did not build, each against its own baseline.

Baseline: 784 -> 256 ReLU -> Dropout 0.2 -> 10, Adam lr 0.001, batch 128, 12 epochs, float32
(these settings and the others below: ``experiments.settings``).
Each improvement changes one thing and is compared with the baseline on the same seeds:

- ``augmentation``: random shifts (up to 2 pixels) and rotations (up to 10 degrees) of every
  training batch, nearest-neighbour, in NumPy (:class:`RandomShiftRotate`, a layer that is the
  identity in evaluation);
- ``cosine``: the learning rate annealed along a cosine to 0 over the epochs;
- ``early stopping``: up to twice the epochs, stopped when validation accuracy has not improved
  for 3 epochs, the best epoch's weights restored;
- ``random search``: 8 configurations (width, dropout, learning rate, batch size) drawn at
  random, each trained 4 epochs and ranked on the validation split; the best one retrained for
  the full epochs on the first seed;
- ``ensemble``: a vote of five baseline models (seeds 42, 10, 2024, 7, 99): the majority label,
  ties broken by the mean probability; compared with its best member;
- ``Keras MLP``: the Keras MLP example (512 ReLU, Dropout 0.2, 512 ReLU, Dropout 0.2, 10,
  RMSprop lr 0.001, batch 128, 20 epochs), first seed only; its reference is 98.40%.

    python -m experiments.mnist_improvements
    python -m experiments.mnist_improvements --without keras_mlp random_search
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import minidl as md
from experiments import common, files, plots
from experiments import mnist_common as mc
from experiments import settings as cfg
from minidl.callbacks import EarlyStopping
from minidl.schedules import CosineAnnealingLR

STUDY = "mnist_improvements"
#: The baseline MLP's hidden width and dropout.
WIDTH, DROPOUT = 256, 0.2
#: The improvements ``--without`` may leave out -> their runs' names.
OPTIONAL = {"augmentation": "augmentation", "cosine": "cosine", "early_stopping": "early stopping",
            "random_search": "random search", "keras_mlp": "Keras MLP"}


class RandomShiftRotate(md.Layer):
    """Training-time augmentation of flattened 28x28 images (N, 784).

    Each image gets its own rotation ``a ~ U(-max_degrees, max_degrees)`` about the centre and
    shift ``(dr, dc)``, integers in ``[-max_shift, max_shift]``: output pixel ``p`` reads the
    input at ``R(a) (p - centre) + centre - (dr, dc)``, rounded to the nearest pixel (zero
    outside the image). That is a gather ``y = A x``; backward is its transpose, ``dx = A^T g``
    (a scatter-add). In evaluation mode the layer is the identity.
    """

    _config_keys = ("max_shift", "max_degrees")

    def __init__(self, max_shift: int = 2, max_degrees: float = 10.0, rng=None):
        super().__init__()
        self.max_shift = int(max_shift)
        self.max_degrees = float(max_degrees)
        if rng is None:
            raise ValueError("RandomShiftRotate needs rng=: a Generator or an int seed")
        self.rng = np.random.default_rng(rng)
        self._src = None

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != 784:
            raise ValueError(f"{self.describe()}: expected (N, 784) images, got {x.shape}")
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training:
            self._src = "identity"
            return x
        n = len(x)
        angle = np.deg2rad(self.rng.uniform(-self.max_degrees, self.max_degrees, (n, 1)))
        shift = self.rng.integers(-self.max_shift, self.max_shift + 1, (n, 2))
        r, c = np.divmod(np.arange(784), 28)
        r, c = r - 13.5, c - 13.5
        cos, sin = np.cos(angle), np.sin(angle)
        src_r = np.rint(cos * r - sin * c + 13.5 - shift[:, :1]).astype(np.int64)
        src_c = np.rint(sin * r + cos * c + 13.5 - shift[:, 1:]).astype(np.int64)
        valid = (src_r >= 0) & (src_r < 28) & (src_c >= 0) & (src_c < 28)
        self._src = np.where(valid, src_r * 28 + src_c, 0) + 784 * np.arange(n)[:, None]
        self._valid = valid
        return np.where(valid, x.reshape(-1)[self._src], 0).astype(x.dtype)

    def backward(self, grad_out):
        src = self._cache("_src")
        g = self._check_grad_out(grad_out, self._shape)
        if isinstance(src, str):
            return g.astype(self._dtype, copy=False)
        dx = np.bincount(src[self._valid], weights=g[self._valid],
                         minlength=self._shape[0] * 784)
        return dx.reshape(self._shape).astype(self._dtype)


def mlp(seed: int, width: int = WIDTH, dropout: float = DROPOUT, augment: bool = False,
        depth: int = 1) -> md.Sequential:
    rng = np.random.default_rng(seed)
    layers = [RandomShiftRotate(rng=rng)] if augment else []
    size = 784
    for _ in range(depth):
        layers += [md.Dense(size, width, rng=rng), md.ReLU(), md.Dropout(dropout, rng=rng)]
        size = width
    return md.Sequential(*layers, md.Dense(size, 10, rng=rng)).astype(np.float32)


def fit(net, optimizer, data: mc.Data, seed: int, epochs: int, batch_size: int, callbacks=()):
    history = md.fit(net, md.SoftmaxCrossEntropy(), optimizer, data.X_train, data.y_train,
                     epochs=epochs, batch_size=batch_size, seed=seed, validation_data=data.val,
                     metrics=["accuracy"], callbacks=callbacks, verbose=2)
    return mc.result(history, net, data)


def train(variant: str, data: mc.Data, seed: int, epochs: int, config: dict | None = None) -> dict:
    """One run: the baseline, or the baseline with one improvement (``config``: the random
    search's best width, dropout, learning rate and batch size)."""
    if variant == "Keras MLP":
        net = mlp(seed, 512, 0.2, depth=2)
        return fit(net, cfg.MNIST_KERAS_MLP_OPTIMIZER.build(net.parameters()), data, seed, epochs,
                   cfg.MNIST_KERAS_MLP_OPTIMIZER.batch_size)
    if variant == "random search":
        net = mlp(seed, config["width"], config["dropout"])
        return fit(net, md.Adam(net.parameters(), lr=config["lr"]), data, seed, epochs,
                   config["batch"])
    net = mlp(seed, augment=variant == "augmentation")
    optimizer = cfg.MNIST_BASELINE_OPTIMIZER.build(net.parameters())
    callbacks = ([CosineAnnealingLR(optimizer, T_max=epochs)] if variant == "cosine" else
                 [EarlyStopping("val_accuracy", patience=cfg.MNIST_PATIENCE,
                                restore_best_weights=True)] if variant == "early stopping" else [])
    return fit(net, optimizer, data, seed, epochs, cfg.MNIST_BASELINE_OPTIMIZER.batch_size,
               callbacks)


def vote(probas: list[np.ndarray]) -> np.ndarray:
    """Majority label of the members; a tie goes to the label with the higher mean probability."""
    votes = sum(np.eye(10)[p.argmax(axis=1)] for p in probas)
    return (votes + np.mean(probas, axis=0) * 1e-3).argmax(axis=1)


def random_search(data: mc.Data, seed: int, trials: int, epochs: int) -> pd.DataFrame:
    """``trials`` configurations drawn from ``cfg.MNIST_SEARCH``, each trained ``epochs``; their
    last validation accuracy."""
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        config = {"width": int(rng.choice(cfg.MNIST_SEARCH["width"])),
                  "dropout": float(rng.choice(cfg.MNIST_SEARCH["dropout"])),
                  "lr": float(10 ** rng.uniform(*cfg.MNIST_SEARCH["log10_lr"])),
                  "batch": int(rng.choice(cfg.MNIST_SEARCH["batch_size"]))}
        net = mlp(seed + trial, config["width"], config["dropout"])
        res = fit(net, md.Adam(net.parameters(), lr=config["lr"]), data, seed + trial, epochs,
                  config["batch"])
        rows.append({"trial": trial, **config, "val_accuracy": res["rows"][-1]["val_accuracy"]})
        print(f"trial {trial}: {config} val {rows[-1]['val_accuracy']:.4f}", file=sys.stderr)
    return pd.DataFrame(rows)


def plan(todo, seeds, epochs: int, quick: bool, data, search) -> list[tuple[dict, dict]]:
    """The runs, as ``(ids, train's arguments)``: the baseline on the ensemble's seeds, each
    improvement on the seeds (the random search's best and the Keras MLP on the first)."""
    ensemble = list(dict.fromkeys([*seeds, *cfg.MNIST_ENSEMBLE_SEEDS])
                    )[:cfg.QUICK_SEEDS if quick else len(cfg.MNIST_ENSEMBLE_SEEDS)]
    runs = [("baseline", s, epochs) for s in ensemble]
    runs += [(OPTIONAL[name], s, 2 * epochs if name == "early_stopping" else epochs)
             for s in seeds for name in ("augmentation", "cosine", "early_stopping")
             if name in todo]
    runs += [("random search", seeds[0], epochs)] if search is not None else []
    runs += [("Keras MLP", seeds[0], epochs if quick else cfg.MNIST_KERAS_MLP_EPOCHS)
             ] if "keras_mlp" in todo else []
    best = None if search is None else search.sort_values("val_accuracy", ascending=False).iloc[0]
    config = None if best is None else {"width": int(best.width), "dropout": float(best.dropout),
                                        "lr": float(best.lr), "batch": int(best.batch)}
    return [({"variant": v, "optimizer": "rmsprop" if v == "Keras MLP" else "adam", "seed": s},
             {"variant": v, "data": data, "seed": s, "epochs": e,
              "config": config if v == "random search" else None}) for v, s, e in runs]


def main(argv=None) -> None:
    p = mc.parser(__doc__)
    p.add_argument("--without", nargs="*", default=[], choices=OPTIONAL,
                   help="improvements to leave out")
    args = p.parse_args(argv)
    epochs, seeds = mc.settings(args, cfg.MNIST_IMPROVEMENTS_EPOCHS)
    data = mc.load_data(args)
    todo = [name for name in OPTIONAL if name not in args.without]
    trials = ((cfg.MNIST_QUICK_TRIALS, cfg.MNIST_QUICK_EPOCHS) if args.quick else
              (cfg.MNIST_SEARCH_TRIALS, cfg.MNIST_SEARCH_EPOCHS))
    search = random_search(data, seeds[0], *trials) if "random_search" in todo else None
    tasks = plan(todo, seeds, epochs, args.quick, data, search)
    results = mc.run_all(train, tasks, STUDY)
    ids = [i for i, _ in tasks]
    per_epoch, summary = mc.tables(STUDY, ids, results)
    gains = gain_table(ids, results, seeds, data.y_test)
    folder = common.write_results(
        args.out, STUDY, args, per_epoch, summary, data, epochs=epochs, seeds=seeds,
        ensemble_seeds=[i["seed"] for i in ids if i["variant"] == "baseline"],
        without=args.without, dtype="float32",
        baseline={"width": WIDTH, "dropout": DROPOUT, **cfg.MNIST_BASELINE_OPTIMIZER.describe()},
        augmentation={"max_shift": 2, "max_degrees": 10.0},
        early_stopping_patience=cfg.MNIST_PATIENCE,
        random_search={"trials": trials[0], "epochs": trials[1], **cfg.MNIST_SEARCH},
        keras_mlp={"epochs": cfg.MNIST_KERAS_MLP_EPOCHS,
                   **cfg.MNIST_KERAS_MLP_OPTIMIZER.describe()})
    gains.pipe(files.write_csv, folder / "gains.csv")
    if search is not None:
        search.pipe(files.write_csv, folder / "random_search.csv")
    figure(folder, gains, per_epoch)


def figure(folder, gains: pd.DataFrame, per_epoch: pd.DataFrame) -> None:
    """The gain of each improvement (error bar: the std of its runs over seeds, where it has
    several) and the validation curves (mean over the seeds still running at that epoch)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    fig.suptitle(f"MNIST improvements over the baseline MLP ({WIDTH} ReLU, dropout {DROPOUT}, "
                 f"{mc.label(cfg.MNIST_BASELINE_OPTIMIZER)})")
    y = np.arange(len(gains))
    axes[0].barh(y, gains["gain"], color=np.where(gains["gain"] >= 0, "tab:green", "tab:red"),
                 label="gain")
    several = (gains["n_seeds"] > 1).to_numpy()  # a one-seed row has no spread to draw
    axes[0].errorbar(gains["gain"][several], y[several], xerr=gains["with_std"][several],
                     fmt="none", ecolor="black", capsize=3, label="std over seeds")
    axes[0].set_yticks(y, [f"{i} ({n} seed{'s' * (n > 1)})" for i, n in
                           zip(gains["improvement"], gains["n_seeds"], strict=True)])
    axes[0].axvline(0, color="black", lw=0.8)
    axes[0].invert_yaxis()
    axes[0].set(xlabel="test accuracy gain over its baseline", ylabel="improvement",
                title="gain per improvement")
    axes[0].legend(fontsize="small", loc="lower right")
    plots.curves(axes[1], per_epoch[per_epoch["variant"] != "random search"], "val_accuracy",
                 by="variant", marker="o", title="validation accuracy per epoch")
    plots.save_figure(fig, folder, "mnist_improvements.png")


def gain_table(ids: list[dict], results: list[dict], seeds, y_test) -> pd.DataFrame:
    """One row per improvement: its test accuracy, its baseline's (same seeds), the gain; last,
    the baseline models' vote against its best member."""
    runs = list(zip(ids, results, strict=True))

    def acc(variant, only=None):
        return [r["test"]["test_accuracy"] for i, r in runs if i["variant"] == variant
                and (only is None or i["seed"] in only)]

    def epochs(variant):
        return float(np.mean([len(r["rows"]) for i, r in runs if i["variant"] == variant]))

    rows = []
    for variant, only in (("augmentation", seeds), ("cosine", seeds), ("early stopping", seeds),
                          ("random search", seeds[:1]), ("Keras MLP", seeds[:1])):
        ours = acc(variant)
        if ours:
            base = acc("baseline", only)
            rows.append({"improvement": variant, "baseline": np.mean(base), "with": np.mean(ours),
                         "with_std": np.std(ours, ddof=1) if len(ours) > 1 else np.nan,
                         "gain": np.mean(ours) - np.mean(base), "n_seeds": len(ours),
                         "epochs": epochs(variant)})
    member_acc = acc("baseline")
    ensemble_acc = float(np.mean(vote([r["test_proba"] for i, r in runs
                                       if i["variant"] == "baseline"]) == y_test))
    rows.append({"improvement": f"ensemble of {len(member_acc)} (vs best member)",
                 "baseline": max(member_acc), "with": ensemble_acc, "with_std": np.nan,
                 "gain": ensemble_acc - max(member_acc), "n_seeds": len(member_acc),
                 "epochs": epochs("baseline")})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
