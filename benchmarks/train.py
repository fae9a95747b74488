"""Training steps (forward, backward, update) and an epoch, minidl against an equivalent torch
model; and :func:`conv2d`, the hook for the Conv2D comparison.

Both sides start from the same weights, see the same batches and use Adam at lr 1e-3 (minidl's
default path; torch's default loop and its fused kernel as two contenders).
"""

from __future__ import annotations

import itertools

import numpy as np

import minidl

from .timing import BLAS_PAUSE, calls_for, compilations, interleaved

#: name -> (layer sizes, activation, bias, dtype, batch, loss, what it is)
STEP_CASES = {
    "mnist_mlp_b128": ([784, 256, 10], "relu", True, np.float32, 128, "xent",
                       "MNIST MLP 784-256-10, ReLU, batch 128, float32, softmax cross-entropy"),
    "qa_mlp_b32": ([2049, 64, 1], "tanh", False, np.float64, 32, "mse",
                   "QA MLP 2049-64-1, tanh, no bias, batch 32, float64, MSE"),
}
QUICK_STEP_CASES = {
    "mnist_mlp_b128": ([20, 8, 3], "relu", True, np.float32, 16, "xent", "tiny MNIST-shaped"),
}


def _minidl_model(sizes, act, bias, dtype, loss_name, outputs_last_act):
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(minidl.Dense(a, b, bias=bias, rng=i))
        if i < len(sizes) - 2 or outputs_last_act:
            layers.append(minidl.ReLU() if act == "relu" else minidl.Tanh())
    model = minidl.Sequential(*layers).astype(dtype)
    loss = minidl.SoftmaxCrossEntropy() if loss_name == "xent" else minidl.MSE(half_grad=True)
    return model, loss


def _torch_twin(torch, model, act, outputs_last_act, dtype):
    """The torch model with the minidl model's weights (torch's Linear stores W transposed)."""
    nn = torch.nn
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    mods = []
    dense = [layer for layer in model.children() if isinstance(layer, minidl.Dense)]
    for i, d in enumerate(dense):
        lin = nn.Linear(d.in_features, d.out_features, bias=d.bias is not None, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(d.weight.data.T.copy()))
            if d.bias is not None:
                lin.bias.copy_(torch.from_numpy(d.bias.data.copy()))
        mods.append(lin)
        if i < len(dense) - 1 or outputs_last_act:
            mods.append(nn.ReLU() if act == "relu" else nn.Tanh())
    return nn.Sequential(*mods)


def _data(sizes, dtype, n, loss_name, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss_name == "xent":
        y = rng.integers(0, sizes[-1], n)
    else:
        y = np.where(rng.standard_normal((n, 1)) > 0, 1.0, -1.0).astype(dtype)
    return x, y


def training_steps(*, cases=None, torch=None, budget=1.0, log=print) -> list[dict]:
    cases = STEP_CASES if cases is None else cases
    out = []
    for name, (sizes, act, bias, dtype, batch, loss_name, label) in cases.items():
        last_act = loss_name == "mse"  # the QA MLP ends in tanh
        model, loss = _minidl_model(sizes, act, bias, dtype, loss_name, last_act)
        opt = minidl.Adam(model.parameters(), lr=1e-3)
        x, y = _data(sizes, dtype, batch, loss_name)

        def minidl_step(model=model, loss=loss, opt=opt, x=x, y=y):
            loss(model(x), y)
            model.backprop(loss.backward(), input_grad=False)  # as torch: x needs no grad
            opt.step()

        contenders = {f"minidl {opt.implementation}": minidl_step}
        if torch is not None:
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            crit = torch.nn.CrossEntropyLoss() if loss_name == "xent" else torch.nn.MSELoss()
            for variant, flags in (("default", {}), ("fused", {"fused": True})):
                tmodel = _torch_twin(torch, model, act, last_act, dtype)
                topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3, **flags)

                def torch_step(tmodel=tmodel, topt=topt, crit=crit, tx=tx, ty=ty):
                    topt.zero_grad()
                    crit(tmodel(tx), ty).backward()
                    topt.step()

                contenders[f"torch {variant} Adam"] = torch_step
        rounds = 3 if budget < 0.1 else 30
        inner = {name: calls_for(fn, budget / rounds) for name, fn in contenders.items()}
        times = interleaved(contenders, rounds=rounds, inner=inner, warmup=2, pause=BLAS_PAUSE)
        case = {"case": name, "label": label, "times": times,
                "compilations": compilations(opt)}
        out.append(case)
        log(f"{name:>16}: " + ", ".join(f"{k} {v['median'] * 1e6:,.0f} us"
                                         for k, v in times.items()))
    return out


def _epoch_race(name, model, loss, x, y, twin, *, torch, rounds, log):
    """One epoch of ``minidl.fit`` (Adam at lr 1e-3, batch 128, shuffled) against a plain torch
    loop over a random permutation with fused Adam on ``twin(torch)``, the same network with
    the same starting weights, timed interleaved; returns ``(times, minidl's optimizer)``."""
    n = len(x)
    opt = minidl.Adam(model.parameters(), lr=1e-3)
    contenders = {f"minidl {opt.implementation}": lambda: minidl.fit(
        model, loss, opt, x, y, epochs=1, batch_size=128, seed=0, verbose=0)}
    if torch is not None:
        tmodel = twin(torch)
        tmodel.train()
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3, fused=True)
        crit = torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_epoch():
            perm = torch.randperm(n)
            for lo in range(0, n, 128):
                idx = perm[lo:lo + 128]
                topt.zero_grad()
                crit(tmodel(tx[idx]), ty[idx]).backward()
                topt.step()

        contenders["torch fused Adam"] = torch_epoch
    times = interleaved(contenders, rounds=rounds, warmup=1, pause=BLAS_PAUSE)
    log(f"{name:>16}: " + ", ".join(f"{k} {v['median']:.3f} s" for k, v in times.items()))
    return times, opt


