"""The report of one protocol run: ``summary.md`` with its figures, every run's per-epoch
history as CSV, and ``results.json``.

Per problem and optimizer: the final test metric (mean and sample std over seeds; diverged
seeds are counted, not averaged), epochs and seconds to the target (median over seeds, a seed
that never reaches it counting as never), the tuning curve, the step cost against Adam's, and
the comparison of the optimizer with each baseline (:mod:`.stats`). The performance profile
(Dolan and More, 2002) is drawn twice: on the final test metric (error, 1 - accuracy, or the
loss) and on the seconds to the target.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats

NOT_REACHED = "not reached"


# ---------------------------------------------------------------------------- numbers
def to_target(problem, result: dict) -> tuple[float, float]:
    """(epochs, seconds) until the test metric first reaches the target; inf when never."""
    if result["diverged"]:
        return math.inf, math.inf
    for row in result["rows"]:
        if problem.reached(row["test"]):
            return float(row["epoch"]), float(row["elapsed"])
    return math.inf, math.inf


def summarise(problem, lr: float, results: list[dict]) -> dict:
    tests = [r["test"] if not r["diverged"] else math.nan for r in results]
    good = [v for v in tests if math.isfinite(v)]
    reach = [to_target(problem, r) for r in results]
    return {"lr": lr, "tests": tests, "seeds": len(tests), "diverged": len(tests) - len(good),
            "mean": statistics.fmean(good) if good else math.nan,
            "std": statistics.stdev(good) if len(good) > 1 else math.nan,
            "reached": sum(math.isfinite(e) for e, _ in reach),
            "epochs_to_target": statistics.median(e for e, _ in reach),
            "seconds_to_target": statistics.median(s for _, s in reach)}


def cost(problem, row: dict) -> float:
    """What the profile on the final metric ranks: error (1 - accuracy) or loss; a diverged
    seed makes it inf."""
    if row["diverged"] or not math.isfinite(row["mean"]):
        return math.inf
    return 1 - row["mean"] if problem.higher_is_better else row["mean"]


def profile(costs: dict[str, list[float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dolan-More performance profile: for each optimizer, the ratios ``cost / best cost`` on
    each problem (inf where it failed), sorted, and the fraction of problems within each."""
    table = np.array(list(costs.values()), dtype=float)  # optimizers x problems
    best = np.min(table, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(table == best, 1.0, table / best)  # a best of 0: the others inf
        ratios = np.where(np.isfinite(table) & np.isfinite(best), ratios, np.inf)
    out = {}
    for name, r in zip(costs, ratios, strict=True):
        r = np.sort(r)
        out[name] = (r, np.arange(1, len(r) + 1) / len(r))
    return out


# ---------------------------------------------------------------------------- text
def fmt_metric(problem, row: dict) -> str:
    if row["diverged"] == row["seeds"]:
        return f"diverged ({row['seeds']}/{row['seeds']} seeds)"
    digits = 3 if problem.higher_is_better else 4

    def number(v: float) -> str:  # a loss that grew without overflowing: in powers of ten
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.{digits - 1}e}"

    text = number(row["mean"])
    text += f" ± {number(row['std'])}" if math.isfinite(row["std"]) else ""
    if row["diverged"]:
        text += f" ({row['diverged']} of {row['seeds']} seeds diverged)"
    return text


def fmt_target(row: dict, key: str, unit: str) -> str:
    value = row[key]
    if not math.isfinite(value):
        return NOT_REACHED + (f" ({row['reached']}/{row['seeds']} seeds)" if row["reached"]
                              else "")
    return f"{value:.0f}{unit} ({row['reached']}/{row['seeds']})" if unit == "" else \
        f"{value:.2f} s ({row['reached']}/{row['seeds']})"


def verdict_words(word: str, other: str) -> str:
    return {stats.BETTER: f"better than {other}", stats.WORSE: f"worse than {other}",
            stats.NOISE: f"within noise of {other}"}[word]


