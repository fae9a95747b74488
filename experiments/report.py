"""``docs/report.md`` from the results: a header (command, wall time, load, data, machine), the
headline numbers of every study, what the data allows (its baselines), then each study's
``report_section``, with its figures copied beside the report; and the pieces sections share."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.plots import LABELS


def read_summary(results: Path, study: str) -> pd.DataFrame:
    return pd.read_csv(Path(results) / study / "summary.csv", dtype={"variant": str})


def fmt(mean: float, std: float = np.nan) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def kinds(summary: pd.DataFrame) -> list[str]:
    """The answer kinds with accuracy columns ``test_accuracy_<kind>`` (mean over seeds)."""
    return [c[len("test_accuracy_"):] for c in summary.columns if c.startswith("test_accuracy_")
            and not c.endswith(("_std", "_mean"))]


def source_table(summary: pd.DataFrame, source: dict | None = None) -> str:
    """A markdown table: per variant and optimizer our test accuracy (mean ± std over seeds),
    overall and per answer kind, and the source's number (``source[(variant, opt)]``)."""
    source, ks = source or {}, kinds(summary)
    head = ["variant", "optimizer", "test accuracy (ours)", *(f"test: {k}" for k in ks),
            "train accuracy", "seeds", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        cells = [r["variant"], LABELS.get(r["optimizer"], r["optimizer"]),
                 fmt(r["test_accuracy_mean"], r["test_accuracy_std"]),
                 *(fmt(r[f"test_accuracy_{k}"], r[f"test_accuracy_{k}_std"]) for k in ks),
                 f"{r['train_accuracy_mean']:.3f}", str(r["n_seeds"]),
                 source.get((r["variant"], r["optimizer"]), "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table, numbers to three decimals."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v).replace("|", "\\|") for v in row]
             for row in frame.itertuples(index=False)]  # a | inside a cell would split it
    lines = [list(frame.columns), ["---"] * len(frame.columns), *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def chance_verdict(mean: float, std: float, n_test: int) -> str:
    """Whether a mean test accuracy is distinguishable from 0.5 (two standard errors of a coin
    on ``n_test`` rows, or two seed standard deviations, whichever is larger)."""
    margin = 2 * max(0.5 / np.sqrt(n_test), 0.0 if pd.isna(std) else std)
    if abs(mean - 0.5) <= margin:
        return "indistinguishable from chance"
    return "above chance" if mean > 0.5 else "below chance"


def headline(results, study: str, variant=None, optimizer=None, source="") -> dict:
    """One study's headline row: the given (variant, optimizer), or else the one with the best
    validation accuracy; test accuracy overall and per kind, mean ± std over seeds. ``source``:
    the source's number, or a dict of them by (variant, optimizer)."""
    s = read_summary(results, study)
    row = (s.loc[s["val_accuracy_mean"].idxmax()] if variant is None else
           s[(s["variant"] == variant) & (s["optimizer"] == optimizer)].iloc[0])
    return {"study": study, "what": f"{row.variant}, {LABELS.get(row.optimizer, row.optimizer)}",
            "overall": (row.test_accuracy_mean, row.test_accuracy_std),
            "source": source.get((row.variant, row.optimizer), "none") if isinstance(
                source, dict) else source,
            **{k: (row[f"test_accuracy_{k}"], row[f"test_accuracy_{k}_std"]) for k in kinds(s)}}


def write_report(results, studies: list[str], path) -> Path:
    results, path = Path(results), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = [m for m in studies if (results / m.rsplit(".", 1)[-1] / "config.json").exists()]
    modules = [importlib.import_module(m) for m in done]
    sections = [header(results, done), overview(results, modules)]
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        figures = path.parent / "figures" / name
        figures.mkdir(parents=True, exist_ok=True)
        for png in sorted((results / name).glob("*.png")):
            shutil.copy2(png, figures / png.name)
        sections.append(module.report_section(results).strip())
    path.write_text("\n\n".join(s for s in sections if s) + "\n", encoding="utf-8")
    return path


def overview(results: Path, modules) -> str:
    """The headline number of every study that has one, beside the source's."""
    rows = [m.headline(results) for m in modules if hasattr(m, "headline")]
    if not rows:
        return ""
    ks = [k for k in rows[0] if k not in ("study", "what", "overall", "source")]
    head = ["study", "headline run", "test accuracy", *ks, "source"]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['study']}`", r["what"], *(r.get(k, "") for k in ("overall", *ks))]
        lines.append("| " + " | ".join(c if isinstance(c, str) else fmt(*c) for c in cells)
                     + f" | {r['source']} |")
    means = {k: [r[k][0] for r in rows if isinstance(r.get(k), tuple)] for k in ks}
    return ("## Headline numbers\n\nPer study its headline run (the study's main comparison, or "
            "the configuration with the best validation accuracy), test accuracy mean ± std "
            "over seeds, overall and per kind of pair:\n\n" + "\n".join(lines) + "\n\n"
            + reading(results, means, rows)).strip()


def reading(results: Path, means: dict, rows: list[dict]) -> str:
    """What the headline numbers say per kind, against the data's baselines (measured by the
    ``optimizers`` study with ``experiments.qa.baselines``)."""
    path = Path(results) / "optimizers" / "baselines.csv"
    if not path.exists() or not {"fact", "non_answer"} <= set(means):
        return ""
    base = pd.read_csv(path).set_index("baseline")
    cos = base.loc["zero-shot e5-small cosine (per pair)"]
    surface = base[base.index.str.startswith("surface")]["overall"]
    pairs = base.loc[base.index.str.contains("q*a", regex=False), "non_answer"]
    pairs = f"{pairs.iloc[0]:.3f}" if len(pairs) else "not measured (--quick)"
    fact, non = means["fact"], means["non_answer"]
    best = max((r for r in rows if isinstance(r.get("non_answer"), tuple)),
               key=lambda r: r["non_answer"][0])
    near = "near chance" if max(fact) < 0.55 else "above chance in places"
    return f"""**Reading.** On the `fact` pairs (one fact swapped), which need world knowledge,
every headline run stays {near}: {min(fact):.3f} to {max(fact):.3f} (the zero-shot e5-small
cosine rule: {cos.fact:.3f}). The signal a model can learn here is in the `non_answer` pairs (a
true statement that does not answer the question): the untrained cosine rule, comparing each
question's two answers, reaches {cos.non_answer:.3f} on them. Our trained models reach
{min(non):.3f} to {max(non):.3f} of it (best: `{best['study']}`, {best['what']},
{best['non_answer'][0]:.3f}); logistic regression on the e5-small pair features
`[q | a | q*a | |q-a|]`: {pairs}. No surface cue helps: the surface baselines score
{surface.min():.3f} to {surface.max():.3f} overall (section 1, `python -m
experiments.qa.baselines`), so the kind of cue that can carry a model to 0.98 is absent here."""


def header(results: Path, modules: list[str]) -> str:
    timing_path = results / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    first = json.loads((results / modules[0].rsplit(".", 1)[-1] / "config.json").read_text()) \
        if modules else {}
    argv, settings = first.get("argv", {}), first.get("settings", {})
    argv = argv if isinstance(argv, dict) else {}  # a study's own config.json may differ
    per_study = ", ".join(f"{k} {v:.0f} s" for k, v in timing.get("studies", {}).items())
    load = timing.get("load")
    load_text = (f" The machine has {timing.get('cpus')} cores and is shared: its load average "
                 f"(1 min) was {load[0]:.1f} at the start and {load[1]:.1f} at the end." if load
                 else "")
    wall = (f"`{timing['command']}` took **{timing['total'] / 60:.1f} minutes** "
            f"({timing['total']:.0f} s) of wall time ({per_study}).{load_text}"
            if "total" in timing else f"Per study: {per_study}.")
    n_test = settings.get("n_test") or 1
    versions = ", ".join(f"{k} {v}" for k, v in first.get("versions", {}).items() if v)
    data = "" if argv.get("data") in (None, "None") else f" of {argv.get('data')}"
    return f"""# The question/answer study, redone on minidl

Generated from the results in `{results}`; every number below comes from that run; the
source's own numbers appear only in the columns marked "source". {wall} Runs used
`--jobs {argv.get('jobs')}` (one BLAS thread per run).

- Data: the question/answer pairs as **{settings.get('features_name')}** features{data}
  (content SHA-256 `{str(first.get('data_sha256'))[:16]}...`). The source used
  `ytu-ce-cosmos/turkish-e5-large`, which cannot be downloaded here.
- Selection: a validation split of {first.get('validation', {}).get('fraction')} of the
  training questions (both answers of a question on one side, seed
  {first.get('validation', {}).get('seed')}); the test split is scored once per run, at its end.
- Spread: mean ± sample standard deviation over seeds. With {n_test} test rows a coin scores
  0.5 ± {0.5 / n_test ** 0.5:.3f}, so anything within about {1 / n_test ** 0.5:.3f} of 0.5 is
  chance.
- Versions: {versions}."""
