"""Where each conv's quantization error comes from: its input's rounding, its weights'
rounding, or its output's rounding (float model, one source at a time).

Calibrates (absmax, as the reference) on ``--calib`` N(0, 1) samples (seed 1, as
benchmarks/model_zoo.py) and, per plain conv composite, over the float inputs of the
first ``--eval`` calibration samples: the SQNR in dB of its output (before any pool)
with only its input quantized at its scale (``in_db``), only its weights quantized per
output channel (``w_db``), only its output quantized (``out_db``); ``w_bc_db``: the
weights' error once its per-channel mean is removed (what bias correction can reach)::

    PYTHONPATH=python python benchmarks/conv_error_split.py model.onnx [--calib 8] [--eval 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
import onnx


def _db(ref: np.ndarray, err: np.ndarray) -> float:
    return round(float(10 * np.log10((ref ** 2).sum() / (err ** 2).sum())), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx")
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--eval", type=int, default=2)
    a = ap.parse_args(argv)
    from model_zoo import _inputs, samples

    from zynq_squeeze.codegen.golden import dequantize, quantize
    from zynq_squeeze.codegen.lower import scale_of
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.partitioning.composite import eval_chain
    from zynq_squeeze.quantize.calibrate import (collect_ranges, normalize_samples,
                                                 probe_composites)
    from zynq_squeeze.quantize.weights import weight_error

    model = onnx.load(a.onnx)
    specs = _inputs(model)
    mod = from_onnx(model, {specs[0][0]: list(specs[0][1])})
    norm = normalize_samples(mod, samples(specs, a.calib, 1))
    ranges = [r["ranges"] for r in collect_ranges(mod, norm, method="absmax",
                                                  bias_correction=False, progress=False)]
    _, chains, seen = probe_composites(mod, norm[:a.eval], progress=False)
    rows = []
    for k, chain in enumerate(chains):
        if chain.kind != "conv":
            continue
        c = chain.convs[0]
        dw = weight_error(c)
        wq = dataclasses.replace(chain, convs=[dataclasses.replace(c, weight=c.weight + dw.weight)])
        s_in, s_out = scale_of(ranges[k]["in"]), scale_of(ranges[k]["out"])
        ref, y_in, y_w, y_out = [], [], [], []
        for per_sample in seen:
            for img in per_sample[k][0]:
                r = eval_chain(chain, img)["pre_pool"]
                ref.append(r)
                y_in.append(eval_chain(chain, dequantize(quantize(img, s_in), s_in))["pre_pool"])
                y_w.append(eval_chain(wq, img)["pre_pool"])
                y_out.append(dequantize(quantize(r, s_out), s_out))
        ref = np.stack(ref).astype(np.float64)
        e_w = np.stack(y_w) - ref
        e_w_bc = e_w - e_w.mean(axis=(0, 2, 3), keepdims=True)
        rows.append({"index": k, "weight": list(c.weight.shape), "groups": c.groups,
                     "in_db": _db(ref, np.stack(y_in) - ref), "w_db": _db(ref, e_w),
                     "w_bc_db": _db(ref, e_w_bc), "out_db": _db(ref, np.stack(y_out) - ref)})
        print(json.dumps(rows[-1]), flush=True)
    if rows:
        mean = {key: round(float(np.mean([r[key] for r in rows])), 2)
                for key in ("in_db", "w_db", "w_bc_db", "out_db")}
        print(f"{len(rows)} convs, mean SQNR (dB): {mean}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
