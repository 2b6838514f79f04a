"""The bundle, built with the ``csim`` backend (the engine's C simulation compiled for the
ARM in place of the hardware), runs under ``qemu-arm-static -cpu cortex-a9`` and reproduces
the host simulation: the digits network on 100 held-out digits (top-1 equal, outputs within
1e-5 relative), a graph with a CPU operator (LRN) between two offloaded functions, and
SqueezeNet 1.1."""
from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import digits_data, digits_model, squeezenet

QEMU = ["qemu-arm-static", "-cpu", "cortex-a9", "-L", "/usr/arm-linux-gnueabihf"]

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-linux-gnueabihf-g++", "qemu-arm-static")),
    reason="needs g++-arm-linux-gnueabihf and qemu-user-static")


def _deploy(model, out, calib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zynq_squeeze.deploy(from_onnx(model), "zybo-z7-20", out, calibration=calib,
                                   backend="csim", host=True,
                                   output_names=[o.name for o in model.graph.output])


def _run(bundle, xs: list[np.ndarray], tmp) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of the bundle's ARM executable (qemu) and of its host build, per input."""
    arm, host = [], []
    hdir = bundle.out_dir / "build" / "host"
    for k, x in enumerate(xs):
        xin = tmp / f"x{k}.npy"
        np.save(xin, x)
        for cmd, model, dst in ((QEMU + [str(bundle.out_dir / "zsq_infer")],
                                 bundle.out_dir / "model.zsqm", arm),
                                ([str(hdir / "zsq_infer")], hdir / "model.zsqm", host)):
            r = subprocess.run([*cmd, str(model), "-i", str(xin), "-o", str(tmp / "y.npy"), "-q"],
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
            dst.append(np.load(tmp / "y.npy"))
    return np.stack(arm), np.stack(host)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(b).max()))


def test_digits_on_100_held_out_digits(tmp_path):
    X, _ = digits_data("test")
    Xtr, _ = digits_data("train")
    bundle = _deploy(digits_model(), tmp_path / "bundle",
                     [Xtr[i].reshape(1, 1, 8, 8) for i in range(32)])
    assert bundle.arm.backend == "csim"
    arm, host = _run(bundle, [X[i].reshape(1, 1, 8, 8) for i in range(100)], tmp_path)
    _close(arm, host)
    assert np.array_equal(arm.argmax(-1), host.argmax(-1))


def test_cpu_operator_between_offloaded_functions(tmp_path):
    g = GraphBuilder((1, 3, 16, 16), seed=7)
    g.conv(16, 3, pad=1)
    g.op("LRN", size=5)  # on the ARM, between two offloaded functions
    g.conv(16, 3, pad=1, stride=2)
    g.maxpool(3, 2)
    model = g.model()
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
    bundle = _deploy(model, tmp_path / "bundle", calib)
    assert len(bundle.arm.partition_report.functions) == 2
    # the importer spells LRN as power, avg_pool3d, multiply, add, divide: all on the ARM
    assert "relax.nn.avg_pool3d" in [op.op for op in bundle.arm.partition_report.cpu_ops]
    arm, host = _run(bundle, [rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
                              for _ in range(3)], tmp_path)
    _close(arm, host)


def test_squeezenet_1_1(tmp_path):
    model = squeezenet("1.1")
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)]
    bundle = _deploy(model, tmp_path / "bundle", calib)
    assert not bundle.arm.partition_report.cpu_ops or all(
        "softmax" in op.op for op in bundle.arm.partition_report.cpu_ops)
    arm, host = _run(bundle, [rng.standard_normal((1, 3, 224, 224)).astype(np.float32)],
                     tmp_path)
    _close(arm, host)
    assert arm[0].argmax() == host[0].argmax()
