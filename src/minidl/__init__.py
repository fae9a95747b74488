"""minidl: a small, readable deep-learning framework on NumPy.

Every layer has a hand-written backward pass next to its formula, every gradient is checked
numerically (:func:`minidl.gradcheck`), and all randomness flows from explicit seeds.
"""

from . import callbacks, init, metrics, schedules, threads
from .activations import (
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
)
from .checkpoint import Checkpoint, CheckpointError, load, save
from .containers import RecursiveMLP, Sequential, build_layer, layer_config
from .errors import (
    BackwardBeforeForward,
    GradcheckError,
    MinidlError,
    NonFiniteError,
    ShapeError,
    StateDictError,
)
from .gradcheck import gradcheck
from .history import History
from .layer import Layer
from .layers import (
    AvgPool2D,
    AvgPool2d,
    BatchNorm1d,
    Conv2D,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Linear,
    MaxPool2D,
    MaxPool2d,
)
from .losses import (
    MSE,
    BCELoss,
    BinaryCrossEntropy,
    CrossEntropyLoss,
    Loss,
    MSELoss,
    SoftmaxCrossEntropy,
)
from .optim import SGD, AdaGrad, Adagrad, Adam, AdamW, Optimizer, RMSProp, RMSprop
from .parameter import Parameter
from .training import Trainer, TrainingDiverged, evaluate, fit, predict

__version__ = "0.1.0"


def __getattr__(name: str):
    """``minidl.sklearn`` and ``minidl.testing`` on first use: their optional dependencies
    (scikit-learn, hypothesis) are imported only then, never by ``import minidl``."""
    if name in ("sklearn", "testing"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")


__all__ = [
    "MSE",
    "SGD",
    "Activation",
    "AdaGrad",
    "Adagrad",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "AvgPool2d",
    "BCELoss",
    "BackwardBeforeForward",
    "BatchNorm1d",
    "BinaryCrossEntropy",
    "Checkpoint",
    "CheckpointError",
    "Conv2D",
    "Conv2d",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "GradcheckError",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MSELoss",
    "MaxPool2D",
    "MaxPool2d",
    "MinidlError",
    "NonFiniteError",
    "Optimizer",
    "Parameter",
    "RMSProp",
    "RMSprop",
    "ReLU",
    "RecursiveMLP",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "StateDictError",
    "Tanh",
    "Trainer",
    "TrainingDiverged",
    "__version__",
    "build_layer",
    "callbacks",
    "evaluate",
    "fit",
    "get_activation",
    "gradcheck",
    "init",
    "layer_config",
    "load",
    "metrics",
    "predict",
    "save",
    "schedules",
    "threads",
]
