"""Partition: cut a Relax module into accelerator functions and CPU operators.

Clean-up (``cleanup``: FoldConstant, inference-only operators folded away) ->
FuseOpsByPattern (composites) -> one composite function per call site -> calibration
attributes onto each composite -> MergeCompositeFunctions -> short global symbols. The
``PartitionReport`` says what was offloaded, what stayed on the CPU and why.

One function per call site: FuseOpsByPattern gives structurally equal composites (a
block applied twice with the same weights) ONE GlobalVar, but every call site sees its
own activations and needs its own calibrated ranges; attached to a shared function the
last site's ranges would overwrite the others'.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import tvm
import tvm_ffi.structural
from tvm import relax

from ..errors import ModelError, ZynqSqueezeError
from . import cleanup, patterns
from .op_cost import op_work

CALIBRATION_ATTR = "zynq_squeeze.calibration"
COMPOSITE_CALIB_ATTR = "zynq_squeeze.ranges"
# The position of a composite's call in main (0, 1, ...): makes every call site's function
# distinct, so no later deduplication can merge two sites again.
COMPOSITE_SITE_ATTR = "zynq_squeeze.site"
CODEGEN = "zynq_squeeze"

# Operators that carry no arithmetic: not worth a line in the CPU-op list of the report.
_SILENT_OPS = {"relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims",
               "relax.permute_dims", "relax.astype"}


class PartitionError(ZynqSqueezeError):
    """The module cannot be partitioned (no main function, dynamic shapes...)."""


@dataclass
class CpuOp:
    """One operator that stays on the CPU: its Relax name, the variable it binds, why it
    stays, and its work (``op_cost.op_work``: output shape, FLOPs, bytes moved, the
    efficiency class the ARM time model applies)."""

    op: str
    name: str
    reason: str
    shape: list[int] = field(default_factory=list)
    flops: int = 0
    bytes: int = 0
    op_class: str = "elementwise"


@dataclass
class PartitionReport:
    """What ``partition`` did: offloaded functions, pattern counts, CPU operators and why."""

    functions: list[str] = field(default_factory=list)
    patterns: dict[str, int] = field(default_factory=dict)
    cpu_ops: list[CpuOp] = field(default_factory=list)
    macs_offloaded: int = 0
    macs_total: int = 0

    @property
    def offload_ratio(self) -> float:
        return self.macs_offloaded / self.macs_total if self.macs_total else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["offload_ratio"] = self.offload_ratio
        return d

    def __str__(self) -> str:
        lines = [f"offloaded functions: {len(self.functions)}",
                 f"patterns: {', '.join(f'{k}={v}' for k, v in sorted(self.patterns.items()))}",
                 f"MACs offloaded: {self.macs_offloaded:,} / {self.macs_total:,} "
                 f"({100 * self.offload_ratio:.2f} %)"]
        for op in self.cpu_ops:
            lines.append(f"  cpu: {op.op:<28} {op.name:<10} {op.reason}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers
def _shape(expr) -> tuple[int, ...]:
    return tuple(int(s) for s in expr.ty.shape)


def _conv_macs(call: relax.Call) -> int:
    """Output elements x (input channels per group) x kernel window."""
    out, w = _shape(call), _shape(call.args[1])
    return int(np.prod(out)) * w[1] * w[2] * w[3]


def _matmul_macs(call: relax.Call) -> int:
    try:
        a, out = _shape(call.args[0]), _shape(call)
    except (TypeError, AttributeError):
        return 0
    return int(np.prod(out)) * a[-1]


def _macs_of(call) -> int:
    name = patterns._op_name(call)
    if name == "relax.nn.conv2d":
        return _conv_macs(call)
    if name in ("relax.matmul", "relax.linear"):
        return _matmul_macs(call)
    return 0


def _calls_in(func: relax.Function):
    """(var, call) bindings of a function body, in order."""
    out = []
    for block in func.body.blocks:
        for b in block.bindings:
            out.append((b.var, b.value))
    return out


def fold(mod: tvm.IRModule) -> tvm.IRModule:
    """Normalize an imported module for matching: constants folded, inference-only
    operators folded away (``cleanup.clean_up``)."""
    if "main" not in [gv.name_hint for gv in mod.functions]:
        raise PartitionError("the module has no 'main' function")
    return cleanup.clean_up(mod)


def fuse_composites(mod: tvm.IRModule) -> tvm.IRModule:
    """Clean-up + FuseOpsByPattern: one composite function per offloadable chain and call
    site (``split_call_sites``), in the order ``composite_calls`` lists them.

    Raises ``ModelError`` when an offloadable chain's weights or bias hold NaN or Inf:
    int8 cannot represent them, and on the CPU they would only turn the output into NaN.
    """
    mod = fold(mod)
    cmod = relax.transform.FuseOpsByPattern(
        patterns.get_patterns(), bind_constants=True, annotate_codegen=False)(mod)
    cmod = split_call_sites(cmod)
    for k, (_, _, func) in enumerate(composite_calls(cmod)):
        _check_finite(k, func)
    return cmod


def _is_composite(func) -> bool:
    return (isinstance(func, relax.Function) and func.attrs is not None
            and "Composite" in func.attrs)


@relax.expr_functor.mutator
class _CallSiteSplitter(relax.PyExprMutator):
    """Gives the k-th composite call of main its own function (attribute site=k)."""

    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod_ = mod
        self.site = 0
        self.claimed: set = set()

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        gv = call.op
        if not isinstance(gv, tvm.ir.GlobalVar) or not _is_composite(self.mod_[gv]):
            return call
        func = self.mod_[gv].with_attr(COMPOSITE_SITE_ATTR, self.site)
        self.site += 1
        if gv.name_hint not in self.claimed:
            # the first call keeps the GlobalVar (and its name)
            self.claimed.add(gv.name_hint)
            self.builder_.update_func(gv, func)
            return call
        # a later call of the same function: a copy under a fresh name (the site attribute
        # makes it structurally distinct, so add_func does not hand back the shared one)
        new_gv = self.builder_.add_func(func, gv.name_hint)
        return relax.Call(new_gv, call.args, call.attrs)

    def run(self) -> tvm.IRModule:
        gv = self.mod_.get_global_var("main")
        self.builder_.update_func(gv, self.visit_expr(self.mod_[gv]))
        return self.builder_.get()


def split_call_sites(cmod: tvm.IRModule) -> tvm.IRModule:
    """One composite function per call in main, each tagged with its call-site index.

    FuseOpsByPattern deduplicates structurally equal composites (the same weights and
    shapes: a tied or repeated block) into one function called several times; calibration
    ranges are per call site, so each site gets its own copy before they are attached.
    """
    mod = _CallSiteSplitter(cmod).run()
    calls = composite_calls(mod)
    if (len({call.op.name_hint for _, call, _ in calls}) != len(calls)
            or [int(f.attrs[COMPOSITE_SITE_ATTR]) for _, _, f in calls]
            != list(range(len(calls)))):
        raise PartitionError("internal: composite call sites were not split in order")
    return mod


def _check_finite(k: int, func: relax.Function) -> None:
    from .composite import parse_composite  # composite imports patterns, as this module does

    chain = parse_composite(func)
    for j, conv in enumerate(chain.convs):
        for what, arr in (("weights", conv.weight), ("bias", conv.bias)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            if bad:
                role = f"conv {j} of " if len(chain.convs) > 1 else ""
                raise ModelError(
                    f"the {role}offloadable chain {k} ({chain.pattern}, input "
                    f"{tuple(chain.in_shape)}) has {bad} NaN or Inf value(s) in its {what}; "
                    "the int8 accelerator cannot represent them: fix the model's weights")


def composite_calls(mod: tvm.IRModule) -> list[tuple[relax.Var, relax.Call, relax.Function]]:
    """The composite calls of a composite-level module's main, in execution order."""
    out = []
    for var, value in _calls_in(mod["main"]):
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.GlobalVar):
            func = mod[value.op]
            if func.attrs is not None and "Composite" in func.attrs:
                out.append((var, value, func))
    return out


