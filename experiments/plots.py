"""The plot panels the QA and MNIST studies share (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments import files

INPUT_LABELS = {"source": "[q | a | 1]", "pairs": "[q | a | q*a | |q-a| | 1]"}
LABELS = {"gd": "GD", "sgd": "SGD", "adam": "Adam", "adagrad": "AdaGrad", "rmsprop": "RMSProp",
          "momentum": "momentum"}
COLORS = {"gd": "tab:blue", "sgd": "tab:orange", "adam": "tab:green", "adagrad": "tab:red",
          "rmsprop": "tab:purple", "momentum": "tab:brown"}


def figure(nrows: int, ncols: int, title: str, size=(5.0, 3.8)):
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    fig.suptitle(title)
    return fig, axes


def two_rows(top: int, bottom: int, title: str, size=(3.4, 3.3), top_height: float = 4.6):
    """A figure of ``top`` wide panels (each two small ones wide, centred) over a row of
    ``bottom`` small ones: ``(fig, top axes, bottom axes, key)``, ``key`` the empty cell right
    of the top row (axes off, for a legend), or None if the top row fills the width."""
    pad = bottom - 2 * top  # half-width cells either side of the top row
    layout = [["."] * pad + [f"t{i}" for i in range(top) for _ in range(4)] + ["key"] * pad,
              [f"b{j}" for j in range(bottom) for _ in range(2)]]
    fig = plt.figure(figsize=(size[0] * bottom, top_height + size[1]))
    axes = fig.subplot_mosaic(layout, height_ratios=[top_height, size[1]])
    fig.suptitle(title)
    if "key" in axes:
        axes["key"].axis("off")
    return (fig, [axes[f"t{i}"] for i in range(top)], [axes[f"b{j}"] for j in range(bottom)],
            axes.get("key"))


def save_figure(fig, folder: Path, name: str) -> Path:
    path = Path(folder) / name
    fig.tight_layout()
    files.save_png(fig, path, dpi=110, bbox_inches="tight")  # nothing clipped, any layout
    plt.close(fig)
    return path


def curves(ax, epochs: pd.DataFrame, y: str, x: str = "epoch", by: str = "optimizer",
           title: str = "", ylabel: str | None = None, marker: str | None = None) -> None:
    """Mean over seeds of ``y`` against ``x`` (epoch, or mean elapsed seconds), a +-1 std band
    and a line per ``by`` group (``marker``: one per point, for short runs)."""
    for name, group in epochs.groupby(by, sort=False):
        stats = group.groupby("epoch").agg(m=(y, "mean"), s=(y, "std"), t=("elapsed", "mean"))
        xs = stats.index if x == "epoch" else stats["t"]
        band = stats["s"].fillna(0)
        line, = ax.plot(xs, stats["m"], label=LABELS.get(name, name), color=COLORS.get(name),
                        marker=marker, ms=3)
        ax.fill_between(xs, stats["m"] - band, stats["m"] + band, alpha=0.2,
                        color=line.get_color())
    ax.set(xlabel="epoch" if x == "epoch" else "training time (s)",
           ylabel=ylabel or y.replace("_", " "), title=title)
    if x == "epoch" and epochs["epoch"].nunique() <= 20:  # a few epochs: whole ones only
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def bars(ax, summary: pd.DataFrame, title: str, group: str = "variant") -> None:
    """Test accuracy (mean +- std over seeds) per ``group`` value and optimizer; chance dashed."""
    groups = list(dict.fromkeys(summary[group]))
    optimizers = list(dict.fromkeys(summary["optimizer"]))
    width = 0.8 / len(optimizers)
    for i, opt in enumerate(optimizers):
        rows = summary[summary["optimizer"] == opt].set_index(group).reindex(groups)
        at = np.arange(len(groups)) + i * width
        ax.bar(at, rows["test_accuracy_mean"], width, color=COLORS.get(opt),
               label=LABELS.get(opt, opt))
        spread = rows["test_accuracy_std"].notna().to_numpy()  # one seed: no bar to draw
        ax.errorbar(at[spread], rows["test_accuracy_mean"][spread],
                    yerr=rows["test_accuracy_std"][spread], fmt="none", ecolor="black",
                    capsize=3)
    ax.axhline(0.5, ls="--", color="grey", lw=1, label="chance (0.5)")
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [str(g) for g in groups])
    ax.set(ylim=(0, 1), xlabel=group, ylabel="test accuracy (mean ± std over seeds)",
           title=title)
    ax.legend(fontsize="small", loc="upper center",  # above the bars, within the axes
              ncol=min(len(optimizers) + 1, 4))


def by_kind(summary: pd.DataFrame, title: str):
    """One panel per input set: test accuracy (mean ± std over seeds) of every optimizer per
    training set, scored on the kinds it was trained on (all of the test split for ``all``)."""
    from experiments.common import score_on_training

    inputs = list(dict.fromkeys(summary["inputs"]))
    fig, axes = figure(1, len(inputs), title, size=(6.2, 4.4))
    for ax, name in zip(axes[0], inputs, strict=True):
        part = summary[summary["inputs"] == name].copy()
        part[["test_accuracy_mean", "test_accuracy_std"]] = [
            score_on_training(r)[:2] for _, r in part.iterrows()]
        bars(ax, part, f"{name} inputs: {INPUT_LABELS.get(name, name)}", group="trained_on")
        ax.set(xlabel="trained and scored on", ylabel="test accuracy (mean ± std over seeds)")
    return fig


def headline_curves(per_epoch: pd.DataFrame, summary: pd.DataFrame, study: str):
    """:func:`four_panels` of a study's headline variant (``common.headline_variant``)."""
    from experiments.common import headline_runs, headline_variant

    inputs, on = headline_variant(summary)
    runs = headline_runs(per_epoch, summary)
    test = f"test_accuracy_{on}" if f"test_accuracy_{on}" in runs else "test_accuracy"
    return four_panels(runs, f"{study}: {INPUT_LABELS.get(inputs, inputs)} inputs, trained, "
                             f"validated and tested on {on}", test)


