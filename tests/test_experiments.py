"""The QA studies: the shared helper's pieces, and `python -m experiments run all --quick`."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("joblib")
pytest.importorskip("optuna")

from experiments import __main__ as runner
from experiments import common, hyperparams, optimizers, parallel, quadratic, report
from experiments.qa import baselines
from experiments.qa.embedders import FEATURE_NAMES, ModelUnavailableError
from minidl.datasets import QAFeatures

SUMMARY_COLUMNS = {"variant", "optimizer", "test_accuracy_mean", "test_accuracy_std",
                   "train_loss_mean", "n_seeds"}
EPOCH_COLUMNS = {"study", "variant", "optimizer", "seed", "epoch", "train_loss", "elapsed"}
ROOT = Path(__file__).resolve().parent.parent


def fake_features(n_questions=30, d=6, kinds=True, seed=0):
    """Three answers per question (right, wrong, non_answer) on random features."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("train", "test"):
        qs = [f"{split} soru {i}?" for i in range(n_questions) for _ in range(3)]
        answers = [f"cevap {i} {k}" for i in range(n_questions) for k in range(3)]
        kind = np.array(["right", "wrong", "non_answer"] * n_questions)
        X = np.hstack([rng.standard_normal((len(qs), 2 * d)), np.ones((len(qs), 1))])
        out[split] = (X, np.where(kind == "right", 1, -1), (qs, answers), kind)
    return QAFeatures(out["train"][0], out["train"][1], out["test"][0], out["test"][1],
                      texts={s: out[s][2] for s in out},
                      kinds={s: out[s][3] for s in out} if kinds else {})


# ---------------------------------------------------------------------------- features
def test_load_features_defaults_to_e5_small_rows_q_a_1_with_kinds():
    f = common.load_features()
    assert f.dim == 384 and f.X_train.shape[1] == f.X_test.shape[1] == 769
    assert np.all(f.X_train[:, -1] == 1) and set(np.unique(f.y_train)) == {-1, 1}
    assert len(f.texts["train"][0]) == len(f.X_train)
    assert set(f.kinds["test"]) == {"fact", "non_answer"} and len(f.kinds["test"]) == len(f.X_test)
    tfidf = common.load_features("tfidf")
    assert tfidf.X_train.shape[1] == 2 * 1024 + 1 and set(tfidf.kinds) == {"train", "test"}


def test_load_features_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown features"):
        common.load_features("word2vec")


def test_features_flag_takes_the_qa_feature_names_and_defaults_to_e5_small(capsys):
    p = common.parser("doc")
    assert p.parse_args([]).features == "e5-small"
    assert all(p.parse_args(["--features", n]).features == n for n in FEATURE_NAMES)
    with pytest.raises(SystemExit):
        p.parse_args(["--features", "word2vec"])


