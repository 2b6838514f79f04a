"""Executed vs modeled fps, the DSP roofline, what limits each layer, and resource use,
per board and network.

For each board and SqueezeNet version: compile (host simulation build, seeded weights,
4 calibration inputs), run the program on the engine's C simulation (the executed
timing: every module's loops and AXI transfers charged as they run) and on the fast cycle
model, and print one JSON line: fps of both, their per-layer agreement, efficiency =
MACs / (MAC-array DSPs x cycles), the module that limits each layer (the busiest of
load / compute / store within the layer), and the modeled resources with their margins.

    python benchmarks/model_vs_roofline.py [--boards zybo-z7-20,pynq-z2] [--clock 150]
"""
from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

import zynq_squeeze
from zynq_squeeze.boards import BOARDS
from zynq_squeeze.errors import ZynqSqueezeError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import squeezenet
from zynq_squeeze.report.summary import make_report
from zynq_squeeze.schedule.timing import layer_limits, simulate
from zynq_squeeze.toolchain.dae_sim import run_words
from zynq_squeeze.toolchain.relax_ext import layer_cycles

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default="zybo-z7-20,pynq-z2,ultra96-v2,zybo-z7-10")
    ap.add_argument("--versions", default="1.1,1.0")
    ap.add_argument("--clock", type=float, default=None, help="PL clock in MHz")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    for version in args.versions.split(","):
        mod = zynq_squeeze.calibrate(from_onnx(squeezenet(version, seed=0)), calib,
                                     progress=False)
        for board in args.boards.split(","):
            line = {"benchmark": "model_vs_roofline", "network": f"squeezenet{version}",
                    "board": board}
            with tempfile.TemporaryDirectory() as d:
                try:
                    res = zynq_squeeze.build(mod, board=board, out_dir=d, clock_mhz=args.clock)
                except (ZynqSqueezeError, RuntimeError) as e:
                    print(json.dumps({**line, "error": str(e).splitlines()[-1][:300]}), flush=True)
                    continue
                rep = make_report(res, f"squeezenet{version}")
            cg = res.codegen[0]
            cfg, prog, beat = cg.engine, cg.programs[0], cg.beat_x100
            executed = run_words(cfg, prog.words, prog.weights,
                                 np.zeros(prog.arena_words, np.uint64), beat)
            model = simulate(cfg, prog.words, beat)
            ex_layers = layer_cycles(prog, executed.insn_end)
            mo_layers = layer_cycles(prog, model.insn_end)
            agree = max(abs(a - b) / a for a, b in zip(ex_layers, mo_layers) if a)
            clock = cfg.clock_mhz
            p, r = rep["performance"], rep["resources"]
            macs = sum(layer.macs for layer, _, _ in prog.layers)
            print(json.dumps({
                **line, "clock_mhz": clock, "engine": f"{cfg.pe_oc}x8 (k={cfg.k})",
                "executed_fps": round(clock * 1e6 / executed.cycles, 2),
                "model_fps": round(clock * 1e6 / model.cycles, 2),
                "executed_cycles": executed.cycles, "model_cycles": model.cycles,
                "layer_agreement_max_rel_diff": agree,
                "roofline_fps": p["roofline_fps"],
                "efficiency": round(macs / (cfg.macs_per_cycle * executed.cycles), 4),
                "board_efficiency": round(macs / (BOARDS[board].dsp * executed.cycles), 4),
                "layer_cycles": dict(zip((lay.name for lay, _, _ in prog.layers), ex_layers)),
                "layer_limit": dict(zip((lay.name for lay, _, _ in prog.layers),
                                        layer_limits(model, prog.layer_ends))),
                "ddr_mb": round(p["ddr_bytes"] / 1e6, 3),
                **{f"{k}_used": v["used"] for k, v in r.items()},
                **{f"{k}_percent": v["percent"] for k, v in r.items()},
                "basis": "modeled (docs/ENGINE.md): executed C simulation + resource model",
            }), flush=True)


if __name__ == "__main__":
    main()
