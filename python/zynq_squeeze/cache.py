"""The on-disk cache shared by the engine search and the native builds.

``$ZSQ_CACHE_DIR``, default ``~/.cache/zynq_squeeze``. Every entry is keyed on what it
depends on, so stale entries are never read; deleting the directory is always safe.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache directory (created on first use)."""
    d = Path(os.environ.get("ZSQ_CACHE_DIR") or Path.home() / ".cache" / "zynq_squeeze")
    d.mkdir(parents=True, exist_ok=True)
    return d
