"""Study 8, hyperparams: grid search, random search, Bayesian optimisation, and pruning.

The source: Adam, batch 32, 30 epochs, seed 42; a heatmap of the grid hidden {32, 64, 128} x lr
{0.1, 0.01, 0.001, 0.0001} (lr 0.01 / 0.001 with hidden 32 / 64 best). The rest it only
described; here each has the grid's 12 trials over hidden 16..256, lr 1e-4..1e-1 (log): random,
optuna's TPE, and TPE with early stopping as pruning (val_loss, patience 5, best restored).
Their trials run in parallel, asked 4 (BATCH) at a time: the same results anywhere (parallel.py).
"""

from __future__ import annotations

import json

import pandas as pd

from experiments import common, parallel, plots, report

STUDY = "hyperparams"
HIDDEN, LRS, TRIALS, QUICK_TRIALS, BATCH = (32, 64, 128), (0.1, 0.01, 0.001, 0.0001), 12, 6, 4
STRATEGIES = ("random", "tpe", "tpe+early stopping")


def sampler(strategy: str, seed: int):
    """The sampler of one batch of ``strategy``'s trials (TPE starts with 4 random ones)."""
    return parallel.sampler("random" if strategy == "random" else "tpe", seed, startup=4)


def suggest(trial) -> dict:
    return {"hidden": trial.suggest_int("hidden", 16, 256, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}


def objective(strategy: str, params: dict, data, epochs: int, seed: int) -> dict:
    """One trial, on a worker: its validation accuracy (final and per epoch), test scores."""
    early = strategy == "tpe+early stopping"  # stopping a trial that no longer improves: pruning
    result = common.train(common.Run(strategy, "adam", seed, epochs, hidden=(params["hidden"],),
                                     lr=params["lr"], patience=5 if early else None), data)
    ep = pd.DataFrame(result["rows"])  # early stopping restores the lowest val_loss epoch
    val = float(ep["val_accuracy"][ep["val_loss"].idxmin() if early else ep.index[-1]])
    return {"value": val, "steps": ep["val_accuracy"].tolist(), "attrs": {"val_accuracy": val,
            **result["test"], "epochs_run": len(ep), "train_seconds": ep["elapsed"].iloc[-1]}}


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 30, seeds=(42,))
    names = parallel.new_studies(args.storage, f"{STUDY}-seed{seeds[0]}", STRATEGIES)  # fails fast
    features = common.load_features(args.features, args.data)
    data, trials = common.split(features), QUICK_TRIALS if args.quick else TRIALS
    runs = [common.Run(f"hidden {h}, lr {lr:g}", "adam", seeds[0], epochs, hidden=(h,), lr=lr)
            for h in HIDDEN for lr in LRS]
    folder, _, summary, results = common.run_study(STUDY, args, runs, {"main": data}, features,
                                                   epochs=epochs, seeds=seeds, trials=trials,
                                                   batch=BATCH, n_val=len(data.y_val))
    rows = [{"strategy": "grid", "trial": i, "hidden": r.hidden[0], "lr": r.lr,
             "val_accuracy": o["rows"][-1]["val_accuracy"], **o["test"], "epochs_run": epochs,
             "train_seconds": o["rows"][-1]["elapsed"]}  # one seed: the last row is the run's
            for i, (r, o) in enumerate(zip(runs, results, strict=True), 1)]
    found = parallel.searches(args, names, sampler, suggest, objective, (data, epochs, seeds[0]),
                              seed=seeds[0], trials=trials, batch=BATCH,
                              record=folder / "optuna.json")
    rows += [{"strategy": key, "trial": i, **t["params"], **t["attrs"]} for key in STRATEGIES
             for i, t in enumerate(found[key], 1)]
    table = pd.DataFrame(rows).drop(columns=["pid", "host"])  # where a trial ran: not a result
    table.to_csv(folder / "trials.csv", index=False)
    table["train_seconds"] = table.groupby("strategy")["train_seconds"].cumsum()  # one by one
    table.loc[table.groupby("strategy", sort=False)["val_accuracy"].idxmax()].rename(
        columns={"trial": "trials_to_best", "train_seconds": "train_seconds_to_best"}).to_csv(
        folder / "strategies.csv", index=False)
    fig, axes = plots.figure(1, 1, f"{STUDY}: Adam, {epochs} epochs, seed {seeds[0]} — "
                                   "hiperparametre ızgarası", size=(6.4, 4.4))
    plots.heatmap(axes[0, 0], summary["val_accuracy_mean"].to_numpy().reshape(3, 4),
                  [f"{lr:g}" for lr in LRS], HIDDEN, "learning rate", "hidden units",
                  "validation accuracy (last epoch)")
    plots.save_figure(fig, folder, f"{STUDY}.png")


def headline(results):
    return report.headline(results, STUDY, source="lr 0.01 / 0.001, hidden 32 / 64 best")


def report_section(results) -> str:
    run = json.loads((results / STUDY / "config.json").read_text())["settings"]
    best = pd.read_csv(results / STUDY / "strategies.csv")
    best.insert(1, "best on validation", [f"hidden {h}, lr {lr:.2g}" for h, lr in
                                          zip(best.pop("hidden"), best.pop("lr"), strict=True)])
    return f"""## 8. `hyperparams`: grid, random search, Bayesian optimisation, pruning

![hyperparams](figures/{STUDY}/{STUDY}.png)

{report.markdown_table(best.rename(columns=lambda c: c.replace("_", " ")))}

The source found lr 0.01 / 0.001 with 32 / 64 hidden units best on its grid. Each strategy had
the same budget of trials, one seed (42); the searches asked {run['batch']} at a time, each batch
once the one before was told, and ran them in parallel. "Train seconds to best" adds up the
training time of a strategy's trials until its best one. With {run['n_val']} validation rows,
validation accuracy moves in steps of {1 / run['n_val']:.4f} and many configurations tie: any
strategy's "best" is partly luck, and its test accuracy is the number.
"""
