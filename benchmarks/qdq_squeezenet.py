"""SqueezeNet 1.1 as onnxruntime's QDQ model, compiled with the model's own scales.

The built-in SqueezeNet 1.1 (random weights, seed 0) is quantized by onnxruntime's
``quantize_static`` (QDQ, int8 symmetric activations, per-channel int8 weights, 4 inputs of
N(0, 1)); the CLI's compile path builds it with no calibration data. Prints one JSON line:
offloaded functions, the cosine of the outputs with onnxruntime running the QDQ model (over
3 inputs, the lowest), whether the engine's scales are the model's, int8 weights used as-is,
and compile seconds.

    python benchmarks/qdq_squeezenet.py [--asymmetric]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO / "tests"))
    import onnxruntime as ort
    import tvm
    from onnx_graphs import ort_qdq

    from zynq_squeeze.cli import compile_model
    from zynq_squeeze.frontend.models import squeezenet

    symmetric = "--asymmetric" not in sys.argv
    t0 = time.perf_counter()
    qdq = ort_qdq(squeezenet("1.1", seed=0), symmetric=symmetric, per_channel=True)
    quantize_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        onnx.save(qdq, str(d / "sq_qdq.onnx"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            report = compile_model(d / "sq_qdq.onnx", d / "out", progress=False,
                                   log=lambda *a: None)
            compile_s = time.perf_counter() - t0
        lib = tvm.runtime.load_module(str(d / "out" / "model.so"))
        vm = tvm.relax.VirtualMachine(lib, tvm.cpu())
        sess = ort.InferenceSession(str(d / "sq_qdq.onnx"))
        rng = np.random.default_rng(7)
        cos = []
        for _ in range(3):
            x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
            y = vm["main"](tvm.runtime.tensor(x)).numpy().ravel().astype(np.float64)
            r = sess.run(None, {sess.get_inputs()[0].name: x})[0].ravel().astype(np.float64)
            cos.append(float(y @ r / (np.linalg.norm(y) * np.linalg.norm(r))))
    q = report["qdq"]
    print(json.dumps({
        "benchmark": "qdq_squeezenet", "model": "squeezenet1.1",
        "activations": "symmetric" if symmetric else "asymmetric",
        "functions": len(report["offload"]["functions"]),
        "offload_ratio": round(report["offload"]["offload_ratio"], 4),
        "calibration": report["calibration"],
        "cos_vs_ort_qdq_min": round(min(cos), 6),
        "weights_as_is": q["weights_as_is"], "weights_requantized": q["weights_requantized"],
        "asymmetric_convs": len(q["asymmetric"]),
        "warnings": len([w for w in caught if "zynq_squeeze" in str(w.message)]),
        "ort_quantize_s": round(quantize_s, 3), "compile_s": round(compile_s, 3),
        "goal": "functions == 1 and cos >= 0.999"}))


if __name__ == "__main__":
    main()