def composite_signature(func: relax.Function) -> str:
    """Pattern name and input shape: checks a calibration record fits its composite."""
    return f"{func.attrs['Composite']}{list(_shape(func.params[0]))}"


def _cpu_reason(value: relax.Call, producers: dict, op: str, composites: dict) -> str:
    name = patterns._op_name(value)
    if name == "relax.nn.conv2d":
        return patterns.conv_problem_for_report(value)
    if name == "relax.matmul":
        return patterns.dense_problem_for_report(value)
    if name in patterns.POOL_OPS:
        r = patterns.standalone_pool_reason(value)
        src = producers.get(value.args[0]) if isinstance(value.args[0], relax.Var) else None
        if r is None and patterns._op_name(src) == "relax.dequantize":
            # frontend.qdq keeps the QDQ pair before an average pool the model requantizes
            return ("the QDQ model requantizes this pool's output to another scale than its "
                    "input's (kept on the CPU with the model's quantization)")
        return r or "pool of a tensor the accelerator does not hold"
    if name == "relax.concat":
        return patterns.concat_reason(value, producers.get) or "concat of tensors the accelerator does not hold"
    if name == "relax.clip":
        r = patterns.clip_reason(*patterns.clip_bounds(value))
        if r:
            return r
    if name == "relax.add":  # a residual add (two tensor operands) left on the CPU
        r = patterns.add_problem_for_report(value, producers, composites)
        if r:
            return r
    if name in ("relax.nn.relu", "relax.clip") and isinstance(value.args[0], relax.Var):
        src = producers.get(value.args[0])
        if patterns._op_name(src) == "relax.add" and patterns.add_problem_for_report(
                src, producers, composites):
            return "the activation of a residual add that stays on the CPU"
    if name in ("relax.nn.relu", "relax.add", "relax.clip"):
        src = value
        # Walk back through the bias add / activation to the conv they belong to.
        while patterns._op_name(src) in ("relax.nn.relu", "relax.add", "relax.clip"):
            src = producers.get(src.args[0]) if isinstance(src.args[0], relax.Var) else None
        if patterns._op_name(src) == "relax.nn.conv2d":
            return "part of a convolution that stays on the CPU"
        if patterns._op_name(src) == "relax.matmul":
            return "part of a fully connected layer that stays on the CPU"
    if name == "relax.nn.batch_norm":
        return cleanup.batch_norm_reason(value)
    if name in ("relax.quantize", "relax.dequantize"):
        # frontend.qdq folds the QDQ pairs inside offloaded chains; the ones left sit where
        # the model's own int8 tensors meet CPU operators
        return ("quantize at the offload boundary: the CPU part keeps the model's "
                "quantization" if name == "relax.quantize" else
                "dequantize at the offload boundary: the CPU part keeps the model's "
                "quantization")
    return f"no accelerator pattern for {op}; runs on the ARM (TVM llvm)"


