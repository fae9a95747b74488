"""Parameter groups, the one step counter, torch's optimizer names and non-strict loading."""

import numpy as np
import pytest

import minidl
from minidl import SGD, Adam, Dense, Parameter, Sequential, StateDictError, Tanh
from minidl.schedules import ReduceLROnPlateau, StepLR


def params(n=2, value=1.0):
    return [Parameter(np.full(3, value)) for _ in range(n)]


def feed(opt, grad=1.0):
    for p in opt.params:
        p.grad[...] = grad
    opt.step()


def test_one_group_by_default_and_lr_is_settable_there():
    ps = params()
    opt = SGD(ps, lr=0.1)
    assert len(opt.param_groups) == 1
    assert opt.param_groups[0]["params"] == ps and opt.param_groups[0]["lr"] == 0.1
    for group in opt.param_groups:  # what torch user code and torch-style schedulers do
        group["lr"] = 0.5
    assert opt.lr == 0.5 and opt.hparams["lr"] == 0.5
    feed(opt)
    assert np.array_equal(ps[0].data, np.full(3, 0.5))


def test_groups_have_their_own_lr_and_weight_decay():
    a, b = params()
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0, "weight_decay": 0.5}], lr=0.1)
    feed(opt)
    assert np.array_equal(a.data, np.full(3, 0.9))
    assert np.array_equal(b.data, np.full(3, 1.0 - 1.0 * (1.0 + 0.5)))
    with pytest.raises(ValueError, match=r"different learning rates \[0\.1, 1\.0\]"):
        _ = opt.lr
    opt.lr = 0.2  # sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]


