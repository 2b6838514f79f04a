"""Modeled fps vs the DSP roofline, and resource use, per board and network.

For each board and SqueezeNet version: compile (host simulation build, seeded weights,
4 calibration inputs) and print one JSON line with the modeled figures of report.json.

    python benchmarks/model_vs_roofline.py [--boards zybo-z7-20,zybo-z7-10] [--clock 100]
"""
from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

import zynq_squeeze
from zynq_squeeze.boards import BOARDS
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import squeezenet
from zynq_squeeze.report.summary import make_report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--versions", default="1.1,1.0")
    ap.add_argument("--clock", type=float, default=None, help="PL clock in MHz")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    for version in args.versions.split(","):
        mod = zynq_squeeze.calibrate(from_onnx(squeezenet(version, seed=0)), calib,
                                     progress=False)
        for board in args.boards.split(","):
            with tempfile.TemporaryDirectory() as d:
                res = zynq_squeeze.build(mod, board=board, out_dir=d, clock_mhz=args.clock)
                rep = make_report(res, f"squeezenet{version}")
            p, r = rep["performance"], rep["resources"]
            print(json.dumps({
                "benchmark": "model_vs_roofline", "network": f"squeezenet{version}",
                "board": board, "clock_mhz": rep["clock_mhz"],
                "engine": f"{rep['engine']['pe_oc']}x{rep['engine']['pe_ic']}",
                "modeled_fps": p["fps"], "roofline_fps": p["roofline_fps"],
                "efficiency": p["efficiency"], "board_efficiency": p["board_efficiency"],
                "latency_ms": p["latency_ms"], "ddr_mb": round(p["ddr_bytes"] / 1e6, 3),
                **{f"{k}_used": v["used"] for k, v in r.items()},
                **{f"{k}_available": v["available"] for k, v in r.items()},
                "fits": all(v["used"] <= v["available"] for v in r.values()),
            }), flush=True)


if __name__ == "__main__":
    main()
