"""Layers with parameters or structure: Dense (alias Linear), Dropout, BatchNorm1d, Flatten,
Conv2D and pooling."""

from .batchnorm import BatchNorm1d
from .conv import Conv2D, Conv2d
from .dense import Dense, Linear
from .dropout import Dropout
from .flatten import Flatten
from .pooling import AvgPool2D, AvgPool2d, GlobalAvgPool2D, MaxPool2D, MaxPool2d

__all__ = [
    "AvgPool2D", "AvgPool2d", "BatchNorm1d", "Conv2D", "Conv2d", "Dense", "Dropout", "Flatten",
    "GlobalAvgPool2D", "Linear", "MaxPool2D", "MaxPool2d",
]
