"""Study 8, hyperparams: grid search, random search, Bayesian optimisation, and pruning.

The source: Adam, batch 32, 30 epochs, seed 42; a heatmap of the grid hidden {32, 64, 128} x lr
{0.1, 0.01, 0.001, 0.0001} (lr 0.01 / 0.001 with hidden 32 / 64 best). Random search, Bayesian
optimisation and early stopping it only described; here each has the grid's 12 trials over
hidden 16..256 and lr 1e-4..1e-1 (log): random, optuna's TPE, and TPE with early stopping
(val_loss, patience 5) and the median pruner. Choices use the validation split only.
"""

from __future__ import annotations

import json
import time

import optuna
import pandas as pd

from experiments import common
from minidl.callbacks import Callback

STUDY = "hyperparams"
HIDDEN, LRS, TRIALS = (32, 64, 128), (0.1, 0.01, 0.001, 0.0001), 12


class Pruning(Callback):
    """Report validation accuracy to an optuna trial each epoch; stop when it says prune."""

    def __init__(self, trial):
        self.trial, self.pruned = trial, False

    def on_epoch_end(self, epoch, logs=None):
        self.trial.report(logs["val_accuracy"], epoch)
        self.pruned = self.trainer.stop_training = self.trial.should_prune()


def search(strategy, data, epochs, seed, trials) -> list[dict]:
    """``trials`` trials of ``strategy`` ('random', 'tpe', 'tpe+pruning'), in order."""
    pruning = strategy == "tpe+pruning"
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(
        seed=seed) if strategy == "random" else optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=4), pruner=optuna.pruners.MedianPruner(3, 5) if pruning
        else optuna.pruners.NopPruner())
    rows, start = [], time.perf_counter()
    for number in range(trials):
        trial = study.ask()
        hidden, lr = (trial.suggest_int("hidden", 16, 256, log=True),
                      trial.suggest_float("lr", 1e-4, 1e-1, log=True))
        callbacks = [Pruning(trial)] if pruning else []
        result = common.train(common.Run(strategy, "adam", seed, epochs, hidden=(hidden,), lr=lr,
                                         patience=5 if pruning else None), data, callbacks)
        ep = pd.DataFrame(result["rows"])  # early stopping restores the lowest val_loss epoch
        val = ep["val_accuracy"][ep["val_loss"].idxmin() if pruning else ep.index[-1]]
        pruned = bool(callbacks and callbacks[0].pruned)
        study.tell(trial, None if pruned else val, state=optuna.trial.TrialState.PRUNED
                   if pruned else optuna.trial.TrialState.COMPLETE)
        rows.append({"strategy": strategy, "trial": number + 1, "hidden": hidden, "lr": lr,
                     "val_accuracy": val, "test_accuracy": result["test"]["test_accuracy"],
                     "wall_seconds": time.perf_counter() - start, "epochs_run": len(ep),
                     "pruned": pruned})
    return rows


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 30, seeds=(42,))
    features = common.load_features(args.features, args.data)
    data, t0 = common.split(features), time.perf_counter()
    runs = [common.Run(f"hidden {h}, lr {lr:g}", "adam", seeds[0], epochs, hidden=(h,), lr=lr)
            for h in HIDDEN for lr in LRS]
    folder, _, summary, _ = common.run_study(STUDY, args, runs, {"main": data}, features,
                                             epochs=epochs, seeds=seeds, n_val=len(data.y_val))
    rows = [{"strategy": "grid", "trial": i + 1, "hidden": r.hidden[0], "lr": r.lr,
             "val_accuracy": s.val_accuracy_mean, "test_accuracy": s.test_accuracy_mean,
             "wall_seconds": (time.perf_counter() - t0) * (i + 1) / len(runs)}
            for i, (r, s) in enumerate(zip(runs, summary.itertuples(), strict=True))]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for strategy in ("random", "tpe", "tpe+pruning"):
        rows += search(strategy, data, epochs, seeds[0], 3 if args.quick else TRIALS)
    table = pd.DataFrame(rows)
    table.to_csv(folder / "trials.csv", index=False)
    table.loc[table.groupby("strategy", sort=False)["val_accuracy"].idxmax()].rename(
        columns={"trial": "trials_to_best", "wall_seconds": "seconds_to_best"}).to_csv(
        folder / "strategies.csv", index=False)
    fig, axes = common.figure(1, 1, f"{STUDY}: Adam, {epochs} epochs, seed {seeds[0]} — "
                                    "hiperparametre ızgarası", size=(6.4, 4.4))
    common.heatmap(axes[0, 0], summary["val_accuracy_mean"].to_numpy().reshape(3, 4),
                   [f"{lr:g}" for lr in LRS], HIDDEN, "learning rate", "hidden units",
                   "validation accuracy (last epoch)")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    n_val = json.loads((results / STUDY / "config.json").read_text())["settings"]["n_val"]
    rows = "\n".join(f"| {r.strategy} | hidden {r.hidden}, lr {r.lr:.2g} | {r.val_accuracy:.3f} "
                     f"| {r.test_accuracy:.3f} | {r.trials_to_best} | {r.seconds_to_best:.1f} |"
                     for r in pd.read_csv(results / STUDY / "strategies.csv").itertuples())
    return f"""## 8. `hyperparams`: grid, random search, Bayesian optimisation, pruning

![hyperparams](figures/{STUDY}/{STUDY}.png)

| strategy | best (on validation) | validation | test | trials to best | seconds to best |
|---|---|---|---|---|---|
{rows}

The source found lr 0.01 / 0.001 with 32 / 64 hidden units best on its grid. Each strategy had
the same budget of trials; "seconds to best" runs from the strategy's start until its best trial
finished (for the grid, run in parallel, its time spread evenly over its 12 runs). With
{n_val} validation rows, validation accuracy moves in steps of {1 / n_val:.4f} and many
configurations tie: any strategy's "best" is partly luck, and its test accuracy is the honest
number.
"""
