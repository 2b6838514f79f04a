"""Activation ranges from a QDQ model's own scales (no calibration data needed).

``frontend.qdq`` records, per conv of a QDQ model (keyed by a digest of its float weights),
the quantization of its input and output and of its weights. ``model_calibration`` finds
each offloadable chain's convs in those records and returns a calibration in the form
``calibrate`` produces, so partitioning and lowering work as for a calibrated model:

* a symmetric int8 tensor (zero point 0) of scale ``s`` gets the range ``127 * s``. For the
  float32 scales a QDQ model holds this is exact in float64, and ``lower.scale_of``'s
  ``absmax / 127`` gives ``s`` back bit for bit: the engine uses the model's scale.
* an asymmetric tensor (zero point != 0, or uint8) cannot be represented by the symmetric
  engine: its range ``[(qmin - zp) * s, (qmax - zp) * s]`` is widened to the symmetric
  ``max(|lo|, hi)`` (every value the model can represent stays representable, at a coarser
  step: about 2x for a ReLU output with zero point -128). A warning says so, and the
  report lists the tensors (``asymmetric``). ``strict=True`` refuses such a model instead.
* a conv (a fire's expand) whose output the model quantizes at its own symmetric scale
  before a ``Concat`` requantizes it to the concat's (``ranges["parts"]``, one range per
  output part, None where the part has no own scale): lowering writes the part at that
  scale, then requantizes it in place to the concat's, the two roundings onnxruntime does.
* a conv's weights that the model holds as int8 with zero point 0 (per channel or per
  tensor) travel as their scales (``ranges["weights"]``): lowering takes those int8 values
  as they are when they fit the engine, and reports per layer whether it did.

A chain whose convs have no record (a weight the model does not quantize, a conv the
clean-up rewrote, tied weights quantized two ways) is calibrated instead, on the samples
given or the synthetic set, with a warning naming it.
"""
from __future__ import annotations

import json

import tvm
from tvm import relax

from ..errors import ZynqSqueezeError, warn
from ..frontend.qdq import QDQ_ATTR, TensorQuant, weight_key
from ..partitioning import partitioner
from ..partitioning.composite import parse_composite

INT8_MAX = 127
SOURCE = "the model's QDQ scales"


class QdqRangeError(ZynqSqueezeError, ValueError):
    """The model's quantization cannot be used as the engine's (strict mode)."""


def read_qdq(mod: tvm.IRModule) -> dict | None:
    """The QDQ record a module imported from a QDQ model carries, or None."""
    if mod.attrs is None or QDQ_ATTR not in mod.attrs:
        return None
    return json.loads(str(mod.attrs[QDQ_ATTR]))


def symmetric_range(t: dict) -> float:
    """The absolute maximum whose ``absmax / 127`` is the engine's scale for tensor ``t``
    (a ``TensorQuant`` JSON record): ``127 * scale`` when symmetric, else the widened range."""
    q = TensorQuant(**t)
    if q.symmetric:
        return INT8_MAX * q.scale
    return max(-q.lo, q.hi)


def weight_scales(rec: dict | None) -> list[float] | None:
    """The model's per-output-channel (or per-tensor, one value) weight scales when its
    weights are int8 with zero point 0; None otherwise (they are re-quantized)."""
    w = (rec or {}).get("weight")
    if weight_note(rec) is not None:
        return None
    return list(w["scale"])


def weight_note(rec: dict | None) -> str | None:
    """Why a conv's weights cannot be used as-is, before lowering looks at them."""
    w = (rec or {}).get("weight")
    if not w:
        return "the model does not quantize this weight"
    if w["dtype"] != "int8":
        return f"{w['dtype']} weights (the engine takes int8)"
    if any(w["zero_point"]):
        return "weight zero point is not 0 (the engine's weights are symmetric)"
    if not w.get("per_output_channel", True):
        return f"per-axis weight scales along axis {w['axis']}, not the output channels"
    return None


def _chain_ranges(chain, recs: list[dict]) -> tuple[dict | None, list[str]]:
    """(ranges, asymmetric tensor names) of one chain from its convs' records, or
    (None, []) when a record lacks a scale the chain needs."""
    first, last = recs[0], recs[-1]
    # (conv whose record holds it, tensor): the chain's input, output and, for a fire
    # module, the squeeze output and the first expand's output
    need = [(first, first.get("in")), (last, last.get("out"))]
    if chain.kind == "fire":
        need += [(first, first.get("out")), (recs[1], recs[1].get("out"))]
    if any(t is None for _, t in need) or any(r.get("ambiguous") for r in recs):
        return None, []
    asym = [r["node"] for r, t in need if not TensorQuant(**t).symmetric]
    ranges = {"in": symmetric_range(first["in"]), "mid": 0.0, "out": symmetric_range(last["out"])}
    if chain.kind == "fire":
        ranges["mid"] = symmetric_range(first["out"])
        # both expands write one tensor: the wider of their (concat) scales
        ranges["out"] = max(symmetric_range(recs[1]["out"]), ranges["out"])
    # a conv (fire expand) the model quantizes at its own scale before a concat
    # requantizes it: the range of each output part at that scale (lowering rounds twice)
    outs = recs[1:] if chain.kind == "fire" else recs[-1:]
    parts = [symmetric_range(r["part"]) if r.get("part") and TensorQuant(**r["part"]).symmetric
             else None for r in outs]
    if any(p is not None for p in parts):
        ranges["parts"] = parts
    ranges["weights"] = [weight_scales(r) for r in recs]
    ranges["weight_notes"] = [weight_note(r) for r in recs]
    return ranges, sorted(set(asym))


