"""The deployment stage's error."""
from __future__ import annotations

from ..errors import ZynqSqueezeError


class DeployError(ZynqSqueezeError, RuntimeError):
    """The model cannot be turned into a bundle (a construct the executor generator does
    not support, a native tool missing or failing), or a model file is malformed."""
