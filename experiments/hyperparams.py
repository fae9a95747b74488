"""Study 8, hyperparams: grid search, random search, Bayesian optimisation, and pruning.

The source: Adam, batch 32, 30 epochs, seed 42; a heatmap of the grid hidden {32, 64, 128} x lr
{0.1, 0.01, 0.001, 0.0001} (lr 0.01 / 0.001 with hidden 32 / 64 best). The rest it only
described; here each has the grid's 12 trials over hidden 16..256, lr 1e-4..1e-1 (log): random,
optuna's TPE, and TPE with early stopping as pruning (val_loss, patience 5, best restored).
"""

from __future__ import annotations

import json
import time

import optuna
import pandas as pd

from experiments import common, parallel, plots, report

STUDY = "hyperparams"
HIDDEN, LRS, TRIALS = (32, 64, 128), (0.1, 0.01, 0.001, 0.0001), 12
STRATEGIES = ("random", "tpe", "tpe+early stopping")


def search(strategy, data, epochs, seed, trials, storage=None, study_name=None) -> list[dict]:
    """``trials`` trials of ``strategy``, in order (:func:`experiments.parallel.searches`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    early = strategy == "tpe+early stopping"  # stopping a trial that no longer improves: pruning
    sampler = (optuna.samplers.RandomSampler(seed=seed) if strategy == "random" else
               optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
    study = parallel.study(storage, study_name, sampler)
    rows, start = [], time.perf_counter()
    for number in range(trials):
        trial = study.ask()
        hidden, lr = (trial.suggest_int("hidden", 16, 256, log=True),
                      trial.suggest_float("lr", 1e-4, 1e-1, log=True))
        result = common.train(common.Run(strategy, "adam", seed, epochs, hidden=(hidden,), lr=lr,
                                         patience=5 if early else None), data)
        ep = pd.DataFrame(result["rows"])  # early stopping restores the lowest val_loss epoch
        val = ep["val_accuracy"][ep["val_loss"].idxmin() if early else ep.index[-1]]
        study.tell(trial, val)
        rows.append({"strategy": strategy, "trial": number + 1, "hidden": hidden, "lr": lr,
                     "val_accuracy": val, **result["test"], "epochs_run": len(ep),
                     "wall_seconds": time.perf_counter() - start})
    return rows


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 30, seeds=(42,))
    features = common.load_features(args.features, args.data)
    data, t0 = common.split(features), time.perf_counter()
    runs = [common.Run(f"hidden {h}, lr {lr:g}", "adam", seeds[0], epochs, hidden=(h,), lr=lr)
            for h in HIDDEN for lr in LRS]
    folder, _, summary, results = common.run_study(STUDY, args, runs, {"main": data}, features,
                                                   epochs=epochs, seeds=seeds,
                                                   n_val=len(data.y_val))
    seconds = (time.perf_counter() - t0) / len(runs)  # the grid ran in parallel: spread evenly
    rows = [{"strategy": "grid", "trial": i + 1, "hidden": r.hidden[0], "lr": r.lr,
             "val_accuracy": s.val_accuracy_mean, **res["test"], "epochs_run": epochs,
             "wall_seconds": seconds * (i + 1)}
            for i, (r, s, res) in enumerate(zip(runs, summary.itertuples(), results, strict=True))]
    trials = 3 if args.quick else TRIALS
    for part in parallel.searches(args, search, STRATEGIES, (data, epochs, seeds[0], trials),
                                  f"{STUDY}-seed{seeds[0]}", trials, folder / "optuna.json"):
        rows += part
    table = pd.DataFrame(rows)
    table.to_csv(folder / "trials.csv", index=False)
    table.loc[table.groupby("strategy", sort=False)["val_accuracy"].idxmax()].rename(
        columns={"trial": "trials_to_best", "wall_seconds": "seconds_to_best"}).to_csv(
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
    n_val = json.loads((results / STUDY / "config.json").read_text())["settings"]["n_val"]
    best = pd.read_csv(results / STUDY / "strategies.csv")
    best.insert(1, "best on validation", [f"hidden {h}, lr {lr:.2g}" for h, lr in
                                          zip(best.pop("hidden"), best.pop("lr"), strict=True)])
    return f"""## 8. `hyperparams`: grid, random search, Bayesian optimisation, pruning

![hyperparams](figures/{STUDY}/{STUDY}.png)

{report.markdown_table(best.rename(columns=lambda c: c.replace("_", " ")))}

The source found lr 0.01 / 0.001 with 32 / 64 hidden units best on its grid. Each strategy had
the same budget of trials, one seed (42); "seconds to best" runs from the strategy's start until
its best trial finished (the grid ran in parallel: its time is spread evenly over its runs). With
{n_val} validation rows, validation accuracy moves in steps of {1 / n_val:.4f} and many
configurations tie: any strategy's "best" is partly luck, and its test accuracy is the number.
"""
