"""save / load: exact round trips, rebuilding from config, atomic writes, clear errors."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import minidl
from minidl import (
    MSE,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    BatchNorm1d,
    CheckpointError,
    Dense,
    Dropout,
    Flatten,
    History,
    Layer,
    LeakyReLU,
    RecursiveMLP,
    ReLU,
    RMSProp,
    Sequential,
    Sigmoid,
    Tanh,
    fit,
    load,
    save,
)
from minidl import checkpoint as checkpoint_module
from minidl.layer import LAYER_REGISTRY

from ._fit_helpers import (
    assert_same_arrays,
    assert_same_history,
    assert_same_optimizer_state,
    make_data,
    make_model,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def every_layer_model(dtype=np.float64) -> Sequential:
    return Sequential(
        Flatten(), Dense(6, 8, rng=0, init="he_normal", dtype=dtype), BatchNorm1d(8, dtype=dtype),
        LeakyReLU(0.2), Dropout(0.25, rng=1),
        RecursiveMLP([8, 5, 3], activation=ReLU, output_activation=Sigmoid, rng=2, dtype=dtype),
    )


def trained(model, opt, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    loss = MSE()
    for _ in range(steps):
        X = rng.standard_normal((10, 6))
        out = model.forward(X)
        loss.forward(out, np.zeros_like(out))
        model.backward(loss.backward())
        opt.step()


def test_round_trip_rebuilds_every_builtin_layer_exactly(tmp_path):
    model = every_layer_model()
    opt = Adam(model.parameters(), lr=0.01, amsgrad=True)
    trained(model, opt)
    save(tmp_path / "m.npz", model, opt)
    ck = load(tmp_path / "m.npz")
    assert type(ck.model) is Sequential and ck.model is not model
    assert_same_arrays(model.state_dict(), ck.model.state_dict())
    assert ck.model.rng_state() == model.rng_state()
    assert_same_optimizer_state(opt.state_dict(), ck.optimizer.state_dict())
    X = np.random.default_rng(5).standard_normal((4, 6))
    assert np.array_equal(ck.model.forward(X), model.forward(X))  # same dropout mask too
    trained(model, opt, seed=9)
    trained(ck.model, ck.optimizer, seed=9)
    assert_same_arrays(model.state_dict(), ck.model.state_dict())


def test_a_fresh_process_rebuilds_the_model_without_the_users_code(tmp_path):
    model = every_layer_model()
    save(tmp_path / "m.npz", model)
    X = np.random.default_rng(5).standard_normal((4, 6))
    np.save(tmp_path / "x.npy", X)
    code = ("import sys, numpy as np, minidl; ck = minidl.load(sys.argv[1]); ck.model.eval(); "
            "np.save(sys.argv[2], ck.model.forward(np.load(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npz"),
                    str(tmp_path / "out.npy"), str(tmp_path / "x.npy")], check=True, cwd=tmp_path)
    model.eval()
    assert np.array_equal(np.load(tmp_path / "out.npy"), model.forward(X))


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: SGD(p, lr=0.1),
        lambda p: Adam(p, lr=0.01, betas=(0.8, 0.99)),
        lambda p: AdamW(p, lr=0.01),
        lambda p: AdaGrad(p, lr=0.01, lr_decay=0.1, eps=1e-8),
        lambda p: RMSProp(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True),
    ],
)
def test_every_optimizer_round_trips(tmp_path, make):
    model = every_layer_model()
    opt = make(model.parameters())
    trained(model, opt)
    save(tmp_path / "m.npz", model, opt)
    ck = load(tmp_path / "m.npz")
    assert type(ck.optimizer) is type(opt) and ck.optimizer.hparams == opt.hparams
    assert_same_optimizer_state(opt.state_dict(), ck.optimizer.state_dict())
    trained(model, opt, seed=4)
    trained(ck.model, ck.optimizer, seed=4)
    assert_same_arrays(model.state_dict(), ck.model.state_dict())


def test_optimizer_over_some_of_the_parameters(tmp_path):
    model = make_model()
    opt = Adam([model[3].weight, model[0].bias], lr=0.01)
    trained_model_loss = MSE()
    X, y = make_data(n=8)
    trained_model_loss.forward(model.forward(X), y)
    model.backward(trained_model_loss.backward())
    opt.step()
    save(tmp_path / "m.npz", model, opt)
    ck = load(tmp_path / "m.npz")
    assert ck.optimizer.params == [ck.model[3].weight, ck.model[0].bias]
    assert_same_optimizer_state(opt.state_dict(), ck.optimizer.state_dict())
    with pytest.raises(ValueError, match=r"optimizer's parameters \[0, 1\] are not parameters"):
        save(tmp_path / "x.npz", make_model(), opt)


def test_history_extra_and_trainer_state_round_trip(tmp_path):
    h = History()
    h.append({"epoch": 1, "train_loss": 0.5, "steps": 3})
    h.append({"epoch": 2, "train_loss": float("nan"), "val_loss": 0.25, "steps": 6})
    h.events.append({"event": "nonfinite", "epoch": 3, "step": 7, "message": "m"})
    extra = {"seed": 42, "note": "run A", "ok": True, "none": None, "scale": float("inf"),
             "fractions": [0.1, 0.25], "split": {"train": np.arange(5), "w": np.eye(2)}}
    save(tmp_path / "m.npz", make_model(), history=h, extra=extra)
    ck = load(tmp_path / "m.npz")
    assert_same_history(h, ck.history, ignore=())
    assert ck.optimizer is None and ck.trainer_state is None
    got = ck.extra
    assert {k: got[k] for k in ("seed", "note", "ok", "none", "fractions")} == {
        "seed": 42, "note": "run A", "ok": True, "none": None, "fractions": [0.1, 0.25]}
    assert got["scale"] == float("inf")
    assert np.array_equal(got["split"]["train"], np.arange(5))
    assert got["split"]["train"].dtype == np.arange(5).dtype
    assert np.array_equal(got["split"]["w"], np.eye(2))


def test_save_takes_the_trainers_plain_state_and_trainer_is_deprecated(tmp_path):
    """save(trainer_state=) takes a Trainer's state dict, not the Trainer; Trainer.save and
    the deprecated save(trainer=) write the same training state."""
    X, y = make_data(n=30)
    model = make_model()
    trainer = minidl.Trainer(model, MSE(), Adam(model.parameters(), lr=0.01), batch_size=8,
                             seed=2, verbose=0)
    trainer.fit(X, y, epochs=2)
    save(tmp_path / "plain.npz", model, trainer.optimizer, trainer.history,
         trainer_state=trainer.state_dict())
    trainer.save(tmp_path / "method.npz")
    with pytest.warns(DeprecationWarning, match=r"save\(\.\.\., trainer=\) is deprecated: pass "
                                                r"trainer_state=trainer.state_dict\(\)"):
        save(tmp_path / "old.npz", model, trainer.optimizer, trainer.history, trainer=trainer)
    expected = load(tmp_path / "method.npz").trainer_state
    assert expected["epoch"] == 2 and expected["step"] == 8
    for name in ("plain.npz", "old.npz"):
        assert load(tmp_path / name).trainer_state == expected
    with pytest.raises(TypeError, match=r"trainer_state must be a dict .*, got Trainer: pass "
                                        r"trainer.state_dict\(\)"):
        save(tmp_path / "wrong.npz", model, trainer_state=trainer)
    with pytest.raises(TypeError, match="not trainer .deprecated. as well"), \
            pytest.warns(DeprecationWarning):
        save(tmp_path / "both.npz", model, trainer=trainer, trainer_state={})
    assert not (tmp_path / "wrong.npz").exists() and not (tmp_path / "both.npz").exists()


def test_the_file_is_a_plain_npz_with_strict_json_metadata(tmp_path):
    model = make_model().astype(np.float32)
    opt = Adam(model.parameters())
    save(tmp_path / "m.npz", model, opt, extra={"x": float("nan")})
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        names = set(npz.files)
        text = npz["__minidl__"].tobytes().decode()
    assert {"model/0.weight", "model/3.bias"} <= names
    meta = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert meta["format"] == "minidl-checkpoint" and meta["format_version"] == 2
    assert meta["minidl_version"] == minidl.__version__
    assert meta["dtype"] == "float32"
    assert meta["model"]["config"]["class"] == "Sequential"
    assert meta["optimizer"]["class"] == "Adam"
    assert meta["optimizer"]["param_paths"] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    ck = load(tmp_path / "m.npz")
    assert all(p.dtype == np.float32 for p in ck.model.parameters())


def test_no_pickle_anywhere(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    model = make_model()
    opt = Adam(model.parameters())
    trained_history = fit(model, MSE(), opt, *make_data(n=20), epochs=2, verbose=0)
    save(tmp_path / "m.npz", model, opt, trained_history, extra={"a": np.ones(2)})
    ck = load(tmp_path / "m.npz")
    assert len(ck.history) == 2


def test_load_into_given_model_and_optimizer(tmp_path):
    model = make_model()
    opt = Adam(model.parameters(), lr=0.03)
    X, y = make_data(n=8)
    fit(model, MSE(), opt, X, y, epochs=2, verbose=0)
    save(tmp_path / "m.npz", model, opt)
    mine = make_model(seed=7)
    my_opt = Adam(mine.parameters())
    ck = load(tmp_path / "m.npz", model=mine, optimizer=my_opt)
    assert ck.model is mine and ck.optimizer is my_opt
    assert_same_arrays(model.state_dict(), mine.state_dict())
    assert my_opt.lr == 0.03
    with pytest.raises(CheckpointError, match=r"m\.npz: the checkpoint does not fit the model"):
        load(tmp_path / "m.npz", model=make_model(hidden=4))
    with pytest.raises(CheckpointError, match="the optimizer given trains the parameters"):
        load(tmp_path / "m.npz", optimizer=Adam(make_model().parameters()))


def snapshot(model, opt):
    return model.state_dict(), model.rng_state(), opt.state_dict()


def assert_unchanged(model, opt, before):
    state, rng, opt_state = before
    assert_same_arrays(model.state_dict(), state)
    assert model.rng_state() == rng
    assert_same_optimizer_state(opt.state_dict(), opt_state)


def dropout_moved(seed=7):
    """make_model's weights (same keys and shapes), but its Dropout sits at index 1, not 2."""
    return Sequential(Dense(5, 16, rng=seed), Dropout(0.3, rng=seed + 1), Tanh(),
                      Dense(16, 1, rng=seed + 2), Tanh())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        # the weights fit, the random state does not: formerly the weights were written anyway
        (lambda: (m := dropout_moved(), Adam(m.parameters())),
         r"does not fit the model: random state keys differ: model has \['1.rng'\]"),
        # the model fits, the optimizer does not: formerly the model was overwritten first
        (lambda: (m := make_model(seed=7), SGD(m.parameters(), lr=0.1, momentum=0.9)),
         "the optimizer state does not fit: SGD: cannot load a state dict saved by Adam"),
        (lambda: (m := make_model(seed=7), Adam(m.parameters(), amsgrad=False)),
         r"the optimizer state does not fit: .*state keys \[.*'max_exp_avg_sq'"),
        (lambda: (m := make_model(hidden=4, seed=7), Adam(m.parameters())),
         r"does not fit the model: .*'0.weight': expected shape \(5, 4\), got \(5, 16\)"),
    ],
)
def test_a_refused_load_leaves_the_given_model_and_optimizer_unchanged(tmp_path, make, message):
    """Everything is checked before anything is written into model= and optimizer=."""
    model = make_model()
    opt = Adam(model.parameters(), lr=0.01, amsgrad=True)
    fit(model, MSE(), opt, *make_data(n=20), epochs=2, batch_size=8, verbose=0)
    save(tmp_path / "m.npz", model, opt)
    mine, my_opt = make()
    fit(mine, MSE(), my_opt, *make_data(n=20, seed=3), epochs=1, verbose=0)  # some state
    before = snapshot(mine, my_opt)
    with pytest.raises(CheckpointError, match=message) as info:
        load(tmp_path / "m.npz", model=mine, optimizer=my_opt)
    assert str(info.value).startswith(f"{tmp_path / 'm.npz'}: ")
    assert_unchanged(mine, my_opt, before)


