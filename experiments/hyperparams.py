"""Study 8, hyperparams: grid search, random search, Bayesian optimisation, and pruning.

The source's settings: Adam, batch 32, 30 epochs, seed 42; the grid hidden {32, 64, 128} x lr
{0.1, 0.01, 0.001, 0.0001} as a heatmap (it found lr 0.01 / 0.001 with hidden 32 / 64 best). It
described random search, Bayesian optimisation and early stopping without running them; here
each gets the grid's budget of 12 trials over hidden 16..256 and lr 1e-4..1e-1 (log scales):
random search, optuna's TPE, and TPE with early stopping (val_loss, patience 5) and optuna's
median pruner as pruning. Every choice is made on the validation split; each trial's test
accuracy is recorded, never used.
"""

from __future__ import annotations

import json
import time

import numpy as np
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
        if self.trial.should_prune():
            self.pruned = self.trainer.stop_training = True


def search(strategy, data, epochs, seed, trials) -> list[dict]:
    """``trials`` trials of ``strategy`` ('random', 'tpe', 'tpe+pruning'), in order."""
    sampler = (optuna.samplers.RandomSampler(seed=seed) if strategy == "random"
               else optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5) \
        if strategy == "tpe+pruning" else optuna.pruners.NopPruner()
    study, rows, start = optuna.create_study(direction="maximize", sampler=sampler,
                                             pruner=pruner), [], time.perf_counter()
    for number in range(trials):
        trial = study.ask()
        hidden = trial.suggest_int("hidden", 16, 256, log=True)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        pruning = Pruning(trial) if strategy == "tpe+pruning" else None
        run = common.Run(strategy, "adam", seed, epochs, hidden=(hidden,), lr=lr,
                         patience=5 if pruning else None)
        result = common.train(run, data, callbacks=[pruning] if pruning else [])
        val = max(r["val_accuracy"] for r in result["rows"]) if pruning else \
            result["rows"][-1]["val_accuracy"]  # early stopping restores the best epoch
        study.tell(trial, val, state=optuna.trial.TrialState.PRUNED if pruning and
                   pruning.pruned else optuna.trial.TrialState.COMPLETE)
        rows.append({"strategy": strategy, "trial": number + 1, "hidden": hidden, "lr": lr,
                     "val_accuracy": val, "test_accuracy": result["test"]["test_accuracy"],
                     "epochs_run": len(result["rows"]), "pruned": bool(pruning and
                                                                     pruning.pruned),
                     "wall_seconds": time.perf_counter() - start})
    return rows


def main(argv=None):
    args = common.parser(__doc__).parse_args(argv)
    epochs, seeds = common.settings(args, 30, seeds=(42,))
    trials = 3 if args.quick else TRIALS
    features = common.load_features(args.features, args.data)
    data = common.split(features)
    variants = {f"hidden {h}, lr {lr:g}": {"hidden": (h,), "lr": lr} for h in HIDDEN for lr in LRS}
    t0 = time.perf_counter()
    folder, _, summary, _ = common.run_study(STUDY, args, common.grid(variants, ["adam"], seeds,
                                                                      epochs),
                                             {"main": data}, features, epochs=epochs,
                                             seeds=seeds, trials=trials, n_val=len(data.y_val))
    grid = summary.assign(strategy="grid", trial=np.arange(1, len(summary) + 1),
                          hidden=[h for h in HIDDEN for _ in LRS], lr=[lr for _ in HIDDEN
                                                                       for lr in LRS],
                          val_accuracy=summary["val_accuracy_mean"],
                          test_accuracy=summary["test_accuracy_mean"],
                          wall_seconds=(time.perf_counter() - t0) * np.arange(1, 13) / 12)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [r for s in ("random", "tpe", "tpe+pruning") for r in
            search(s, data, epochs, seeds[0], trials)]
    columns = ["strategy", "trial", "hidden", "lr", "val_accuracy", "test_accuracy",
               "wall_seconds"]
    table = pd.concat([grid[columns], pd.DataFrame(rows)], ignore_index=True)
    table.to_csv(folder / "trials.csv", index=False)
    best = table.loc[table.groupby("strategy", sort=False)["val_accuracy"].idxmax()]
    best = best.rename(columns={"trial": "trials_to_best", "wall_seconds": "seconds_to_best"})
    best.to_csv(folder / "strategies.csv", index=False)
    heat = summary["val_accuracy_mean"].to_numpy().reshape(len(HIDDEN), len(LRS))
    fig, axes = common.figure(1, 1, f"{STUDY}: Adam, {epochs} epochs, seed {seeds[0]} — "
                                    "hiperparametre ızgarası", size=(6.4, 4.4))
    ax = axes[0, 0]
    image = ax.imshow(heat, cmap="viridis", vmin=0.4, vmax=1.0)
    for (i, j), v in np.ndenumerate(heat):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < 0.8 else "k")
    ax.set(xticks=range(len(LRS)), xticklabels=[f"{lr:g}" for lr in LRS], xlabel="learning rate",
           yticks=range(len(HIDDEN)), yticklabels=HIDDEN, ylabel="hidden units",
           title="validation accuracy (last epoch)")
    fig.colorbar(image, ax=ax, label="validation accuracy")
    common.save_figure(fig, folder, f"{STUDY}.png")


def report_section(results) -> str:
    best = pd.read_csv(results / STUDY / "strategies.csv")
    rows = "\n".join(
        f"| {r.strategy} | hidden {r.hidden}, lr {r.lr:.2g} | {r.val_accuracy:.3f} | "
        f"{r.test_accuracy:.3f} | {r.trials_to_best} | {r.seconds_to_best:.1f} |"
        for r in best.itertuples())
    n_val = json.loads((results / STUDY / "config.json").read_text())["settings"]["n_val"]
    return f"""## 8. `hyperparams`: grid, random search, Bayesian optimisation, pruning

![hyperparams](figures/{STUDY}/{STUDY}.png)

| strategy | best (on validation) | validation | test | trials to best | seconds to best |
|---|---|---|---|---|---|
{rows}

The source found lr 0.01 / 0.001 with 32 / 64 hidden units best on its grid. Each strategy had
the same budget of trials; "seconds to best" is the wall time from the strategy's start until
its best trial finished (for the grid, the grid's time spread evenly over its 12 runs). The
validation split holds {n_val} rows, so validation accuracies move in steps of
{1 / n_val:.4f} and many configurations tie: the "best" of any strategy is partly
luck of the draw, and its test accuracy is the honest number.
"""

