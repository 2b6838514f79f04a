"""Modeled ARM time per part of an inference, with a host-measured sanity anchor.

For the digits model, the SqueezeNet 1.1 demo model and AlexNet's convolutional part
(seeded weights, zybo-z7-20; AlexNet with --models alexnet-features):
compile (host build), and from report.json the modeled milliseconds of the accelerator,
the CPU operators on one Cortex-A9 core, the offloaded calls' copies, and the end-to-end
latency (schedule/arm_model.py, docs/ARM_MODEL.md).

Anchor (stated, not asserted): the same CPU operators, each isolated in its own Relax
function with the same shapes and attributes, compiled by TVM for this x86 host (target
llvm, one thread, TVM's default CPU schedules: untuned) and timed with time_evaluator;
and the whole float model on the CPU, modeled on the A9 (every operator through the same
formula) vs measured here, next to TVM's published PYNQ figure (2 x Cortex-A9 at 650 MHz,
auto-tuned: SqueezeNet 1.1 478.3 ms). One JSON line per model.

    python benchmarks/arm_model.py [--models digits,squeezenet1.1,alexnet-features] [--repeat 5]
"""
from __future__ import annotations

import os

os.environ.setdefault("TVM_NUM_THREADS", "1")  # one core, as the bundle's executor

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tvm  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from tvm import relax  # noqa: E402

import zynq_squeeze  # noqa: E402
from zynq_squeeze.boards import get_board  # noqa: E402
from zynq_squeeze.frontend import from_onnx  # noqa: E402
from zynq_squeeze.frontend.models import squeezenet  # noqa: E402
from zynq_squeeze.frontend.models.digits import digits_model  # noqa: E402
from zynq_squeeze.partitioning import partitioner  # noqa: E402
from zynq_squeeze.partitioning.op_cost import op_work  # noqa: E402
from zynq_squeeze.report.summary import make_report  # noqa: E402
from zynq_squeeze.schedule import arm_model  # noqa: E402

TVM_PYNQ_MS = {"squeezenet1.1": 478.3}  # github.com/apache/tvm wiki "Benchmark", 2 cores
HOST = tvm.target.Target({"kind": "llvm"})