def _cpu_op_name(value: relax.Call) -> str | None:
    """The operator a CPU call computes: a Relax operator's name, or for a ``call_tir``
    (the ONNX importer emits some operators as TOPI functions) ``tir.<function>``."""
    name = patterns._op_name(value)
    if name == "relax.call_tir" and isinstance(value.args[0], tvm.ir.GlobalVar):
        return "tir." + re.sub(r"_?\d+$", "", value.args[0].name_hint)
    return name


def _lrn_calls(bindings) -> set:
    """The calls of every LRN left in main (``patterns.lrn_parts``), to report them as one
    operator with one reason."""
    producers = dict(bindings)
    out = set()
    for _, value in bindings:
        for call in patterns.lrn_parts(value, producers.get) or ():
            out.add(call)
    return out


def _report(cmod: tvm.IRModule) -> PartitionReport:
    rep = PartitionReport()
    producers, composites = {}, {}
    bindings = _calls_in(cmod["main"])
    lrn = _lrn_calls(bindings)
    for var, value in bindings:
        producers[var] = value
        if not isinstance(value, relax.Call):
            continue
        if isinstance(value.op, tvm.ir.GlobalVar):
            func = cmod[value.op]
            if func.attrs is not None and "Composite" in func.attrs:
                name = str(func.attrs["Composite"])
                composites[var] = name
                rep.patterns[name] = rep.patterns.get(name, 0) + 1
                macs = sum(_macs_of(c) for _, c in _calls_in(func))
                rep.macs_offloaded += macs
                rep.macs_total += macs
            continue
        op = _cpu_op_name(value)
        if op is None:
            continue
        rep.macs_total += _macs_of(value)
        if op not in _SILENT_OPS:
            work = op_work(value, op)
            rep.cpu_ops.append(CpuOp(
                op=op, name=var.name, reason=(patterns.LRN_REASON if value in lrn else
                                              _cpu_reason(value, producers, op, composites)),
                **({"shape": list(work.shape), "flops": work.flops, "bytes": work.bytes,
                    "op_class": work.op_class} if work is not None else {})))
    return rep


