"""The ARM side of report.json: modeled time of every CPU operator and of every offloaded
call's copies, and the end-to-end latency with the accelerator's (``schedule.arm_model``
holds the model and its basis; docs/ARM_MODEL.md explains it)."""
from __future__ import annotations

import math

from ..schedule import arm_model


def _call_io(lf, prog) -> arm_model.CallIo:
    """Per image: float elements and int8 bytes of an offloaded function's inputs/outputs."""
    def floats(shapes):
        return sum(math.prod(int(d) for d in s[1:]) for s in shapes)

    return arm_model.CallIo(
        in_floats=floats(lf.input_shapes), out_floats=floats(lf.output_shapes),
        in_int8=sum(8 * prog.tensors[t].words for t in lf.inputs),
        out_int8=sum(8 * prog.tensors[t].words for t in lf.outputs),
        n_in=len(lf.inputs), n_out=len(lf.outputs),
        # the program's input tensors: C*H*W, or the first layer's patches
        in_quant=sum(prog.tensors[t].c * prog.tensors[t].h * prog.tensors[t].w
                     for t in lf.inputs))


def cpu_section(res, board) -> dict:
    """``report["cpu"]``: per CPU operator and per offloaded call, modeled milliseconds
    on one core of ``board.cpu``, with the basis."""
    cpu = board.cpu
    ops = []
    for op in res.partition_report.cpu_ops:
        t = arm_model.op_time(cpu, op.op_class, op.flops, op.bytes)
        ops.append({"op": op.op, "name": op.name, "shape": list(op.shape),
                    "op_class": op.op_class, "flops": int(op.flops), "bytes": int(op.bytes),
                    "bound": "compute" if t.compute_s >= t.memory_s else "memory",
                    "modeled_ms": round(t.ms, 6)})
    calls = []
    for cg in res.codegen:
        for lf, prog in zip(cg.functions, cg.programs):
            io = _call_io(lf, prog)
            parts = arm_model.call_parts(cpu, io)
            row = {"function": lf.symbol, "batch": lf.batch,
                   "in_floats": io.in_floats * lf.batch, "in_int8_bytes": io.in_int8 * lf.batch,
                   "quantized_values": io.in_quant * lf.batch,
                   "out_floats": io.out_floats * lf.batch,
                   "out_int8_bytes": io.out_int8 * lf.batch}
            row.update({f"{k}_ms": round(v * lf.batch * 1e3, 6) for k, v in parts.items()})
            row["modeled_ms"] = round(sum(parts.values()) * lf.batch * 1e3, 6)
            calls.append(row)
    return {
        "basis": arm_model.BASIS,
        "cpu": cpu.name, "clock_mhz": cpu.clock_mhz, "cores_used": 1,
        "peak_gflops": round(cpu.peak_gflops, 3),
        "efficiency": dict(arm_model.EFFICIENCY),
        "ops": ops,
        "calls": calls,
        "arm_ms": round(float(sum(o["modeled_ms"] for o in ops)), 6),
        "copies_ms": round(float(sum(c["modeled_ms"] for c in calls)), 6),
    }


def end_to_end(accel_ms: float, cpu: dict) -> dict:
    """Performance keys for the whole inference: ARM operators, copies and accelerator in
    sequence (the runtime overlaps nothing), fps and each part's share."""
    arm_ms, copies_ms = cpu["arm_ms"], cpu["copies_ms"]
    total = arm_ms + copies_ms + accel_ms
    share = ({k: round(v / total, 4) for k, v in
              (("accelerator", accel_ms), ("arm", arm_ms), ("copies", copies_ms))}
             if total else {"accelerator": 0.0, "arm": 0.0, "copies": 0.0})
    return {"arm_ms": round(arm_ms, 6), "copies_ms": round(copies_ms, 6),
            "end_to_end_ms": round(total, 6),
            "end_to_end_fps": round(1e3 / total, 3) if total else 0.0,
            "share": share, "end_to_end_basis": arm_model.BASIS}