def _dequantized_ranges(cmod: tvm.IRModule) -> dict:
    """Range of every ``dequantize(x, constant scale, constant zero point)`` result in
    main: a pair ``frontend.qdq`` kept (a pool's input) says its tensor's quantization."""
    out = {}
    for block in cmod["main"].body.blocks:
        for b in block.bindings:
            v = b.value
            if not (isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op)
                    and v.op.name == "relax.dequantize" and len(v.args) == 3):
                continue
            consts = [a.value.numpy() for a in v.args[1:] if hasattr(a, "value")
                      and hasattr(a.value, "numpy")]
            if len(consts) != 2 or consts[0].size != 1 or consts[1].size != 1:
                continue
            t = {"scale": float(consts[0].reshape(())), "zero_point": int(consts[1].reshape(())),
                 "dtype": str(v.args[0].ty.dtype)}
            if t["dtype"] in ("int8", "uint8") and t["scale"] > 0:
                out[b.var] = symmetric_range(t)
    return out


def model_calibration(mod: tvm.IRModule, samples=None, *, strict: bool = False,
                      progress: bool = False) -> dict:
    """The calibration of a module imported from a QDQ model (module docstring)."""
    qdq = read_qdq(mod)
    if qdq is None:
        raise ZynqSqueezeError("internal: model_calibration on a module without QDQ records")
    cmod = partitioner.fuse_composites(mod)
    calls = partitioner.composite_calls(cmod)
    records, missing, asym = [], [], []
    out_range = _dequantized_ranges(cmod)  # a composite call's result -> its range
    for k, (var, call, func) in enumerate(calls):
        chain = parse_composite(func)
        ranges = None
        if chain.kind in ("pool", "concat"):
            # no weights to find: a standalone pool keeps its input's range, a concat
            # takes its parts' (the model quantizes a conv read by a concat at the concat's
            # scale, so the parts agree)
            parts = [out_range.get(a) for a in call.args]
            if parts and all(r is not None for r in parts):
                ranges = {"in": max(parts), "mid": 0.0, "out": max(parts)}
        else:
            recs = [qdq["convs"].get(weight_key(c.weight)) for c in chain.convs]
            if all(r is not None for r in recs):
                ranges, names = _chain_ranges(chain, recs)
                asym += names
        if ranges is None:
            missing.append(k)
        else:
            out_range[var] = ranges["out"]
        records.append({"signature": partitioner.composite_signature(func), "ranges": ranges})
    if asym and strict:
        raise QdqRangeError(
            f"{len(asym)} offloaded conv(s) read or write asymmetric tensors (zero point != 0 "
            f"or uint8: {', '.join(asym[:6])}); the engine is symmetric int8. Quantize with "
            "ActivationSymmetric=True, or compile without strict to widen their ranges")
    if asym:
        warn(f"zynq_squeeze: {len(asym)} offloaded conv(s) of the QDQ model read or write "
             f"tensors with asymmetric quantization ({', '.join(asym[:6])}{', ...' if len(asym) > 6 else ''});"
             " the symmetric engine cannot use their scales as-is and widens each range "
             "[lo, hi] to +-max(|lo|, hi) (a coarser step). Quantize with "
             "ActivationSymmetric=True to use the model's scales as-is")
    source = SOURCE
    if missing:
        from .calibrate import SYNTHETIC_DESCRIPTION, collect_ranges, normalize_samples, \
            synthetic_samples

        names = ", ".join(f"{k} ({calls[k][2].attrs['Composite']})" for k in missing[:6])
        what = "the given samples" if samples is not None else SYNTHETIC_DESCRIPTION
        warn(f"zynq_squeeze: {len(missing)} offloadable chain(s) have no QDQ scales in the "
             f"model ({names}); calibrating them on {what}")
        norm = normalize_samples(mod, samples) if samples is not None else synthetic_samples(mod)
        calibrated = collect_ranges(mod, norm, progress=progress)
        for k in missing:
            records[k] = calibrated[k]
        source = f"{SOURCE}; {len(missing)} chain(s) calibrated on {what}"
    return {"version": 1, "source": source, "composites": records,
            "qdq": {"asymmetric": asym, "calibrated_chains": missing,
                    "restored_relus": qdq.get("restored_relus", [])}}