class Scale(Layer):
    """A user layer: rebuildable once its module is imported."""

    _config_keys = ("factor",)

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class Opaque(Layer):
    """A user layer with a constructor argument it does not report: no config."""

    def __init__(self, table):
        super().__init__()
        self._table = table

    def forward(self, x):
        return x


def test_user_layers(tmp_path, monkeypatch):
    save(tmp_path / "s.npz", Sequential(Dense(2, 2, rng=0), Scale(3.0)))
    assert load(tmp_path / "s.npz").model[1].factor == 3.0
    name = f"{__name__}.Scale"  # a user's class is registered by module.qualname
    monkeypatch.delitem(LAYER_REGISTRY, name)  # as in a process that never imported it
    with pytest.raises(CheckpointError, match=f"unknown layer class '{name}'.*pass model="):
        load(tmp_path / "s.npz")
    save(tmp_path / "o.npz", Opaque([1, 2]))
    with pytest.raises(CheckpointError, match="no architecture config.*Opaque"):
        load(tmp_path / "o.npz")
    assert isinstance(load(tmp_path / "o.npz", model=Opaque([])).model, Opaque)


def test_save_refuses_what_json_and_npz_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="'extra/f': builtin_function_or_method is neither a JSON"):
        save(tmp_path / "m.npz", make_model(), extra={"f": print})
    with pytest.raises(TypeError, match="dtype object need pickle"):
        save(tmp_path / "m.npz", make_model(), extra={"o": np.array([{}], dtype=object)})
    with pytest.raises(TypeError, match="extra must be a dict"):
        save(tmp_path / "m.npz", make_model(), extra=[1])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- atomic writes
