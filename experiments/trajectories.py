"""Study 9, trajectories: the weights' paths during training, embedded in 2-D.

The source's settings: the TwoLayerMLP, 50 epochs, 5 seeds (also 10), weights recorded every
epoch, all trajectories of all optimizers embedded together by t-SNE (perplexity 10, init
'pca'), a star at the start, a dot at the end, one colour per optimizer. Here the weights come
from minidl's WeightTrajectory callback; t-SNE runs on the first 50 principal components (the
usual first step), and a plain PCA projection stands beside it, since t-SNE keeps neighbourhoods
but not global distances. Default seeds: the study's five, then five more for the 10-seed panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from experiments import common

STUDY = "trajectories"
OPTIMIZERS = ("gd", "sgd", "adam", "adagrad", "rmsprop")
SEEDS = (*common.SEEDS, 0, 1, 2, 3, 4)


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 50, seeds=SEEDS)
    features = common.load_features(args.features, args.data)
    runs = common.grid({"two_layer": {"record_weights": True}}, OPTIMIZERS, seeds, epochs)
    folder, _, _, results = common.run_study(STUDY, args, runs, {"main": common.split(features)},
                                             features, epochs=epochs, seeds=seeds,
                                             tsne={"perplexity": 10, "init": "pca", "pca": 50})
    paths = [r["weights"] for r in results]
    pd.DataFrame([{"optimizer": run.optimizer, "seed": run.seed,
                   "distance_start_to_end": float(np.linalg.norm(w[-1] - w[0])),
                   "path_length": float(np.linalg.norm(np.diff(w, axis=0), axis=1).sum())}
                  for run, w in zip(runs, paths, strict=True)]).to_csv(
        folder / "distances.csv", index=False)
    first = [i for i, run in enumerate(runs) if run.seed in seeds[:5]]
    panels = [("t-SNE", first, f"{len(seeds[:5])} seeds"), ("PCA", first, "same runs")]
    if len(seeds) > 5:
        panels.append(("t-SNE", list(range(len(runs))), f"all {len(seeds)} seeds"))
    fig, axes = common.figure(1, len(panels), f"{STUDY}: weights every epoch, {epochs} epochs — "
                                              "ağırlık yörüngeleri", size=(5.2, 4.6))
    for ax, (method, chosen, what) in zip(axes[0], panels, strict=True):
        plot_paths(ax, [runs[i] for i in chosen], [paths[i] for i in chosen], method, what)
    common.save_figure(fig, folder, f"{STUDY}.png")


def embed(paths: list[np.ndarray], method: str) -> list[np.ndarray]:
    """All trajectories embedded jointly into 2-D, split back per trajectory."""
    stacked = np.concatenate(paths)
    reduced = PCA(n_components=min(50, *stacked.shape), random_state=0).fit_transform(stacked)
    if method == "PCA":
        points = reduced[:, :2]
    else:
        points = TSNE(perplexity=min(10, len(stacked) - 1), init="pca",
                      random_state=0).fit_transform(reduced)
    return np.split(points, np.cumsum([len(p) for p in paths])[:-1])


def plot_paths(ax, runs, paths, method, what) -> None:
    seen = set()
    for run, xy in zip(runs, embed(paths, method), strict=True):
        color = common.COLORS[run.optimizer]
        label = None if run.optimizer in seen else common.LABELS[run.optimizer]
        seen.add(run.optimizer)
        ax.plot(xy[:, 0], xy[:, 1], color=color, lw=0.8, alpha=0.7, label=label)
        ax.scatter(*xy[0], marker="*", s=120, color=color, edgecolor="k", zorder=3)
        ax.scatter(*xy[-1], marker="o", s=30, color=color, edgecolor="k", zorder=3)
    ax.set(title=f"{method}, {what} (★ start, ● end)", xlabel=f"{method} 1",
           ylabel=f"{method} 2")
    ax.legend(fontsize="small")


def report_section(results) -> str:
    s = common.read_summary(results, STUDY)
    d = pd.read_csv(results / STUDY / "distances.csv").groupby("optimizer", sort=False).mean()
    moves = "; ".join(f"{common.LABELS[o]} {r.distance_start_to_end:.2f} (path "
                      f"{r.path_length:.2f})" for o, r in d.iterrows())
    return f"""## 9. `trajectories`: where the weights go

![trajectories](figures/{STUDY}/{STUDY}.png)

{common.source_table(s)}

Distance in weight space from the start to the end of training, mean over seeds (and the length
of the path travelled): {moves}. Runs with the same seed start from the same weights, so their
stars coincide. t-SNE places each path among its neighbours: it shows which runs stay close to
each other and how far each wanders locally, but distances between far-apart clusters, and the
size of a cluster, mean nothing; the PCA panel keeps those proportions (on its two directions
only). The source gave no numbers for this study.
"""
