"""Seconds from an ONNX file to an exported host library for SqueezeNet 1.1, and the
compile of one large fully connected layer.

Runs the CLI's compile path (import, calibration on 4 inputs, partition, codegen,
native build, export, report) twice: once cold (empty engine-object cache) and once warm.
Then ``fc6_s``: ``zynq_squeeze.build`` of VGG's fc6 (Flatten + Gemm 25088 -> 4096 +
ReLU, calibration on 2 inputs; the tile search's worst case: 62 candidate tiles, the
smallest 536k weight blocks; before the tile search's bound it ran for over 11 minutes).
Then ``fast_model_s``: the fast Python cycle model (``schedule.timing.simulate``) over
SqueezeNet 1.1's whole program (best of 3; the tile search calls it per candidate, goal
0.05 s). Prints one JSON line. ``--skip-fc6`` leaves it out (it needs ~1.5 GB of memory).

    python benchmarks/compile_time.py [--skip-fc6]
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx


def fc6_model() -> onnx.ModelProto:
    """Flatten + Gemm 25088 -> 4096 + ReLU on a (1, 512, 7, 7) input (random weights)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4096, 25088), dtype=np.float32) * 0.01).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]),
         helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
         helper.make_node("Relu", ["g"], ["y"])], "fc6",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(4096, np.float32),
                                                                  "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def fc6_seconds() -> float:
    import zynq_squeeze
    from zynq_squeeze.frontend import from_onnx

    rng = np.random.default_rng(0)
    mod = from_onnx(fc6_model())
    calib = [rng.standard_normal((1, 512, 7, 7)).astype(np.float32) for _ in range(2)]
    t0 = time.perf_counter()
    zynq_squeeze.build(mod, calibration=calib)
    return round(time.perf_counter() - t0, 3)


def fast_model_seconds() -> float:
    """Best of 3 runs of the fast cycle model over SqueezeNet 1.1's program (k=3 engine)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers import squeezenet11  # the layer chain the timing tests use
    from zynq_squeeze.codegen.dae_program import build_dae_program
    from zynq_squeeze.engine.dae_config import DaeConfig
    from zynq_squeeze.schedule.dae_tiling import largest_tile
    from zynq_squeeze.schedule.timing import simulate

    cfg = DaeConfig()
    layers = squeezenet11(np.random.default_rng(0))
    words = build_dae_program(cfg, layers, [largest_tile(cfg, x) for x in layers]).words
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        simulate(cfg, words)
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ["ZSQ_CACHE_DIR"] = str(d / "cache")  # cold: nothing cached
        from zynq_squeeze.cli import compile_model
        from zynq_squeeze.frontend.models import squeezenet

        onnx.save(squeezenet("1.1", seed=0), str(d / "squeezenet.onnx"))
        rng = np.random.default_rng(0)
        calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
        times = {}
        for run in ("cold_s", "warm_s"):
            t0 = time.perf_counter()
            compile_model(d / "squeezenet.onnx", d / run, calibration=calib, progress=False,
                          log=lambda *a: None)
            times[run] = round(time.perf_counter() - t0, 3)
        times["fast_model_s"] = fast_model_seconds()
        if "--skip-fc6" not in sys.argv[1:]:
            times["fc6_s"] = fc6_seconds()
    print(json.dumps({"benchmark": "compile_time", "model": "squeezenet1.1", **times,
                      "goal_s": 20.0, "fc6_goal_s": 30.0, "fast_model_goal_s": 0.05}))


if __name__ == "__main__":
    main()
