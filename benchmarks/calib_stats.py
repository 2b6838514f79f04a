"""Per-tensor calibration statistics of an ONNX model: where absmax wastes int8 levels.

Calibrates on ``--calib`` N(0, 1) samples (seed 1, as benchmarks/model_zoo.py) and prints
one JSON line per calibrated tensor (composite index, pattern, key: in / mid / out / bp /
pool): ``absmax``, ``p9999`` (99.99th percentile of |x|), ``tail`` (absmax / p9999), the
``mse`` range (``quantize.ranges.mse_range``) and the tensor's own SQNR in dB quantized
alone at each range (``sqnr_absmax_db``, ``sqnr_mse_db``; histogram model, bin centers).
``--sort`` puts the largest tail first::

    PYTHONPATH=python python benchmarks/calib_stats.py model.onnx [--calib 8] [--sort]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnx


def sqnr_db(hist, rng: float) -> float:
    """10 log10(signal power / quantization error power) of ``hist``'s values at ``rng``."""
    from zynq_squeeze.quantize.ranges import quant_mse

    nzb = np.nonzero(hist.counts)[0]
    sig = float((((nzb + 0.5) * hist.width) ** 2 * hist.counts[nzb]).sum())
    err = float(quant_mse(hist, np.asarray([rng]))[0])
    return round(10 * np.log10(sig / err), 2) if err > 0 else float("inf")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx")
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--sort", action="store_true", help="largest absmax / p99.99 first")
    a = ap.parse_args(argv)
    from model_zoo import _inputs, samples

    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.partitioning.composite import parse_composite
    from zynq_squeeze.quantize.calibrate import collect_histograms, normalize_samples
    from zynq_squeeze.quantize.ranges import mse_range, percentile_range

    model = onnx.load(a.onnx)
    specs = _inputs(model)
    mod = from_onnx(model, {specs[0][0]: list(specs[0][1])})
    funcs, hists = collect_histograms(
        mod, normalize_samples(mod, samples(specs, a.calib, 1)), progress=False)
    recs = []
    for k, (f, hs) in enumerate(zip(funcs, hists)):
        pattern = parse_composite(f).pattern
        for key, h in hs.items():
            if h.absmax == 0:
                continue
            p, m = percentile_range(h), mse_range(h)
            recs.append({"index": k, "pattern": pattern, "key": key, "absmax": h.absmax,
                         "p9999": p, "tail": round(h.absmax / p, 2) if p else None,
                         "mse": m, "mse_over_absmax": round(m / h.absmax, 3),
                         "sqnr_absmax_db": sqnr_db(h, h.absmax), "sqnr_mse_db": sqnr_db(h, m)})
    if a.sort:
        recs.sort(key=lambda r: -(r["tail"] or 0))
    for r in recs:
        print(json.dumps(r))
    gain = [r["sqnr_mse_db"] - r["sqnr_absmax_db"] for r in recs]
    print(f"{len(recs)} tensors; mse gains {np.mean(gain):.2f} dB on average, "
          f"{max(gain, default=0):.2f} dB at most", file=sys.stderr)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
