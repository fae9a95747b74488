"""Layers with parameters or structure: Dense, Dropout, BatchNorm1d, Flatten."""

from .batchnorm import BatchNorm1d
from .dense import Dense, Linear
from .dropout import Dropout
from .flatten import Flatten

__all__ = ["BatchNorm1d", "Dense", "Dropout", "Flatten", "Linear"]
