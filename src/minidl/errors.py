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

    #: The non-finite loss value, when a loss raised this error because its value overflowed.
    loss_value: float | None = None


class BackwardBeforeForward(MinidlError, RuntimeError):
    """``backward`` was called on a layer or loss that has no forward pass to differentiate."""


class StateDictError(MinidlError, ValueError):
    """A state dict does not match the model or optimizer it is loaded into."""


class GradcheckError(MinidlError, AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


class TrainingDiverged(MinidlError, RuntimeError):
    """Training produced a non-finite loss or prediction. ``epoch`` (1-based) and ``step`` (the
    optimizer step that was about to run, counted from 1 over the whole run) say where."""

    def __init__(self, message: str, *, epoch: int, step: int, phase: str = "train"):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.phase = phase


class CheckpointError(MinidlError, ValueError):
    """A file is not a readable minidl checkpoint (truncated, corrupt, foreign or too new), or a
    checkpoint does not fit the model or optimizer it is loaded into."""
