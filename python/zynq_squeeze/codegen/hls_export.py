"""Write a compile directory's Vitis HLS project (``DIR/hls/``) for the built model.

The testbench runs the first offloaded function's whole program (instruction stream,
weights, arena) through the top function ``zsq_dae`` with a deterministic input (numpy
seed 0, N(0, 1), quantized at the function's input scale; written as patches when the
first layer runs in first-layer mode) and compares the output with the numpy golden
model bit for bit, and in C simulation the cycles with the cycle model's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..schedule.timing import simulate
from . import first_layer, golden
from .hls_project import write_hls_project


def testbench_input(lf, prog) -> np.ndarray:
    """The int8 input the testbench feeds ``prog`` (the program of function ``lf``)."""
    tid = lf.inputs[0]
    info = lf.tensors[tid]
    rng = np.random.default_rng(0)
    x = golden.quantize_input(rng.standard_normal(info.float_shape).astype(np.float32), info)
    if prog.tensors[tid].c != info.shape[0]:
        # first-layer mode: the glue writes the first conv's patches
        orig = next(layer for layer, src, _ in lf.layers if src == tid)
        x = first_layer.patches(orig, x)
    return x


def export_hls_project(res, out_dir: Path) -> Path:
    """``out_dir/hls/`` for the first offloaded function of build result ``res``; its
    testbench checks the cycles against the cycle model's (timing does not depend on the
    data, and the model equals the C simulation's executed timing)."""
    cg = res.codegen[0]
    lf, prog = cg.functions[0], cg.programs[0]
    return write_hls_project(Path(out_dir), program=prog, board=cg.board,
                             model_name=res.options.model_name, input=testbench_input(lf, prog),
                             expected_cycles=simulate(cg.engine, prog.words, cg.beat_x100).cycles,
                             beat_x100=cg.beat_x100)
