"""Study 9, trajectories: the weights' paths during training, embedded in 2-D.

The source's settings (``experiments.settings``): the TwoLayerMLP, 50 epochs, 5 seeds (also
10), weights recorded every epoch, all trajectories of all optimizers embedded together by t-SNE
(perplexity 10, init 'pca'), a star at the start, a dot at the end, one colour per optimizer.
Here the weights come from minidl's WeightTrajectory callback; t-SNE runs on the first 50
principal components (the usual first step); below it, a plain PCA projection per optimizer
(t-SNE keeps neighbourhoods, not global distances). Default seeds: the study's five, then five
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


def figure(ids: list[dict], paths, seeds: list[int], epochs: int):
    """Top: t-SNE of the first five seeds' paths (and of all seeds' if more); below, PCA of the
    five seeds', one panel per optimizer, on one basis fitted on them all; first training set."""
    first = (ids[0]["inputs"], ids[0]["trained_on"])
    mine = [i for i, r in enumerate(ids) if (r["inputs"], r["trained_on"]) == first]
    five = [i for i in mine if ids[i]["seed"] in seeds[:5]]
    tsne = [(five, f"{len(seeds[:5])} seeds"), (mine, f"all {len(seeds)} seeds")][
        :1 + (len(seeds) > 5)]
    names = list(dict.fromkeys(ids[i]["optimizer"] for i in five))
    fig, top, bottom, key = plots.two_rows(len(tsne), len(names), f"{STUDY}: weights every epoch, "
                                      f"{epochs} epochs, {first[0]} inputs, trained on "
                                      f"{first[1]}; ☆ start, shared by a seed's runs; ● end")
    for ax, (chosen, what) in zip(top, tsne, strict=True):
        plots.weight_paths(ax, [ids[i] for i in chosen], embed([paths[i] for i in chosen], "t-SNE"),
                   f"t-SNE of all optimizers' paths, {what}", "t-SNE")
    (key or top[-1]).legend(*top[0].get_legend_handles_labels(), fontsize="small",
                            loc="upper left")  # beside the paths, not on them
    pca = dict(zip(five, embed([paths[i] for i in five], "PCA"), strict=True))
    for ax, name in zip(bottom, names, strict=True):
        runs = [i for i in five if ids[i]["optimizer"] == name]
        plots.weight_paths(ax, [ids[i] for i in runs], [pca[i] for i in runs],
                   f"PCA, {plots.LABELS[name]} (own scale)", "PCA")
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