def _attach_calibration(cmod: tvm.IRModule, calib: dict | None) -> tvm.IRModule:
    """Copy each composite's calibrated ranges (matched by order and signature) onto it."""
    if not calib:
        return cmod
    records = calib["composites"]
    calls = composite_calls(cmod)
    if len(records) != len(calls):
        raise PartitionError(
            f"calibration has {len(records)} records but the module has {len(calls)} "
            "offloadable chains: calibrate the same module you compile")
    if len({gv.name_hint for gv in (call.op for _, call, _ in calls)}) != len(calls):
        # ranges attached to a shared function would be the last site's for every site
        raise PartitionError("two offloadable call sites share one composite function "
                             "(fuse with fuse_composites, which gives each its own)")
    for (_, call, func), rec in zip(calls, records):
        sig = composite_signature(func)
        if rec["signature"] != sig:
            raise PartitionError(f"calibration record {rec['signature']} does not match {sig}")
        cmod[call.op] = func.with_attr(COMPOSITE_CALIB_ATTR, json.dumps(rec["ranges"]))
    return cmod


def read_calibration(mod: tvm.IRModule) -> dict | None:
    """The calibration a module carries (set by ``zynq_squeeze.calibrate``), or None."""
    if mod.attrs is None or CALIBRATION_ATTR not in mod.attrs:
        return None
    return json.loads(str(mod.attrs[CALIBRATION_ATTR]))


def _short_symbols(mod: tvm.IRModule, prefix: str) -> tvm.IRModule:
    """Offloaded functions get short, deterministic global symbols (defaults exceed 300 chars)."""
    i = 0
    for gv in sorted(mod.functions, key=lambda g: g.name_hint):
        func = mod[gv]
        if func.attrs is not None and func.attrs.get("Codegen") == CODEGEN:
            h = tvm_ffi.structural.structural_hash(func) & 0xFFFFFFFF
            mod[gv] = func.with_attr("global_symbol", f"{prefix}{i}_{h:08x}")
            i += 1
    return mod


def partition_with_report(mod: tvm.IRModule, *, symbol_prefix: str = "zsq_",
                          calibration: dict | None = None
                          ) -> tuple[tvm.IRModule, PartitionReport]:
    """Partition ``mod``: returns the module with offloaded functions and the report.

    ``calibration`` defaults to what the module carries. The offloaded functions carry
    attribute ``Codegen="zynq_squeeze"`` and are compiled by ``RunCodegen``.
    """
    if calibration is None:
        calibration = read_calibration(mod)
    cmod = fuse_composites(mod)
    rep = _report(cmod)
    cmod = _attach_calibration(cmod, calibration)
    merged = relax.transform.MergeCompositeFunctions()(cmod)
    merged = _short_symbols(merged, symbol_prefix)
    rep.functions = sorted(str(f.attrs["global_symbol"]) for f in merged.functions.values()
                           if f.attrs is not None and f.attrs.get("Codegen") == CODEGEN)
    return merged, rep
