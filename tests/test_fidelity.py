"""SqueezeNet end to end (bit-exact, fidelity) and the trained digits network's accuracy."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from tvm import relax

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import digits_data, digits_model, squeezenet

LLVM = tvm.target.Target({"kind": "llvm"})


def without_softmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network ending at its logits (the Softmax node removed)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    last = m.graph.node[-1]
    assert last.op_type == "Softmax"
    logits = last.input[0]
    del m.graph.node[-1]
    out = m.graph.output[0]
    out.name = logits
    return m


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_squeezenet_bit_exact_and_fidelity(version, tmp_path):
    mod = from_onnx(without_softmax(squeezenet(version, seed=0)))
    rng = np.random.default_rng(10)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.macs_offloaded / rep.macs_total >= 0.999
    assert len(res.codegen[0].functions) == 1
    lf = res.codegen[0].functions[0]
    assert [layer.kind for layer, _, _ in lf.layers].count("fire") == 8
    vm = res.vm()
    fvm = relax.VirtualMachine(tvm.compile(mod, target=LLVM), tvm.cpu())
    n = 8 if version == "1.1" else 3
    cos = []
    for _ in range(n):
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        # the offloaded function ends at the global average pool: its output is the logits
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        cos.append(cosine(y, fvm["main"](tvm.runtime.tensor(x)).numpy()))
    print(f"SqueezeNet {version}: cosine(int8, float) over {n} inputs: "
          f"min {min(cos):.5f} mean {np.mean(cos):.5f}")
    assert min(cos) >= 0.99


def test_digits_int8_accuracy_within_one_point(tmp_path):
    model = digits_model()
    mod = from_onnx(model)
    xtr, _ = digits_data("train")
    xte, yte = digits_data("test")
    calib = [xtr[i:i + 1] for i in range(0, 256, 4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path)
    assert res.partition_report.offload_ratio >= 0.99
    vm = res.vm()
    fvm = relax.VirtualMachine(tvm.compile(mod, target=LLVM), tvm.cpu())
    q = np.array([vm["main"](tvm.runtime.tensor(xte[i:i + 1])).numpy().argmax() for i in range(len(xte))])
    f = np.array([fvm["main"](tvm.runtime.tensor(xte[i:i + 1])).numpy().argmax() for i in range(len(xte))])
    acc_q, acc_f = float((q == yte).mean()), float((f == yte).mean())
    print(f"digits: float top-1 {acc_f:.4f}, int8 top-1 {acc_q:.4f} on {len(yte)} held-out images")
    assert acc_f >= 0.95
    assert acc_q >= acc_f - 0.01
