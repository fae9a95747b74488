"""The headline QA studies (`optimizers`, `adaptive`), the report's opening, and what every
registered study owes: a short script on minidl's API, its settings written once, and a run
that writes only where it is told."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("joblib")
pytest.importorskip("optuna")

from experiments import __main__ as runner
from experiments import report, settings

ROOT = Path(__file__).resolve().parent.parent
NAMES = [runner.short(m) for m in runner.STUDIES]


def main_lines(tree: ast.Module) -> int:
    (main,) = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "main"]
    return main.end_lineno - main.lineno + 1


@pytest.mark.parametrize("name", NAMES)
def test_every_study_fits_itself_in_a_main_of_at_most_30_lines(name):
    source = (ROOT / "experiments" / f"{name}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "fit"
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "md"]
    assert calls and "import minidl as md" in source  # a call in the code, not in a docstring
    assert main_lines(tree) <= 30
    assert "def report_section" not in source  # the prose lives with the report
    assert name in report.sections()


def test_each_learning_rate_and_batch_size_is_written_once():
    """No study module, nor the main job, writes an optimizer's learning rate or batch size:
    they come from experiments.settings, where each is written once."""
    for name in (*NAMES, "demo", "common", "mnist_common"):
        path = ROOT / "experiments" / f"{name}.py"
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\blr\s*=\s*[0-9.]", source), path.name
        assert not [line for line in source.splitlines() if "predict(" not in line
                    and re.search(r"batch_size\s*=\s*[0-9]", line)], path.name  # fit's
    text = (ROOT / "experiments" / "settings.py").read_text(encoding="utf-8")
    assert text.count("(md.SGD, 0.01, None)") == 1 and text.count("(md.SGD, 0.1, 32)") == 1


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """`optimizers` and `adaptive` run --quick by the runner, from a folder outside the
    repository, into a results folder of that folder, with the report's default place."""
    where = tmp_path_factory.mktemp("elsewhere")
    docs = hashlib.sha256((ROOT / "docs" / "report.md").read_bytes()).hexdigest()
    done = subprocess.run([sys.executable, "-m", "experiments", "run", "optimizers",
                           "adaptive", "--quick", "--jobs", "1", "--out", "out"], cwd=where,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT),
                                                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert hashlib.sha256((ROOT / "docs" / "report.md").read_bytes()).hexdigest() == docs
    where.joinpath("stderr.txt").write_text(done.stderr)
    return where


def test_a_run_writes_only_where_it_is_told(quick):
    assert sorted(p.name for p in quick.iterdir()) == ["out", "stderr.txt"]  # no ./docs
    out = quick / "out"
    assert (out / "report.md").is_file()
    assert (out / "figures" / "optimizers" / "optimizers.png").is_file()
    config = (out / "optimizers" / "config.json").read_text()
    assert str(quick) not in config and str(ROOT) not in config  # no machine's folder
    assert json.loads(config)["argv"]["out"] == "out"


def test_the_optimizer_studies_run_both_inputs_on_all_kinds_and_each_kind(quick):
    err = (quick / "stderr.txt").read_text()
    lines = [line for line in err.splitlines()
             if line.startswith("[optimizers] ") and " seed " in line]
    s = pd.read_csv(quick / "out" / "optimizers" / "summary.csv")
    runs = [(i, on) for i in settings.INPUTS for on in ("all", *settings.KINDS)]
    assert list(dict.fromkeys(zip(s["inputs"], s["trained_on"], strict=True))) == runs
    assert len(lines) == len(runs) * len(settings.THREE) * settings.QUICK_SEEDS
    assert all(re.search(r"seed \d+: test 0\.\d{3} \(fact .* other_answer .*\), [\d.]+ s$",
                         line) for line in lines)
    a = pd.read_csv(quick / "out" / "adaptive" / "summary.csv")
    assert set(a["optimizer"]) == set(settings.FIVE) and len(a) == len(runs) * 5
    for kind in settings.KINDS:
        assert {f"test_accuracy_{kind}_mean", f"test_accuracy_{kind}_std"} <= set(s.columns)
    assert (quick / "out" / "optimizers" / "baselines.csv").is_file()


