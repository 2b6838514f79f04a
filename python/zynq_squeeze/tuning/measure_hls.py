"""The ``hls`` measurer: Vitis HLS C synthesis of each candidate's engine.

What it measures: for every distinct engine (``DaeConfig``, clock included) among the
candidates, the engine's HLS project (``codegen.hls_project``) is written and synthesized
with ``vitis_hls -f run_hls.tcl -tclargs csynth`` (or ``ZSQ_HLS_STEPS=csynth vitis-run
--mode hls --tcl run_hls.tcl``): C synthesis only, no C simulation, co-simulation or IP
export. ``hls.csynth_report`` reads the resources (BRAM_18K, DSP, LUT, FF) and the
estimated clock period. A candidate's ``cycles`` are the fast model's (the ``model``
measurer's: ``schedule.timing`` on each function's program, unscaled; its per-layer
cycles in ``detail["model"]``); csynth decides whether they are reachable:

* an estimated clock period above the target (``1000 / clock_mhz``) is the error
  ``timing not met: X ns > Y ns``;
* a resource above the board's limit (``dae_engine_search.LIMITS`` of the board's
  counts: BRAM18K 90 %, LUT 70 %, DSP and FF 100 %) is an error naming it
  (``DSP 288 > 220 (100% of 220) on zybo-z7-20``); the resource model's own estimate
  does not reject a candidate here, csynth's numbers decide;
* a failed, timed-out or unreadable synthesis is an error with the tool's last lines.

Synthesis depends only on the engine: candidates that share an engine (different tiles)
share one csynth run, cached in the measurer (and on disk under ``keep_dir``, keyed by a
hash of the synthesized sources and the tcl). A candidate the fast model already rejects
(a tile that does not fit) gets the model's error without a synthesis.

The tool: ``vitis_hls`` (a name looked up on the PATH, or a path); the default also
accepts ``vitis-run`` (Vitis 2023.2+). When neither is found the constructor raises
``OptionError`` once ("vitis_hls not on the PATH ...") rather than returning an error per
candidate: a search whose every measurement would fail is refused before it starts.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..boards import Board
from ..engine.dae_config import DaeConfig
from ..errors import OptionError, ZynqSqueezeError
from ..quantize.layers import layer_signature
from .candidate import Candidate, Measurement

__all__ = ["HlsMeasurer", "SynthResult", "find_hls_tool", "resource_errors"]

DEFAULT_TIMEOUT_S = 4 * 3600.0  # a csynth of the engine takes minutes to an hour
# (Measurement.resources key, Board attribute, label in messages and csynth.xml)
_RESOURCES = (("bram18k", "bram18k", "BRAM_18K"), ("dsp", "dsp", "DSP"),
              ("lut", "lut", "LUT"), ("ff", "ff", "FF"))
_STAMP = "zsq_csynth.json"  # in a kept project: the inputs' hash of its csynth.xml


def find_hls_tool(spec: str = "vitis_hls") -> str:
    """The HLS executable ``spec`` names (a name on the PATH or a path); the default
    ``vitis_hls`` falls back to ``vitis-run``. Raises ``OptionError`` when it is missing
    or is Vivado HLS (which this project does not support)."""
    spec = str(spec or "vitis_hls")
    base = os.path.basename(spec)
    if base.startswith("vivado_hls"):
        raise OptionError(f"{spec!r} is Vivado HLS, which the engine does not support: it needs "
                          "Vitis HLS 2021.1 or later (vitis_hls, or vitis-run from 2023.2)")
    if os.sep in spec:
        if os.path.isfile(spec) and os.access(spec, os.X_OK):
            return os.path.abspath(spec)
        raise OptionError(f"HLS tool {spec} does not exist or is not executable")
    found = shutil.which(spec) or (shutil.which("vitis-run") if spec == "vitis_hls" else None)
    if found is None:
        raise OptionError(f"{spec} not on the PATH: the hls measurer runs Vitis HLS csynth "
                          "(source <Xilinx>/Vitis_HLS/<version>/settings64.sh, 2021.1 or later, "
                          "or pass the tool's path); --measure model or sim need no Xilinx tools")
    return found


def _hls_command(tool: str) -> list[str]:
    if os.path.basename(tool).startswith("vitis-run"):
        return [tool, "--mode", "hls", "--tcl", "run_hls.tcl"]
    return [tool, "-f", "run_hls.tcl", "-tclargs", "csynth"]


@dataclass
class SynthResult:
    """What one csynth run of an engine gave (``error`` when it gave nothing usable)."""

    error: str | None = None
    resources: dict[str, int] = field(default_factory=dict)
    estimated_clock_ns: float | None = None
    target_clock_ns: float | None = None
    latency_worst: int | None = None
    tool_version: str | None = None
    project: str | None = None  # the kept project directory (keep_dir), else None
    seconds: float = 0.0
    cached: bool = False

    def to_json(self) -> dict:
        return {"error": self.error, "resources": dict(self.resources),
                "estimated_clock_ns": self.estimated_clock_ns,
                "target_clock_ns": self.target_clock_ns, "latency_worst": self.latency_worst,
                "tool_version": self.tool_version, "project": self.project,
                "seconds": round(self.seconds, 3), "cached": self.cached}


def resource_errors(resources: dict[str, int], board: Board, limits=None) -> list[str]:
    """``["DSP 288 > 220 (100% of 220) on zybo-z7-20", ...]`` for every resource above
    ``limits`` (fraction of the board's per resource; default the engine search's
    ``LIMITS``: BRAM18K 90 %, LUT 70 %, DSP and FF 100 %, margins for place and route)."""
    from ..schedule.dae_engine_search import LIMITS

    limits = LIMITS if limits is None else limits
    out = []
    for key, attr, label in _RESOURCES:
        used, avail = resources.get(key), getattr(board, attr)
        cap = int(limits.get(key, 1.0) * avail)
        if used is not None and used > cap:
            out.append(f"{label} {used:,} > {cap:,} ({limits.get(key, 1.0):.0%} of {avail:,}) "
                       f"on {board.name}")
    return out


def _tail(text: str, lines: int = 6, limit: int = 800) -> str:
    """The tool's ERROR lines, or its last lines, for an error message."""
    rows = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in rows if "ERROR" in ln or "error:" in ln.lower()]
    pick = (errs or rows)[-lines:]
    s = " | ".join(pick)
    return s[-limit:] if s else "(no output)"


