"""The tuning log: JSON Lines, append-only, one record per measurement.

The format is ``schedule.tuning_records``'s (the compile reads it from there). Each
record is written, flushed and fsync'ed as soon as its measurement is made, so an
interrupted tune (Ctrl-C, a crash, a power cut) loses nothing it measured; a line cut
short by a crash is skipped with a warning when read. ``logged`` is what resume skips:
the records of the same task (board, models and weights) and measurer.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..errors import OptionError
from ..schedule import tuning_records
from .candidate import Measurement
from .measure import TuneTask
from .task import model_hash


def versions() -> dict:
    """The package's and TVM's versions (what made a record)."""
    from importlib import metadata

    out = {}
    for dist, key in (("zynq-squeeze", "zynq_squeeze"), ("apache-tvm", "tvm")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = "unknown"
    return out


def task_key(task: TuneTask) -> str:
    """sha256 (16 hex digits) of what a record's cost depends on: the board, each model's
    layers (``model_hash``) and weight."""
    parts = [task.board.name] + [f"{n}:{model_hash(layers)}:{task.weight(n)!r}"
                                 for n, layers in sorted(task.models)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _jsonable(x):
    try:
        json.dumps(x)
        return x
    except (TypeError, ValueError):
        return json.loads(json.dumps(x, default=str))


class TuneLog:
    """Appends records for ``task`` measured by ``measurer`` to ``path``."""

    def __init__(self, path, task: TuneTask, measurer: str):
        self.path = Path(path)
        self.task, self.measurer = task, measurer
        self.key = task_key(task)
        self.meta = {"board": task.board.name, "measurer": measurer, "task": self.key,
                     "models": {n: {"hash": model_hash(layers), "weight": task.weight(n)}
                                for n, layers in task.models},
                     "versions": versions()}
        self._f = None

    def logged(self) -> list[tuning_records.TuneRecord]:
        """This task's and measurer's records already in the file (others are kept in the
        file and ignored); unreadable lines are skipped with a warning."""
        if not self.path.exists():
            return []
        try:
            recs = tuning_records.read_records(self.path)
        except OSError as e:
            raise OptionError(f"cannot read tuning log {self.path}: {e.strerror or e}") from None
        return [r for r in recs if r.task == self.key and r.measurer == self.measurer]

    def open(self) -> TuneLog:
        try:
            if self.path.parent and not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True)
            # O_APPEND and one write() per record (under an exclusive lock where there is
            # one): two tunes appending to the same log never interleave inside a line
            self._f = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise OptionError(f"cannot write tuning log {self.path}: {e.strerror or e}") from None
        return self

    def close(self) -> None:
        if self._f is not None:
            os.close(self._f)
            self._f = None

    def _write(self, data: bytes) -> None:
        fd = self._f
        try:
            import fcntl
        except ImportError:  # not POSIX: O_APPEND alone
            fcntl = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            # a line cut short (a crash, here or in another writer): start on a fresh one
            size = os.fstat(fd).st_size
            if size > 0:
                with open(self.path, "rb") as r:
                    r.seek(size - 1)
                    if r.read(1) != b"\n":
                        data = b"\n" + data
            while data:
                n = os.write(fd, data)
                data = data[n:]
            os.fsync(fd)
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def append(self, m: Measurement, cost_us: float | None, default: bool = False) -> dict:
        """Write one record (flushed and fsync'ed before returning); returns it."""
        rec = {"zsq_tune": tuning_records.RECORD_VERSION,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **self.meta, "measurer": m.measurer or self.measurer,
               "key": m.candidate.key(), "default": bool(default),
               "candidate": m.candidate.to_json(),
               "cycles": int(m.cycles) if m.ok else None,
               "cost_us": round(float(cost_us), 4) if cost_us is not None else None,
               "error": m.error if not m.ok else None,
               "resources": _jsonable(dict(m.resources)), "seconds": round(m.seconds, 4),
               "detail": _jsonable(m.detail or {})}
        if not m.ok and rec["error"] is None:
            rec["error"] = "no cycles measured"
        if self._f is not None:
            self._write((json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
                        .encode("utf-8"))
        return rec