def test_a_model_that_cannot_be_had_is_one_error_line_and_exit_2(monkeypatch, tmp_path, capsys):
    def unavailable(features="e5-small", data=None, cache_dir=None, announce=print):
        raise ModelUnavailableError(f"{features} is not here: install it")

    monkeypatch.setattr("experiments.qa.features.load_features", unavailable)
    code = runner.main(["run", "optimizers", "--features", "e5-large", "--out",
                        str(tmp_path), "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: optimizers: e5-large is not here: install it" in err
    assert "Traceback" not in err


def test_interaction_features_are_q_a_product_absdiff_one():
    X = np.array([[1.0, -2.0, 3.0, 5.0, 1.0]])
    np.testing.assert_array_equal(common.interaction(X),
                                  [[1, -2, 3, 5, 3, -10, 2, 7, 1]])


# ---------------------------------------------------------------------------- splits and runs
def test_validation_split_is_by_question_and_seeded():
    f = fake_features()
    a, b, c = common.split(f, seed=1), common.split(f, seed=1), common.split(f, seed=2)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert not np.array_equal(a.X_val, c.X_val)
    val_questions = {q for q, x in zip(f.texts["train"][0], f.X_train, strict=True)
                     if any(np.array_equal(x, v) for v in a.X_val)}
    assert not val_questions & set(a.questions.tolist())
    assert len(a.X_val) == 3 * round(common.VAL_FRACTION * 30)


def test_fraction_keeps_whole_questions_and_first_rows_keep_order():
    data = common.split(fake_features())
    result = common.train(common.Run("v", "adam", 0, 1, fraction=0.25), data)
    assert result["rows"][0]["epoch"] == 1
    # 24 training questions -> 6 kept, with all 3 answers each
    run = common.Run("v", "gd", 0, 1, fraction=0.25)
    kept = np.random.default_rng(run.seed).permutation(sorted(set(data.questions.tolist())))[:6]
    assert np.isin(data.questions, kept).sum() == 18


def test_per_kind_accuracy_columns_agree_with_the_overall_accuracy():
    data = common.split(fake_features())
    runs = [common.Run("v", "adam", s, 2) for s in (1, 2)]
    results = [common.train(r, data) for r in runs]
    for result in results:
        t = result["test"]
        assert set(t) == {"test_accuracy", "test_accuracy_right", "test_accuracy_wrong",
                          "test_accuracy_non_answer"}
        # equal counts per kind: the overall accuracy is the mean of the per-kind ones
        per_kind = [v for k, v in t.items() if k != "test_accuracy"]
        assert t["test_accuracy"] == pytest.approx(np.mean(per_kind))
    epochs, summary = common.tables("s", runs, results)
    assert set(summary.columns) >= SUMMARY_COLUMNS
    for kind in ("right", "wrong", "non_answer"):
        values = [r["test"][f"test_accuracy_{kind}"] for r in results]
        assert summary[f"test_accuracy_{kind}"].iloc[0] == pytest.approx(np.mean(values))
        assert summary[f"test_accuracy_{kind}_std"].iloc[0] == pytest.approx(np.std(values,
                                                                                   ddof=1))
    assert report.kinds(summary) == ["non_answer", "right", "wrong"]  # sorted
    assert epochs["test_accuracy"].notna().sum() == 2  # scored once per run, on its last row
    table = report.source_table(summary)
    assert "test: right" in table and "test: non_answer" in table


def test_headline_is_the_given_row_or_the_best_on_validation(tmp_path):
    data = common.split(fake_features())
    runs = [common.Run(v, o, s, 2, hidden=h) for v, h in (("a", (4,)), ("b", ()))
            for o in ("gd", "adam") for s in (1, 2)]
    _, summary = common.tables("s", runs, [common.train(r, data) for r in runs])
    (tmp_path / "s").mkdir()
    summary.to_csv(tmp_path / "s" / "summary.csv", index=False)
    row = report.headline(tmp_path, "s", "b", "gd", {("b", "gd"): "0.9"})
    b_gd = summary[(summary["variant"] == "b") & (summary["optimizer"] == "gd")].iloc[0]
    assert row["what"] == "b, GD" and row["source"] == "0.9"
    assert row["overall"] == (b_gd.test_accuracy_mean, b_gd.test_accuracy_std)
    assert set(row) >= {"right", "wrong", "non_answer"}
    best = summary.loc[summary["val_accuracy_mean"].idxmax()]
    assert report.headline(tmp_path, "s")["what"].startswith(f"{best.variant}, ")


def test_no_kinds_means_no_kind_columns():
    data = common.split(fake_features(kinds=False))
    result = common.train(common.Run("v", "sgd", 0, 1), data)
    assert set(result["test"]) == {"test_accuracy"}


def test_a_run_is_repeatable_and_parallel_runs_match_sequential_ones():
    data = {"main": common.split(fake_features())}
    runs = [common.Run("v", o, 3, 2) for o in ("gd", "adam")]
    one = common.run_all(runs, data, jobs=1)
    two = common.run_all(runs, data, jobs=2)
    for a, b in zip(one, two, strict=True):
        assert a["test"] == b["test"]
        assert [r["train_loss"] for r in a["rows"]] == [r["train_loss"] for r in b["rows"]]


def test_early_stopping_and_weight_recording():
    data = common.split(fake_features())
    result = common.train(common.Run("v", "adam", 0, 40, lr=0.05, patience=1,
                                     record_weights=True), data)
    assert len(result["rows"]) < 40 and "early_stopping" in result["events"]
    assert result["weights"].shape == (len(result["rows"]) + 1, 13 * 64 + 64)


def test_quick_baselines_are_the_qa_baselines_surface_cues_and_cosine_rule():
    table = optimizers.baseline_table(None, quick=True).set_index("baseline")
    assert list(table.columns) == ["overall", "fact", "non_answer"]
    train, test = baselines.load_data()
    length = baselines.surface_predictions(train, test)["answer_length"]
    assert table.loc["surface: answer_length", "overall"] == np.mean(length == test.labels)
    cosine = baselines.cosine_rule_predictions(common.load_features("e5-small"))
    assert table.loc["zero-shot e5-small cosine (per pair)"].to_dict() == baselines.scores(
        cosine, test.labels, test.kinds)
    assert table.filter(like="surface", axis=0)["overall"].max() < 0.6  # no surface cue left


# ---------------------------------------------------------------------------- hyperparams
TIMING = {"train_seconds", "train_seconds_to_best"}
NOT_RESULTS = {"pid", "host", "train_seconds"}  # where and how fast a trial ran


def test_batch_seeds_depend_on_the_seed_and_the_batch_alone():
    seeds = [parallel.batch_seed(42, b) for b in range(3)]
    assert seeds == [parallel.batch_seed(42, b) for b in range(3)]
    assert len({*seeds, parallel.batch_seed(7, 0)}) == 4
    assert all(0 <= s < 2 ** 32 for s in seeds)


def test_hyperparams_gives_the_same_trials_for_one_job_or_two(tmp_path):
    """The searches ask their trials in batches of a fixed size, each batch's sampler seeded
    by the batch alone: one process or two, each run with its studies in a sqlite storage of
    its own, give the same tables and store the same trials. (Were a batch as large as --jobs,
    every strategy's second trial would differ.)"""
    import optuna

    stored = {}
    for jobs in ("1", "2"):
        storage = f"sqlite:///{tmp_path / f'jobs{jobs}.db'}"
        assert runner.main(["run", "hyperparams", "--quick", "--epochs", "2", "--jobs", jobs,
                            "--storage", storage, "--out", str(tmp_path / jobs),
                            "--no-report"]) == 0
        shared = json.loads((tmp_path / jobs / "hyperparams" / "optuna.json").read_text())
        assert shared["storage"] == storage and shared["batch"] == hyperparams.BATCH
        stored[jobs] = {
            key: [(t.state, t.number, t.params, t.value, t.intermediate_values,
                   {k: v for k, v in t.user_attrs.items() if k not in NOT_RESULTS})
                  for t in optuna.load_study(study_name=name, storage=storage).trials]
            for key, name in shared["studies"].items()}
    for name in ("trials.csv", "strategies.csv"):
        one, two = (pd.read_csv(tmp_path / jobs / "hyperparams" / name) for jobs in ("1", "2"))
        assert list(one.columns) == list(two.columns)
        kept = [c for c in one.columns if c not in TIMING]
        pd.testing.assert_frame_equal(one[kept], two[kept], check_exact=True)
    assert stored["1"] == stored["2"]
    trials = pd.read_csv(tmp_path / "1" / "hyperparams" / "trials.csv")
    assert trials.groupby("strategy", sort=False).size().to_dict() == {
        "grid": 12, **dict.fromkeys(hyperparams.STRATEGIES, hyperparams.QUICK_TRIALS)}
    random = trials[trials["strategy"] == "random"][["hidden", "lr"]]
    assert len(random.drop_duplicates()) == len(random)  # a batch's asks differ


def test_hyperparams_without_optuna_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails
    assert runner.main(["run", "hyperparams", "--quick", "--out", str(tmp_path),
                        "--no-report", "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "optuna" in err and "pip install 'minidl[experiments]'" in err


# ---------------------------------------------------------------------------- quadratic
def test_quadratic_without_noise_follows_the_closed_form(monkeypatch):
    monkeypatch.setattr(quadratic, "NOISE", 0.0)
    path = quadratic.descend("sgd", 0, 10)
    k = np.arange(11)
    # x_{k+1} = x_k - 0.1 * (2 x1, 4 x2): factors 0.8 and 0.6 per step
    np.testing.assert_allclose(path[["x1", "x2"]], np.stack([2 * 0.8 ** k, 2 * 0.6 ** k], axis=1),
                               rtol=1e-12)
    assert path["elapsed"].iloc[0] == 0.0 and path["elapsed"].iloc[-1] > 0
    assert path["elapsed"].iloc[1:-1].isna().all()  # measured at the ends only


def test_quadratic_noise_is_seeded():
    def xs(seed):
        return quadratic.descend("adam", seed, 20)[["x1", "x2"]].to_numpy()

    np.testing.assert_array_equal(xs(5), xs(5))
    assert not np.array_equal(xs(5), xs(6))


# ---------------------------------------------------------------------------- the runner
QA_STUDIES = ("optimizers", "adaptive", "train_size", "features", "one_layer", "deep", "fitting",
              "hyperparams", "trajectories", "quadratic")


def test_registry_lists_the_ten_studies_each_with_main_and_report_section(capsys):
    names = [runner.short(m) for m in runner.STUDIES]
    assert tuple(names[:10]) == QA_STUDIES
    for module in runner.STUDIES:
        m = importlib.import_module(module)
        assert callable(m.main) and callable(m.report_section)
        if runner.short(module) in QA_STUDIES:  # a row of the QA headline table
            assert callable(m.headline)
    assert runner.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in names)
    assert "Study 1, optimizers: GD vs SGD vs Adam" in listed
    with pytest.raises(SystemExit, match="unknown studies"):
        runner.resolve(["optimisers"])


def test_listing_imports_no_study_and_nothing_heavy():
    code = ("import sys; from experiments.__main__ import main; main(['list']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'optuna', "
            "'sklearn', 'pandas', 'numpy', 'minidl') or m in ('experiments.optimizers', "
            "'experiments.common')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


STUDY_MODULE = '''"""Study 11, {name}: a registered study outside the QA ten."""
import json
from pathlib import Path


def main(argv):
    out = Path(argv[argv.index("--out") + 1]) / "{name}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({{"argv": argv}}))


def report_section(results):
    return "## 11. `{name}`: " + json.loads((results / "{name}" / "config.json").read_text())[
        "argv"][0]
'''


def test_a_study_appended_to_the_registry_is_listed_run_and_reported(tmp_path, monkeypatch,
                                                                   capsys):
    """The entry point the MNIST studies use: a module name appended to STUDIES."""
    (tmp_path / "mnist_fake.py").write_text(STUDY_MODULE.format(name="mnist_fake"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runner, "STUDIES", [*runner.STUDIES, "mnist_fake", "not_installed"])
    assert runner.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "mnist_fake     Study 11, mnist_fake: a registered study" in listed
    assert "not_installed  (not installed)" in listed
    out, doc = tmp_path / "results", tmp_path / "docs" / "report.md"
    assert runner.main(["run", "mnist_fake", "--out", str(out), "--report", str(doc)]) == 0
    assert "## 11. `mnist_fake`: --out" in doc.read_text(encoding="utf-8")


#: The QA studies stay under 100 lines; the MNIST modules hold more (six improvements in one
#: module, per-digit tables) and must not grow.
LONGER = {"mnist_scratch": 140, "mnist_pipeline": 125, "mnist_improvements": 270}


def test_study_modules_stay_short():
    for module in runner.STUDIES:
        path = Path(importlib.import_module(module).__file__)
        limit = LONGER.get(runner.short(module), 100)
        assert len(path.read_text().splitlines()) < limit, path.name


def test_quick_run_all_writes_every_output_and_the_report(tmp_path):
    """`python -m experiments run all --quick`: every study's files exist and parse, accuracy
    per kind where the data has kinds, and the report links figures that exist."""
    from matplotlib.image import imread

    out, doc = tmp_path / "results", tmp_path / "docs" / "report.md"
    assert runner.main(["run", "all", "--quick", "--out", str(out), "--report", str(doc),
                        "--jobs", "1"]) == 0
    for module in runner.STUDIES:
        name = runner.short(module)
        folder = out / name
        summary = pd.read_csv(folder / "summary.csv")
        assert set(summary.columns) >= SUMMARY_COLUMNS, name
        assert len(summary) == len(summary.groupby(["variant", "optimizer"])), name
        epochs = pd.read_csv(folder / "epochs.csv")
        assert set(epochs.columns) >= EPOCH_COLUMNS and len(epochs) > 0, name
        config = json.loads((folder / "config.json").read_text())
        assert config["study"] == name and config["versions"]["numpy"], name
        pngs = sorted(folder.glob("*.png"))
        assert pngs, name
        for png in pngs:
            assert imread(png).ndim == 3
        for extra in folder.glob("*.csv"):
            pd.read_csv(extra)
        if name in QA_STUDIES and name != "quadratic":
            assert len(config["data_sha256"]) == 64
            assert config["settings"]["features_name"] == "e5-small"
            assert {"test_accuracy_fact", "test_accuracy_non_answer"} <= set(summary.columns)
            assert summary["test_accuracy_fact"].between(0, 1).all(), name
            assert set(epochs["seed"]) == set(common.SEEDS[:common.QUICK_SEEDS]) or \
                name == "hyperparams"
            assert epochs["epoch"].max() <= common.QUICK_EPOCHS
    assert {"test_accuracy_fact", "test_accuracy_non_answer"} <= set(
        pd.read_csv(out / "hyperparams" / "strategies.csv").columns)
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing["studies"]) == {runner.short(m) for m in runner.STUDIES}
    # The wall time is recorded for the report, never asserted (speed belongs in benchmarks/).
    assert timing["total"] > 0 and timing["cpus"] >= 1 and len(timing["load"]) == 2
    text = doc.read_text(encoding="utf-8")
    for i, module in enumerate(runner.STUDIES, 1):
        assert f"## {i}. `{runner.short(module)}`" in text
    assert "## Headline numbers" in text and "| fact | non_answer |" in text
    assert "zero-shot e5-small cosine (per pair)" in text and "test: non_answer" in text
    assert "python -m experiments run all --quick" in text
    for link in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (doc.parent / link).exists(), link
