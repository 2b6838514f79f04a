"""SqueezeNet 1.1 as a deployment bundle: build time, sizes and run times of zsq_infer.

Builds the host variant (csim) and, when the ARM cross compiler and qemu are installed,
the ARM variant with the csim backend (the engine simulation runs on the emulated
Cortex-A9, so ARM times are qemu's, not the board's) and the board variant (zynq
backend: sizes only). Checks host == VM and ARM == host bit for bit. One JSON line.

    python benchmarks/deploy_bundle.py
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

QEMU = ["qemu-arm-static", "-cpu", "cortex-a9", "-L", "/usr/arm-linux-gnueabihf"]


def _run(cmd, x_path, y_path, repeats):
    r = subprocess.run(cmd + ["-i", str(x_path), "-o", str(y_path), "-n", str(repeats)],
                       capture_output=True, text=True, check=True)
    best = min(float(ln.split("total ")[1].split(" ms")[0])
               for ln in r.stdout.splitlines() if ln.startswith("run "))
    return np.load(y_path), best


def main() -> None:
    import tvm
    from tvm import relax

    import zynq_squeeze  # noqa: F401
    from zynq_squeeze.deployment.bundle import build_executables
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.frontend.models import squeezenet
    from zynq_squeeze.quantize.calibrate import calibrate

    rng = np.random.default_rng(0)
    mod = calibrate(from_onnx(squeezenet("1.1", seed=0)),
                    [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)])
    arm = all(shutil.which(t) for t in ("arm-linux-gnueabihf-g++", "qemu-arm-static"))
    out = {"benchmark": "deploy_bundle", "model": "squeezenet1.1"}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter()
        b = build_executables(mod, out_dir=d / "csim", arm=arm, host=True, backend="csim")
        out["build_s"] = round(time.perf_counter() - t0, 1)
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        np.save(d / "x.npy", x)
        ref = relax.VirtualMachine(tvm.compile(mod, target="zynq-squeeze"), tvm.cpu())[
            "main"](tvm.runtime.tensor(x)).numpy()
        h = b["host"]
        y, out["host_ms"] = _run([str(h.infer), str(h.model_file)], d / "x.npy", d / "yh.npy", 5)
        out["host_bit_exact_vs_vm"] = bool(np.array_equal(y, ref))
        out["host_sizes"] = h.sizes()
        out["arena_bytes"], out["workspace_bytes"] = h.plan.arena_bytes, h.workspace_bytes
        out["steps"] = len(h.plan.steps)
        if arm:
            a = b["arm"]
            ya, out["qemu_csim_ms"] = _run(QEMU + [str(a.infer), str(a.model_file)],
                                           d / "x.npy", d / "ya.npy", 1)
            out["arm_bit_exact_vs_host"] = bool(np.array_equal(ya, y))
            out["arm_csim_sizes"] = a.sizes()
            z = build_executables(mod, out_dir=d / "board", arm=True, host=False)["arm"]
            out["arm_zynq_sizes"] = z.sizes()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
