"""``zynq-squeeze`` command line: compile, run, demo, schedule, hls-report."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import ZynqSqueezeError

LIBRARY = "model.so"
MANIFEST = "manifest.json"
ONNX_COPY = "model.onnx"


def _load_calibration(path: str | None):
    if path is None:
        return None
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ZynqSqueezeError(f"cannot read calibration file {path}: {e}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        names = list(data.files)
        n = len(data[names[0]])
        return [{k: data[k][i] for k in names} for i in range(n)]
    return [data[i] for i in range(len(data))]


def compile_model(model, out_dir: Path, *, board: str = "zybo-z7-20", calibration=None,
                  tuning_log=None, clock_mhz=None, model_name: str | None = None,
                  progress: bool = True, log=print) -> dict:
    """Compile an ONNX model into ``out_dir``: host library, generated sources, report.

    Returns the report (also written to ``out_dir/report.json``).
    """
    import onnx

    from .frontend import onnx_import as frontend
    from .report.summary import make_report, write_outputs
    from .boards import get_board
    from .toolchain.driver import build as build_model
    from .toolchain.driver import check_clock

    get_board(board)  # bad options fail before anything is written
    check_clock(clock_mhz)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proto = frontend.load_onnx(model)
    name = model_name or (Path(model).stem if not isinstance(model, onnx.ModelProto)
                          else (proto.graph.name or "model"))
    mod = frontend.from_onnx(proto)
    log(f"[zynq-squeeze] imported {name}: {len(proto.graph.node)} ONNX nodes")
    res = build_model(mod, board=board, calibration=calibration, tuning_log=tuning_log,
                            out_dir=out_dir, model_name=name, clock_mhz=clock_mhz,
                            progress=progress)
    log(f"[zynq-squeeze] partitioned: {len(res.partition_report.functions)} offloaded "
        f"function(s), {100 * res.partition_report.offload_ratio:.2f} % of MACs")
    lib = out_dir / LIBRARY
    res.export_library(lib)
    onnx.save(proto, str(out_dir / ONNX_COPY))
    main = mod["main"]
    manifest = {"model": name, "board": board, "library": LIBRARY, "onnx": ONNX_COPY,
                "library_bytes": lib.stat().st_size, "library_sha256": _file_digest(lib),
                "inputs": [{"name": p.name, "shape": [int(s) for s in p.ty.shape],
                            "dtype": str(p.ty.dtype)} for p in main.params]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    report = make_report(res, name)
    report["compile_seconds"] = round(time.perf_counter() - t0, 3)
    write_outputs(res, report, out_dir, log=log)
    log(f"[zynq-squeeze] wrote {out_dir}/ (report.json, {LIBRARY}, src/) "
        f"in {report['compile_seconds']:.1f} s")
    return report


def _read_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise ZynqSqueezeError(f"{out_dir} is not a zynq-squeeze compile directory "
                               f"(no {MANIFEST}); run 'zynq-squeeze compile' first")
    try:
        man = json.loads(path.read_text())
        if not isinstance(man, dict) or not isinstance(man.get("inputs"), list) \
                or not isinstance(man.get("library"), str):
            raise ValueError("missing 'inputs' or 'library'")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ZynqSqueezeError(f"{path} is damaged ({e}); compile the model again") from None
    return man


def _file_digest(path: Path) -> str:
    """sha256 of a file (the compiled library is checked before it is loaded)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_library(out_dir: Path, man: dict) -> Path:
    """The library the manifest names, unchanged since compile (size and sha256): a
    truncated or replaced shared object would crash the process when loaded."""
    lib = Path(out_dir) / Path(man["library"]).name
    if not lib.is_file():
        raise ZynqSqueezeError(f"{lib} is missing; compile the model again")
    want = man.get("library_sha256")
    if want is not None and (lib.stat().st_size != man.get("library_bytes")
                             or _file_digest(lib) != want):
        raise ZynqSqueezeError(f"{lib} is not the library compiled into this directory "
                               "(size or sha256 differ); compile the model again")
    return lib


