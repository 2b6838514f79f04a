"""The package follows the flow: one subpackage per stage, imports only downward.

Every import inside ``python/zynq_squeeze`` (module level or inside a function) is
resolved to the module it names; a subpackage may import itself, the stages before it in
``FLOW`` and the top-level ``BASE`` modules, never a later stage and never ``cli``.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import zynq_squeeze

PKG = Path(zynq_squeeze.__file__).resolve().parent
NAME = "zynq_squeeze"

# The allowed order, written once: each entry may import only the entries before it.
FLOW = ("frontend", "partitioning", "quantize", "engine", "hls", "schedule", "codegen",
        "toolchain", "tuning", "report", "deployment")
# Top-level modules every stage may use; they import only each other.
BASE = ("errors", "boards", "cache", "progress", "native", "target")
# The roots that may import anything (and that nothing inside the package imports).
TOP = ("__init__", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([NAME, *parts])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for each import in ``path``; ``from X import y`` counts as
    ``X.y`` so that ``from .. import cli`` is seen as an import of ``cli``."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return [(ln, t) for ln, t in out if t == NAME or t.startswith(NAME + ".")]


def _room(module: str) -> str:
    """The first component below the package root: a stage, a base module or a root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rank(room: str) -> int:
    if room in BASE:
        return -1
    return FLOW.index(room)


def _violation(src_room: str, dst_room: str) -> str | None:
    if dst_room == "cli" or (dst_room == "__init__" and src_room != "__init__"):
        return "nothing inside the package imports the CLI or the package root"
    if src_room in TOP:
        return None
    if dst_room not in FLOW and dst_room not in BASE:
        return f"{dst_room!r} is neither a stage ({', '.join(FLOW)}) nor a base module"
    if src_room in BASE:
        return None if dst_room in BASE else "base modules import only base modules"
    if _rank(dst_room) > _rank(src_room):
        return f"{src_room} comes before {dst_room} in the flow"
    return None


def _room_of_file(path: Path) -> str:
    return _room(_module_name(path))


def _all_violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        src = _room_of_file(path)
        for line, target in _imports(path):
            # "from .X import name": name may be a function, not a module; the room is X's.
            dst = _room(target)
            why = _violation(src, dst)
            if why:
                bad.append(f"{path.relative_to(PKG)}:{line} imports {target}: {why}")
    return bad


def test_every_file_is_in_a_known_room():
    rooms = {_room_of_file(p) for p in PKG.rglob("*.py")}
    unknown = rooms - set(FLOW) - set(BASE) - set(TOP)
    assert not unknown, f"modules outside the layout: {sorted(unknown)}"
    assert set(FLOW) <= rooms


def test_each_stage_documents_what_it_owns_and_may_import():
    for room in FLOW:
        doc = ast.get_docstring(ast.parse((PKG / room / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"{room}/__init__.py needs a docstring with 'May import'"


def test_imports_only_run_down_the_flow():
    assert _all_violations() == []


@pytest.mark.parametrize("src,dst,ok", [
    ("schedule", "codegen", False), ("quantize", "codegen", False), ("codegen", "toolchain", False),
    ("report", "cli", False), ("errors", "frontend", False), ("codegen", "schedule", True),
    ("quantize", "partitioning", True), ("toolchain", "boards", True), ("cli", "report", True),
])
def test_the_checker_itself(src, dst, ok):
    # The rule the walk applies, on the pairs the layout forbids and allows by name.
    assert (_violation(src, dst) is None) is ok


def test_checker_sees_a_function_level_upward_import(tmp_path, monkeypatch):
    # An import hidden inside a function counts as much as one at the top.
    fake = tmp_path / NAME
    (fake / "schedule").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "schedule" / "__init__.py").write_text('"""May import: nothing."""\n')
    (fake / "schedule" / "tiling.py").write_text("def f():\n    from ..codegen import program\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    assert any("schedule comes before codegen" in v for v in _all_violations())


def test_public_api_and_old_paths():
    import zynq_squeeze.hls_report
    import zynq_squeeze.models
    from zynq_squeeze.frontend import from_onnx  # noqa: F401
    from zynq_squeeze.models import squeezenet

    assert callable(zynq_squeeze.build) and callable(zynq_squeeze.partition)
    assert callable(zynq_squeeze.calibrate) and callable(squeezenet)
    assert zynq_squeeze.hls_report.read is zynq_squeeze.hls.csynth_report.read
    assert zynq_squeeze.models.squeezenet is squeezenet


def _tracked_text_files() -> list[Path]:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (an sdist): nothing to check
        pytest.skip("not a git checkout")
    exts = {".py", ".md", ".h", ".c", ".cc", ".cpp", ".txt", ".toml", ".tcl", ".sh",
            ".ipynb", ".json", ".cmake", ".in"}
    return [root / p for p in out.stdout.split() if Path(p).suffix in exts]


def test_no_merge_conflict_markers():
    # A merge once landed README/ENGINE.md with its <<<<<<< blocks committed.
    bad = []
    for p in _tracked_text_files():
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
                bad.append(f"{p.name}:{n}")
    assert not bad, bad
