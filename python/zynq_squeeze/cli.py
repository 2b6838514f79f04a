"""``zynq-squeeze`` command line: compile, run, demo, schedule, hls-report, deploy, tune."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .cache import file_sha256
from .errors import OptionError, ZynqSqueezeError

LIBRARY = "model.so"
MANIFEST = "manifest.json"
ONNX_COPY = "model.onnx"
# What a compile writes into its output directory; a later compile into the same
# directory removes these (and only these) first. MARKER is written first, so a compile
# that failed half-way is recognized too.
MARKER = ".zynq-squeeze"
OUTPUT_FILES = (MARKER, MANIFEST, LIBRARY, ONNX_COPY, "report.json", "report.html",
                "schedule.json")
OUTPUT_DIRS = ("src", "hls")


def _load_calibration(path: str | None):
    """Calibration samples from a .npy (samples along the first axis) or a .npz (one
    array per model input, the same number of samples each)."""
    if path is None:
        return None
    import zipfile

    def bad(why: str) -> ZynqSqueezeError:
        return ZynqSqueezeError(f"calibration file {path}: {why}")

    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                arrays = {k: data[k] for k in data.files}
        else:
            arrays = None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ZynqSqueezeError(f"cannot read calibration file {path}: {e}") from None
    if arrays is not None and not arrays:
        raise bad("the .npz holds no arrays; expected one array of samples per model input")
    for name, a in (arrays or {"": data}).items():
        what = f"array {name!r}" if name else "the array"
        if a.ndim == 0:
            raise bad(f"{what} is a scalar; expected samples along the first axis")
        if a.dtype.kind not in "biuf":
            raise bad(f"{what} holds {a.dtype} values; expected numbers")
        if len(a) == 0:
            raise bad(f"{what} holds no samples (its first axis is empty)")
    if arrays is None:
        return [data[i] for i in range(len(data))]
    counts = {k: len(a) for k, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise bad("the arrays hold different numbers of samples ("
                  + ", ".join(f"{k}: {n}" for k, n in counts.items()) + ")")
    n = next(iter(counts.values()))
    return [{k: a[i] for k, a in arrays.items()} for i in range(n)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def prepare_out_dir(out_dir: Path, keep=(), log=print) -> None:
    """Make ``out_dir`` ready for a compile.

    * a new directory is created;
    * a directory a previous compile wrote (it has ``.zynq-squeeze`` or ``manifest.json``)
      loses what that compile wrote (``OUTPUT_FILES``, ``src/``, ``hls/``), so no file
      of the previous model is left behind; anything else in it stays;
    * any other directory is used only when it holds none of those names (they would be
      overwritten or mixed with the compile's).

    ``keep``: paths a previous compile wrote that are inputs of this one (a tuning log
    ``out/schedule.json``, a model ``out/model.onnx``): not removed. Raises
    ``OptionError`` when ``out_dir`` is a file, is not writable or is another program's
    directory (then nothing is removed).
    """
    import shutil

    keep = [Path(k) for k in keep if k is not None]
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"output directory {out_dir} exists and is not a directory")

    def kept(p: Path) -> bool:
        return any(_same_file(p, k) or (p.is_dir() and not p.is_symlink()
                                        and k.resolve().is_relative_to(p.resolve()))
                   for k in keep)

    try:
        if out_dir.is_dir():
            ours = [out_dir / n for n in OUTPUT_FILES + OUTPUT_DIRS
                    if (out_dir / n).exists() or (out_dir / n).is_symlink()]
            previous = (out_dir / MARKER).is_file() or (out_dir / MANIFEST).is_file()
            if not previous:  # the user's files, even the compile's inputs: not ours
                clash = [p.name for p in ours]
                if clash:
                    raise OptionError(
                        f"output directory {out_dir} is not a zynq-squeeze compile directory "
                        f"but holds {', '.join(clash)}, which compile writes; choose a new "
                        "or empty directory")
            elif not os.access(out_dir, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied", str(out_dir))
            else:
                removed = []
                for p in ours:
                    if kept(p):
                        continue
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
                    if p.name != MARKER:
                        removed.append(p.name + ("/" if p.name in OUTPUT_DIRS else ""))
                if removed:
                    log(f"[zynq-squeeze] removed the previous compile's {', '.join(removed)} "
                        f"from {out_dir}")
        else:
            out_dir.mkdir(parents=True)
        (out_dir / MARKER).write_text(
            "A zynq-squeeze compile directory. A later compile into it removes what the\n"
            "previous one wrote (manifest.json, model.so, model.onnx, report.*, schedule.json,\n"
            "src/, hls/) and keeps every other file.\n")
    except OSError as e:
        raise OptionError(f"cannot write to output directory {out_dir}: "
                          f"{e.strerror or e}") from None


def compile_model(model, out_dir: Path, *, board: str = "zybo-z7-20", calibration=None,
                  tuning_log=None, clock_mhz=None, model_name: str | None = None,
                  progress: bool = True, log=print, shapes=None,
                  strict_qdq: bool = False, calibration_method: str | None = None,
                  bias_correction: bool | None = None, input_split: bool = False) -> dict:
    """Compile an ONNX model into ``out_dir``: host library, generated sources, report.

    ``out_dir`` is prepared by ``prepare_out_dir``: a previous compile's files there are
    removed first, other files are kept. Returns the report (also written to
    ``out_dir/report.json``).
    """
    import onnx

    from .boards import get_board
    from .cache import cache_dir
    from .frontend import onnx_import as frontend
    from .report.summary import end_to_end_line, make_report, write_outputs
    from .toolchain.driver import build as build_model
    from .toolchain.driver import check_calibration_method, check_clock

    # bad options and inputs fail before anything is written
    get_board(board)
    check_clock(clock_mhz)
    check_calibration_method(calibration_method)
    cache_dir()
    if tuning_log is not None:
        from .schedule.select import read_tuning_log
        # raises TuningLogError naming the file, key and field (a measurement log: when
        # it holds nothing measured for this board)
        read_tuning_log(tuning_log, board=get_board(board).name)
    out_dir = Path(out_dir).resolve()
    t0 = time.perf_counter()
    proto = frontend.load_onnx(model)
    from_file = not isinstance(model, onnx.ModelProto)
    shape_dict = frontend.parse_shapes(proto, shapes)
    mod = frontend.from_onnx(proto, shape_dict)  # a dynamic shape fails before any file
    prepare_out_dir(out_dir, keep=[model if from_file else None, tuning_log], log=log)
    name = model_name or (Path(model).stem if from_file else (proto.graph.name or "model"))
    log(f"[zynq-squeeze] imported {name}: {len(proto.graph.node)} ONNX nodes")
    res = build_model(mod, board=board, calibration=calibration, tuning_log=tuning_log,
                            out_dir=out_dir, model_name=name, clock_mhz=clock_mhz,
                            progress=progress, strict_qdq=strict_qdq,
                            calibration_method=calibration_method,
                            bias_correction=bias_correction, input_split=input_split)
    log(f"[zynq-squeeze] partitioned: {len(res.partition_report.functions)} offloaded "
        f"function(s), {100 * res.partition_report.offload_ratio:.2f} % of MACs")
    if res.qdq is not None:
        log(f"[zynq-squeeze] QDQ model: {res.calibration_source}; int8 weights as-is for "
            f"{res.qdq['weights_as_is']} conv(s), re-quantized for "
            f"{res.qdq['weights_requantized']} (report.json \"qdq\")")
    lib = out_dir / LIBRARY
    res.export_library(lib)
    if not (from_file and _same_file(Path(model), out_dir / ONNX_COPY)):
        onnx.save(proto, str(out_dir / ONNX_COPY))
    main = mod["main"]
    manifest = {"model": name, "board": board, "library": LIBRARY, "onnx": ONNX_COPY,
                "shapes": shape_dict,
                "library_bytes": lib.stat().st_size, "library_sha256": file_sha256(lib),
                "inputs": [{"name": p.name, "shape": [int(s) for s in p.ty.shape],
                            "dtype": str(p.ty.dtype)} for p in main.params]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    report = make_report(res, name)
    report["compile_seconds"] = round(time.perf_counter() - t0, 3)
    write_outputs(res, report, out_dir, log=log)
    log(f"[zynq-squeeze] wrote {out_dir}/ (report.json, {LIBRARY}, src/) "
        f"in {report['compile_seconds']:.1f} s")
    log(f"[zynq-squeeze] {end_to_end_line(report)}")
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


def _check_library(out_dir: Path, man: dict) -> Path:
    """The library the manifest names, unchanged since compile (size and sha256): a
    truncated or replaced shared object would crash the process when loaded."""
    lib = Path(out_dir) / Path(man["library"]).name
    if not lib.is_file():
        raise ZynqSqueezeError(f"{lib} is missing; compile the model again")
    want = man.get("library_sha256")
    if want is not None and (lib.stat().st_size != man.get("library_bytes")
                             or file_sha256(lib) != want):
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
    path = _check_library(Path(out_dir), man)
    try:
        lib = tvm.runtime.load_module(str(path))
        vm = relax.VirtualMachine(lib, tvm.cpu())
    except Exception as e:  # noqa: BLE001 - TVM reports a bad shared object in many types
        why = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
        raise ZynqSqueezeError(f"cannot load {path} ({why}); compile the model again") from None
    out = vm["main"](*args)
    return _flatten(out)


def _flatten(out) -> list[np.ndarray]:
    if hasattr(out, "numpy"):
        return [out.numpy()]
    return [o.numpy() for o in out]


def run_float_reference(onnx_path: Path, inputs: list[np.ndarray], shapes=None
                        ) -> list[np.ndarray]:
    """The float model on the CPU (TVM llvm build of the same ONNX file; ``shapes``: the
    shape_dict it was compiled with)."""
    import tvm
    from tvm import relax

    from .frontend import onnx_import as frontend

    mod = frontend.from_onnx(onnx_path, shapes or None)
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
    from .toolchain.driver import check_clock

    check_clock(args.clock)  # before the calibration file is even read
    compile_model(args.model, Path(args.out), board=args.board,
                  calibration=_load_calibration(args.calib), tuning_log=args.tuning_log,
                  clock_mhz=args.clock, progress=not args.quiet, shapes=args.shape,
                  strict_qdq=args.strict_qdq, calibration_method=args.calibration_method,
                  bias_correction={"on": True, "off": False}.get(args.bias_correction),
                  input_split=args.input_split == "on")
    return 0


def _cmd_deploy(args) -> int:
    from .deployment.deploy import deploy
    from .frontend import onnx_import as frontend
    from .toolchain.driver import check_clock

    check_clock(args.clock)
    calibration = _load_calibration(args.calib)
    proto = frontend.load_onnx(args.model)
    mod = frontend.from_onnx(proto, frontend.parse_shapes(proto, args.shape))
    name = Path(args.model).stem
    log = (lambda *_: None) if args.quiet else print
    bundle = deploy(mod, args.board, Path(args.out),
                    calibration=calibration, tuning_log=args.tuning_log, clock_mhz=args.clock,
                    model_name=name, output_names=[o.name for o in proto.graph.output],
                    backend=args.backend, host=args.host, progress=not args.quiet, log=log)
    perf = bundle.report["performance"]
    if not args.quiet:
        print(f"[zynq-squeeze] modeled: {perf['latency_ms']:.3f} ms accelerator time per "
              f"inference at {bundle.report['clock_mhz']:g} MHz, {perf['end_to_end_ms']:.3f} ms "
              f"end to end with the ARM's share ({perf['end_to_end_fps']:.1f} fps); copy "
              f"{bundle.out_dir.name}/ to the board and follow its README.md")
    return 0


def _parse_weights(text: str | None) -> dict | None:
    """``a=2,b=1`` -> {"a": 2.0, "b": 1.0}."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, eq, val = part.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise OptionError(f"--weights expects NAME=NUMBER[,NAME=NUMBER...], got {part!r}")
    return out


def _parse_clocks(text: str | None):
    if not text:
        return None
    try:
        return tuple(float(c) for c in text.split(","))
    except ValueError:
        raise OptionError(f"--clocks expects MHz values separated by commas, got {text!r}") from None


def _cmd_tune(args) -> int:
    from .frontend import onnx_import as frontend
    from .tuning.tuner import tune

    if args.measure != "rpc" and (args.rpc_tracker or args.rpc_key):
        raise OptionError("--rpc-tracker and --rpc-key go with --measure rpc")
    options = {}
    if args.measure == "rpc":
        if not args.rpc_tracker:
            raise OptionError("--measure rpc needs --rpc-tracker HOST:PORT (and --rpc-key)")
        options["tracker"] = args.rpc_tracker
        if args.rpc_key:
            options["key"] = args.rpc_key
    weights, clocks = _parse_weights(args.weights), _parse_clocks(args.clocks)
    calibration = _load_calibration(args.calib)
    models, used = {}, set()
    for path in args.model:
        name = Path(path).stem
        if name in models:
            name = f"{name}_{len(models)}"
        proto = frontend.load_onnx(path)
        mine = set(frontend.input_names(proto))
        items = [i for i in args.shape or [] if i.rpartition("=")[0] in mine]
        models[name] = frontend.from_onnx(proto, frontend.parse_shapes(proto, items))
        used.update(items)
    unused = [i for i in args.shape or [] if i not in used]
    if unused:  # a --shape that names no model's input (or is malformed)
        raise OptionError(f"--shape {unused[0]!r}: no model given has an input named "
                          f"{unused[0].rpartition('=')[0]!r}")
    res = tune(models, board=args.board, trials=args.trials, log=args.log,
               strategy=args.strategy, measure=args.measure, resume=not args.no_resume,
               seed=args.seed, clocks=clocks, weights=weights, calibration=calibration,
               measure_options=options, progress=not args.quiet)
    s = res.summary()
    if not args.quiet:
        print(f"[zynq-squeeze] tuned {', '.join(models)} on {args.board}: {res.trials} new "
              f"measurement(s) ({res.strategy}, {res.measurer}), {res.resumed} from the log, "
              f"{res.rejected} rejected by the resource model, in {res.seconds:.1f} s")
        if res.best is not None:
            e = res.best.candidate.engine
            line = (f"[zynq-squeeze] best: {res.best_cost_us / 1000:.3f} ms, engine "
                    f"{e.pe_oc}x8 MACs (k={e.k}) at {e.clock_mhz:g} MHz")
            if res.default_cost_us:
                line += (f"; default {res.default_cost_us / 1000:.3f} ms "
                         f"({res.speedup:.3f}x faster tuned)")
            print(line)
        print(f"[zynq-squeeze] log: {args.log}; apply it with 'zynq-squeeze compile MODEL "
              f"--tuning-log {args.log}'")
    if args.json:
        print(json.dumps(s))
    if res.best is None:
        raise ZynqSqueezeError("no candidate could be measured (see the log's errors)")
    return 0


def _load_input(path: str, man: dict) -> np.ndarray:
    """The input array of a one-input model from a .npy, or from a .npz holding one
    array (or an array named after the model's input)."""
    import zipfile

    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                names = list(data.files)
                want = man["inputs"][0].get("name") if man["inputs"] else None
                if want in names:
                    return data[want]
                if len(names) != 1:
                    raise ZynqSqueezeError(
                        f"input {path}: the .npz holds {len(names)} arrays "
                        f"({', '.join(names) or 'none'}); give one array, or one named "
                        f"{want!r} after the model's input")
                return data[names[0]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ZynqSqueezeError(f"cannot read input {path}: {e}") from None
    return data


def _output_path(output: str) -> Path:
    """The .npy ``run`` writes (np.save appends .npy), checked before the model runs."""
    path = Path(output if str(output).endswith(".npy") else f"{output}.npy")
    parent = path.parent
    if path.is_dir():
        raise ZynqSqueezeError(f"--output {path} is a directory; name a .npy file")
    if not parent.is_dir():
        raise ZynqSqueezeError(f"--output {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                     and not os.access(path, os.W_OK)):
        raise ZynqSqueezeError(f"--output {path}: not writable")
    return path


def _cmd_run(args) -> int:
    man = _read_manifest(Path(args.dir))
    if len(man["inputs"]) != 1:
        raise ZynqSqueezeError("'run' takes models with one input; use the Python API")
    path = _output_path(args.output)
    x = _load_input(args.input, man)
    out = run_compiled(Path(args.dir), [x])
    np.save(path, out[0])
    print(f"[zynq-squeeze] output {out[0].shape} {out[0].dtype} -> {path}")
    if args.reference:
        ref = run_float_reference(Path(args.dir) / man["onnx"], [x], man.get("shapes"))
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
          f"efficiency {perf['efficiency']:.2f}); end to end with the ARM "
          f"{perf['end_to_end_ms']:.2f} ms/image, {perf['end_to_end_fps']:.1f} fps")
    print(f"[zynq-squeeze] C simulation run: {1000 * dt:.1f} ms/image; vs float over "
          f"{len(xs)} images: cosine {agr['cosine']:.4f}, top-1 agreement "
          f"{agr.get('top1_agreement', float('nan')):.0%}")
    print(f"[zynq-squeeze] see {out}/report.json, {out}/report.html and {out}/hls/")
    return 0


def _read_model_report(d: Path) -> tuple[Path, dict]:
    """``d/report.json`` of a compile directory, checked to be a report."""
    path = Path(d) / "report.json"
    if not path.is_file():
        raise ZynqSqueezeError(f"{d} has no report.json; run 'zynq-squeeze compile' first")
    try:
        rep = json.loads(path.read_text())
        if not isinstance(rep, dict) or not isinstance(rep.get("layers"), list):
            raise ValueError("no 'layers' list")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ZynqSqueezeError(f"{path} is damaged ({e}); compile the model again") from None
    return path, rep


def _render(path: Path, fn, *args) -> str:
    """``fn(*args)`` over a report a user may have edited: a missing or mistyped field is
    a one-line error naming the file, not a traceback."""
    try:
        return fn(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise ZynqSqueezeError(f"{path} is damaged ({what}); compile the model again") from None


def _cmd_schedule(args) -> int:
    from .report.summary import schedule_table

    path, rep = _read_model_report(Path(args.dir))
    print(_render(path, schedule_table, rep))
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
    from .engine.interface import ENGINE_TOP
    from .hls import csynth_report as hls_report

    path, compile_dir = _synthesis_report_path(Path(args.path))
    rep = hls_report.read(path)
    compile_dir = Path(args.compare) if args.compare else compile_dir
    compared = None
    if compile_dir is not None:  # a damaged report.json fails before anything is printed
        model_path, model = _read_model_report(compile_dir)
        compared = (_render(model_path, resource_comparison, rep, model),
                    _render(model_path, hls_report.format_comparison, rep, model["layers"]))
    if args.json:
        print(json.dumps(hls_report.to_json(rep), indent=1))
    else:
        print(hls_report.summary(rep))
    if compared is not None:
        if rep.top_module != ENGINE_TOP.name:
            sys.stdout.flush()
            print(f"zynq-squeeze: warning: the HLS report's top function is "
                  f"{rep.top_module!r}, but {compile_dir} compiles to {ENGINE_TOP.name!r}: "
                  "the report is of another design, the ratios compare unrelated figures",
                  file=sys.stderr, flush=True)
        print()
        print(compared[0])
        print()
        print(compared[1])
    return 0


class _UsageError(Exception):
    """A command line argparse refuses (reported in one line by main())."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _board_name(name: str) -> str:
    from .boards import get_board

    try:
        return get_board(name).name
    except ZynqSqueezeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_shape_option(p) -> None:
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape for an input with symbolic dims, e.g. a dynamic batch: "
                        "--shape data=1,3,224,224 (repeat per input)")


def parser() -> argparse.ArgumentParser:
    from .boards import BOARDS, DEFAULT_BOARD
    from .quantize.ranges import DEFAULT_BIAS_CORRECTION, DEFAULT_METHOD, METHODS

    p = _Parser(prog="zynq-squeeze", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile an ONNX model for a Zynq board")
    c.add_argument("model", help="ONNX file")
    c.add_argument("--board", default=DEFAULT_BOARD, type=_board_name, choices=sorted(BOARDS),
                   help="the board to compile for: its part, resources, DDR bandwidth and "
                        f"default clock (default: {DEFAULT_BOARD})")
    c.add_argument("--out", required=True,
                   help="output directory: created if new; if a previous compile wrote it, "
                        "that compile's files (manifest.json, model.so, model.onnx, report.*, "
                        "schedule.json, src/, hls/) are removed first and other files kept; "
                        "any other directory must not hold those names")
    c.add_argument("--calib", help=".npy of calibration inputs (first axis = samples) or .npz "
                                   "(one such array per model input)")
    c.add_argument("--tuning-log", help="JSON schedule log (e.g. a previous schedule.json) or "
                                        "a measurement log of 'zynq-squeeze tune' (.jsonl: "
                                        "its best engine and best tile per layer apply)")
    c.add_argument("--clock", type=float, help="PL clock in MHz, 1 to 500 (default: board's)")
    c.add_argument("--calibration-method", choices=METHODS,
                   help="how a tensor's calibration values become its int8 range: absmax "
                        "(largest |x|), mse (clipping range of least quantization error), "
                        f"percentile (99.99th of |x|) (default: {DEFAULT_METHOD}); a QDQ "
                        "model keeps its own scales")
    c.add_argument("--bias-correction", choices=("on", "off"),
                   help="subtract from each conv's bias the mean output shift its int8 "
                        "weights cause on the calibration data (default: "
                        f"{'on' if DEFAULT_BIAS_CORRECTION else 'off'})")
    c.add_argument("--input-split", choices=("on", "off"), default="off",
                   help="write the image the first conv reads as two int8 planes (the "
                        "rounding and its residual at 1/16 the step: ~24 dB less input "
                        "error; default: off: it costs a patch-mode first layer time; "
                        "README, Calibration)")
    c.add_argument("--strict-qdq", action="store_true",
                   help="a QDQ model: refuse asymmetric (zero point != 0) offloaded tensors "
                        "instead of widening their ranges to the symmetric engine's")
    c.add_argument("--quiet", action="store_true")
    _add_shape_option(c)
    c.set_defaults(func=_cmd_compile)
    r = sub.add_parser("run", help="run a compiled model (host C simulation)")
    r.add_argument("dir")
    r.add_argument("--input", required=True,
                   help=".npy input (or a .npz holding one array, or one named as the "
                        "model's input)")
    r.add_argument("--output", required=True,
                   help="output .npy file (.npy is appended when missing); its directory "
                        "must exist")
    r.add_argument("--reference", action="store_true", help="also run the float model and compare")
    r.set_defaults(func=_cmd_run)
    dp = sub.add_parser("deploy", help="write a bundle that runs the model on the board "
                                       "(no Python or TVM there)")
    dp.add_argument("model", help="ONNX file")
    dp.add_argument("--board", default=DEFAULT_BOARD, type=_board_name, choices=sorted(BOARDS),
                    help=f"the Zynq-7000 board to deploy to (default: {DEFAULT_BOARD})")
    dp.add_argument("--out", required=True,
                    help="bundle directory: new, empty, or a previous bundle (replaced)")
    dp.add_argument("--calib", help="calibration inputs, as for compile")
    dp.add_argument("--tuning-log", help="JSON schedule log, as for compile")
    dp.add_argument("--clock", type=float, help="PL clock in MHz, 1 to 500 (default: board's)")
    dp.add_argument("--backend", choices=("zynq", "csim"), default="zynq",
                    help="zynq: the executables drive the accelerator IP (UIO, u-dma-buf); "
                         "csim: they run the engine's C simulation on the ARM instead (no "
                         "bitstream needed; e.g. under qemu-arm-static)")
    dp.add_argument("--host", action="store_true",
                    help="also build the x86 variant (C simulation) under build/host")
    dp.add_argument("--quiet", action="store_true")
    _add_shape_option(dp)
    dp.set_defaults(func=_cmd_deploy)
    d = sub.add_parser("demo", help="compile and run the built-in SqueezeNet 1.1")
    d.add_argument("--out", default="zsq_demo", help="output directory (as for compile)")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    s = sub.add_parser("schedule", help="print the per-layer schedule of a compile directory")
    s.add_argument("dir")
    s.set_defaults(func=_cmd_schedule)
    t = sub.add_parser("tune", help="search the engine and the layer tiles (one engine for "
                                    "all the models given)")
    t.add_argument("model", nargs="+", help="ONNX file(s); several share one engine")
    t.add_argument("--board", default=DEFAULT_BOARD, type=_board_name, choices=sorted(BOARDS),
                   help=f"the board (default: {DEFAULT_BOARD})")
    t.add_argument("--trials", type=int, default=200, help="new measurements (default: 200)")
    t.add_argument("--log", default="tune.jsonl",
                   help="JSON Lines log, appended to (default: tune.jsonl)")
    t.add_argument("--strategy", default="auto",
                   choices=("auto", "grid", "random", "anneal", "xgb"),
                   help="auto: grid for small spaces, else xgb (model-based)")
    t.add_argument("--measure", default="model", choices=("model", "sim", "hls", "rpc"),
                   help="model: fast cycle model; sim: C simulation; hls: Vitis HLS csynth; "
                        "rpc: a board over a TVM RPC tracker")
    t.add_argument("--rpc-tracker", metavar="HOST:PORT", help="TVM RPC tracker (--measure rpc)")
    t.add_argument("--rpc-key", metavar="KEY", help="device key at the tracker (--measure rpc)")
    t.add_argument("--clocks", metavar="MHZ,...",
                   help="PL clocks to try (default: 100,125,142.86,150, capped by the board)")
    t.add_argument("--weights", metavar="NAME=W,...",
                   help="weight of each model's latency in the cost (default: 1 each); "
                        "NAME is the ONNX file's stem")
    t.add_argument("--calib", help="calibration inputs, as for compile (cycles do not "
                                   "depend on them)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-resume", action="store_true",
                   help="measure again what the log already holds")
    t.add_argument("--json", action="store_true", help="print a JSON summary line")
    t.add_argument("--quiet", action="store_true")
    _add_shape_option(t)
    t.set_defaults(func=_cmd_tune)
    h = sub.add_parser("hls-report", help="read a Vivado/Vitis HLS csynth.xml report")
    h.add_argument("path", help="csynth.xml, a report/solution/project folder, or a compile "
                                "directory (then compared with its model)")
    h.add_argument("--json", action="store_true")
    h.add_argument("--compare", metavar="DIR", help="compare with a compile directory's model")
    h.set_defaults(func=_cmd_hls_report)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the command line: one line, no file:line of the library."""
    text = " ".join(str(message).split())
    for prefix in ("zynq_squeeze: ", "zynq-squeeze: "):
        text = text.removeprefix(prefix)
    print(f"zynq-squeeze: warning: {text}", file=sys.stderr)


def _os_error(e: OSError) -> str:
    names = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    return f"{names}: {e.strerror}" if names and e.strerror else str(e)


def main(argv=None) -> int:
    import warnings

    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        args = parser().parse_args(argv)
        return args.func(args)
    except _UsageError as e:
        print(f"zynq-squeeze: error: {e}", file=sys.stderr)
        return 2
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

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # stdout is not a file descriptor (captured): nothing to silence
        return 141
    except OSError as e:  # a file or directory the system refused (full disk, permissions)
        print(f"zynq-squeeze: error: {_os_error(e)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
