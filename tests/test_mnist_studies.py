"""The MNIST studies run end to end with --quick on generated data (no MNIST needed),
write the runner's layout (epochs.csv, summary.csv, config.json, figures) and their report
sections (:mod:`experiments.sections_mnist`, also from the committed results); the augmentation
layer is a gather whose backward is its exact transpose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from experiments import (
    __main__ as runner,
)
from experiments import (
    mnist_cnn,
    mnist_common,
    mnist_improvements,
    mnist_pipeline,
    mnist_scratch,
    sections_mnist,
)
from experiments.settings import MNIST_SEEDS, QUICK_SEEDS

RESULTS = Path(__file__).resolve().parents[1] / "results"

STUDIES = {
    mnist_scratch: ["per_class.csv", "confusion.csv", "mnist_confusion.png",
                    "mnist_scratch_curves.png"],
    mnist_pipeline: ["mnist_pipeline.png"],
    mnist_cnn: ["mnist_cnn_curves.png"],
    mnist_improvements: ["gains.csv", "random_search.csv", "mnist_improvements.png"],
}
SUMMARY_COLUMNS = {"variant", "optimizer", "test_accuracy_mean", "test_accuracy_std",
                   "train_loss_mean", "epoch_time_mean", "n_seeds", "n_test"}


@pytest.mark.parametrize("study", list(STUDIES), ids=lambda m: m.__name__.split(".")[-1])
def test_quick_run_writes_the_runner_layout(study, tmp_path):
    name = study.__name__.split(".")[-1]
    # --quick: generated data, no MNIST; the runner hands every study the QA flags too
    study.main(["--quick", "--out", str(tmp_path), "--inputs", "pairs", "--kinds", "all"])
    folder = tmp_path / name
    summary = pd.read_csv(folder / "summary.csv")
    assert set(summary.columns) >= SUMMARY_COLUMNS
    assert summary["test_accuracy_mean"].between(0, 1).all()
    assert (summary["n_test"] == 300).all()  # the stand-in's test images
    epochs = pd.read_csv(folder / "epochs.csv")
    assert set(epochs["seed"]) == set(MNIST_SEEDS[:QUICK_SEEDS])
    assert epochs["epoch"].max() == (2 if study is mnist_improvements else 1)  # early stopping: 2x
    assert {"study", "variant", "seed", "epoch", "train_loss", "val_accuracy",
            "epoch_time"} <= set(epochs.columns)
    assert (epochs["study"] == name).all()
    config = json.loads((folder / "config.json").read_text())
    assert config["study"] == name and len(config["data_sha256"]) == 64
    assert config["sizes"] == {"train": 400, "validation": 100, "test": 300}
    assert str(tmp_path) not in json.dumps(config["argv"])  # no machine's folders
    assert config["versions"]["numpy"] == np.__version__
    for extra in STUDIES[study]:
        data = (folder / extra).read_bytes()
        assert data.startswith(b"\x89PNG") if extra.endswith(".png") else len(pd.read_csv(
            folder / extra)) > 0
    section = sections_mnist.SECTIONS[name][0](tmp_path)
    assert section.startswith(f"## {runner.STUDIES.index(study.__name__) + 1}. `{name}`")
    assert "| --- |" in section and re.search(r"\| 0\.\d{3} ± 0\.\d{3} \|", section)
    for link in re.findall(r"\]\((figures/[^)]+)\)", section):  # where the runner copies them
        assert link.startswith(f"figures/{name}/") and (folder / link.split("/")[-1]).exists()


def test_random_shift_rotate_backward_is_the_transpose_of_forward():
    rng = np.random.default_rng(0)
    layer = mnist_improvements.RandomShiftRotate(max_shift=2, max_degrees=15, rng=1)
    x, g = rng.standard_normal((6, 784)), rng.standard_normal((6, 784))
    y = layer(x)
    assert not np.array_equal(y, x)
    assert np.isclose(np.sum(y * g), np.sum(x * layer.backward(g)))  # <A x, g> = <x, A^T g>
    layer.eval()
    assert layer(x) is x and np.array_equal(layer.backward(g), g)


def test_random_shift_without_rotation_moves_the_image():
    layer = mnist_improvements.RandomShiftRotate(max_shift=2, max_degrees=0, rng=3)
    image = np.zeros((1, 28, 28))
    image[0, 10:14, 12:15] = 1.0
    out = layer(image.reshape(1, 784)).reshape(28, 28)
    rows, cols = np.nonzero(out)
    dr, dc = rows.min() - 10, cols.min() - 12
    assert out.sum() == image.sum() and abs(dr) <= 2 and abs(dc) <= 2
    assert np.array_equal(out, np.roll(image[0], (dr, dc), axis=(0, 1)))


def test_vote_takes_the_majority_and_breaks_ties_by_probability():
    p = [np.array([[0.6, 0.4] + [0] * 8]), np.array([[0.1, 0.9] + [0] * 8]),
         np.array([[0.45, 0.55] + [0] * 8])]
    assert mnist_improvements.vote(p)[0] == 1          # two votes against one
    assert mnist_improvements.vote(p[:2])[0] == 1      # a tie: mean probability 0.65 for 1


def test_synthetic_stand_in_is_mnist_shaped_and_seeded():
    (X, y), (X_test, _) = mnist_common.synthetic()
    assert X.shape == (1200, 28, 28) and X.dtype == np.uint8 and X_test.shape == (300, 28, 28)
    assert set(np.unique(y)) == set(range(10)) and X.max() > 200
    np.testing.assert_array_equal(mnist_common.synthetic()[0][0], X)


def test_split_is_scikit_learns_train_test_split():
    sklearn = pytest.importorskip("sklearn.model_selection")
    rows = np.arange(1003)
    train, val = sklearn.train_test_split(rows, test_size=0.2, random_state=42)
    ours_train, ours_val = mnist_common.split(1003)
    np.testing.assert_array_equal(ours_train, train)
    np.testing.assert_array_equal(ours_val, val)


def test_the_split_protocol_holds_out_validation_and_the_source_protocol_does_not():
    p = mnist_common.parser("doc")
    ours = mnist_common.load_data(p.parse_args(["--dataset", "synthetic"]))
    assert (len(ours.X_train), len(ours.X_val), len(ours.X_test)) == (960, 240, 300)
    source = mnist_common.load_data(p.parse_args(["--dataset", "synthetic", "--protocol",
                                                         "source"]))
    assert len(source.X_train) == 1200
    np.testing.assert_array_equal(source.X_val, source.X_test)
    assert source.X_train.dtype == np.float32 and source.X_train.max() <= 1.0


@pytest.mark.skipif(not (RESULTS / "mnist_scratch" / "summary.csv").exists(),
                    reason="no committed MNIST results")
def test_sections_render_the_committed_results_to_four_decimals():
    """The committed results (summary.csv without ``n_test``: the test size comes from
    config.json) render with MNIST's 4 decimals: 10,000 test images."""
    for name, (section, headline) in sections_mnist.SECTIONS.items():
        text = section(RESULTS)
        assert text.startswith(f"## {runner.STUDIES.index(f'experiments.{name}') + 1}. `{name}`")
        assert re.search(r"\| 0\.\d{4}( ± 0\.\d{4})? \|", text), name
        assert not re.search(r"\| 0\.\d{3}( ± 0\.\d{3})? \|", text), name
        assert headline is None