def rank(problem, table: dict[str, dict]) -> list[str]:
    """Names from best to worst by mean test metric (all-diverged last)."""
    def u(name):
        row = table[name]
        if row["diverged"]:
            return -math.inf
        return row["mean"] if problem.higher_is_better else -row["mean"]
    return sorted(table, key=u, reverse=True)


# ---------------------------------------------------------------------------- figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: The profiles' axis ends here; a ratio beyond counts as never within.
TAU_MAX = 100.0
COLORS = {"SGD+momentum": "tab:blue", "Adam": "tab:orange"}


def color(name: str) -> str:
    return COLORS.get(name, "tab:red")


def tuning_figure(path: Path, problems: dict, tuned: dict, contenders: list[str]) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 3.6), squeeze=False)
    for ax, (pname, problem) in zip(axes[0], problems.items(), strict=True):
        finite = [r["val"] for o in contenders for r in tuned[pname, o][1]
                  if not r["diverged"]]
        floor = (min(finite) if problem.higher_is_better else max(finite)) if finite else 0.0
        for o in contenders:
            lrs, results = tuned[pname, o]
            vals = [r["val"] if not r["diverged"] else np.nan for r in results]
            ax.plot(lrs, vals, "o-", color=color(o), label=o, ms=4)
            bad = [lr for lr, r in zip(lrs, results, strict=True) if r["diverged"]]
            if bad:
                ax.plot(bad, [floor] * len(bad), "x", color=color(o), ms=8, mew=2)
        ax.set_xscale("log")
        if not problem.higher_is_better:  # a loss: log scale, and 0 (a lattice hit) shown
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_ylim(bottom=0)  # a loss is never negative: no mirrored decades below 0
        ax.axhline(problem.target, color="grey", lw=0.8, ls=":")
        ax.set_title(pname)
        ax.set_xlabel("learning rate")
        ax.set_ylabel(f"validation {problem.metric}"
                      + (" (higher is better)" if problem.higher_is_better else
                         " (lower is better)"))
    axes[0][0].legend(fontsize=8, title="x: diverged; dotted: target", title_fontsize=7)
    fig.suptitle("Learning-rate sensitivity: one seed per learning rate, validation split")
    _save(fig, path)


def curves_figure(path: Path, problems: dict, final: dict, contenders: list[str]) -> None:
    plt = _plt()
    fig, axes = plt.subplots(2, len(problems), figsize=(4.2 * len(problems), 6.6),
                             squeeze=False)
    for j, (pname, problem) in enumerate(problems.items()):
        for o in contenders:
            lr, _, results = final[pname, o]
            ok = [r for r in results if not r["diverged"] and r["rows"]]
            if not ok:
                continue
            n = min(len(r["rows"]) for r in ok)
            test = np.array([[row["test"] for row in r["rows"][:n]] for r in ok])
            secs = np.array([[row["elapsed"] for row in r["rows"][:n]] for r in ok])
            epochs = np.arange(1, n + 1)
            label = f"{o} (lr {lr:.3g}, {len(ok)}/{len(results)} seeds)"
            for ax, x in ((axes[0][j], epochs), (axes[1][j], secs.mean(axis=0))):
                ax.plot(x, test.mean(axis=0), "-", color=color(o), label=label, marker=".")
                ax.fill_between(x, test.min(axis=0), test.max(axis=0), color=color(o),
                                alpha=0.15)
        for i, ax in enumerate(axes[:, j]):
            ax.axhline(problem.target, color="grey", lw=0.8, ls=":")
            if not problem.higher_is_better:
                ax.set_yscale("symlog", linthresh=1e-3)
                ax.set_ylim(bottom=0)
            ax.set_xlabel("epoch" if i == 0 else "training seconds (mean over seeds)")
            ax.set_ylabel(f"test {problem.metric}")
            ax.set_title(pname)
        axes[0][j].legend(fontsize=7)
    fig.suptitle("Test metric over epochs and over time: mean over seeds, band min..max, "
                 "dotted: target")
    _save(fig, path)


