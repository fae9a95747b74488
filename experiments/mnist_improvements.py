"""MNIST improvements the source proposed but did not build, each against its own baseline.

Baseline: 784 -> 256 ReLU -> Dropout 0.2 -> 10, Adam lr 0.001, batch 128, 12 epochs, float32.
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

from minidl import Adam, Dense, Dropout, Layer, ReLU, RMSProp, Sequential
from minidl.callbacks import EarlyStopping
from minidl.schedules import CosineAnnealingLR

from . import mnist_common as mc

STUDY = "mnist_improvements"
EPOCHS, BATCH, WIDTH, DROPOUT, LR = 12, 128, 256, 0.2, 0.001
ENSEMBLE_SEEDS = (42, 10, 2024, 7, 99)
PATIENCE, TRIALS, TRIAL_EPOCHS = 3, 8, 4
KERAS_MLP_EPOCHS, KERAS_MLP = 20, 0.9840
OPTIONAL = ("augmentation", "cosine", "early_stopping", "random_search", "keras_mlp")


class RandomShiftRotate(Layer):
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
        depth: int = 1) -> Sequential:
    rng = np.random.default_rng(seed)
    layers = [RandomShiftRotate(rng=rng)] if augment else []
    size = 784
    for _ in range(depth):
        layers += [Dense(size, width, rng=rng), ReLU(), Dropout(dropout, rng=rng)]
        size = width
    return Sequential(*layers, Dense(size, 10, rng=rng)).astype(np.float32)


def run(variant, net, opt, data, seed, epochs, batch=BATCH, callbacks=(), optimizer="adam"):
    result = mc.train(net, opt, data, epochs=epochs, batch_size=batch, seed=seed,
                      callbacks=callbacks)
    print(f"{variant} / seed {seed}: {result['test_accuracy']:.4f} "
          f"({len(result['rows'])} epochs)", file=sys.stderr)
    return {"variant": variant, "optimizer": optimizer, "seed": seed, "result": result}


def vote(probas: list[np.ndarray]) -> np.ndarray:
    """Majority label of the members; a tie goes to the label with the higher mean probability."""
    votes = sum(np.eye(10)[p.argmax(axis=1)] for p in probas)
    return (votes + np.mean(probas, axis=0) * 1e-3).argmax(axis=1)


def random_search(data, seed: int, trials: int, epochs: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        config = {"width": int(rng.choice([128, 256, 512])),
                  "dropout": float(rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])),
                  "lr": float(10 ** rng.uniform(-3.7, -2.5)),
                  "batch": int(rng.choice([64, 128, 256]))}
        net = mlp(seed + trial, config["width"], config["dropout"])
        result = mc.train(net, Adam(net.parameters(), lr=config["lr"]), data, epochs=epochs,
                          batch_size=config["batch"], seed=seed + trial)
        rows.append({"trial": trial, **config, "val_accuracy": result["rows"][-1]["val_accuracy"]})
        print(f"trial {trial}: {config} val {rows[-1]['val_accuracy']:.4f}", file=sys.stderr)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    p = mc.parser(__doc__, EPOCHS)
    p.add_argument("--without", nargs="*", default=[], choices=OPTIONAL,
                   help="improvements to leave out")
    args = p.parse_args(argv)
    epochs, seeds = mc.settings(args, EPOCHS)
    quick = args.quick
    ensemble_seeds = list(dict.fromkeys([*seeds, *ENSEMBLE_SEEDS]))[:2 if quick else 5]
    data = mc.load_data(args)
    runs = []
    for seed in ensemble_seeds:
        net = mlp(seed)
        runs.append(run("baseline", net, Adam(net.parameters(), lr=LR), data, seed, epochs))
    todo = [name for name in OPTIONAL if name not in args.without]
    search = None
    for seed in seeds:
        if "augmentation" in todo:
            net = mlp(seed, augment=True)
            runs.append(run("augmentation", net, Adam(net.parameters(), lr=LR), data, seed,
                            epochs))
        if "cosine" in todo:
            net = mlp(seed)
            opt = Adam(net.parameters(), lr=LR)
            runs.append(run("cosine", net, opt, data, seed, epochs,
                            callbacks=[CosineAnnealingLR(opt, T_max=epochs)]))
        if "early_stopping" in todo:
            net = mlp(seed)
            stop = EarlyStopping("val_accuracy", patience=PATIENCE, restore_best_weights=True)
            runs.append(run("early stopping", net, Adam(net.parameters(), lr=LR), data, seed,
                            2 * epochs, callbacks=[stop]))
    if "random_search" in todo:
        search = random_search(data, seeds[0], 2 if quick else TRIALS, 1 if quick else TRIAL_EPOCHS)
        best = search.sort_values("val_accuracy", ascending=False).iloc[0]
        net = mlp(seeds[0], int(best.width), float(best.dropout))
        runs.append(run("random search", net, Adam(net.parameters(), lr=float(best.lr)), data,
                        seeds[0], epochs, batch=int(best.batch)))
    if "keras_mlp" in todo:
        net = mlp(seeds[0], 512, 0.2, depth=2)
        runs.append(run("Keras MLP", net, RMSProp(net.parameters(), lr=0.001, alpha=0.9,
                                                  eps=1e-7), data, seeds[0],
                        epochs if quick else KERAS_MLP_EPOCHS, optimizer="rmsprop"))
    epoch_table, summary = mc.tables(STUDY, runs)
    members = [r["result"] for r in runs if r["variant"] == "baseline"]
    ensemble_pred = vote([m["test_proba"] for m in members])
    member_acc = [m["test_accuracy"] for m in members]
    gains = gain_table(runs, seeds, float(np.mean(ensemble_pred == data.y_test)), member_acc)
    folder = mc.write_results(
        args, STUDY, epoch_table, summary, data, epochs=epochs, seeds=seeds,
        ensemble_seeds=ensemble_seeds, baseline={"width": WIDTH, "dropout": DROPOUT,
                                                 "optimizer": f"Adam(lr={LR})", "batch": BATCH},
        augmentation={"max_shift": 2, "max_degrees": 10.0}, early_stopping_patience=PATIENCE,
        random_search={"trials": TRIALS, "epochs": TRIAL_EPOCHS}, without=args.without,
        keras_mlp_epochs=KERAS_MLP_EPOCHS, dtype="float32")
    gains.to_csv(folder / "gains.csv", index=False)
    if search is not None:
        search.to_csv(folder / "random_search.csv", index=False)
    figure(folder, gains, epoch_table)


def figure(folder, gains: pd.DataFrame, epoch_table: pd.DataFrame) -> None:
    """The gain of each improvement (error bar: the std of its runs over seeds, where it has
    several) and the validation curves (mean over the seeds still running at that epoch)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    fig.suptitle("MNIST improvements over the baseline MLP (256 ReLU, dropout 0.2, Adam)")
    y = np.arange(len(gains))
    axes[0].barh(y, gains["gain"], xerr=gains["with_std"].fillna(0), capsize=3,
                 color=np.where(gains["gain"] >= 0, "tab:green", "tab:red"),
                 label="gain (bar: std over seeds)")
    axes[0].set_yticks(y, [f"{i} ({n} seed{'s' * (n > 1)})" for i, n in
                           zip(gains["improvement"], gains["n_seeds"], strict=True)])
    axes[0].axvline(0, color="black", lw=0.8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("test accuracy gain over its baseline")
    axes[0].set_ylabel("improvement")
    axes[0].set_title("gain per improvement")
    axes[0].legend(fontsize="small", loc="lower right")
    mc.curves(axes[1], epoch_table[epoch_table["variant"] != "random search"], "val_accuracy",
              "validation accuracy per epoch")
    mc.save_figure(fig, folder, "mnist_improvements.png")


def gain_table(runs, seeds, ensemble_acc: float, member_acc: list[float]) -> pd.DataFrame:
    """One row per improvement: its test accuracy, its baseline's (same seeds), the gain."""
    def acc(variant, only=None):
        return [r["result"]["test_accuracy"] for r in runs if r["variant"] == variant
                and (only is None or r["seed"] in only)]

    def epochs(variant):
        return float(np.mean([len(r["result"]["rows"]) for r in runs if r["variant"] == variant]))

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
    rows.append({"improvement": f"ensemble of {len(member_acc)} (vs best member)",
                 "baseline": max(member_acc), "with": ensemble_acc, "with_std": np.nan,
                 "gain": ensemble_acc - max(member_acc), "n_seeds": len(member_acc),
                 "epochs": epochs("baseline")})
    return pd.DataFrame(rows)


def report_section(results_dir) -> str:
    gains = pd.read_csv(f"{results_dir}/{STUDY}/gains.csv")
    s = mc.read_summary(results_dir, STUDY).set_index("variant")
    rows = [[g.improvement, f"{g.baseline:.4f}", mc.fmt(g.with_, g.with_std),
             f"{g.gain:+.4f}", int(g.n_seeds), f"{g.epochs:.1f}"]
            for g in gains.rename(columns={"with": "with_"}).itertuples()]
    times = [[v, mc.fmt(r.test_accuracy_mean, r.test_accuracy_std), int(r.n_seeds),
              f"{r.epoch_time_mean:.1f}"] for v, r in s.iterrows()]
    return "\n".join([
        "## 14. `mnist_improvements`: what the source proposed, built", "",
        mc.markdown_table(["improvement", "its baseline", "with it (mean ± std)", "gain",
                           "seeds", "epochs run"], rows), "",
        mc.markdown_table(["run", "test accuracy", "seeds", "s/epoch"], times), "",
        f"The Keras MLP example's reference is {KERAS_MLP:.4f}.", "",
        f"![improvements](figures/{STUDY}/mnist_improvements.png)", "",
    ])


if __name__ == "__main__":
    main()