def test_quick_settings_and_the_ignored_qa_flags():
    args = mnist_common.parser("doc").parse_args(
        ["--quick", "--inputs", "source", "pairs", "--kinds", "fact", "--jobs", "3"])
    assert mnist_common.settings(args, 12, (42,)) == (1, list(MNIST_SEEDS[:QUICK_SEEDS]))
    args = mnist_common.parser("doc").parse_args(["--epochs", "4", "--seeds", "7"])
    assert mnist_common.settings(args, 12, (42,)) == (4, [7])
    assert mnist_common.settings(mnist_common.parser("doc").parse_args([]), 12, (42,)) == (12, [42])


def test_keras_examples_train_on_every_training_image_for_fixed_epochs(tmp_path):
    """``mnist_keras`` (quick): both networks, the protocol of the Keras examples by default
    (every training row trained on, the test set scored after each epoch, nothing held out),
    a row per network with Keras's accuracy and whether it is met, and its report section."""
    from experiments import mnist_keras

    mnist_keras.main(["--quick", "--out", str(tmp_path)])
    folder = tmp_path / "mnist_keras"
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["variant"]) == ["Keras MLP", "Keras CNN"]
    assert list(summary["keras_test_accuracy"]) == [0.9840, 0.9925]
    assert (summary["met"] == (summary["test_accuracy_mean"] >= 0.98)).all()
    config = json.loads((folder / "config.json").read_text())
    assert config["argv"]["protocol"] == "source"
    assert config["sizes"] == {"train": 400, "validation": 100, "test": 300}  # quick's cut
    assert config["validation"].startswith("the source's protocol: all training images")
    assert config["settings"]["models"]["Keras CNN"]["epochs"] == 12
    epochs = pd.read_csv(folder / "epochs.csv")
    assert set(epochs["seed"]) == set(MNIST_SEEDS[:QUICK_SEEDS]) and epochs["epoch"].max() == 1
    assert (folder / "mnist_keras.png").read_bytes().startswith(b"\x89PNG")
    section = sections_mnist.SECTIONS["mnist_keras"][0](tmp_path)
    assert section.startswith(f"## {runner.STUDIES.index('experiments.mnist_keras') + 1}. "
                              f"`mnist_keras`")
    assert "no early stopping" in section and "| Keras CNN | Adam 0.001, batch 128 | 1 |" in section
    held_out = tmp_path / "split"
    mnist_keras.main(["--quick", "--out", str(held_out), "--protocol", "split", "--models",
                      "mlp"])
    config = json.loads((held_out / "mnist_keras" / "config.json").read_text())
    assert config["validation"]["random_state"] == 42  # 48,000 / 12,000 of the full set
    assert "held out" in sections_mnist.SECTIONS["mnist_keras"][0](held_out)
