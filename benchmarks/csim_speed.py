"""Per-image time of SqueezeNet 1.1: C simulation vs TVM float llvm vs onnxruntime.

All three run in this one process, interleaved, on one thread each (these machines are
shared and noisy: the ratios are what to read). Prints one JSON line.

    python benchmarks/csim_speed.py [--repeat 10]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TVM_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import tvm  # noqa: E402
from tvm import relax  # noqa: E402

import zynq_squeeze  # noqa: E402
from zynq_squeeze.frontend import from_onnx  # noqa: E402
from zynq_squeeze.frontend.models import squeezenet  # noqa: E402


def best_ms(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    model = squeezenet("1.1", seed=0)
    mod = from_onnx(model)
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        sim = zynq_squeeze.build(mod, calibration=calib, out_dir=d).vm()
        fl = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})),
                                  tvm.cpu())
        xt = tvm.runtime.tensor(x)
        runs = {"csim_ms": lambda: sim["main"](xt), "tvm_llvm_ms": lambda: fl["main"](xt)}
        try:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(model.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            runs["onnxruntime_ms"] = lambda: sess.run(None, {"data": x})
        except ImportError:
            pass
        res = {k: round(best_ms(f, args.repeat), 3) for k, f in runs.items()}
    out = {"benchmark": "csim_speed", "model": "squeezenet1.1", "threads": 1, **res,
           "csim_vs_tvm_llvm": round(res["csim_ms"] / res["tvm_llvm_ms"], 3)}
    if "onnxruntime_ms" in res:
        out["csim_vs_onnxruntime"] = round(res["csim_ms"] / res["onnxruntime_ms"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
