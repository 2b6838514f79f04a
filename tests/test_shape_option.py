"""``--shape NAME=D0,D1,...`` (issue 11, item 7): exports with a dynamic batch compile once
the batch is given; bad values are one-line errors that write nothing."""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
from onnx_graphs import GraphBuilder

from zynq_squeeze import cli


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory):
    g = GraphBuilder(("N", 3, 12, 12), seed=3)
    g.conv(8, 3, pad=1)
    g.maxpool(2, 2, ceil=0)
    path = tmp_path_factory.mktemp("dyn") / "dyn.onnx"
    onnx.save(g.model(), str(path))
    return path


def _main(argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cli.main(argv)


def test_dynamic_batch_needs_a_shape_and_compiles_with_one(dynamic, tmp_path, capsys):
    assert _main(["compile", str(dynamic), "--out", str(tmp_path / "a"), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("zynq-squeeze: error: input 'x' has a dynamic shape") and "--shape" in err
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    assert _main(["compile", str(dynamic), "--out", str(out), "--shape", "x=1,3,12,12",
                  "--quiet"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"][0]["shape"] == [1, 3, 12, 12] and man["shapes"] == {"x": [1, 3, 12, 12]}
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert _main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--output",
                  str(tmp_path / "y.npy"), "--reference"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 8, 6, 6)


@pytest.mark.parametrize("item, message", [
    ("x", "--shape 'x': expected NAME=D0,D1,... (e.g. x=1,3,224,224)"),
    ("y=1,3,12,12", "--shape 'y=1,3,12,12': the model has no input 'y' (inputs: x)"),
    ("x=1,3,12", "--shape 'x=1,3,12': input 'x' has rank 4, got 3 dims"),
    ("x=1,0,12,12", "--shape 'x=1,0,12,12': dims must be positive integers"),
    ("x=1,a,12,12", "--shape 'x=1,a,12,12': dims must be positive integers"),
    ("x=1,4,12,12", "--shape 'x=1,4,12,12': dim 1 of 'x' is fixed at 3 by the model"),
])
def test_bad_shapes_are_one_line_and_write_nothing(dynamic, tmp_path, capsys, item, message):
    out = tmp_path / "c"
    assert _main(["compile", str(dynamic), "--out", str(out), "--shape", item, "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"zynq-squeeze: error: {message}"
    assert not out.exists()
