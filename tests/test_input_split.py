"""The two-plane input (codegen/lower.py INPUT_SPLIT): the image a conv reads is written
as hi = rint(x / s) and its residual lo = rint((x / s - hi) * 16), lo an extra input
channel with weights rint(w / (s_w * 16)). Built through ``zynq_squeeze.build``: the
simulation equals the numpy golden model bit for bit (a plain 7x7 stride-2 conv and a
3x3 conv in first-layer patch mode), the error against the float model is smaller than
with one plane, and the option off builds the one-plane program."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.codegen.lower import INPUT_SPLIT
from zynq_squeeze.frontend import from_onnx

SHAPE = (1, 3, 32, 32)


def _model(k, stride, pad, seed):
    g = GraphBuilder(SHAPE, seed=seed)
    g.conv(16, k, stride=stride, pad=pad)
    g.conv(8, 1, relu=False)  # a linear output: the first layer's error passes through
    return g.model()


def _build(model, tmp_path, split):
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]
    calib[0][0, 0, 0, 0] = 12.0  # an outlier pixel sets a coarse input step (as in photos)
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path,
                             input_split=split)
    assert res.partition_report.offload_ratio == 1.0, res.partition_report
    return res


def _rel_err(y, ref):
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("k,stride,pad,patch_c", [(7, 2, 3, None), (3, 1, 1, 54)],
                         ids=["plain7x7s2", "patch3x3"])
def test_split_input_bit_exact_and_closer_to_float(tmp_path, k, stride, pad, patch_c):
    model = _model(k, stride, pad, seed=4)
    on = _build(model, tmp_path / "on", True)
    off = _build(model, tmp_path / "off", False)
    lf, prog = on.codegen[0].functions[0], on.codegen[0].programs[0]
    info = lf.tensors["in0"]
    assert info.split == INPUT_SPLIT and info.shape == (6, 32, 32)
    assert info.float_shape == (3, 32, 32)
    first = lf.layers[0][0]
    assert first.in_shape == (6, 32, 32) and first.conv.weight.shape[1] == 6
    assert np.abs(first.conv.weight[:, 3:]).max() <= 128 // INPUT_SPLIT + 1
    # the program's input: the two planes (plain) or their patches (first-layer mode)
    assert prog.tensors["in0"].c == (patch_c or 6)
    glue = (tmp_path / "on" / "src" / "zsq_glue.cc").read_text()
    assert ("zsq_quantize_patches_split(" if patch_c else "zsq_quantize_split(zsq_data") in glue
    ref_sess = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(7)
    errs = {True: [], False: []}
    for _ in range(3):  # held-out N(0, 1) images
        x = rng.standard_normal(SHAPE).astype(np.float32)
        ref = ref_sess.run(None, {"x": x})[0]
        for split, res in ((True, on), (False, off)):
            y = res.vm()["main"](x).numpy()
            np.testing.assert_array_equal(y, golden.run_function(res.codegen[0].functions[0],
                                                                 [x])[0])
            errs[split].append(_rel_err(y, ref))
    for idx in (5, 3 * 32 * 32 - 1):  # the split quantizers refuse NaN / Inf too
        y = x.copy()
        y.ravel()[idx] = np.nan if idx == 5 else -np.inf
        with pytest.raises(ValueError, match=rf"input 0 contains NaN or Inf at element {idx};"):
            on.vm()["main"](y)
    # the input's rounding error is most of the total with this coarse step: one plane
    # is worse (no split: the ratio is 1)
    assert np.mean(errs[True]) < 0.6 * np.mean(errs[False]), errs


def test_split_off_keeps_one_plane(tmp_path):
    model = _model(3, 1, 1, seed=5)
    res = _build(model, tmp_path, False)
    lf, prog = res.codegen[0].functions[0], res.codegen[0].programs[0]
    assert lf.tensors["in0"].split == 0 and lf.tensors["in0"].shape == (3, 32, 32)
    assert lf.layers[0][0].conv.weight.shape[1] == 3 and prog.tensors["in0"].c == 27
    glue = (tmp_path / "src" / "zsq_glue.cc").read_text()
    assert "split" not in glue
    assert res.input_split == {"enabled": False, "factor": INPUT_SPLIT, "inputs": []}


def test_split_only_for_an_image_a_conv_reads(tmp_path):
    """An input that a pool reads first keeps one plane (the pool's output is no image
    of the host's); a 16-channel input too (2C would not fit one word)."""
    g = GraphBuilder(SHAPE, seed=6)
    g.maxpool(3, 2, ceil=1)
    g.conv(16, 3, pad=1)
    res = _build(g.model(), tmp_path / "pool", True)
    for lf in res.codegen[0].functions:
        assert not any(info.split for info in lf.tensors.values())
    assert res.input_split["inputs"] == []


@pytest.mark.parametrize("flag", ["on", "off"])
def test_cli_input_split_flag_in_report(tmp_path, flag):
    import json

    import onnx

    from zynq_squeeze.cli import main

    onnx.save(_model(3, 1, 1, seed=8), str(tmp_path / "net.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal(
        (2, *SHAPE)).astype(np.float32))
    rc = main(["compile", str(tmp_path / "net.onnx"), "--out", str(tmp_path / "out"),
               "--calib", str(tmp_path / "calib.npy"), "--input-split", flag, "--quiet"])
    assert rc == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())["input_split"]
    assert rep["enabled"] == (flag == "on") and rep["factor"] == INPUT_SPLIT
    assert len(rep["inputs"]) == (flag == "on")
    # the HLS project's testbench input is the split image's patches (54 channels)
    assert (tmp_path / "out" / "hls").is_dir()
