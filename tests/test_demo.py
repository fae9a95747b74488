"""The README's main job, ``python -m experiments.demo``: it talks, it runs what it says, and it
refuses bad arguments in one line."""

from __future__ import annotations

import pytest

pytest.importorskip("joblib")

from experiments import demo


def test_the_main_job_prints_a_line_per_run_then_the_table_and_its_reading(capsys):
    summary = demo.main(["--epochs", "2", "--seeds", "42", "7", "--inputs", "pairs",
                         "--kinds", "all", "other_answer", "--jobs", "1"])
    out = capsys.readouterr().out
    run_lines = [line for line in out.splitlines() if " seed " in line and ": test " in line]
    assert len(run_lines) == 2 * 3 * 2  # training sets x optimizers x seeds
    assert all(line.rstrip().endswith(" s") for line in run_lines)
    assert "pairs other_answer adam seed 7: test " in out
    assert list(zip(summary["trained_on"], summary["optimizer"], strict=True)) == [
        (on, o) for on in ("all", "other_answer") for o in ("gd", "sgd", "adam")]
    assert set(summary["n_seeds"]) == {2}
    for kind in ("fact", "non_answer", "other_answer"):
        assert f"test_accuracy_{kind}_mean" in summary
        assert kind in out.split("test accuracy, mean ± sample std")[1]
    assert "Learnt (best optimizer above chance" in out
    assert "Trained and scored on other_answer with pairs inputs: " in out


def test_the_main_job_runs_the_source_inputs_and_the_pair_features_by_default():
    args = demo.arguments([])
    assert args.inputs == ["source", "pairs"] and args.kinds is None
    assert args.optimizers == ["gd", "sgd", "adam"] and args.epochs == 100
    assert args.seeds == [42, 10, 2024, 7, 99]


def test_the_main_job_refuses_bad_arguments_in_one_line(capsys, tmp_path):
    for argv, expected in ((["--data", str(tmp_path / "nowhere")], "not a folder"),
                           (["--epochs", "0"], "--epochs: must be at least 1"),
                           (["--jobs", "0"], "--jobs: must be at least 1"),
                           (["--seeds", "3", "3"], "3 given more than once"),
                           (["--seeds", "-1"], "--seeds"),
                           (["--kinds", "fact;rm"], "--kinds")):
        with pytest.raises(SystemExit) as info:
            demo.main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and expected in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        demo.main(["--data", str(tmp_path)])  # a folder without the splits
    assert info.value.code == 2 and "expected train.csv and test.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        demo.main(["--kinds", "no_such_kind", "--epochs", "1", "--seeds", "1"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "no training rows of kind no_such_kind" in err


def test_the_main_job_caps_its_jobs_at_the_cores_and_takes_the_runner_s_seeds(capsys,
                                                                              monkeypatch):
    from experiments import flags

    monkeypatch.setattr(flags, "cores", lambda: 2)
    assert demo.arguments(["--jobs", "100000"]).jobs == 2
    assert "note: --jobs 100000: this machine has 2 cores; running 2 at a time" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.arguments(["--seeds", str(2**32)])  # the studies' bound, one for every tool
    assert "a seed is a whole number from 0 to 4294967295" in capsys.readouterr().err


def test_the_main_job_refuses_too_little_data_before_any_run(capsys, tmp_path):
    (tmp_path / "train.csv").write_text("soru,cevap,etiket\nBaşkent?,Ankara,+1\n"
                                        "Başkent?,İzmir,-1\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("soru,cevap,etiket\nDağ?,Ağrı,+1\nDağ?,Uludağ,-1\n",
                                       encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        demo.main(["--data", str(tmp_path), "--features", "tfidf", "--epochs", "1"])
    out = capsys.readouterr()
    assert info.value.code == 2 and "the training split has 1 question group(s)" in out.err
    assert " runs (" not in out.out  # nothing ran
