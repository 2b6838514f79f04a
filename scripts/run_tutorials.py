#!/usr/bin/env python3
"""Execute the tutorial notebooks and save them with their outputs.

    python scripts/run_tutorials.py [NAME ...]      # all of tutorials/*.ipynb by default

Each notebook runs top to bottom with nbclient, in a fresh temporary working directory,
in a kernel started from this interpreter that inherits this process's environment with
this checkout's ``python/`` first on ``PYTHONPATH`` (so the kernel imports the tree being
documented, not some other install). The executed notebook is saved over the source with
its outputs; the per-cell execution timestamps nbclient adds are dropped (they would
change every line of a diff).

A notebook is not saved when it has an error output, a cell longer than
``MAX_CELL_LINES`` lines, or an output that shows an absolute path or this machine's name
(``problems``): the committed outputs are what a learner reads on GitHub.
``tests/test_tutorials.py`` uses the same functions to re-execute every notebook and
compare its structure (``structure``: cells, output kinds) with the committed one.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
MAX_CELL_LINES = 40
TIMEOUT_S = 900  # per cell
# absolute paths under the usual roots of a machine (a data: URI is removed before the check)
_ABS_PATH = re.compile(r"(?<![\w.~-])/(?:tmp|home|work|root|Users|var|private|opt|mnt|srv|usr/local)/")
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def notebooks(names=()) -> list[Path]:
    """The tutorial notebooks (all, or those named in ``names``: file name, stem, or the
    number prefix such as ``01``)."""
    found = sorted(TUTORIALS.glob("*.ipynb"))
    if not names:
        return found
    def named(p: Path, n: str) -> bool:
        return n in (p.name, p.stem) or p.stem.startswith(n + "_")

    chosen = [p for p in found if any(named(p, n) for n in names)]
    missing = [n for n in names if not any(named(p, n) for p in found)]
    if missing:
        raise SystemExit(f"no tutorial named {', '.join(sorted(missing))}")
    return chosen


def kernel_env() -> dict:
    """The environment the kernel inherits: this checkout's python/ first on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(REPO / "python")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                      if p and p != str(REPO / "python")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def execute(path: Path, workdir: Path | None = None):
    """Run the notebook at ``path`` in ``workdir`` (a new temporary directory when None);
    returns the executed nbformat notebook (errors are kept as outputs, not raised)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = kernel_env()["PYTHONPATH"]  # the kernel starts with os.environ
    try:
        with tempfile.TemporaryDirectory(prefix="zsq-nb-") as tmp:
            client = nbclient.NotebookClient(
                nb, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=True,
                resources={"metadata": {"path": str(workdir or tmp)}})
            client.execute()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return nb


def clean(nb):
    """Drop what changes on every run and carries nothing for the reader."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def _text_outputs(cell) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            out.append("\n".join(o.get("traceback", [])))
        for mime, data in (o.get("data") or {}).items():
            if mime.startswith("text/") or mime.endswith("json"):
                out.append(_DATA_URI.sub("data:", data if isinstance(data, str) else str(data)))
    return out


def problems(nb) -> list[str]:
    """What keeps a notebook from being committed: errors, long cells, machine paths."""
    found = []
    host = socket.gethostname()
    for i, cell in enumerate(nb.cells):
        n_lines = len(cell.source.splitlines())
        if n_lines > MAX_CELL_LINES:
            found.append(f"cell {i}: {n_lines} lines (> {MAX_CELL_LINES})")
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                found.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}")
        for text in _text_outputs(cell):
            m = _ABS_PATH.search(text)
            if m:
                found.append(f"cell {i}: absolute path in output: "
                             f"...{text[max(0, m.start() - 20):m.end() + 30]!r}")
            for name in {host, host.split(".")[0], str(REPO)} - {"", "localhost"}:
                if len(name) > 3 and name in text:
                    found.append(f"cell {i}: machine name or checkout path {name!r} in output")
    return found


def structure(nb) -> list[tuple]:
    """Per cell: its type and the kinds of output it shows (stream, or MIME types),
    without the values -- what a re-execution must reproduce."""
    out = []
    for cell in nb.cells:
        kinds = set()
        for o in cell.get("outputs", []):
            t = o.get("output_type")
            if t == "stream":
                kinds.add("stream")
            elif t == "error":
                kinds.add("error")
            else:
                kinds.update(o.get("data", {}).keys())
        out.append((cell.cell_type, tuple(sorted(kinds))))
    return out


def main(argv=None) -> int:
    import nbformat

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebooks to run (file name or stem)")
    args = ap.parse_args(argv)
    status = 0
    for path in notebooks(args.names):
        t0 = time.perf_counter()
        nb = clean(execute(path))
        bad = problems(nb)
        took = time.perf_counter() - t0
        if bad:
            status = 1
            print(f"{path.name}: NOT saved ({took:.0f} s):\n  " + "\n  ".join(bad))
            continue
        nbformat.write(nb, path)
        print(f"{path.name}: executed and saved in {took:.0f} s "
              f"({path.stat().st_size / 1024:.0f} KiB)")
    return status


if __name__ == "__main__":
    sys.exit(main())