def checkpoint_pair(tmp_path):
    path = tmp_path / "ck.npz"
    old = make_model(seed=1)
    save(path, old)
    return path, old


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace"])
def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, fail_at):
    path, old = checkpoint_pair(tmp_path)

    def crash(*args, **kwargs):
        raise OSError(f"simulated crash during {fail_at}")

    if fail_at == "write":
        real = np.savez

        def half_write(f, **arrays):
            real(f, **dict(list(arrays.items())[:2]))  # some bytes are on disk...
            crash()

        monkeypatch.setattr(checkpoint_module.np, "savez", half_write)
    else:
        monkeypatch.setattr(checkpoint_module.os, fail_at, crash)
    with pytest.raises(OSError, match="simulated crash"):
        save(path, make_model(seed=50))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left over
    assert_same_arrays(load(path).model.state_dict(), old.state_dict())


def test_save_replaces_and_keeps_the_path_as_given(tmp_path):
    path, _ = checkpoint_pair(tmp_path)
    new = make_model(seed=60)
    save(path, new)
    assert_same_arrays(load(path).model.state_dict(), new.state_dict())
    save(tmp_path / "plain", new)
    assert (tmp_path / "plain").exists() and not (tmp_path / "plain.npz").exists()


# ---------------------------------------------------------------------- bad files
def rewrite_metadata(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__minidl__"].tobytes())
    change(meta)
    arrays["__minidl__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def corrupt_member(path):
    """Flip bytes inside the stored weights: the zip CRC no longer matches."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("model/0.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start:start + 16] = bytes(16)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("epoch,loss\n1,0.5\n"), "a checkpoint is a .npz .zip. archive"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
         "truncated or corrupt checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[:-30]), "truncated or corrupt checkpoint"),
        (corrupt_member, "truncated or corrupt checkpoint while reading entry 'model/0.weight'"),
        (lambda p: np.savez(p, weights=np.ones(3)),
         "not a minidl checkpoint: it has no '__minidl__' metadata entry .it holds: weights"),
        (lambda p: np.savez(p, __minidl__=np.frombuffer(b"{not json", dtype=np.uint8)),
         "unreadable metadata"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(format="keras")),
         "its metadata format is 'keras', expected 'minidl-checkpoint'"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(format_version=3, minidl_version="9")),
         r"written by a newer minidl \(9, checkpoint format 3\).*upgrade minidl"),
        (lambda p: rewrite_metadata(p, lambda m: m["model"]["keys"].append("9.weight")),
         "weight '9.weight' is missing"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(extra={"__ndarray__": "extra/x"})),
         "refers to an array 'extra/x' that the archive does not hold"),
    ],
)
def test_bad_files_give_a_clear_error_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "ck.npz"
    save(path, make_model(hidden=64))
    damage(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)


def full_checkpoint(path):
    """A checkpoint with every section: a model with Dropout, Adam, History, trainer, extra."""
    model = make_model()
    opt = Adam(model.parameters(), lr=0.01)
    trainer = minidl.Trainer(model, MSE(), opt, batch_size=8, verbose=0)
    trainer.fit(*make_data(n=20), epochs=2)
    trainer.save(path, extra={"note": "x"})


def set_zip_field(path, offset, value, fmt="<H"):
    """Overwrite a field of the first central-directory entry (the first array's)."""
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    data[entry + offset:entry + offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


def first_layer_config(meta):
    return meta["model"]["config"]["config"]["layers"][0]["config"]


def set_opt_state(key, value):
    return lambda m: m["optimizer"]["state"].update({key: value})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # damaged zip structure: "version needed to extract" 9.9, and the "encrypted" flag
        (lambda p: set_zip_field(p, 6, 99), "truncated or corrupt checkpoint.*zip file version"),
        (lambda p: set_zip_field(p, 8, 1), "truncated or corrupt checkpoint.*encrypted"),
        # damaged metadata: every rebuild and restore step names the file
        (lambda p: rewrite_metadata(p, lambda m: first_layer_config(m).pop("out_features")),
         "cannot rebuild the model: TypeError: .*out_features.*pass model="),
        (lambda p: rewrite_metadata(p, lambda m: first_layer_config(m).update(in_features=3)),
         r"does not fit the model: .*'0.weight': expected shape \(3, 16\), got \(5, 16\)"),
        (lambda p: rewrite_metadata(p, lambda m: m["model"].update(config=5)),
         "cannot rebuild the model: unknown layer class None"),
        (lambda p: rewrite_metadata(p, lambda m: m["model"].update(keys=5)),
         "the model's weight names are 5, not a list of names"),
        (lambda p: rewrite_metadata(
            p, lambda m: m["model"].update(rng_state={"2.rng": {"bit_generator": "MT19937"}})),
         "its random state '2.rng' is not a PCG64 state"),
        (lambda p: rewrite_metadata(p, lambda m: m["model"].update(rng_state={})),
         r"random state keys differ: model has \['2.rng'\], got \[\]"),
        (lambda p: rewrite_metadata(p, lambda m: m["optimizer"].pop("state")),
         "the optimizer section has no state"),
        (lambda p: rewrite_metadata(p, lambda m: m["optimizer"]["state"].pop("hparams")),
         "cannot rebuild Adam from its saved hyperparameters"),
        (lambda p: rewrite_metadata(p, set_opt_state("hparams", {"lr": -1.0})),
         "cannot rebuild Adam from its saved hyperparameters .*lr"),
        (lambda p: rewrite_metadata(p, set_opt_state("step_count", "many")),
         "the optimizer state does not fit: .*step_count is 'many', not an int"),
        (lambda p: rewrite_metadata(p, set_opt_state("state", {"0": {"step": 1}})),
         "the optimizer state does not fit: .*parameter 0: state keys"),
        (lambda p: rewrite_metadata(p, lambda m: m["optimizer"].update(param_paths="0.weight")),
         "the optimizer's parameter names are '0.weight', not a list of names"),
        (lambda p: rewrite_metadata(p, lambda m: m["history"]["columns"].update(epoch=[1])),
         "its History cannot be rebuilt: History: columns must have equal lengths"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(history={"columns": 3})),
         "its History cannot be rebuilt: AttributeError"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(trainer=[1, 2])),
         "the training state is a list, not a dict"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(extra={"x": {"__float__": "lots"}})),
         "corrupt checkpoint: {'__float__': 'lots'} is not a number"),
        (lambda p: rewrite_metadata(p, lambda m: m.update(extra=[1])),
         "extra is a list, not a dict"),
    ],
)
def test_damaged_checkpoints_raise_checkpoint_error_naming_the_file(tmp_path, damage, message):
    """Whatever step a damaged file trips (zip reading, rebuilding the model or optimizer,
    restoring random state, History), the error is a CheckpointError naming the file and the
    problem, chained from the original."""
    path = tmp_path / "ck.npz"
    full_checkpoint(path)
    damage(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_save_into_a_missing_folder_names_the_target_and_the_folder(tmp_path):
    target = tmp_path / "runs" / "a" / "ck.npz"
    with pytest.raises(FileNotFoundError) as info:
        save(target, make_model())
    text = str(info.value)
    assert repr(str(target)) in text and repr(str(target.parent)) in text
    assert "does not exist" in text and ".tmp" not in text
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a folder") as info:
        save(tmp_path / "file" / "ck.npz", make_model())
    assert ".tmp" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load(tmp_path / "nowhere.npz")


def test_checkpoint_repr_is_short(tmp_path):
    save(tmp_path / "m.npz", make_model(), extra={"seed": 1})
    text = repr(load(tmp_path / "m.npz"))
    assert text == (f"Checkpoint({str(tmp_path / 'm.npz')!r}, epoch=0, model=Sequential, "
                    f"optimizer=None, extra=['seed'])")


def test_load_into_a_model_of_another_architecture_is_refused(tmp_path):
    """Same shapes, other activation: the weights would fit, the model would be wrong."""
    from minidl import ReLU
    path = tmp_path / "tanh.npz"
    save(path, Sequential(Dense(2, 3, rng=0), Tanh(), Dense(3, 1, rng=1)))
    other = Sequential(Dense(2, 3, rng=0), ReLU(), Dense(3, 1, rng=1))
    before = other.state_dict()
    with pytest.raises(CheckpointError, match=r"tanh.npz: the checkpoint was saved from another "
                                              r"architecture: it holds .*Tanh.*, but the model "
                                              r"given is .*ReLU"):
        load(path, model=other)
    assert all(np.array_equal(v, before[k]) for k, v in other.state_dict().items())
    same = Sequential(Dense(2, 3, rng=5), Tanh(), Dense(3, 1, rng=6))
    load(path, model=same)  # the same architecture loads


def test_a_checkpoint_is_refused_by_an_optimizer_over_the_parameters_in_another_order(tmp_path):
    model = Sequential(Dense(2, 2, rng=0), Dense(2, 2, rng=1))
    opt = Adam(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    path = tmp_path / "order.npz"
    save(path, model, opt)
    reversed_opt = Adam(list(model.parameters())[::-1], lr=0.1)
    with pytest.raises(CheckpointError, match=r"order.npz: the optimizer given trains the "
                                              r"parameters \['1.bias', '1.weight', '0.bias', "
                                              r"'0.weight'\], but the saved one trained"):
        load(path, model=model, optimizer=reversed_opt)


# ---------------------------------------------------------------------- user data and tampering
@pytest.mark.parametrize(
    "extra",
    [
        {"x": {"__float__": "abc"}},  # formerly saved, then never loadable
        {"w": {"__ndarray__": "model/0.weight"}},  # formerly came back as the weight array
        {1: "a", 2: [3, 4]},  # formerly {"1": "a", "2": [3, 4]}
        {"mixed": {1: "a", "b": np.arange(2)}, np.int64(7): None},
        {"t": (1, (2.5, "x"), [None]), "d": {"__dict__": [[1, 2]]}, "u": {"__tuple__": 5},
         "z": {"__zz__": {"__float__": "nan"}}, "many": {"__ndarray__": 1, "other": 2}},
        {"nan": float("nan"), "inf": (-float("inf"), np.float32(1.5)), "s": "__ndarray__"},
    ],
)
def test_extra_comes_back_exactly_never_read_as_the_formats_own_encoding(tmp_path, extra):
    save(tmp_path / "m.npz", make_model(), extra=extra)
    got = load(tmp_path / "m.npz").extra

    def same(a, b):
        if isinstance(a, np.ndarray):
            return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        if isinstance(a, float) and np.isnan(a):
            return isinstance(b, float) and np.isnan(b)
        if isinstance(a, (dict, list, tuple)):
            if type(b) is not type(a) or len(a) != len(b):
                return False
            if isinstance(a, dict):
                return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
            return all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, np.generic):
            a = a.item()  # NumPy scalars come back as Python numbers, as documented
        return type(a) is type(b) and a == b

    assert same(extra, got), got


def test_save_refuses_what_cannot_come_back_and_writes_nothing(tmp_path):
    itself: dict = {"a": 1}
    itself["self"] = itself
    loop: list = [1]
    loop.append([loop])
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    cases = [
        ({1.5: "a"}, TypeError, r"'extra': dict keys must be str or int, got 1.5"),
        ({(1, 2): "a"}, TypeError, r"dict keys must be str or int, got \(1, 2\)"),
        ({True: "a"}, TypeError, "dict keys must be str or int, got True"),
        ({None: "a"}, TypeError, "dict keys must be str or int, got None"),
        (itself, ValueError, r"cannot store 'extra/self': it contains itself"),
        ({"l": loop}, ValueError, r"cannot store 'extra/l/1/0': it contains itself"),
        ({"m": np.ma.masked_array([1.0, 2.0], mask=[0, 1])}, TypeError,
         "a MaskedArray .an ndarray subclass. would come back as a plain ndarray"),
        ({"deep": deep}, ValueError, "'extra/deep/0/0/0.*nested deeper than a checkpoint holds"),
        ({"s": {1, 2}}, TypeError, "'extra/s': set is neither a JSON value nor a NumPy array"),
    ]
    for extra, kind, message in cases:
        with pytest.raises(kind, match=message):
            save(tmp_path / "m.npz", make_model(), extra=extra)
    with pytest.raises(TypeError, match="save: history must be a History .what fit returns. or "
                                        "None, got dict"):
        save(tmp_path / "m.npz", make_model(), history={"train_loss": [1.0]})
    with pytest.raises(TypeError, match="save: path must be a str or an os.PathLike"):
        save(3, make_model())
    assert not list(tmp_path.iterdir())
    ok = []  # a value used twice is not a cycle: saved, and comes back twice
    save(tmp_path / "m.npz", make_model(), extra={"a": ok, "b": [ok, ok]})
    assert load(tmp_path / "m.npz").extra == {"a": [], "b": [[], []]}


def read_all(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(arrays["__minidl__"].tobytes())


def write_all(path, arrays, meta=None):
    if meta is not None:
        arrays = {**arrays, "__minidl__": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    np.savez(path, **arrays)


def swap(a, b):
    def change(path):
        arrays, _ = read_all(path)
        arrays[a], arrays[b] = arrays[b], arrays[a]
        write_all(path, arrays)
    return change


def set_meta(change):
    def damage(path):
        arrays, meta = read_all(path)
        change(meta)
        write_all(path, arrays, meta)
    return damage


def add_entry(name, data=b"", compress=zipfile.ZIP_STORED):
    def damage(path):
        with zipfile.ZipFile(path, "a", compression=compress) as z, \
                pytest.warns(UserWarning, match="Duplicate name") if name.startswith(
                    "model/") else _nothing():
            z.writestr(name, data)
    return damage


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def npy_header(shape, descr="<f8"):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return out.getvalue()


def replace_entry(name, data):
    """Rewrite the archive with entry ``name`` holding ``data`` (raw bytes)."""
    def damage(path):
        with zipfile.ZipFile(path) as z:
            entries = {i.filename: z.read(i) for i in z.infolist()}
        entries[name] = data
        with zipfile.ZipFile(path, "w") as z:
            for key, value in entries.items():
                z.writestr(key, value)
    return damage


def two_layer_checkpoint(path):
    """Two same-shape Dense layers, trained by Adam: weights and states that can be swapped."""
    model = Sequential(Dense(3, 3, rng=0), Tanh(), Dense(3, 3, rng=1))
    opt = Adam(model.parameters(), lr=0.1)
    trained_model = fit(model, MSE(), opt, np.ones((4, 3)), np.zeros((4, 3)), epochs=2,
                        verbose=0)
    save(path, model, opt, trained_model, extra={"a": np.arange(3.0)})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (add_entry("model/0.weight.npy", b"x"), "holds two entries named 'model/0.weight.npy'"),
        (swap("model/0.weight", "model/2.weight"),
         "entry 'model/0.weight' does not hold the values the metadata records .their CRC-32"),
        (swap("optimizer/state/0/exp_avg", "optimizer/state/2/exp_avg"),
         "entry 'optimizer/state/0/exp_avg' does not hold the values the metadata records"),
        (set_meta(lambda m: m["extra"].update(a={"__ndarray__": "model/0.weight"})),
         r"the array at 'extra/a' is stored as 'model/0.weight': every array is stored under "
         r"its own path"),
        (set_meta(lambda m: m["model"]["keys"].append("0.weight")),
         "the array 'model/0.weight' is used twice"),
        (add_entry("junk.npy", b"123"),
         "it holds 'junk', which its metadata does not name"),
        (set_meta(lambda m: m["arrays"].pop("extra/a")),
         "the metadata's table of arrays records 'extra/a' as None"),
        (set_meta(lambda m: m["arrays"]["extra/a"].update(shape=[4])),
         r"entry 'extra/a' holds a float64 array of shape \(3,\), but the metadata records "
         r"<f8 \(4,\)"),
        (replace_entry("model/0.weight.npy", npy_header((10**12,)) + bytes(72)),
         r"entry 'model/0.weight' says it holds a float64 array of shape \(1000000000000,\) "
         r"\(8000000000000 bytes\), but it holds 72 bytes"),
        (replace_entry("extra/a.npy", npy_header((3,), "|O") + bytes(24)),
         "entry 'extra/a' holds an array of dtype object"),
        (set_meta(lambda m: m["extra"].update(a={"__thing__": 1})),
         "the value at 'extra/a' is .*__thing__.*, not a tag this minidl knows"),
        (set_meta(lambda m: m["extra"].update(b={"__dict__": [[1, 2], [1, 3]]})),
         "the dict at 'extra/b' holds .1, 3., not a .key, value. pair of a new str or int key"),
    ],
)
def test_tampered_archives_are_refused_naming_the_entry(tmp_path, damage, message):
    path = tmp_path / "ck.npz"
    two_layer_checkpoint(path)
    load(path)
    damage(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_load_reads_only_the_entries_the_metadata_names(tmp_path, monkeypatch):
    """A zip bomb (a small deflated entry of 200 MB of zeros) and thousands of tiny entries
    beside the checkpoint's own: refused, without reading any of them."""
    path = tmp_path / "ck.npz"
    two_layer_checkpoint(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as out:
            out.write(npy_header((25 * 2**20,)))
            for _ in range(200):
                out.write(bytes(2**20))
        for i in range(5000):
            z.writestr(f"tiny/{i}.npy", b"")
    assert path.stat().st_size < 2**20
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    with pytest.raises(CheckpointError, match=r"it holds 'bomb', 'tiny/0', .* and 4993 more, "
                                              r"which its metadata does not name"):
        load(path)
    assert not any(name.startswith(("bomb", "tiny")) for name in opened)


def test_a_compressed_entry_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "ck.npz"
    two_layer_checkpoint(path)
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for key, value in entries.items():
            z.writestr(key, value, compress_type=zipfile.ZIP_DEFLATED
                       if key == "model/0.weight.npy" else zipfile.ZIP_STORED)
    with pytest.raises(CheckpointError, match="entry 'model/0.weight' is compressed .zip method "
                                              "8.; minidl writes and reads checkpoints "
                                              "uncompressed"):
        load(path)


def test_metadata_nested_100000_deep_is_a_clear_error(tmp_path):
    path = tmp_path / "ck.npz"
    save(path, make_model())
    arrays, meta = read_all(path)
    for depth in (100_000, 150):
        text = json.dumps(meta).replace('"extra": null', '"extra": ' + "[" * depth + "]" * depth)
        arrays["__minidl__"] = np.frombuffer(text.encode(), np.uint8)
        write_all(path, arrays)
        with pytest.raises(CheckpointError, match="its metadata is nested deeper than a "
                                                  "checkpoint holds .100 levels."):
            load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_or_a_device_is_refused_not_waited_on(tmp_path):
    import threading
    pipe = tmp_path / "pipe.npz"
    os.mkfifo(pipe)
    outcome = []

    def attempt():
        try:
            load(pipe)
        except CheckpointError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert outcome == [f"{pipe}: not a minidl checkpoint: it is a named pipe; a checkpoint is "
                       f"a file that save wrote"]
    if os.path.exists("/dev/zero"):
        with pytest.raises(CheckpointError, match="it is a character device"):
            load("/dev/zero")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


def test_nonfinite_weights_are_refused_unless_allowed_and_then_named(tmp_path):
    model = make_model()
    opt = Adam(model.parameters())
    fit(model, MSE(), opt, *make_data(n=8), epochs=1, verbose=0)
    model[0].weight.data[0, 0] = np.nan
    model[3].bias.data[0] = -np.inf
    save(tmp_path / "m.npz", model, opt)
    with pytest.raises(CheckpointError, match=r"m.npz: the checkpoint's model/0.weight, "
                                              r"model/3.bias hold non-finite "
                                              r"values .NaN or inf.*allow_nonfinite=True"):
        load(tmp_path / "m.npz")
    ck = load(tmp_path / "m.npz", allow_nonfinite=True)
    assert ck.nonfinite == ["model/0.weight", "model/3.bias"]
    assert np.isnan(ck.model[0].weight.data[0, 0]) and ck.model[3].bias.data[0] == -np.inf
    opt.state[model[3].bias]["exp_avg_sq"][0] = np.inf  # the optimizer refuses its own
    save(tmp_path / "m.npz", model, opt)
    with pytest.raises(CheckpointError, match="parameter 3: 'exp_avg_sq' holds non-finite"):
        load(tmp_path / "m.npz", allow_nonfinite=True)
    save(tmp_path / "fine.npz", make_model())
    assert load(tmp_path / "fine.npz").nonfinite == []
    with pytest.raises(ValueError, match="load: allow_nonfinite must be True or False, got 'no'"):
        load(tmp_path / "fine.npz", allow_nonfinite="no")
    with pytest.raises(TypeError, match="load: model must be a Layer or None, got 'x'"):
        load(tmp_path / "fine.npz", model="x")
    with pytest.raises(TypeError, match="load: optimizer must be an Optimizer or None"):
        load(tmp_path / "fine.npz", optimizer=[1])
    with pytest.raises(TypeError, match="load: path must be a str or an os.PathLike"):
        load(None)


V1 = os.path.join(REPO, "tests", "fixtures", "checkpoints", "v1_mid_epoch.npz")


def test_a_format_1_checkpoint_of_minidl_0_1_still_loads_and_resumes(tmp_path):
    """Written by minidl 0.1.0 (tests/fixtures/checkpoints/v1_mid_epoch.npz): a run of three
    epochs interrupted after 7 steps (batch 3 of epoch 2), with extra."""
    ck = load(V1)
    assert ck.metadata["format_version"] == 1 and ck.epoch == 1
    assert ck.extra["note"] == "v1" and ck.extra["k"]["1"][0] == 1.5
    assert np.isnan(ck.extra["k"]["1"][1]) and np.array_equal(ck.extra["a"], np.arange(3))
    assert ck.trainer_state["progress"]["next_batch"] == 3

    def setup():
        model = Sequential(Dense(4, 6, rng=0), BatchNorm1d(6), Tanh(), Dropout(0.2, rng=1),
                           Dense(6, 1, rng=2))
        return model, Adam(model.parameters(), lr=0.01, amsgrad=True)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = X[:, :1] - X[:, 1:2]

    def mae(a, b):
        return float(np.mean(np.abs(a - b)))

    model, opt = setup()
    resumed = fit(model, MSE(), opt, X, y, epochs=3, batch_size=8, metrics={"mae": mae},
                  verbose=0, resume=V1)
    model, opt = setup()
    whole = fit(model, MSE(), opt, X, y, epochs=3, batch_size=8, seed=3, metrics={"mae": mae},
                verbose=0)
    for key in ("train_loss", "train_mae", "steps"):
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-12)
    # format 1 cannot say which array is which beyond its names, but still refuses an array
    # used twice, and entries it does not name
    arrays, meta = read_all(V1)
    meta["extra"]["a"] = {"__ndarray__": "model/0.weight"}
    write_all(tmp_path / "v1.npz", arrays, meta)
    with pytest.raises(CheckpointError, match="the array at 'extra/a' is stored as"):
        load(tmp_path / "v1.npz")


# ---------------------------------------------------------------------- custom optimizers
LION = """
import numpy as np
import minidl as md


class Lion(md.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def init_state(self, param):
        return {"m": np.zeros_like(param.data)}

    def update(self, param, grad, state, lr):
        b1, b2 = self.defaults["betas"]
        param -= lr * np.sign(b1 * state["m"] + (1 - b1) * grad)
        state["m"][...] = b2 * state["m"] + (1 - b2) * grad


class SignSGD(md.Optimizer):  # no weight_decay argument
    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr)

    def update(self, param, grad, state, lr):
        param -= lr * np.sign(grad)
"""

TRAIN = """
import sys
import numpy as np
import minidl as md

def train(cls, path):
    model = md.Sequential(md.Dense(3, 4, rng=0), md.ReLU(), md.Dense(4, 1, rng=1))
    opt = cls(model.parameters(), lr=0.01)
    X = np.random.default_rng(0).standard_normal((16, 3))
    md.Trainer(model, md.MSE(), opt, batch_size=8, verbose=0).fit(X, X[:, :1], epochs=2)
    md.save(path, model, opt)
    np.save(path + ".w.npy", model.state_dict()["0.weight"])
"""


def run_python(tmp_path, code, *args):
    """Run ``code`` in a fresh process, importing this checkout's minidl and the modules in
    ``tmp_path``; its stdout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(minidl.__file__)))  # src/
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_checkpoint_of_a_main_defined_optimizer_loads_its_model_in_a_fresh_process(tmp_path):
    """The docs' Lion defined in a script (__main__): a new process without it loads the
    model, with or without model=, and says why the optimizer was skipped; the user's own
    Lion takes the state."""
    path = tmp_path / "ck.npz"
    run_python(tmp_path, LION + TRAIN + "train(Lion, sys.argv[1])", path)
    out = run_python(tmp_path, """
import sys, warnings
import numpy as np
import minidl as md
w = np.load(sys.argv[1] + ".w.npy")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ck = md.load(sys.argv[1])
    m = md.Sequential(md.Dense(3, 4, rng=0), md.ReLU(), md.Dense(4, 1, rng=1))
    ck2 = md.load(sys.argv[1], model=m)
assert ck.optimizer is None and ck2.optimizer is None and ck2.model is m
assert np.array_equal(ck.model.state_dict()["0.weight"], w)
assert np.array_equal(m.state_dict()["0.weight"], w)
assert ck.optimizer_skipped == ck2.optimizer_skipped
assert [str(c.message) for c in caught] == [ck.optimizer_skipped] * 2
print(ck.optimizer_skipped)
""", path)
    assert out.startswith(f"{path}: the model loaded, but not its optimizer: its class "
                          f"__main__:Lion (defined in the script that saved the checkpoint) "
                          f"cannot be found")
    assert "pass it: load(path, model=..., optimizer=...)" in out
    # the same script run again (its __main__ defines Lion) gets its optimizer back
    out = run_python(tmp_path, LION + """
import sys
ck = md.load(sys.argv[1])
print(type(ck.optimizer).__name__, ck.optimizer.step_count, ck.optimizer_skipped)
m = md.Sequential(md.Dense(3, 4, rng=0), md.ReLU(), md.Dense(4, 1, rng=1))
opt = Lion(m.parameters(), lr=0.5)
ck = md.load(sys.argv[1], model=m, optimizer=opt)
print(ck.optimizer is opt, opt.lr, opt.step_count)
""", path)
    assert out.split("\n")[:2] == ["Lion 4 None", "True 0.01 4"]


def test_a_checkpoint_records_the_optimizer_class_by_import_path(tmp_path):
    """A class in an importable module: a fresh process that never imported it gets it
    back, imported from the path the checkpoint records."""
    (tmp_path / "myoptim.py").write_text(LION)
    path = tmp_path / "ck.npz"
    run_python(tmp_path, TRAIN + "from myoptim import Lion\ntrain(Lion, sys.argv[1])", path)
    meta = json.loads(np.load(path)["__minidl__"].tobytes())
    assert meta["optimizer"]["class_path"] == "myoptim:Lion"
    out = run_python(tmp_path, "import sys, minidl as md; o = md.load(sys.argv[1]).optimizer; "
                     "print(type(o).__module__, type(o).__name__, o.step_count)", path)
    assert out.split() == ["myoptim", "Lion", "4"]


def test_a_custom_optimizer_without_weight_decay_rebuilds(tmp_path):
    """The base class keeps weight_decay among the hyperparameters; the rebuild passes only
    what SignSGD's __init__ takes."""
    path = tmp_path / "ck.npz"
    out = run_python(tmp_path, LION + TRAIN + """
train(SignSGD, sys.argv[1])
ck = md.load(sys.argv[1])
print(type(ck.optimizer).__name__, ck.optimizer.lr, ck.optimizer.step_count)
""", path)
    assert out.split() == ["SignSGD", "0.01", "4"]