def run_compiled(out_dir: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the host (simulation) library in ``out_dir`` on ``inputs``."""
    import tvm
    from tvm import relax

    man = _read_manifest(out_dir)
    if len(inputs) != len(man["inputs"]):
        raise ZynqSqueezeError(f"the model takes {len(man['inputs'])} input(s), got {len(inputs)}")
    args = []
    for spec, x in zip(man["inputs"], inputs):
        x = np.asarray(x)
        if list(x.shape) != spec["shape"] or str(x.dtype) != spec["dtype"]:
            raise ZynqSqueezeError(f"input {spec['name']!r}: expected {spec['dtype']} of shape "
                                   f"{tuple(spec['shape'])}, got {x.dtype} of shape {x.shape}")
        args.append(tvm.runtime.tensor(np.ascontiguousarray(x)))
    lib = tvm.runtime.load_module(str(_check_library(Path(out_dir), man)))
    vm = relax.VirtualMachine(lib, tvm.cpu())
    out = vm["main"](*args)
    return _flatten(out)


def _flatten(out) -> list[np.ndarray]:
    if hasattr(out, "numpy"):
        return [out.numpy()]
    return [o.numpy() for o in out]


def run_float_reference(onnx_path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The float model on the CPU (TVM llvm build of the same ONNX file)."""
    import tvm
    from tvm import relax

    from .frontend import onnx_import as frontend

    mod = frontend.from_onnx(onnx_path)
    ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return _flatten(vm["main"](*[tvm.runtime.tensor(x) for x in inputs]))


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """How close int8 output ``a`` is to float output ``b``: cosine, max error, top-1."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denom = np.linalg.norm(a64) * np.linalg.norm(b64)
    res = {"cosine": float(a64 @ b64 / denom) if denom > 0 else float(np.array_equal(a64, b64)),
           "max_abs_error": float(np.abs(a64 - b64).max()) if a64.size else 0.0}
    if a.ndim >= 2:
        ta, tb = a.reshape(a.shape[0], -1).argmax(1), b.reshape(b.shape[0], -1).argmax(1)
        res["top1_agreement"] = float((ta == tb).mean())
    return res


# --------------------------------------------------------------------------- commands
def _cmd_compile(args) -> int:
    compile_model(args.model, Path(args.out), board=args.board,
                  calibration=_load_calibration(args.calib), tuning_log=args.tuning_log,
                  clock_mhz=args.clock, progress=not args.quiet)
    return 0


def _cmd_run(args) -> int:
    man = _read_manifest(Path(args.dir))
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ZynqSqueezeError(f"cannot read input {args.input}: {e}") from None
    if len(man["inputs"]) != 1:
        raise ZynqSqueezeError("'run' takes models with one input; use the Python API")
    out = run_compiled(Path(args.dir), [x])
    path = args.output if str(args.output).endswith(".npy") else f"{args.output}.npy"
    np.save(path, out[0])  # np.save appends .npy: name the file it wrote
    print(f"[zynq-squeeze] output {out[0].shape} {out[0].dtype} -> {path}")
    if args.reference:
        ref = run_float_reference(Path(args.dir) / man["onnx"], [x])
        agr = agreement(out[0], ref[0])
        print("[zynq-squeeze] int8 simulation vs float model: " +
              ", ".join(f"{k} {v:.4f}" for k, v in agr.items()))
        print(json.dumps(agr))
    return 0


DEMO_IMAGES = 8


def _cmd_demo(args) -> int:
    from .frontend.models import squeezenet

    out = Path(args.out).resolve()
    print("[zynq-squeeze] demo: SqueezeNet 1.1 (seeded weights) at 224x224 on zybo-z7-20")
    model = squeezenet("1.1", seed=0)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(4)]
    report = compile_model(model, out, board="zybo-z7-20", calibration=calib,
                           model_name="squeezenet1.1", progress=not args.quiet)
    # several images: one image's top-1 can hinge on a tiny float margin
    xs = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(DEMO_IMAGES)]
    t0 = time.perf_counter()
    ys = [run_compiled(out, [x])[0] for x in xs]
    dt = (time.perf_counter() - t0) / len(xs)
    refs = [run_float_reference(out / ONNX_COPY, [x])[0] for x in xs]
    agr = agreement(np.concatenate(ys), np.concatenate(refs))
    perf = report["performance"]
    print(f"[zynq-squeeze] offloaded {report['offload']['macs_offloaded']:,} of "
          f"{report['offload']['macs_total']:,} MACs; patterns {report['offload']['patterns']}")
    print(f"[zynq-squeeze] modeled on the board: {perf['latency_ms']:.2f} ms/image, "
          f"{perf['fps']:.1f} fps (DSP roofline {perf['roofline_fps']:.1f} fps, "
          f"efficiency {perf['efficiency']:.2f})")
    print(f"[zynq-squeeze] C simulation run: {1000 * dt:.1f} ms/image; vs float over "
          f"{len(xs)} images: cosine {agr['cosine']:.4f}, top-1 agreement "
          f"{agr.get('top1_agreement', float('nan')):.0%}")
    print(f"[zynq-squeeze] see {out}/report.json, {out}/report.html and {out}/hls/")
    return 0


def _cmd_schedule(args) -> int:
    from .report.summary import schedule_table

    path = Path(args.dir) / "report.json"
    if not path.is_file():
        raise ZynqSqueezeError(f"{args.dir} has no report.json; run 'zynq-squeeze compile' first")
    print(schedule_table(json.loads(path.read_text())))
    return 0


def _synthesis_report_path(path: Path) -> tuple[Path, Path | None]:
    """(csynth report path, compile directory or None) for a report file/dir or a compile dir."""
    from .codegen.hls_project import PROJECT, SOLUTION

    if (path / "report.json").is_file():
        rep = path / "hls" / PROJECT / SOLUTION / "syn" / "report"
        if not (rep / "csynth.xml").is_file():
            raise ZynqSqueezeError(
                f"{path} has no synthesis report yet ({rep}/csynth.xml): run 'make csynth' "
                f"in {path / 'hls'} (needs Vitis HLS on the PATH)")
        return rep, path
    return path, None


def resource_comparison(synth, model: dict) -> str:
    """Modeled vs synthesized BRAM18K / DSP / FF / LUT, one line each."""
    lines = [f"{'resource':<10}{'model':>10}{'synthesis':>11}{'ratio':>8}"]
    for key, attr in (("bram18k", "bram_18k"), ("dsp", "dsp"), ("ff", "ff"), ("lut", "lut")):
        m = (model.get("resources") or {}).get(key, {}).get("used")
        r = getattr(synth.resources, attr, None)
        ratio = f"{r / m:8.2f}" if m and r is not None else f"{'n/a':>8}"
        lines.append(f"{key:<10}{m if m is not None else 'n/a':>10}"
                     f"{r if r is not None else 'undef':>11}{ratio}")
    return "\n".join(lines)


def _cmd_hls_report(args) -> int:
    from .hls import csynth_report as hls_report

    path, compile_dir = _synthesis_report_path(Path(args.path))
    rep = hls_report.read(path)
    if args.json:
        print(json.dumps(hls_report.to_json(rep), indent=1))
    else:
        print(hls_report.summary(rep))
    compile_dir = Path(args.compare) if args.compare else compile_dir
    if compile_dir is not None:
        model_path = compile_dir / "report.json"
        if not model_path.is_file():
            raise ZynqSqueezeError(f"{compile_dir} has no report.json to compare with")
        model = json.loads(model_path.read_text())
        print()
        print(resource_comparison(rep, model))
        print()
        print(hls_report.format_comparison(rep, model["layers"]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zynq-squeeze", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile an ONNX model for a Zynq board")
    c.add_argument("model", help="ONNX file")
    c.add_argument("--board", default="zybo-z7-20")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--calib", help=".npy of calibration inputs (first axis = samples) or .npz")
    c.add_argument("--tuning-log", help="JSON schedule log (e.g. a previous schedule.json)")
    c.add_argument("--clock", type=float, help="PL clock in MHz (default: board's)")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_cmd_compile)
    r = sub.add_parser("run", help="run a compiled model (host C simulation)")
    r.add_argument("dir")
    r.add_argument("--input", required=True, help=".npy input")
    r.add_argument("--output", required=True, help=".npy output file")
    r.add_argument("--reference", action="store_true", help="also run the float model and compare")
    r.set_defaults(func=_cmd_run)
    d = sub.add_parser("demo", help="compile and run the built-in SqueezeNet 1.1")
    d.add_argument("--out", default="zsq_demo")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    s = sub.add_parser("schedule", help="print the per-layer schedule of a compile directory")
    s.add_argument("dir")
    s.set_defaults(func=_cmd_schedule)
    h = sub.add_parser("hls-report", help="read a Vivado/Vitis HLS csynth.xml report")
    h.add_argument("path", help="csynth.xml, a report/solution/project folder, or a compile "
                                "directory (then compared with its model)")
    h.add_argument("--json", action="store_true")
    h.add_argument("--compare", metavar="DIR", help="compare with a compile directory's model")
    h.set_defaults(func=_cmd_hls_report)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ZynqSqueezeError as e:
        print(f"zynq-squeeze: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zynq-squeeze: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, and keep Python from complaining
        # about the closed stdout at exit
        import io
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # stdout is not a file descriptor (captured): nothing to silence
        return 141


if __name__ == "__main__":
    sys.exit(main())