@pytest.mark.parametrize("name", ["optimizers", "adaptive"])
def test_each_seed_of_the_optimizer_studies_starts_from_its_own_weights(quick, name):
    """GD's runs differ by their initial weights alone: seeded alike they would be one run
    reported with a spread of 0."""
    from tests.test_experiments import seeds_start_apart

    epochs = pd.read_csv(quick / "out" / name / "epochs.csv")
    assert seeds_start_apart(epochs) == []


def test_the_report_opens_with_what_was_found_per_kind(quick):
    text = (quick / "out" / "report.md").read_text(encoding="utf-8")
    assert text.index("## What was found") < text.index("## Headline numbers") < text.index(
        "## 1. `optimizers`") < text.index("## 2. `adaptive`")
    found = text[text.index("## What was found"):text.index("## Headline numbers")]
    for kind in settings.KINDS:
        assert f"| `{kind}`: " in found
    assert "best on [q \\| a \\| 1]" in found  # a | inside a table cell is escaped
    assert "Trained and scored on other_answer with pairs inputs: " in text
    for link in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (quick / "out" / link).exists(), link


def test_separated_means_two_standard_errors_apart():
    a = {"test_accuracy_mean": 0.60, "test_accuracy_std": 0.01, "n_seeds": 5}
    b = {"test_accuracy_mean": 0.62, "test_accuracy_std": 0.01, "n_seeds": 5}
    c = {"test_accuracy_mean": 0.605, "test_accuracy_std": 0.01, "n_seeds": 5}
    assert report.separated(a, b) and not report.separated(a, c)
    rows = pd.DataFrame([{"optimizer": o, "trained_on": "all", "n_seeds": 5, "n_test": 1374,
                          "test_accuracy_mean": m, "test_accuracy_std": 0.01}
                         for o, m in (("adam", 0.62), ("gd", 0.60), ("sgd", 0.605))])
    assert report.ordering(rows) == "GD 0.600 ± 0.010 ≈ SGD 0.605 ± 0.010 < Adam 0.620 ± 0.010"


def test_the_spread_is_the_sample_standard_deviation_over_seeds():
    from experiments import common

    ids = [{"inputs": "pairs", "trained_on": "all", "optimizer": "adam", "seed": s}
           for s in (1, 2)]
    results = [{"rows": [{"epoch": 1.0, "train_loss": 1.0, "elapsed": 0.1}],
                "test": {"test_accuracy": acc}, "n_test": 10} for acc in (0.5, 0.7)]
    _, summary = common.tables("x", ids, results)
    assert summary["test_accuracy_std"].iloc[0] == pytest.approx(0.2 / 2 ** 0.5)  # ddof=1
    assert summary["n_seeds"].iloc[0] == 2


def test_decimals_follow_the_test_set_size():
    assert report.decimals(1374) == 3 and report.decimals(10_000) == 4
    assert report.fmt(0.97641, 0.0012, 10_000) == "0.9764 ± 0.0012"
    assert report.fmt(0.5, float("nan"), 1374) == "0.500"


@pytest.mark.parametrize(("argv", "expected"), [
    (["--kinds", "no_such"], "--kinds no_such: the data has fact, non_answer, other_answer"),
    (["--kinds", "all+fact"], "expected all, a kind such as other_answer"),
    (["--seeds", "1", "1", "--epochs", "1"], "--seeds: 1 given more than once"),
    (["--epochs", "0"], "--epochs: must be at least 1"),
])
def test_the_runner_refuses_what_the_data_or_the_study_cannot_take_in_one_line(
        tmp_path, argv, expected):
    done = subprocess.run([sys.executable, "-m", "experiments", "run", "optimizers", *argv,
                           "--out", str(tmp_path / "out"), "--jobs", "1"], cwd=ROOT,
                          capture_output=True, text=True)
    lines = [line for line in done.stderr.splitlines() if "running" not in line]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "optimizers" / "summary.csv").exists()
