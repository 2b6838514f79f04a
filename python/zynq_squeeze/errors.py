"""Exceptions of zynq-squeeze."""
from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class ZynqSqueezeError(Exception):
    """Base class of every zynq-squeeze error."""


class ScheduleError(ZynqSqueezeError, ValueError):
    """A tile schedule does not fit the engine's on-chip buffers (names the buffer)."""


class EngineError(ZynqSqueezeError, RuntimeError):
    """The accelerator engine or runtime returned an error code.

    ``code`` is the negative ``ZSQ_ERR_*`` / ``ZSQ_RT_ERR_*`` value.
    """

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class ModelError(ZynqSqueezeError, ValueError):
    """The model itself cannot be compiled as given (e.g. NaN or Inf in offloaded weights)."""


class BuildError(ZynqSqueezeError, RuntimeError):
    """Compiling native sources (engine, runtime) failed."""


class OptionError(ZynqSqueezeError, ValueError):
    """An option (clock, board, path) is outside what zynq-squeeze accepts."""


def warn(message: str) -> None:
    """A ``UserWarning`` attributed to the user's code: the first caller outside this
    package and TVM (a warning pointing into the library tells the reader nothing)."""
    import tvm  # noqa: PLC0415 (its location, to skip tvm.compile's frames)

    skip = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(tvm.__file__)))
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, UserWarning, stacklevel=level)