def _engine_key(board: Board, engine: DaeConfig) -> str:
    text = json.dumps({"board": board.name, "engine": engine.to_json()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class HlsMeasurer:
    """Measure candidates with Vitis HLS csynth of their engine (module doc).

    ``vitis_hls``: the tool (name on the PATH or path; ``vitis-run`` is accepted);
    ``jobs``: engines synthesized at once; ``keep_dir``: keep the projects there (one
    ``<board>-<engine hash>/hls`` per engine) and reuse a csynth whose inputs did not
    change; None: temporary projects, removed after reading the report; ``timeout_s``:
    wall-time limit of one csynth (the tool's process group is killed after it).
    Raises ``OptionError`` when the tool is missing (see module doc).
    """

    name = "hls"

    def __init__(self, vitis_hls: str = "vitis_hls", jobs: int = 1, keep_dir=None,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        if type(jobs) is not int or jobs < 1:
            raise OptionError(f"hls measurer: jobs must be an integer >= 1, got {jobs!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise OptionError(f"hls measurer: timeout_s must be > 0 seconds, got {timeout_s!r}")
        self.tool = find_hls_tool(vitis_hls)
        self.jobs = jobs
        self.keep_dir = Path(keep_dir) if keep_dir is not None else None
        self.timeout_s = float(timeout_s)
        self._cache: dict[tuple[str, DaeConfig], SynthResult] = {}
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()  # running csynths (killed on Ctrl-C)
        self._stopping = False
        self.runs = 0  # csynth runs started (tests, logs)

    # ------------------------------------------------------------------ measure
    def measure(self, task, candidates: list[Candidate]) -> list[Measurement]:
        base = self._model(task, candidates)
        # one synthesis per engine that a valid candidate needs and the cache lacks
        todo: list[DaeConfig] = []
        for c, m in zip(candidates, base):
            key = (task.board.name, c.engine)
            if m.error is None and key not in self._cache and c.engine not in todo:
                todo.append(c.engine)
        fresh: set[DaeConfig] = set()
        if todo:
            pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(todo)))
            try:
                results = list(pool.map(lambda e: self._synth_safe(task, e, candidates), todo))
            except BaseException:  # Ctrl-C: stop the syntheses under way, start no other
                self._stopping = True
                with self._lock:
                    for proc in list(self._procs):
                        _kill_group(proc)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            for engine, res in zip(todo, results):
                self._cache[(task.board.name, engine)] = res
                fresh.add(engine)
        out = []
        for c, m in zip(candidates, base):
            out.append(self._combine(task, c, m, fresh))
            fresh.discard(c.engine)  # the synthesis time is charged to the first user
        return out

    def _model(self, task, candidates: list[Candidate]) -> list[Measurement]:
        """The fast model's measurements (cycles, per-layer detail, tile and token
        errors) without its resource limits: csynth's report decides resources."""
        from .measure_model import _run as model_run
        from .programs import measure_each

        unbounded = replace(task, board=replace(task.board, bram18k=1 << 40, dsp=1 << 40,
                                                lut=1 << 40, ff=1 << 40))
        return [measure_each(unbounded, c, self.name, model_run) for c in candidates]

    def _combine(self, task, cand: Candidate, m: Measurement, fresh: set) -> Measurement:
        detail = {"model": dict(m.detail)} if m.detail else {}
        if m.error is not None:
            return Measurement(cand, self.name, error=m.error, resources=dict(m.resources),
                               seconds=m.seconds, detail=detail)
        syn = self._cache[(task.board.name, cand.engine)]
        detail["csynth"] = syn.to_json()
        seconds = m.seconds + (syn.seconds if cand.engine in fresh else 0.0)
        if syn.error is not None:
            return Measurement(cand, self.name, error=syn.error, seconds=seconds, detail=detail)
        errors = resource_errors(syn.resources, task.board)
        target = 1000.0 / cand.engine.clock_mhz
        est = syn.estimated_clock_ns
        if est is None:
            errors.append("csynth reported no estimated clock period")
        elif est > target + 1e-9:
            errors.append(f"timing not met: {est:.3f} ns > {target:.3f} ns "
                          f"({cand.engine.clock_mhz:g} MHz)")
        return Measurement(cand, self.name, cycles=None if errors else m.cycles,
                           error="; ".join(errors) if errors else None,
                           resources=dict(syn.resources), seconds=seconds, detail=detail)

    # ------------------------------------------------------------------ synthesis
    def _synth_safe(self, task, engine: DaeConfig, candidates) -> SynthResult:
        t0 = time.perf_counter()
        try:
            res = self._synth(task, engine, candidates)
        except (ZynqSqueezeError, ValueError, TypeError, OSError) as e:
            res = SynthResult(error=f"HLS project of the engine could not be written or "
                                    f"synthesized: {e}")
        except Exception as e:  # noqa: BLE001
            res = SynthResult(error=f"hls measurer: {type(e).__name__}: {e}")
        res.seconds = time.perf_counter() - t0
        return res

    def _synth(self, task, engine: DaeConfig, candidates) -> SynthResult:
        from ..codegen.hls_project import (
            CONFIG_HEADER,
            PROJECT,
            SOLUTION,
            SYNTH_HEADERS,
            SYNTH_SOURCES,
            write_hls_project,
        )
        from ..hls import csynth_report

        board = task.board
        tile_of = next(c.tile_map for c in candidates if c.engine == engine)
        prog, model_name = _small_program(task, engine, tile_of)
        layer = prog.layers[0][0]
        if self.keep_dir is not None:
            root = self.keep_dir / f"{board.name}-{_engine_key(board, engine)}"
            tmp = None
        else:
            tmp = tempfile.mkdtemp(prefix="zsq-hls-")
            root = Path(tmp)
        try:
            hls = write_hls_project(root, program=prog, board=board, model_name=model_name,
                                    input=np.zeros(layer.in_shape, dtype=np.int8))
            h = hashlib.sha256(self.tool.encode())
            for name in SYNTH_SOURCES + SYNTH_HEADERS + (CONFIG_HEADER, "run_hls.tcl"):
                h.update(name.encode() + b"\0" + (hls / name).read_bytes())
            digest = h.hexdigest()
            report_dir = hls / PROJECT / SOLUTION
            stamp = hls / _STAMP
            cached = False
            if self.keep_dir is not None and stamp.is_file():
                try:
                    cached = json.loads(stamp.read_text()).get("inputs") == digest
                except (OSError, ValueError, AttributeError):
                    cached = False
            if not cached:
                stamp.unlink(missing_ok=True)
                # a report left by an earlier run must not pass for this one's
                (report_dir / "syn" / "report" / "csynth.xml").unlink(missing_ok=True)
                err = self._run_tool(hls)
                if err is not None:
                    return SynthResult(error=err, project=str(hls) if tmp is None else None)
            try:
                rep = csynth_report.read(report_dir)
            except csynth_report.HlsReportError as e:
                return SynthResult(error=f"csynth report unreadable: {e}",
                                   project=str(hls) if tmp is None else None)
            if not cached and self.keep_dir is not None:
                stamp.write_text(json.dumps({"inputs": digest}) + "\n")
            r = rep.resources
            resources = {k: v for k, v in (("bram18k", r.bram_18k), ("dsp", r.dsp),
                                           ("lut", r.lut), ("ff", r.ff)) if v is not None}
            if r.uram:
                resources["uram"] = r.uram
            return SynthResult(resources=resources, estimated_clock_ns=rep.estimated_clock_ns,
                               target_clock_ns=rep.target_clock_ns,
                               latency_worst=rep.latency.worst, tool_version=rep.tool_version,
                               project=str(hls) if tmp is None else None, cached=cached)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _run_tool(self, hls: Path) -> str | None:
        """Run csynth in ``hls``; None on success, else the error text."""
        tool = os.path.basename(self.tool)
        with self._lock:
            if self._stopping:
                return f"{tool} csynth not started: interrupted"
            self.runs += 1
        env = dict(os.environ, ZSQ_HLS_STEPS="csynth")
        log = hls / "zsq_csynth.log"
        try:
            with open(log, "wb") as out:
                with self._lock:
                    proc = subprocess.Popen(_hls_command(self.tool), cwd=hls, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)
                    self._procs.add(proc)
                try:
                    rc = proc.wait(timeout=self.timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    return f"{tool} csynth timed out after {self.timeout_s:g} s"
                except BaseException:  # do not leave a synthesis running
                    _kill_group(proc)
                    raise
                finally:
                    with self._lock:
                        self._procs.discard(proc)
        except FileNotFoundError:
            return f"{tool} not on the PATH any more ({self.tool})"
        except OSError as e:
            return f"{tool} could not be started: {e}"
        if rc != 0:
            text = log.read_text(errors="replace") if log.is_file() else ""
            return f"{tool} csynth failed (exit {rc}): {_tail(text)}"
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    """Terminate the tool and its children (its own session), then make sure."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _small_program(task, engine: DaeConfig, tiles: dict):
    """A one-layer program for the engine's testbench: the task's first layer with the
    candidate's tile (or the largest tile that fits when that one cannot be lowered).
    Synthesis does not depend on it; ``write_hls_project`` needs one."""
    from ..codegen.dae_program import build_dae_program
    from ..schedule.dae_tiling import largest_tile

    if not task.models or not task.models[0][1]:
        raise ValueError("the task has no accelerator layer")
    name, layers = task.models[0]
    layer = layers[0]
    tile = tiles.get(layer_signature(layer))
    if tile is not None:
        try:
            return build_dae_program(engine, [layer], [tile]), name
        except (ZynqSqueezeError, ValueError):
            pass
    return build_dae_program(engine, [layer], [largest_tile(engine, layer)]), name
