"""The one place where text from a model file (names) becomes part of generated code.

Model and graph names reach C/C++ comments, Tcl strings and Makefile comments. ``safe_text``
keeps letters, digits and ``_ . : + -`` and replaces everything else, so no comment can be
closed, no string terminated and no command substituted by a name.
"""
from __future__ import annotations

import re


def safe_text(s: str) -> str:
    """``s`` reduced to ``[A-Za-z0-9_.:+-]`` (others -> ``_``); ``"model"`` when empty."""
    return re.sub(r"[^A-Za-z0-9_.:+-]", "_", str(s)) or "model"
