"""Post-training calibration: activation ranges from running the float model on the CPU.

``calibrate(mod, samples)`` returns ``mod`` carrying, for every offloadable chain (in
partition order), the range (``quantize.ranges``: by default the clipping range of least
quantization MSE; the absolute maximum with ``method="absmax"``) of its input, of its fire squeeze output, of
its conv output before the pool and (``pool``) after an average pool; for a residual add (``conv_add``) also of its bypass
(``bp``), and ``out`` is the sum after its activation. Scales are symmetric: ``scale =
range / 127``. A QDQ model brings its own scales instead (``quantize.qdq``; no
calibration data needed).

A record per call site: a block applied twice with the same weights is two records
(``partitioner.fuse_composites`` gives each call its own function, and
``partitioner._attach_calibration`` reads the records in the same order).
"""
from __future__ import annotations

import json

import numpy as np
import tvm
from tvm import relax

from ..errors import ZynqSqueezeError, warn
from ..partitioning import partitioner, patterns
from ..partitioning.composite import eval_chain, parse_composite
from ..progress import progress_bar
from .ranges import (DEFAULT_BIAS_CORRECTION, DEFAULT_METHOD, Histogram, check_method,
                     tensor_range)
from .weights import BiasError

SYNTHETIC_DESCRIPTION = "synthetic calibration set: 8 samples of N(0, 1), numpy seed 0"
SYNTHETIC_COUNT = 8


class CalibrationError(ZynqSqueezeError):
    """Calibration data does not fit the model."""


def input_specs(mod: tvm.IRModule) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of each input of ``main``."""
    out = []
    for p in mod["main"].params:
        try:
            shape = tuple(int(s) for s in p.ty.shape)
        except (TypeError, ValueError):
            raise CalibrationError(f"input {p.name!r} has a dynamic shape; "
                                   "give the model static input shapes") from None
        out.append((p.name, shape, str(p.ty.dtype)))
    return out


def synthetic_samples(mod: tvm.IRModule) -> list[dict[str, np.ndarray]]:
    """The deterministic default calibration set (see ``SYNTHETIC_DESCRIPTION``)."""
    rng = np.random.default_rng(0)
    specs = input_specs(mod)
    return [{n: rng.standard_normal(s).astype(d) for n, s, d in specs}
            for _ in range(SYNTHETIC_COUNT)]


def normalize_samples(mod: tvm.IRModule, samples) -> list[dict[str, np.ndarray]]:
    """Accept arrays (single-input models) or dicts name -> array; check shapes and dtypes."""
    specs = input_specs(mod)
    out = []
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            if len(specs) != 1:
                raise CalibrationError(
                    f"sample {i}: the model has {len(specs)} inputs "
                    f"({', '.join(n for n, _, _ in specs)}); give dicts name -> array")
            s = {specs[0][0]: s}
        d = {}
        for name, shape, dtype in specs:
            if name not in s:
                raise CalibrationError(f"sample {i} has no input {name!r}")
            a = np.asarray(s[name])
            if a.shape == shape[1:] and shape[0] == 1:
                a = a[None]
            if a.shape != shape:
                raise CalibrationError(
                    f"sample {i}, input {name!r}: expected shape {shape}, got {a.shape}")
            try:
                d[name] = a.astype(dtype)
            except (TypeError, ValueError) as e:
                raise CalibrationError(f"sample {i}, input {name!r}: not numbers of "
                                       f"dtype {dtype} ({e})") from None
            if np.issubdtype(d[name].dtype, np.floating) and not np.all(np.isfinite(d[name])):
                bad = int(d[name].size - np.count_nonzero(np.isfinite(d[name])))
                raise CalibrationError(f"sample {i}, input {name!r} has {bad} NaN or Inf "
                                       "value(s); calibration needs real inputs")
        out.append(d)
    if not out:
        raise CalibrationError("no calibration samples given")
    for name, _, _ in specs:
        if all(not np.any(s[name]) for s in out):
            warn(f"zynq_squeeze: calibration input {name!r} is all zeros in every sample: "
                 "the activation scales it gives mean nothing")
    return out


def check_ranges(ranges: list[dict]) -> None:
    """Non-finite ranges are errors; ranges that were 0 on every sample get one warning."""
    dead = []
    for k, r in enumerate(ranges):
        for where, v in r.items():
            if not np.isfinite(v):
                raise CalibrationError(
                    f"offloadable chain {k}: its {where} range is {v} on the calibration "
                    "set (the float model computes NaN or Inf there; check the model's "
                    "CPU operators and the samples)")
            if v == 0 and where != "mid":
                dead.append(f"chain {k} {where}")
    if dead:
        warn(f"zynq_squeeze: {len(dead)} calibrated tensor(s) were 0 on every sample "
             f"({', '.join(dead[:6])}{', ...' if len(dead) > 6 else ''}); they get the scale "
             "1/127: calibrate with inputs that exercise the model")


def _probe_module(cmod: tvm.IRModule) -> tuple[tvm.IRModule, list[relax.Function]]:
    """The composite-level module whose main also returns every composite's input (a
    concat's output: the range of all its parts, which share one scale; a residual add's
    conv input) and, after them, every residual add's bypass, in composite order."""
    mod = relax.transform.ToNonDataflow()(cmod)
    main = mod["main"]
    calls = partitioner.composite_calls(mod)
    chains = [parse_composite(f) for _, _, f in calls]
    extra = [var if str(f.attrs["Composite"]) == patterns.CONCAT else call.args[ch.in_param]
             for (var, call, f), ch in zip(calls, chains)]
    extra += [call.args[ch.bypass_param] for (_, call, _), ch in zip(calls, chains)
              if ch.bypass_param is not None]
    fields = [main.body.body, *extra]
    body = relax.SeqExpr(main.body.blocks, relax.Tuple(fields))
    probe = relax.Function(main.params, body, relax.TupleType([f.ty for f in fields]),
                           attrs=main.attrs)
    mod["main"] = probe
    return mod, [f for _, _, f in calls]