def profile_figure(path: Path, profiles: dict[str, dict], n_problems: int) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(profiles), figsize=(5.2 * len(profiles), 3.8),
                             squeeze=False)
    for ax, (title, prof) in zip(axes[0], profiles.items(), strict=True):
        finite = [r for ratios, _ in prof.values() for r in ratios if np.isfinite(r)]
        top = min(TAU_MAX, max(2.0, max(finite, default=1.0) * 1.3))
        for k, (name, (ratios, frac)) in enumerate(prof.items()):
            shown = [(r, f) for r, f in zip(ratios, frac, strict=True) if r < top]
            xs = [1.0] + [r for r, _ in shown] + [top]
            ys = [0.0] + [f for _, f in shown]
            ys = [*ys, ys[-1]]
            ax.step(xs, ys, where="post", color=color(name), label=name, lw=2.2 - 0.5 * k)
        ax.set_xscale("log")
        ax.set_xlim(1.0, top)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("tau (within a factor tau of the best)")
        ax.set_ylabel(f"fraction of the {n_problems} problems")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Performance profiles (Dolan-Moré)")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _plt().close(fig)


# ---------------------------------------------------------------------------- files
def histories(tuned: dict, final: dict, tuning_seed: int) -> pd.DataFrame:
    """Every run's per-epoch rows (tuning and final), one table."""
    frames = []
    for (pname, o), (lrs, results) in tuned.items():
        for lr, r in zip(lrs, results, strict=True):
            frames.append(_frame(r, problem=pname, optimizer=o, phase="tuning", lr=lr,
                                 seed=tuning_seed))
    for (pname, o), (lr, specs, results) in final.items():
        for s, r in zip(specs, results, strict=True):
            frames.append(_frame(r, problem=pname, optimizer=o, phase="final", lr=lr,
                                 seed=s["seed"]))
    return pd.concat(frames, ignore_index=True)


def _frame(result: dict, **ids) -> pd.DataFrame:
    rows = result["rows"] or [{"epoch": 0}]
    return pd.DataFrame(rows).assign(**ids, diverged=result["diverged"] or "")