def four_panels(epochs: pd.DataFrame, title: str, test: str = "test_accuracy"):
    """The source's figure: training loss and accuracy against epochs and against time. The
    accuracy curves are on the validation split; the test split (its column ``test``: the
    whole split, or the rows of one kind), scored once per run, is the diamond at the end
    (mean ± std over seeds)."""
    fig, axes = figure(2, 2, title)
    for row, x in enumerate(("epoch", "time")):
        curves(axes[row, 0], epochs, "train_loss", x, title=f"training MSE against {x}",
               ylabel="training MSE")
        curves(axes[row, 1], epochs, "val_accuracy", x, title=f"accuracy against {x}",
               ylabel="validation accuracy; ◆ test")
        for name, group in epochs.groupby("optimizer", sort=False):
            final = group.dropna(subset=[test])
            at = final["epoch"].mean() if x == "epoch" else final["elapsed"].mean()
            axes[row, 1].errorbar(at, final[test].mean(), yerr=final[test].std(), fmt="D",
                                  color=COLORS.get(name), capsize=3)
    return fig


def heatmap(ax, values: np.ndarray, xticks, yticks, xlabel: str, ylabel: str, title: str):
    """``values`` as coloured cells with their numbers written in, and a colour bar."""
    image = ax.imshow(values, cmap="viridis", vmin=0.4, vmax=1.0)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < 0.8 else "k")
    ax.set(xticks=range(len(xticks)), xticklabels=xticks, xlabel=xlabel, title=title,
           yticks=range(len(yticks)), yticklabels=yticks, ylabel=ylabel)
    ax.figure.colorbar(image, ax=ax, label=title)


def weight_paths(ax, runs: list[dict], points, title: str, method: str) -> None:
    """Weights' paths (``points``: each run's, embedded in 2-D by ``method``), each in its
    optimizer's colour, a dot at its end; one neutral star per distinct start (the runs of a
    seed all start from the same weights)."""
    seen, starts = set(), {}
    for run, xy in zip(runs, points, strict=True):
        name, starts[run["seed"]] = run["optimizer"], xy[0]
        ax.plot(xy[:, 0], xy[:, 1], color=COLORS[name], lw=0.8, alpha=0.7,
                label=None if name in seen else LABELS[name])
        ax.scatter(*xy[-1], s=22, color=COLORS[name], edgecolor="k", zorder=4)
        seen.add(name)
    ax.scatter(*np.array(list(starts.values())).T, marker="*", s=260, color="0.92",
               edgecolor="k", zorder=3, label="start (shared by\nthe seed's runs)")
    ax.set(title=title, xlabel=f"{method} 1", ylabel=f"{method} 2")


def contour_paths(epochs: pd.DataFrame, f, title: str, titles: dict, span: float = 2.5):
    """One panel per optimizer: contours of ``f(x1, x2)``, the iterates (``x1``, ``x2``), their
    running mean (``mean_x1``, ``mean_x2``), the last of each and the minimum at the origin."""
    groups = list(epochs.groupby("optimizer", sort=False))
    fig, axes = figure(1, len(groups), title, size=(4.8, 4.4))
    X1, X2 = np.meshgrid(*2 * [np.linspace(-span, span, 200)])
    for ax, (name, d) in zip(axes[0], groups, strict=True):
        ax.contour(X1, X2, f(X1, X2), levels=12, cmap="Greys", linewidths=0.6)
        ax.plot(d.x1, d.x2, color=COLORS.get(name), lw=0.7, alpha=0.8, label="iterates")
        ax.plot(d.mean_x1, d.mean_x2, color="k", lw=1, ls="--", label="running mean")
        ax.scatter(d.x1.iloc[-1], d.x2.iloc[-1], color=COLORS.get(name), edgecolor="k", s=60,
                   zorder=3, label="last iterate")
        ax.scatter(d.mean_x1.iloc[-1], d.mean_x2.iloc[-1], marker="X", color="k", s=60,
                   zorder=3, label="mean of iterates")
        ax.scatter(0, 0, marker="+", color="red", s=80, zorder=3, label="minimum")
        ax.set(title=titles.get(name, name), xlabel="x₁", ylabel="x₂", aspect="equal")
        ax.legend(fontsize="x-small", loc="upper left")
    return fig
