"""The on-disk cache shared by the engine search and the native builds.

``$ZSQ_CACHE_DIR``, default ``~/.cache/zynq_squeeze``. Every entry is keyed on what it
depends on, so stale entries are never read; deleting the directory is always safe.

Entries are written whole or not at all: a writer builds the entry under a temporary
name in the same directory (``atomic_entry``) and renames it into place, so Ctrl-C or an
error half-way leaves no entry behind. A reader checks an entry before using it
(``entry_ok``): an empty or truncated one (e.g. from an older version, or a full disk)
is removed and rebuilt.
"""
from __future__ import annotations

import os
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OptionError


def cache_dir() -> Path:
    """The cache directory (created on first use). Raises ``OptionError`` when it cannot
    be created or written (``$ZSQ_CACHE_DIR`` naming a file or a read-only directory)."""
    env = os.environ.get("ZSQ_CACHE_DIR")
    d = Path(env or Path.home() / ".cache" / "zynq_squeeze")
    where = f"cache directory {d}" + (" ($ZSQ_CACHE_DIR)" if env else "")
    if d.exists() and not d.is_dir():
        raise OptionError(f"{where} is not a directory; point ZSQ_CACHE_DIR at a "
                          "writable directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(f"{where} cannot be created ({e.strerror or e}); point "
                          "ZSQ_CACHE_DIR at a writable directory") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise OptionError(f"{where} is not writable; point ZSQ_CACHE_DIR at a writable "
                          "directory")
    return d


def _complete(path: Path) -> bool:
    """Whether the file at ``path`` looks whole: not empty and, for ELF objects and
    shared libraries, long enough to hold the section header table its header points to
    (the linker writes it last, so a truncated file lacks it)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    if size == 0:
        return False
    if head[:4] != b"\x7fELF":
        return True  # not ELF: nothing more to check
    if len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return False
    end = "<" if head[5] == 1 else ">"
    if head[4] == 2:  # ELFCLASS64
        if len(head) < 64:
            return False
        (shoff,) = struct.unpack_from(end + "Q", head, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x3A)
    else:
        (shoff,) = struct.unpack_from(end + "I", head, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", head, 0x2E)
    return shoff + shentsize * shnum <= size


def entry_ok(path: Path) -> bool:
    """True when the cache entry ``path`` exists and is whole. A damaged entry (empty,
    truncated) is deleted, so the caller rebuilds it instead of loading it."""
    path = Path(path)
    if not path.is_file():
        return False
    if _complete(path):
        return True
    try:
        path.unlink()
    except OSError:
        pass
    return False


@contextmanager
def atomic_entry(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write the entry to; when the block
    ends normally it is renamed to ``path`` (atomic: readers see the old entry or the
    whole new one), on any exception (also KeyboardInterrupt) it is deleted."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix="-" + path.name)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks: the key of what a manifest
    checks before it trusts a file (a compile's model.so, a bundle's files)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
