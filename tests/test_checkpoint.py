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
    assert meta["format"] == "minidl-checkpoint" and meta["format_version"] == 1
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
        (lambda p: rewrite_metadata(p, lambda m: m.update(format_version=2, minidl_version="9")),
         r"written by a newer minidl \(9, checkpoint format 2\).*upgrade minidl"),
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
        (lambda p: rewrite_metadata(p, lambda m: m["optimizer"].update({"class": "Lion2"})),
         "unknown optimizer class 'Lion2'"),
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