def write(out: Path, *, problems: dict, contenders: list[str], user: str, tuned: dict,
          final: dict, steps: dict, seeds: list[int], command: str, seconds: float,
          budget: dict, figures: bool = True) -> dict:
    """Write everything into ``out`` (the PNG figures unless ``figures`` is False); returns
    ``{"table": ..., "verdicts": ..., "text": summary}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = {p: {o: summarise(problems[p], final[p, o][0], final[p, o][2]) for o in contenders}
             for p in problems}
    baselines = [o for o in contenders if o != user]
    verdicts = {p: {b: stats.compare(table[p][user]["tests"], table[p][b]["tests"],
                                     problems[p].higher_is_better) for b in baselines}
                for p in problems}
    # figures
    if figures:
        tuning_figure(out / "tuning.png", problems, tuned, contenders)
        curves_figure(out / "curves.png", problems, final, contenders)
        metric_costs = {o: [cost(problems[p], table[p][o]) for p in problems] for o in contenders}
        time_costs = {o: [table[p][o]["seconds_to_target"] for p in problems] for o in contenders}
        profile_figure(out / "profile.png",
                       {"final test metric (error 1 - accuracy, or loss)": profile(metric_costs),
                        "seconds to the target (median over seeds)": profile(time_costs)},
                       len(problems))
    # tables
    histories(tuned, final, seeds[0]).to_csv(out / "histories.csv", index=False)
    rows = []
    for p in problems:
        for o in contenders:
            row = table[p][o]
            rows.append({"problem": p, "optimizer": o, "lr": row["lr"],
                         "metric": problems[p].metric, "mean": row["mean"], "std": row["std"],
                         "seeds": row["seeds"], "diverged": row["diverged"],
                         "target": problems[p].target, "reached": row["reached"],
                         "epochs_to_target": row["epochs_to_target"],
                         "seconds_to_target": row["seconds_to_target"],
                         "step_vs_adam": steps.get(p, {}).get(o, {}).get("vs_adam", math.nan),
                         "vs_user": "" if o == user else verdicts[p][o]})
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    tuning_rows = [{"problem": p, "optimizer": o, "lr": lr, "val": r["val"],
                    "diverged": r["diverged"] or ""}
                   for (p, o), (lrs, results) in tuned.items()
                   for lr, r in zip(lrs, results, strict=True)]
    pd.DataFrame(tuning_rows).to_csv(out / "tuning.csv", index=False)
    text = markdown(problems, contenders, user, table, verdicts, steps, seeds, command,
                    seconds, budget, figures)
    (out / "summary.md").write_text(text, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(
        {"command": command, "seeds": seeds, "budget": budget, "seconds": seconds,
         "summary": rows, "verdicts": verdicts, "steps": steps}, indent=1, default=str))
    return {"table": table, "verdicts": verdicts, "text": text}


def markdown(problems, contenders, user, table, verdicts, steps, seeds, command, seconds,
             budget, figures=True) -> str:
    how = (f"a log grid of {budget['points']} learning rates" if budget["kind"] == "grid" else
           f"{budget['draws']} log-uniform draws (seed {budget['seed']})")
    lines = [f"# {user} against SGD with momentum and Adam", "",
             f"`{command}`: {len(problems)} problems; each optimizer tuned on {how} over its "
             f"range (one run each on seed {seeds[0]}, validation split), the best rerun on "
             f"{len(seeds)} seeds ({', '.join(map(str, seeds))}) and scored on the test split; "
             f"{seconds:.0f} s of runs.", "",
             "## Verdict", "",
             f"Per problem, {user} against each baseline on the final test metric: "
             "better or worse only where the intervals mean ± 2 standard errors over the "
             "seeds do not overlap, else within noise. Ranking by mean (best first).", ""]
    for p, problem in problems.items():
        said = ", ".join(verdict_words(verdicts[p][b], b) for b in verdicts[p])
        order = " > ".join(rank(problem, table[p]))
        lines.append(f"- **{p}**: {user} is {said}. Ranking: {order}.")
    lines += ["", "## Results", "",
              "Test metric: mean ± sample std over seeds. To target: median over seeds (a seed "
              "that never reaches the target counts as never), and how many seeds reached it. "
              "Step: one optimizer step on the problem's parameters, against Adam's.", ""]
    for p, problem in problems.items():
        direction = "higher is better" if problem.higher_is_better else "lower is better"
        lines += [f"### {p}", "",
                  f"{problem.description}; batch {problem.batch_size}, {problem.epochs} "
                  f"epoch{'s' if problem.epochs != 1 else ''}; "
                  f"test {problem.metric} ({direction}); target {problem.target:g}.", "",
                  f"| optimizer | lr | test {problem.metric} | epochs to target | "
                  f"seconds to target | step vs Adam | {user} is |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for o in contenders:
            row = table[p][o]
            step = steps.get(p, {}).get(o)
            lines.append(
                f"| {o} | {row['lr']:.3g} | {fmt_metric(problem, row)} | "
                f"{fmt_target(row, 'epochs_to_target', '')} | "
                f"{fmt_target(row, 'seconds_to_target', 's')} | "
                f"{'' if step is None else format(step['vs_adam'], '.2f') + 'x'} | "
                f"{'' if o == user else verdicts[p][o]} |")
        lines.append("")
    if not figures:
        lines += ["Files: `summary.csv` (this table), `tuning.csv` (every tuning run), "
                  "`histories.csv` (every run's per-epoch history), `results.json`; "
                  "no figures (--no-figures).", ""]
        return "\n".join(lines)
    lines += ["## Figures", "",
              "Learning-rate sensitivity (validation metric of each tuning run; x: diverged):",
              "", "![tuning curves](tuning.png)", "",
              "The chosen settings over epochs and over training seconds (test metric):", "",
              "![curves](curves.png)", "",
              "Performance profiles: for each optimizer, the fraction of problems on which it "
              "is within a factor tau of the best optimizer. Left: on the final test metric "
              "(error 1 - accuracy, or the loss); right: on the median seconds to the target "
              "(never reached: never within any factor).", "",
              "![performance profiles](profile.png)", "",
              "Files: `summary.csv` (this table), `tuning.csv` (every tuning run), "
              "`histories.csv` (every run's per-epoch history), `results.json`.", ""]
    return "\n".join(lines)