def test_group_errors_name_the_group():
    a, b = params()
    with pytest.raises(ValueError, match=r"^SGD: parameter group 1 sets \['momentum'\]; a group "
                                         r"may set only lr and weight_decay"):
        SGD([{"params": [a]}, {"params": [b], "momentum": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD: parameter 0 of parameter group 1 is also in an "
                                         r"earlier group"):
        SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD: lr must be >= 0\.0, got -1"):
        SGD([{"params": [a], "lr": -1}], lr=0.1)
    with pytest.raises(ValueError, match=r"^SGD: parameter group 1 has no parameters"):
        SGD([{"params": [a]}, {"params": []}], lr=0.1)


def test_group_state_dict_round_trip():
    a, b = params()
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    feed(opt)
    opt.param_groups[1]["lr"] = 0.25
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    c, d = params()
    other = Adam([{"params": [c]}, {"params": [d]}], lr=0.1)
    other.load_state_dict(saved)
    assert [g["lr"] for g in other.param_groups] == [0.1, 0.25]
    with pytest.raises(StateDictError, match=r"parameter groups of sizes \[2\], expected \[1, 1\]"):
        other.load_state_dict(Adam(params(), lr=0.1).state_dict())


def test_a_checkpoint_rebuilds_an_optimizer_with_several_groups(tmp_path):
    model = Sequential(Dense(3, 4, rng=0), Tanh(), Dense(4, 1, rng=1))
    opt = Adam([{"params": list(model[0].parameters()), "lr": 1e-3},
                {"params": list(model[2].parameters()), "weight_decay": 0.1}], lr=1e-2)
    model(np.ones((2, 3)))
    model.backward(np.ones((2, 1)))
    opt.step()
    minidl.save(tmp_path / "groups.npz", model, optimizer=opt)
    rebuilt = minidl.load(tmp_path / "groups.npz")
    assert [[id(p) for p in g["params"]] for g in rebuilt.optimizer.param_groups] == \
        [[id(p) for p in layer.parameters()] for layer in (rebuilt.model[0], rebuilt.model[2])]
    assert [(g["lr"], g["weight_decay"]) for g in rebuilt.optimizer.param_groups] == \
        [(1e-3, 0.0), (1e-2, 0.1)]
    assert rebuilt.optimizer.step_count == 1


def test_schedules_drive_every_group():
    a, b = params()
    opt = SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=0.1)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == [0.5, 0.05] == [g["lr"] for g in opt.param_groups]
    plateau = ReduceLROnPlateau(opt, patience=0, factor=0.5)
    plateau.step(1.0)
    plateau.step(1.0)
    assert plateau.get_last_lr() == [0.25, 0.025]


def test_a_schedule_follows_an_lr_set_by_hand_in_get_last_lr():
    opt = SGD(params(), lr=1.0)
    sched = StepLR(opt, step_size=10)
    opt.param_groups[0]["lr"] = 0.3  # one learning rate, read from the optimizer: no copy
    assert sched.get_last_lr() == 0.3


def test_one_step_counter():
    opt = Adam(params(), lr=0.1)
    assert opt.step_count == 0
    feed(opt)
    feed(opt)
    assert opt.step_count == 2 == opt.state[opt.params[0]]["step"]
    with pytest.raises(AttributeError):
        opt.step_count = 5  # derived from the per-parameter counters, never set apart
    saved = opt.state_dict()
    saved["step_count"] = 3
    with pytest.raises(StateDictError, match=r"step_count is 3, but the parameters' states "
                                             r"count \[2\] steps"):
        Adam(params(), lr=0.1).load_state_dict(saved)


def test_torch_names_and_the_old_ones():
    assert minidl.RMSprop is minidl.RMSProp and minidl.Adagrad is minidl.AdaGrad
    assert minidl.RMSprop.__name__ == "RMSprop" and minidl.Adagrad.__name__ == "Adagrad"
    opt = minidl.RMSprop(params(), lr=0.1)
    feed(opt)
    saved = opt.state_dict()
    saved["class"] = "RMSProp"  # written by an earlier minidl
    minidl.RMSprop(params(), lr=0.1).load_state_dict(saved)


def test_checkpoint_written_under_the_old_class_name_loads(tmp_path):
    from tests.test_checkpoint import rewrite_metadata

    model = Sequential(Dense(3, 2, rng=0), Tanh())
    opt = minidl.Adagrad(model.parameters(), lr=0.1)
    minidl.save(tmp_path / "c.npz", model, optimizer=opt)
    rewrite_metadata(tmp_path / "c.npz", lambda m: m["optimizer"].update({"class": "AdaGrad"}))
    assert type(minidl.load(tmp_path / "c.npz").optimizer) is minidl.Adagrad


def test_load_state_dict_non_strict():
    model = Sequential(Dense(3, 2, rng=0), Tanh(), Dense(2, 1, rng=1))
    state = model.state_dict()
    del state["2.bias"]
    state["head.weight"] = np.zeros(2)
    with pytest.raises(StateDictError, match=r"missing keys: \['2\.bias'\]; unexpected keys: "
                                             r"\['head\.weight'\]"):
        model.load_state_dict(state)
    state["0.weight"] = state["0.weight"] + 1
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["head.weight"]
    assert np.array_equal(model[0].weight.data, state["0.weight"])
    state["0.bias"] = np.zeros(5)  # a wrong shape is refused even when not strict
    with pytest.raises(StateDictError, match=r"'0\.bias': expected shape \(2,\), got \(5,\)"):
        model.load_state_dict(state, strict=False)
    assert model.load_state_dict(model.state_dict()) == ([], [])


# ------------------------------------------------------------------ issue 19
def _model_and_grads():
    model = Sequential(Dense(3, 2, rng=0), Tanh(), Dense(2, 1, rng=1))
    for p in model.parameters():
        p.grad[...] = 0.5
    return model


@pytest.mark.parametrize("fused", [False, None])
@pytest.mark.parametrize(("key", "value", "match"), [
    ("lr", -1, r"Adam: param_groups\[1\]\['lr'\] must be >= 0.0, got -1"),
    ("lr", float("nan"), r"Adam: param_groups\[1\]\['lr'\] must be a finite number, got nan"),
    ("lr", "fast", r"Adam: param_groups\[1\]\['lr'\] must be a finite number, got 'fast'"),
    ("lr", None, r"param_groups\[1\]\['lr'\] must be a finite number, got None"),
    ("weight_decay", -0.1, r"param_groups\[1\]\['weight_decay'\] must be >= 0.0"),
    ("weight_decay", float("inf"), r"param_groups\[1\]\['weight_decay'\] must be a finite"),
])
def test_a_group_rate_written_by_hand_is_checked_at_step(key, value, match, fused):
    # issue 19: param_groups[0]["lr"] = -1 (or NaN) was accepted while the lr setter refuses it
    model = _model_and_grads()
    opt = Adam([{"params": model[0].parameters()}, {"params": model[2].parameters()}],
               fused=fused)
    before = [p.data.copy() for p in model.parameters()]
    opt.param_groups[1][key] = value
    with pytest.raises(ValueError, match=match):
        opt.step()
    opt.param_groups[1][key] = np.float64(0.01)  # a NumPy float a scheduler wrote is fine
    opt.step()
    assert not np.array_equal(before[-1], model[2].bias.data)


@pytest.mark.parametrize("fused", [False, None])
@pytest.mark.parametrize(("grad", "got"), [
    (np.ones((1, 1)), r"a gradient of shape \(1, 1\)"),  # would broadcast silently
    (np.ones(5), r"a gradient of shape \(5,\)"),
])
def test_a_gradient_of_the_wrong_shape_names_the_parameter(grad, got, fused):
    model = _model_and_grads()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, fused=fused)
    model[2].bias.grad = grad
    with pytest.raises(minidl.ShapeError, match=rf"SGD\.step: parameter 3 \(group 0, "
                                                rf"Parameter\(shape=\(1,\), dtype=float64\)\) "
                                                rf"has {got}; p\.grad must be an array of the "
                                                rf"parameter's shape \(1,\)"):
        opt.step()


@pytest.mark.parametrize("fused", [False, None])
@pytest.mark.parametrize(("grad", "got"), [
    (None, "NoneType"), ([0.5], "list"), (0.5, "float")])
