"""Study 9, trajectories: the weights' paths during training, embedded in 2-D.

The source's settings (``experiments.settings``): the TwoLayerMLP, 50 epochs, 5 seeds (also
10), weights recorded every epoch, all trajectories of all optimizers embedded together by t-SNE
(perplexity 10, init 'pca'), a star at the start, a dot at the end, one colour per optimizer.
Here the weights come from minidl's WeightTrajectory callback; t-SNE runs on the first 50
principal components (the usual first step), and a plain PCA projection stands beside it, since
t-SNE keeps neighbourhoods but not global distances. Default seeds: the study's five, then five
more for the 10-seed panel. On the pair features, trained on all kinds (``--inputs``,
``--kinds``: others; the figure shows the first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

import minidl as md
from experiments import common, files, plots
from experiments.settings import (
    FIVE,
    HIDDEN,
    MAIN_INPUTS,
    MAIN_TRAINED_ON,
    OPTIMIZERS,
    TRAJECTORY_EPOCHS,
    TRAJECTORY_SEEDS,
)
from experiments.settings import TSNE as TSNE_SETTINGS

STUDY = "trajectories"


def train(data: common.QAData, optimizer: str, seed: int, epochs: int) -> dict:
    """The TwoLayerMLP of `optimizers`, its weights recorded after every epoch (and before)."""
    setting = OPTIMIZERS[optimizer]
    path = md.callbacks.WeightTrajectory()
    model = md.RecursiveMLP([data.dim, HIDDEN, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters()),
                     data.X, data.y, epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], callbacks=[path],
                     verbose=0)
    return common.result(history, model, data, weights=path.weights.astype(np.float32))


def embed(paths: list[np.ndarray], method: str) -> list[np.ndarray]:
    """All trajectories embedded jointly into 2-D, split back per trajectory."""
    stacked = np.concatenate(paths)
    reduced = PCA(n_components=min(TSNE_SETTINGS["pca"], *stacked.shape),
                  random_state=0).fit_transform(stacked)
    if method == "PCA":
        points = reduced[:, :2]
    else:
        points = TSNE(perplexity=min(TSNE_SETTINGS["perplexity"], len(stacked) - 1),
                      init=TSNE_SETTINGS["init"], random_state=0).fit_transform(reduced)
    return np.split(points, np.cumsum([len(p) for p in paths])[:-1])


def plot_paths(ax, runs: list[dict], paths, method: str, what: str) -> None:
    seen = set()
    for run, xy in zip(runs, embed(paths, method), strict=True):
        name = run["optimizer"]
        color, label = plots.COLORS[name], None if name in seen else plots.LABELS[name]
        seen.add(name)
        ax.plot(xy[:, 0], xy[:, 1], color=color, lw=0.8, alpha=0.7, label=label)
        ax.scatter(*xy[0], marker="*", s=120, color=color, edgecolor="k", zorder=3)
        ax.scatter(*xy[-1], marker="o", s=30, color=color, edgecolor="k", zorder=3)
    ax.set(title=f"{method}, {what} (★ start, ● end)", xlabel=f"{method} 1",
           ylabel=f"{method} 2")
    ax.legend(fontsize="small")


def figure(ids: list[dict], paths, seeds: list[int], epochs: int):
    """t-SNE and PCA of the first five seeds' paths, and t-SNE of all seeds' if more, of the
    first training set."""
    first = (ids[0]["inputs"], ids[0]["trained_on"])
    mine = [i for i, r in enumerate(ids) if (r["inputs"], r["trained_on"]) == first]
    five = [i for i in mine if ids[i]["seed"] in seeds[:5]]
    panels = [("t-SNE", five, f"{len(seeds[:5])} seeds"), ("PCA", five, "same runs")]
    if len(seeds) > 5:
        panels.append(("t-SNE", mine, f"all {len(seeds)} seeds"))
    fig, axes = plots.figure(1, len(panels), f"{STUDY}: weights every epoch, {epochs} epochs, "
                             f"{first[0]} inputs, trained on {first[1]}",
                             size=(5.2, 4.6))
    for ax, (method, chosen, what) in zip(axes[0], panels, strict=True):
        plot_paths(ax, [ids[i] for i in chosen], [paths[i] for i in chosen], method, what)
    return fig


def distances(ids: list[dict], paths) -> pd.DataFrame:
    return pd.DataFrame([{**run, "distance_start_to_end": float(np.linalg.norm(w[-1] - w[0])),
                          "path_length": float(np.linalg.norm(np.diff(w, axis=0), axis=1).sum())}
                         for run, w in zip(ids, paths, strict=True)])


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, TRAJECTORY_EPOCHS, seeds=TRAJECTORY_SEEDS)
    features = common.load_features(args.features, args.data)
    variants = common.qa_variants(args, features, inputs=(MAIN_INPUTS,),
                                  trained_on=(MAIN_TRAINED_ON,))
    tasks = common.grid(variants, FIVE, seeds, epochs=epochs)
    results = common.run_all(train, tasks, args, STUDY)
    ids, paths = [i for i, _ in tasks], [r.pop("weights") for r in results]
    per_epoch, summary = common.tables(STUDY, ids, results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=seeds, tsne=TSNE_SETTINGS,
                                  variants=list(variants), features_name=args.features)
    distances(ids, paths).pipe(files.write_csv, folder / "distances.csv")
    plots.save_figure(figure(ids, paths, seeds, epochs), folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
