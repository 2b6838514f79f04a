"""The tutorial notebooks: committed with their outputs, and re-executed here.

Every notebook in tutorials/ runs top to bottom with nbclient as
``scripts/run_tutorials.py`` runs it (a kernel from this interpreter with this checkout's
python/ on PYTHONPATH, a temporary working directory). The run must raise no error and
reproduce the committed notebook's *structure* -- the same cells, each showing the same
kinds of output (text, PNG plot, HTML) -- not its numbers, which include timings.

The committed notebooks themselves are what a learner reads on GitHub without running
anything: every code cell executed, in order, with its output; no cell longer than
``MAX_CELL_LINES``; no absolute path or machine name in an output; small in total; and
the README links each one.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_tutorials", REPO / "scripts" / "run_tutorials.py")
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)

NOTEBOOKS = rt.notebooks()
IDS = [p.stem for p in NOTEBOOKS]
EXPECTED = ["01_squeezenet_on_zybo", "02_does_it_fit", "03_tuning", "04_to_the_board",
            "05_your_own_model"]
MAX_TOTAL_BYTES = 2 * 1024 * 1024
# tools a notebook runs beyond Python (the README's install line and .ci/run provide them)
TOOLS = {"02_does_it_fit": ("g++", "make"),
         "04_to_the_board": ("arm-linux-gnueabihf-g++", "qemu-arm-static", "cmake", "g++")}


def test_the_tutorials_are_all_there():
    assert IDS == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_with_outputs_and_readable(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs for c in code), "every code cell shows its result"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        "executed top to bottom in one run (scripts/run_tutorials.py)"
    assert rt.problems(nb) == []
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_committed_notebooks_stay_small():
    total = sum(p.stat().st_size for p in NOTEBOOKS)
    assert total < MAX_TOTAL_BYTES, f"{total:,} bytes of notebooks"


def test_readme_links_every_tutorial():
    readme = (REPO / "README.md").read_text()
    for p in NOTEBOOKS:
        assert f"(tutorials/{p.name})" in readme, p.name


def test_problems_finds_errors_long_cells_and_machine_paths():
    """The checks the committed notebooks pass can fail."""
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_code_cell("x = 1\n" * (rt.MAX_CELL_LINES + 1)),
        v4.new_code_cell("print(p)", outputs=[v4.new_output("stream", name="stdout",
                                                             text="wrote /tmp/zsq-nb-1/out\n")]),
        v4.new_code_cell("1/0", outputs=[v4.new_output("error", ename="ZeroDivisionError",
                                                       evalue="division by zero", traceback=[])]),
        v4.new_code_cell("plot()", outputs=[v4.new_output(
            "display_data", data={"text/html": '<img src="data:image/png;base64,AA/tmp/BB">',
                                  "image/png": "AA/home/BB"})]),
    ])
    found = rt.problems(nb)
    assert len(found) == 3, found
    assert "cell 0" in found[0] and "cell 1: absolute path" in found[1] and \
        "ZeroDivisionError" in found[2]
    assert rt.structure(nb)[1:] == [("code", ("stream",)), ("code", ("error",)),
                                    ("code", ("image/png", "text/html"))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reexecutes_with_the_committed_structure(path):
    missing = [t for t in TOOLS.get(path.stem, ()) if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    committed = nbformat.read(path, as_version=4)
    fresh = rt.execute(path)
    assert rt.problems(fresh) == []
    assert rt.structure(fresh) == rt.structure(committed)
