"""Write a compile directory's Vitis HLS project (``DIR/hls/``) for the built model.

The testbench replays one layer of the model with its own data: the first fire module
(the engine's richest layer) or else the first layer, fed by a deterministic input
(numpy seed 0, N(0,1)) pushed through the golden model up to that layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..quantize.reference import run_layer
from . import golden
from .hls_project import write_hls_project


def testbench_layer(lf) -> int:
    """Index of the layer the testbench replays."""
    kinds = [layer.kind for layer, _, _ in lf.layers]
    return kinds.index("fire") if "fire" in kinds else 0


def export_hls_project(res, out_dir: Path) -> Path:
    """``out_dir/hls/`` for the first offloaded function of build result ``res``."""
    cg = res.codegen[0]
    lf, prog = cg.functions[0], cg.programs[0]
    k = testbench_layer(lf)
    rng = np.random.default_rng(0)
    vals = {}
    for tid in lf.inputs:
        info = lf.tensors[tid]
        vals[tid] = golden.quantize(rng.standard_normal(info.shape).astype(np.float32),
                                    info.scale)
    for layer, src, dst in lf.layers[:k]:
        vals[dst] = run_layer(layer, vals[src])
    layer, src, _ = lf.layers[k]
    x = vals[src]
    return write_hls_project(Path(out_dir), engine_cfg=cg.engine, board=cg.board,
                             model_name=res.options.model_name, program=prog, layer_index=k,
                             layer_input=x, expected_output=run_layer(layer, x))
