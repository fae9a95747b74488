"""Study 8, hyperparams: grid search, random search, Bayesian optimisation, and pruning.

The source: Adam, batch 32, 30 epochs, seed 42; a heatmap of the grid hidden {32, 64, 128} x lr
{0.1, 0.01, 0.001, 0.0001} (lr 0.01 / 0.001 with hidden 32 / 64 best). The rest it only
described; here each has the grid's 12 trials over hidden 16..256, lr 1e-4..1e-1 (log): random,
optuna's TPE, and TPE with early stopping as pruning (val_loss, patience 5, best restored).
Their trials run in parallel, asked 4 at a time: the same results anywhere (parallel.py). On
the pair features trained on all kinds, or the one training set ``--inputs``/``--kinds`` give.
"""

from __future__ import annotations

import pandas as pd
from threadpoolctl import threadpool_limits

import minidl as md
from experiments import common, files, parallel, plots
from experiments.settings import (
    GRID_HIDDEN,
    GRID_LRS,
    OPTIMIZERS,
    QUICK_TRIALS,
    SEARCH_EPOCHS,
    SEARCH_HIDDEN,
    SEARCH_LR,
    SEARCH_PATIENCE,
    SEARCH_SEED,
    TRIAL_BATCH,
    TRIALS,
)

STUDY = "hyperparams"
STRATEGIES = ("random", "tpe", "tpe+early stopping")


def train(data: common.QAData, optimizer: str, seed: int, epochs: int, hidden: int, lr: float,
          patience: int | None = None) -> dict:
    """The TwoLayerMLP with ``hidden`` units at learning rate ``lr``; with ``patience``, early
    stopping on val_loss, the best epoch's weights restored."""
    setting = OPTIMIZERS[optimizer]
    stop = [] if patience is None else [md.callbacks.EarlyStopping(
        "val_loss", patience=patience, restore_best_weights=True)]
    model = md.RecursiveMLP([data.dim, hidden, 1], activation=md.Tanh, bias=False,
                            init="lecun_normal", rng=seed).astype(data.X.dtype)
    history = md.fit(model, md.MSE(half_grad=True), setting.build(model.parameters(), lr=lr),
                     data.X, data.y, epochs=epochs, batch_size=setting.batch_size, seed=seed,
                     validation_data=data.val, metrics=["accuracy"], callbacks=stop,
                     verbose=0, on_nonfinite="stop")
    return common.result(history, model, data)


def sampler(strategy: str, seed: int):
    """The sampler of one batch of ``strategy``'s trials (TPE starts with 4 random ones)."""
    return parallel.sampler("random" if strategy == "random" else "tpe", seed, startup=4)


def suggest(trial) -> dict:
    return {"hidden": trial.suggest_int("hidden", *SEARCH_HIDDEN, log=True),
            "lr": trial.suggest_float("lr", *SEARCH_LR, log=True)}


def objective(strategy: str, params: dict, data, epochs: int, seed: int) -> dict:
    """One trial, on a worker: its validation accuracy (final and per epoch), test scores."""
    early = strategy == "tpe+early stopping"  # stopping a trial that no longer improves: pruning
    with threadpool_limits(1):
        result = train(data, "adam", seed, epochs, params["hidden"], params["lr"],
                       SEARCH_PATIENCE if early else None)
    ep = pd.DataFrame(result["rows"])  # early stopping restores the lowest val_loss epoch
    val = float(ep["val_accuracy"][ep["val_loss"].idxmin() if early else ep.index[-1]])
    return {"value": val, "steps": ep["val_accuracy"].tolist(), "attrs": {"val_accuracy": val,
            **result["test"], "epochs_run": len(ep), "train_seconds": ep["elapsed"].iloc[-1]}}


def trial_table(tasks, results, found, ids: dict) -> pd.DataFrame:
    """Every trial: the grid's (one seed: a run's last row is its result), then the searches'."""
    rows = [{"strategy": "grid", "trial": i, "hidden": kw["hidden"], "lr": kw["lr"],
             "val_accuracy": r["rows"][-1]["val_accuracy"], **r["test"],
             "epochs_run": len(r["rows"]), "train_seconds": r["rows"][-1]["elapsed"]}
            for i, ((_, kw), r) in enumerate(zip(tasks, results, strict=True), 1)]
    rows += [{"strategy": key, "trial": i, **t["params"], **t["attrs"]} for key in STRATEGIES
             for i, t in enumerate(found[key], 1)]
    table = pd.DataFrame(rows).drop(columns=["pid", "host"])  # where a trial ran: not a result
    return pd.concat([pd.DataFrame(ids, index=table.index), table], axis=1)


def write_tables(folder, table: pd.DataFrame) -> None:
    """trials.csv, and strategies.csv: each strategy's best trial on validation, how many
    trials and how many training seconds (its trials one by one) it took to find it."""
    table.pipe(files.write_csv, folder / "trials.csv")
    table["train_seconds"] = table.groupby("strategy")["train_seconds"].cumsum()
    files.write_csv(table.loc[table.groupby("strategy", sort=False)["val_accuracy"].idxmax()]
                    .rename(columns={"trial": "trials_to_best",
                                     "train_seconds": "train_seconds_to_best"}),
                    folder / "strategies.csv")


def heatmap(summary: pd.DataFrame, epochs: int, seed: int):
    inputs, on = common.headline_variant(summary)
    fig, axes = plots.figure(1, 1, f"{STUDY}: grid of hidden units and learning rates, Adam, "
                             f"{epochs} epochs, seed {seed},\n{inputs} inputs, trained on {on}",
                             size=(6.4, 4.6))
    plots.heatmap(axes[0, 0], summary["val_accuracy_mean"].to_numpy().reshape(
        len(GRID_HIDDEN), len(GRID_LRS)), [f"{lr:g}" for lr in GRID_LRS], GRID_HIDDEN,
        "learning rate", "hidden units", "validation accuracy (last epoch)")
    return fig


def main(argv=None) -> None:
    args = common.parser(__doc__).parse_args(argv)
    epochs, (seed, *_) = common.settings(args, SEARCH_EPOCHS, seeds=(SEARCH_SEED,))
    names = parallel.new_studies(args.storage, f"{STUDY}-seed{seed}", STRATEGIES)  # fails fast
    features = common.load_features(args.features, args.data)
    (inputs, on), data = common.one_variant(args, features, STUDY)
    trials, ids = QUICK_TRIALS if args.quick else TRIALS, {"inputs": inputs, "trained_on": on}
    tasks = [({"variant": f"hidden {h}, lr {lr:g}", **ids, "optimizer": "adam", "seed": seed},
              {"data": data, "optimizer": "adam", "seed": seed, "epochs": epochs, "hidden": h,
               "lr": lr}) for h in GRID_HIDDEN for lr in GRID_LRS]
    results = common.run_all(train, tasks, args, STUDY)
    per_epoch, summary = common.tables(STUDY, [i for i, _ in tasks], results)
    folder = common.write_results(args.out, STUDY, args, per_epoch, summary, features,
                                  epochs=epochs, seeds=[seed], trials=trials, batch=TRIAL_BATCH,
                                  n_val=len(data.y_val), features_name=args.features, **ids)
    found = parallel.searches(args, names, sampler, suggest, objective, (data, epochs, seed),
                              seed=seed, trials=trials, batch=TRIAL_BATCH,
                              record=folder / "optuna.json")
    write_tables(folder, trial_table(tasks, results, found, ids))
    plots.save_figure(heatmap(summary, epochs, seed), folder, f"{STUDY}.png")


if __name__ == "__main__":
    main()
