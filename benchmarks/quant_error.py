"""Per-layer quantization error of an ONNX model (``codegen.quant_error.layer_errors``).

Calibrates on ``--calib`` N(0, 1) samples (seed 1, as benchmarks/model_zoo.py), then
measures each offloadable layer's own error on ``--eval`` held-out samples (seed 2): one
JSON line per layer (index, pattern, kind, shape, cosine, sqnr_db, out_scale), worst
cosine first with ``--sort``::

    PYTHONPATH=python python benchmarks/quant_error.py model.onnx [--calib 8] [--eval 2] \
        [--calibration-method mse]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx")
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--eval", type=int, default=2)
    ap.add_argument("--sort", action="store_true", help="worst cosine first")
    ap.add_argument("--calibration-method", default=None,
                    help="zynq_squeeze.calibrate's method (absmax, mse, percentile)")
    a = ap.parse_args(argv)
    from model_zoo import _inputs, samples

    from zynq_squeeze.codegen.quant_error import layer_errors
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.quantize.calibrate import collect_ranges, normalize_samples

    model = onnx.load(a.onnx)
    specs = _inputs(model)
    mod = from_onnx(model, {specs[0][0]: list(specs[0][1])})
    kw = {"method": a.calibration_method} if a.calibration_method else {}
    calib = collect_ranges(mod, normalize_samples(mod, samples(specs, a.calib, 1)),
                           progress=False, **kw)
    recs = layer_errors(mod, samples(specs, a.eval, 2), calib)
    if a.sort:
        recs.sort(key=lambda r: r["cosine"])
    for r in recs:
        print(json.dumps(r))
    worst = min((r["cosine"] for r in recs), default=float("nan"))
    print(f"{len(recs)} layers, worst cosine {worst:.5f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
