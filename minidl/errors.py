"""The errors minidl raises on purpose.

Shape and value problems are ``ValueError`` subclasses, so ``except ValueError`` catches them;
misuse of the forward/backward protocol is a ``RuntimeError``.
"""


class MinidlError(Exception):
    """Base class of every error minidl raises on purpose."""


class ShapeError(MinidlError, ValueError):
    """An array has the wrong shape for the layer, loss or optimizer that received it."""


class NonFiniteError(MinidlError, ValueError):
    """NaN or infinity reached a place that cannot give a meaningful answer with it."""


class BackwardBeforeForward(MinidlError, RuntimeError):
    """``backward`` was called on a layer or loss that has no forward pass to differentiate."""


class StateDictError(MinidlError, ValueError):
    """A state dict does not match the model or optimizer it is loaded into."""


class GradcheckError(MinidlError, AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""
