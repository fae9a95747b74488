"""Optimizers: one file per algorithm, each docstring holding its update rule."""

from .adagrad import AdaGrad, Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSProp, RMSprop
from .sgd import SGD

__all__ = ["SGD", "AdaGrad", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSProp", "RMSprop"]