def alexnet_features(seed: int = 0) -> onnx.ModelProto:
    """AlexNet's convolutional part (torchvision's: no LRN), seeded He-scaled weights:
    conv 11x11/4 64, pool, conv 5x5 192, pool, conv 3x3 384, 256, 256, pool (each conv
    with bias and ReLU, pools 3x3/2)."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur, c = [], [], "data", 3
    for i, (oc, k, s, p, pool) in enumerate([(64, 11, 4, 2, True), (192, 5, 1, 2, True),
                                             (384, 3, 1, 1, False), (256, 3, 1, 1, False),
                                             (256, 3, 1, 1, True)]):
        w = (rng.standard_normal((oc, c, k, k)) * np.sqrt(2 / (c * k * k))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(np.full(oc, 0.01, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"c{i}"],
                                   kernel_shape=[k, k], strides=[s, s], pads=[p] * 4),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        cur, c = f"r{i}", oc
        if pool:
            nodes.append(helper.make_node("MaxPool", [cur], [f"p{i}"], kernel_shape=[3, 3],
                                          strides=[2, 2]))
            cur = f"p{i}"
    graph = helper.make_graph(
        nodes, "alexnet_features",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, 256, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _models():
    return {"digits": (digits_model(), (1, 1, 8, 8)),
            "squeezenet1.1": (squeezenet("1.1", seed=0), (1, 3, 224, 224)),
            "alexnet-features": (alexnet_features(), (1, 3, 224, 224))}


def _cpu_calls(main: relax.Function):
    """(op name, call) of every operator call in ``main`` that is not an offloaded
    function (the partitioner's own view: ``_cpu_op_name``)."""
    out = []
    for _, value in partitioner._calls_in(main):
        if not isinstance(value, relax.Call) or isinstance(value.op, tvm.ir.GlobalVar):
            continue
        op = partitioner._cpu_op_name(value)
        if op is not None:
            out.append((op, value))
    return out


def _isolate(call: relax.Call, mod: tvm.IRModule) -> tuple[tvm.IRModule, list]:
    """One operator call as the module's main: its variable operands become parameters
    (random float inputs), constants and PrimFuncs stay."""
    params, inputs, prims = [], [], {}
    rng = np.random.default_rng(0)

    def arg(a):
        if isinstance(a, relax.Tuple):
            return relax.Tuple([arg(f) for f in a.fields])
        if isinstance(a, relax.Var):
            p = relax.Var(f"p{len(params)}", a.ty)
            params.append(p)
            shp = [int(s) for s in a.ty.shape]
            inputs.append(tvm.runtime.tensor(rng.standard_normal(shp).astype(str(a.ty.dtype))))
            return p
        if isinstance(a, tvm.ir.GlobalVar):
            prims[a] = mod[a]
        return a

    args = [arg(a) for a in call.args]
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit_output(relax.Call(call.op, args, call.attrs, call.ty_args))
        bb.emit_func_output(y)
    new = bb.get()
    for gv, f in prims.items():
        new[gv] = f
    return new, inputs


def _time_ms(mod: tvm.IRModule, inputs, repeat: int) -> float:
    ex = tvm.compile(mod, target=HOST)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    f = vm.time_evaluator("main", tvm.cpu(), number=3, repeat=repeat, min_repeat_ms=50)
    return float(np.median(f(*inputs).results)) * 1e3


def _modeled_ms(cpu, calls) -> float:
    total = 0.0
    for op, call in calls:
        w = op_work(call, op)
        if w is not None and op not in partitioner._SILENT_OPS:
            total += arm_model.op_time(cpu, w.op_class, w.flops, w.bytes).ms
    return total


def measure(name: str, model, shape, repeat: int) -> dict:
    board = get_board("zybo-z7-20")
    mod = from_onnx(model)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tempfile.mkdtemp())
    rep = make_report(res, name)
    perf, cpu = rep["performance"], rep["cpu"]
    out = {"model": name, "board": board.name, "cpu": cpu["cpu"], "cpu_mhz": cpu["clock_mhz"],
           "modeled": True,
           "accelerator_ms": perf["latency_ms"], "arm_ops_ms": perf["arm_ms"],
           "copies_ms": perf["copies_ms"], "end_to_end_ms": perf["end_to_end_ms"],
           "end_to_end_fps": perf["end_to_end_fps"], "share": perf["share"],
           "copies": {k: round(sum(c[f"{k}_ms"] for c in cpu["calls"]), 4)
                      for k in ("quantize", "copy_in", "sync", "start_wait", "copy_out",
                                "dequantize")},
           "cpu_ops": [{"op": o["op"], "shape": o["shape"], "modeled_a9_ms": o["modeled_ms"]}
                       for o in cpu["ops"]]}
    # anchor 1: the CPU operators that stay, isolated, timed on this host
    part, _ = zynq_squeeze.partition(mod)
    for row, (op, call) in zip(out["cpu_ops"], [c for c in _cpu_calls(part["main"])
                                                if c[0] not in partitioner._SILENT_OPS]):
        m, inputs = _isolate(call, part)
        row["host_x86_ms"] = round(_time_ms(m, inputs, repeat), 4)
        row["a9_over_x86"] = round(row["modeled_a9_ms"] / row["host_x86_ms"], 1)
    # anchor 2: the whole float model on the CPU, modeled on the A9 vs measured here
    folded = partitioner.fold(mod)
    all_ms = _modeled_ms(board.cpu, _cpu_calls(folded["main"]))
    x = tvm.runtime.tensor(rng.standard_normal(shape).astype(np.float32))
    host_ms = _time_ms(folded, [x], repeat)
    out["all_on_cpu"] = {"modeled_a9_ms": round(all_ms, 3), "host_x86_ms": round(host_ms, 3),
                         "a9_over_x86": round(all_ms / host_ms, 1),
                         "tvm_published_pynq_2core_ms": TVM_PYNQ_MS.get(name)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits,squeezenet1.1")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    models = _models()
    for name in args.models.split(","):
        model, shape = models[name]
        print(json.dumps(measure(name, model, shape, args.repeat), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