def has_avg_pool(chain) -> bool:
    """Whether ``chain`` ends in an average pool (fused or standalone): its output then
    gets its own range (``pool``), usually much smaller than its input's (a global
    average of a conv's output), and its own scale (``codegen.lower``)."""
    return chain.pool is not None and chain.pool.kind == "avg"


def probe_composites(mod: tvm.IRModule, samples, *, progress: bool = True):
    """Run the float model over ``samples``: (composite functions, their chains, and per
    sample a list, per composite, of (its float input batch, its bypass batch or None)).
    A concat's "input" is its output (the parts are its channel ranges)."""
    cmod = partitioner.fuse_composites(mod)
    probe, funcs = _probe_module(cmod)
    chains = [parse_composite(f) for f in funcs]
    if not chains:
        return funcs, chains, []
    bypass_at, n = {}, len(chains) + 1  # result index of each residual add's bypass
    for k, chain in enumerate(chains):
        if chain.bypass_param is not None:
            bypass_at[k], n = n, n + 1
    ex = tvm.compile(probe, target=tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    names = [n for n, _, _ in input_specs(mod)]
    seen = []
    for s in progress_bar(samples, desc="calibrating", enable=progress):
        res = vm["main"](*[tvm.runtime.tensor(s[n]) for n in names])
        seen.append([(res[k + 1].numpy(),
                      res[bypass_at[k]].numpy() if k in bypass_at else None)
                     for k in range(len(chains))])
    return funcs, chains, seen


def collect_histograms(mod: tvm.IRModule, samples, *, progress: bool = True,
                       bias_errors: list | None = None):
    """Run the float model over ``samples``: (composite functions, per composite a dict
    tensor key -> ``Histogram`` of its values). Keys: ``in``, ``mid`` (a fire's squeeze
    output), ``out`` (before a pool), ``bp`` (a residual add's bypass), ``pool`` (after
    an average pool); see the module docstring. ``bias_errors`` (a list, filled): per
    composite, a ``BiasError`` per conv (the bias correction's data)."""
    funcs, chains, seen = probe_composites(mod, samples, progress=progress)
    if bias_errors is not None:
        bias_errors[:] = [[BiasError(c) for c in ch.convs] for ch in chains]
    hists = [{"in": Histogram(), "mid": Histogram(), "out": Histogram(),
              **({"bp": Histogram()} if c.kind == "conv_add" else {}),
              **({"pool": Histogram()} if has_avg_pool(c) else {})}
             for c in chains]
    for per_sample in seen:
        for k, chain in enumerate(chains):
            x, bps = per_sample[k]
            h = hists[k]
            h["in"].add(x)
            if bps is not None:
                h["bp"].add(bps)
            for img, bp in zip(x, bps if bps is not None else [None] * len(x)):
                v = eval_chain(chain, img, bp)
                if bias_errors:  # a fire's expands read its squeeze output
                    for j, be in enumerate(bias_errors[k]):
                        be.add(v["mid"] if j else img.reshape(chain.in_shape[1:]))
                h["out"].add(v["pre_pool"])
                if "pool" in h:
                    h["pool"].add(v["out"])
                if "mid" in v:
                    h["mid"].add(v["mid"])
    return funcs, hists


def collect_ranges(mod: tvm.IRModule, samples, *, method: str = DEFAULT_METHOD,
                   bias_correction: bool = DEFAULT_BIAS_CORRECTION,
                   progress: bool = True) -> list[dict]:
    """Run the float model over ``samples``; per composite, the ranges it sees, each the
    statistic ``method`` (``quantize.ranges``) of a histogram of the tensor's values;
    with ``bias_correction`` also ``bias_correction``: per conv, per output channel, the
    mean shift its int8 weights cause (``quantize.weights``), which lowering subtracts."""
    check_method(method)
    errs: list | None = [] if bias_correction else None
    funcs, hists = collect_histograms(mod, samples, progress=progress, bias_errors=errs)
    ranges = [{key: tensor_range(hist, method) for key, hist in h.items()} for h in hists]
    check_ranges(ranges)
    for r, be in zip(ranges, errs or []):
        if be:
            r["bias_correction"] = [b.mean() for b in be]
    return [{"signature": partitioner.composite_signature(f), "ranges": r}
            for f, r in zip(funcs, ranges)]


def calibrate(mod: tvm.IRModule, samples=None, *, method: str = DEFAULT_METHOD,
              bias_correction: bool = DEFAULT_BIAS_CORRECTION, progress: bool = True,
              strict: bool = False) -> tvm.IRModule:
    """Calibrate activation ranges; returns ``mod`` carrying them for ``tvm.compile``.

    ``samples``: a list of numpy arrays (single-input models) or of dicts input name ->
    array, each of the model's input shape (the batch axis may be left out when it is 1).
    Without samples a warning names the synthetic set used instead.

    ``method``: how a tensor's values become its range (``quantize.ranges.METHODS``):
    ``"mse"`` (default: the clipping range of least quantization error), ``"absmax"``
    (the largest |x|) or ``"percentile"`` (the 99.99th percentile of |x|). The record
    names it (``"method"``; report.json ``calibration_method``). ``bias_correction``:
    also measure, per conv, the mean output shift its int8 weights cause on the samples,
    which lowering subtracts from the bias (``quantize.weights``).

    A module imported from a QDQ model takes its ranges from the model's scales
    (``quantize.qdq``): samples are then only used for chains the model does not quantize,
    and a warning says that the model's scales win. ``strict``: refuse a QDQ model whose
    offloaded tensors are asymmetric instead of widening their ranges.
    """
    from .qdq import model_calibration, read_qdq

    try:
        check_method(method)
    except ValueError as e:
        raise CalibrationError(str(e)) from None
    if read_qdq(mod) is not None:
        if samples is not None:
            warn("zynq_squeeze: the model is a QDQ model: its own activation scales are used "
                 "and the calibration data is ignored (except for chains the model does not "
                 "quantize)")
        data = model_calibration(mod, samples, strict=strict, progress=progress)
        return mod.with_attr(partitioner.CALIBRATION_ATTR, json.dumps(data, sort_keys=True))
    if samples is None:
        warn(f"zynq_squeeze: no calibration data given; using the {SYNTHETIC_DESCRIPTION}. "
             "Pass real inputs for real accuracy.")
        norm, source = synthetic_samples(mod), SYNTHETIC_DESCRIPTION
    else:
        norm, source = normalize_samples(mod, samples), f"{len(samples)} user samples"
    records = collect_ranges(mod, norm, method=method, bias_correction=bias_correction,
                             progress=progress)
    data = {"version": 1, "source": source, "method": method,
            "bias_correction": bool(bias_correction), "composites": records}
    return mod.with_attr(partitioner.CALIBRATION_ATTR, json.dumps(data, sort_keys=True))


def ensure_calibrated(mod: tvm.IRModule, *, progress: bool = False) -> tvm.IRModule:
    """``mod`` itself when it carries a calibration; else its QDQ scales (a QDQ model), else
    calibrated on the synthetic set."""
    if partitioner.read_calibration(mod) is not None:
        return mod
    return calibrate(mod, None, progress=progress)