def test_a_gradient_that_is_not_an_array_says_to_use_zero_grad(grad, got, fused):
    """torch's ``p.grad = None`` (set_to_none) in the order torch users write it: assigned
    before the forward pass, so backward runs too; the step says what to do instead."""
    model = _model_and_grads()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, fused=fused)
    model[2].bias.grad = grad
    with pytest.raises(TypeError, match=rf"SGD\.step: parameter 3 \(group 0, Parameter.*\) "
                                        rf"has a gradient of a {got}, not an array; "
                                        rf".*p\.zero_grad\(\)"):
        opt.step()


@pytest.mark.parametrize(("state_dict", "match"), [
    ({"hparams": {}}, r"the state dict has no \['step_count', 'state'\]"),
    ([1, 2], r"expected a dict \(what state_dict\(\) returns\), got list"),
    (None, r"expected a dict .*got NoneType"),
    ({"hparams": {}, "step_count": 0, "state": {"x": {}}}, r"state key 'x' is not a parameter"),
    ({"hparams": {}, "step_count": 0, "state": {0: [1.0]}}, r"state\[0\] is a list, not a dict"),
    ({"hparams": [], "step_count": 0, "state": {}}, r"'hparams' is a list, not a dict"),
    ({"hparams": {}, "step_count": "1", "state": {}}, r"step_count is '1', not an int"),
    ({"hparams": {}, "step_count": 0, "state": {}, "param_groups": [3]},
     r"param_groups is not a list of dicts"),
])
def test_a_malformed_optimizer_state_dict_is_a_state_dict_error(state_dict, match):
    # issue 19: KeyError, TypeError or int('x') from inside load_state_dict
    model = _model_and_grads()
    opt = Adam(model.parameters())
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(StateDictError, match=rf"Adam\.load_state_dict: .*{match}"):
        opt.load_state_dict(state_dict)
    assert opt.state_dict()["step_count"] == saved["step_count"]  # unchanged


def test_zero_grad_takes_torchs_set_to_none_and_does_what_zero_grad_does():
    """minidl keeps the gradient arrays: set_to_none=True or False marks every parameter as
    having no gradient, so step skips it, as torch skips a None gradient."""
    for flag in (True, False):
        ps = params()
        opt = SGD(ps, lr=0.1)
        for p in ps:
            p.grad[...] = 1.0
        grads = [p.grad for p in ps]
        opt.zero_grad(set_to_none=flag)
        assert all(p.grad is g and not p.has_grad for p, g in zip(ps, grads, strict=True))
        opt.step()
        assert all(np.array_equal(p.data, np.ones(3)) for p in ps) and opt.step_count == 0
    with pytest.raises(ValueError, match="set_to_none"):
        SGD(params(), lr=0.1).zero_grad(set_to_none="yes")


def test_add_param_group_is_checked_like_a_constructor_group():
    a, b, c = params(3)
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.5})
    opt.add_param_group({"params": c})  # one Parameter, and the constructor's lr
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5, 0.1]
    assert opt.params == [a, b, c] and opt.param_groups[2]["weight_decay"] == 0.0
    feed(opt)
    assert np.array_equal(b.data, np.full(3, 0.5)) and np.array_equal(c.data, np.full(3, 0.9))
    with pytest.raises(ValueError, match="also in an earlier group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match=r"sets \['momentum'\]; a group may set only lr"):
        opt.add_param_group({"params": params(1), "momentum": 0.5})
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": params(1), "lr": -1.0})
    with pytest.raises(ValueError, match="has no parameters"):
        opt.add_param_group({"params": []})
    with pytest.raises(ValueError, match="no 'params'"):
        opt.add_param_group({"lr": 0.1})
    with pytest.raises(TypeError, match="expected a dict"):
        opt.add_param_group([a])
    assert len(opt.param_groups) == 3  # nothing refused was added


@pytest.mark.parametrize("foreach", [None, True])
def test_add_param_group_steps_the_new_parameters_on_the_optimizers_path(foreach):
    """The fused path sees an added group, a large one too (its parallel kernel), and updates
    it as the loop does."""
    PARALLEL_MIN_SIZE = 1 << 15  # minidl.optim._kernels_numba's, which needs numba

    def run(foreach):
        small = Parameter(np.linspace(-1, 1, 5))
        large = Parameter(np.linspace(-1, 1, PARALLEL_MIN_SIZE))
        opt = Adam([small], lr=0.01, foreach=foreach)
        opt.add_param_group({"params": [large], "lr": 0.1})
        for k in range(3):
            small.grad[...] = np.cos(small.data + k)
            large.grad[...] = np.sin(large.data + k)
            opt.step()
        return opt, small.data, large.data

    opt, small, large = run(foreach)
    _, small_ref, large_ref = run(True)
    assert opt.state[opt.params[1]]["step"] == 3
    np.testing.assert_allclose(large, large_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(small, small_ref, rtol=1e-12, atol=1e-15)
    if opt.implementation == "fused":
        assert opt._fused._large