def epoch(*, n=60_000, torch=None, rounds=3, log=print) -> dict:
    """One epoch of the MNIST MLP (784-256-10, batch 128, float32, Adam) on ``n`` generated
    samples: ``minidl.fit`` (shuffling included) against a plain torch loop over a random
    permutation."""
    sizes, dtype = [784, 256, 10], np.float32
    model, loss = _minidl_model(sizes, "relu", True, dtype, "xent", False)
    x, y = _data(sizes, dtype, n, "xent")
    times, opt = _epoch_race("epoch", model, loss, x, y,
                             lambda torch: _torch_twin(torch, model, "relu", False, dtype),
                             torch=torch, rounds=rounds, log=log)
    return {"case": "mnist_epoch", "label": f"one epoch, {n:,} generated MNIST-sized samples, "
            "batch 128", "samples": n, "times": times, "compilations": compilations(opt)}


def conv2d(*, torch=None, budget=1.0, batch=32, log=print) -> dict:
    """Conv2D forward + backward (the Keras CNN's second layer: 32 -> 64 channels, 3x3, on
    26x26 maps, float32, batch ``batch``) against ``torch.nn.Conv2d`` with the same weights,
    both computing the input gradient and the weight and bias gradients."""
    rng = np.random.default_rng(0)
    layer = minidl.Conv2D(32, 64, 3, rng=0).astype(np.float32)
    x = rng.standard_normal((batch, 32, 26, 26)).astype(np.float32)
    g = rng.standard_normal((batch, 64, 24, 24)).astype(np.float32)

    def minidl_step():
        layer(x)
        layer.backprop(g)

    contenders = {"minidl": minidl_step}
    if torch is not None:
        conv = torch.nn.Conv2d(32, 64, 3)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(layer.weight.data.copy()))
            conv.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
        tx = torch.from_numpy(x).requires_grad_(True)
        tg = torch.from_numpy(g)

        def torch_step():
            conv.zero_grad()
            tx.grad = None
            conv(tx).backward(tg)

        contenders["torch"] = torch_step
    rounds = 3 if budget < 0.1 else 15
    inner = {name: calls_for(fn, budget / rounds) for name, fn in contenders.items()}
    times = interleaved(contenders, rounds=rounds, inner=inner, warmup=2, pause=BLAS_PAUSE)
    log(f"{'conv2d':>16}: " + ", ".join(f"{k} {v['median'] * 1e3:,.1f} ms"
                                         for k, v in times.items()))
    return {"case": "conv2d", "label": f"Conv2D 32->64 3x3 on 26x26, batch {batch}, float32, "
            "forward+backward", "times": times}


def cnn_model(seed: int = 0):
    """The Keras MNIST CNN (experiments/mnist_cnn.py's ``model``), float32."""
    rng = np.random.default_rng(seed)
    return minidl.Sequential(
        minidl.Conv2D(1, 32, 3, rng=rng), minidl.ReLU(),
        minidl.Conv2D(32, 64, 3, rng=rng), minidl.ReLU(),
        minidl.MaxPool2D(2), minidl.Dropout(0.25, rng=rng), minidl.Flatten(),
        minidl.Dense(64 * 12 * 12, 128, rng=rng), minidl.ReLU(), minidl.Dropout(0.5, rng=rng),
        minidl.Dense(128, 10, rng=rng),
    ).astype(np.float32)


def torch_cnn(torch, model):
    """The same network in torch, layer for layer, with ``model``'s weights (a Conv2D's weight
    is torch's (out, in, kh, kw); a Dense stores W as (in, out), torch's Linear its transpose)."""
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )
    ours = [layer for layer in model.children() if isinstance(layer, (minidl.Conv2D, minidl.Dense))]
    theirs = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for mine, twin in zip(ours, theirs, strict=True):
            w = mine.weight.data if isinstance(mine, minidl.Conv2D) else mine.weight.data.T
            twin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            twin.bias.copy_(torch.from_numpy(mine.bias.data.copy()))
    return net


def cnn_epoch(*, n=60_000, torch=None, rounds=3, log=print) -> dict:
    """One training epoch of the Keras MNIST CNN (:func:`cnn_model`: Conv2D 1->32 and 32->64,
    3x3, ReLU, max-pooling, dropout, Dense 9216->128->10; batch 128, float32, Adam at lr 1e-3)
    on ``n`` generated 28x28 images: ``minidl.fit`` (shuffling included) against a plain torch
    loop over :func:`torch_cnn` (the same layers and starting weights) with fused Adam."""
    model = cnn_model(0)
    rng = np.random.default_rng(0)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    times, opt = _epoch_race("cnn epoch", model, minidl.SoftmaxCrossEntropy(), x, y,
                             lambda torch: torch_cnn(torch, model),
                             torch=torch, rounds=rounds, log=log)
    return {"case": "cnn_epoch", "label": f"Keras CNN, one epoch, {n:,} generated 28x28 images, "
            "batch 128", "samples": n, "times": times, "compilations": compilations(opt)}
