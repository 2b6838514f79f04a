"""Exceptions of zynq-squeeze."""
from __future__ import annotations


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


class BuildError(ZynqSqueezeError, RuntimeError):
    """Compiling native sources (engine, runtime) failed."""


class OptionError(ZynqSqueezeError, ValueError):
    """An option (clock, board, path) is outside what zynq-squeeze accepts."""
