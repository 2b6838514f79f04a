"""Seconds from an ONNX file to an exported host library for SqueezeNet 1.1.

Runs the CLI's compile path (import, calibration on 4 inputs, partition, codegen,
native build, export, report) twice: once cold (empty engine-object cache) and once warm.
Prints one JSON line.

    python benchmarks/compile_time.py
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx


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
    print(json.dumps({"benchmark": "compile_time", "model": "squeezenet1.1", **times,
                      "goal_s": 20.0}))


if __name__ == "__main__":
    main()
