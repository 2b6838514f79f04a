"""The ``rpc`` measurer: candidates timed on boards (or hosts) reached through a TVM RPC
tracker, the way TVM's tuners reach board farms.

Per candidate, on this machine: after the checks every measurer applies
(``space.check_candidate``, the token backlog), the programs of the candidate's engine
and tiles -- one per offloaded function of every model (``task.model_functions``), built
as the ``model`` and ``sim`` measurers build them (``codegen.dae_program``) -- are linked
with the runtime into a small shared library, the *measurement module*: a tvm-ffi
library exporting one function

    ``zsq_tune_run(out: int64 tensor[n_programs]) -> int``

that runs every program once on the accelerator and returns their total cycles, writing
each program's cycles to ``out`` (the minimum over the calls of this module so far). A
candidate's cycles are the sum over programs of ``batch x cycles``. The
cycles are the accelerator's own counter: the ``cycles`` register of the engine IP
(``zynq`` runtime backend, ``board_build=True``: cross-compiled for the Zynq's ARM), or
the C simulation's on a host server (``csim`` backend, the default: the same cycles as
the ``sim`` measurer).

On the remote, through the tracker (``tvm.rpc``): request a server with ``key``
(waiting at most ``timeout_s`` for a free one), upload the library
(``tvm.rpc.server.upload``), load it (``tvm.rpc.server.load_module``) and time
``zsq_tune_run`` with the remote's ``time_evaluator`` (``number`` x ``repeat`` calls after
one warm-up; their wall times go to ``detail``). One session per candidate, bounded by
``session_timeout`` (the server kills a longer one). One worker thread per server the
tracker holds for ``key``: candidates are measured in parallel across them.

Any server that answers those remote functions works: ``python -m tvm.exec.rpc_server
--tracker HOST:PORT --key KEY`` on a host, or a TVM C++ RPC server (``apps/cpp_rpc``)
built for the board. Errors (tracker unreachable, no server for the key, upload, load or
run failures, session timeout) are error measurements naming the tracker and server.
"""
from __future__ import annotations

import queue
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OptionError, ScheduleError, ZynqSqueezeError
from .candidate import Candidate, Measurement

__all__ = [
    "RUN_FUNCTION",
    "MeasurementModule",
    "RpcMeasurer",
    "build_measurement_module",
    "parse_tracker",
]

RUN_FUNCTION = "zsq_tune_run"
DEFAULT_KEY = "zybo"
_TRACKER_HINT = ("start one with: python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190, "
                 "then on each board or host: python -m tvm.exec.rpc_server "
                 "--tracker HOST:9190 --key KEY")


# --------------------------------------------------------------------------- options

def parse_tracker(value) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:9190"`` for IPv6) -> (host, port). Raises ``OptionError``
    naming the value for anything else (one message for every malformed form)."""
    text = str(value).strip() if value is not None else ""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9_.-]+):(\d{1,5})", text)
    port = int(m.group(2) or m.group(4)) if m else 0
    if not m or not 1 <= port <= 65535:
        raise OptionError(f"--rpc-tracker expects HOST:PORT with a port in 1..65535 "
                          f"(e.g. 127.0.0.1:9190 or [::1]:9190), got {value!r}")
    return (m.group(1) or m.group(3)), port


def _check_positive(name: str, v, integer: bool) -> None:
    ok = (type(v) is int) if integer else (isinstance(v, (int, float)) and not isinstance(v, bool))
    if not ok or not v > 0:
        raise OptionError(f"rpc measurer: {name} must be {'an integer' if integer else 'a number'}"
                          f" > 0, got {v!r}")


# --------------------------------------------------------------------------- the module

@dataclass
class MeasurementModule:
    """A built measurement module: the library and what its programs are."""

    path: Path
    names: list[str]        # per program: "<model>/<function symbol>"
    models: list[str]       # per program: its model
    batch: list[int]        # per program: runs per inference (the function's batch)
    backend: str            # "csim" (host) or "zynq" (board)
    beat_x100: int


def _programs(task, cand: Candidate):
    """[(model, name, batch, DaeProgram)]: one program per offloaded function of every
    model (``task.model_functions``), as the ``model`` and ``sim`` measurers build them.
    Raises ``_Rejected`` (the same reasons as theirs: ``space.check_candidate``, token
    backlog) or ZynqSqueezeError / ValueError when a program cannot be built."""
    from ..codegen.dae_program import build_dae_program
    from ..schedule.timing import simulate
    from .programs import beat_x100, function_tiles
    from .space import check_candidate

    why = check_candidate(task, cand)
    if why is not None:
        raise _Rejected(f"rejected: {why}")
    engine, beat = cand.engine, beat_x100(task, cand.engine)
    out = []
    for model, _ in task.models:
        for fn in task.model_functions(model):
            prog = build_dae_program(engine, fn.layers, function_tiles(fn, cand), fn.tensors,
                                     fn.inputs, fn.outputs, fn.views)
            peak = max(simulate(engine, prog.words, beat).token_peak)
            if peak > engine.token_depth:
                raise _Rejected(f"{fn.symbol}: {peak} dependency tokens would wait in one "
                                f"queue; the engine's queues hold {engine.token_depth}")
            out.append((model, f"{model}/{fn.symbol}", int(fn.batch), prog))
    if not out:
        raise ValueError("the task has no accelerator layer")
    return out, beat


class _Rejected(ZynqSqueezeError):
    """The candidate fails the checks every measurer applies (its message says why)."""


_PRELUDE = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tvm/ffi/c_api.h>
#include "zsq_runtime.h"
"""

_BODY = r"""
static uint64_t zsq_tune_arena[@@ARENA@@] __attribute__((aligned(64)));
static int64_t zsq_tune_best[@@N@@];

static int zsq_tune_raise(const char *kind, const char *msg) {
  TVMFFIErrorSetRaisedFromCStr(kind, msg);
  return -1;
}

/* zsq_tune_run(out: int64[@@N@@]) -> total cycles: every program once on a zeroed arena
 * (the timing does not depend on the data); out[i] = program i's fewest cycles so far. */
extern "C" __attribute__((visibility("default"))) int __tvm_ffi_zsq_tune_run(
    void *self, const TVMFFIAny *args, int32_t nargs, TVMFFIAny *ret) {
  (void)self;
  char msg[512], err[256];
  if (nargs != 1) return zsq_tune_raise("TypeError", "zsq_tune_run: expected one int64 tensor");
  DLTensor *out = NULL;
  if (args[0].type_index == kTVMFFIDLTensorPtr) out = (DLTensor *)args[0].v_ptr;
  else if (args[0].type_index == kTVMFFITensor) out = TVMFFITensorGetDLTensorPtr(args[0].v_obj);
  if (out == NULL || out->ndim != 1 || out->shape[0] != @@N@@ || out->dtype.code != kDLInt ||
      out->dtype.bits != 64 || out->device.device_type != kDLCPU)
    return zsq_tune_raise("ValueError", "zsq_tune_run: expected a CPU int64 tensor of shape (@@N@@,)");
  int64_t *cyc = (int64_t *)((char *)out->data + out->byte_offset);
  int64_t total = 0;
  for (int i = 0; i < @@N@@; ++i) {
    const zsq_rt_program_t *p = &zsq_tune_programs[i];
    memset(zsq_tune_arena, 0, (size_t)p->arena_words * sizeof(uint64_t));
    zsq_rt_stats_t st;
    int rc = zsq_rt_run(p, zsq_tune_arena, &st, err, sizeof err);
    if (rc != 0) {
      snprintf(msg, sizeof msg, "zsq_tune_run: program %d (%s): accelerator error %d: %s", i,
               zsq_tune_names[i], rc, err);
      return zsq_tune_raise("RuntimeError", msg);
    }
    if (zsq_tune_best[i] == 0 || st.cycles < zsq_tune_best[i]) zsq_tune_best[i] = st.cycles;
    cyc[i] = zsq_tune_best[i];
    total += zsq_tune_best[i];
  }
  ret->type_index = kTVMFFIInt;
  ret->zero_padding = 0;
  ret->v_int64 = total;
  return 0;
}
"""


def _c_string(s: str) -> str:
    return '"' + re.sub(r'[^A-Za-z0-9_./:+ -]', "_", s)[:120] + '"'


def module_source(names: list[str], programs, beat: int) -> str:
    """The C++ source of a measurement module over ``programs`` (blobs p<i>_insn.bin /
    p<i>_wgt.bin next to it, linked with ``.incbin``)."""
    from ..codegen.glue import _blob_asm

    cfg = programs[0].cfg
    lines = ["/* zynq-squeeze tuning: measurement module (generated; see zynq_squeeze.tuning."
             + "measure_rpc). */", _PRELUDE]
    for i in range(len(programs)):
        lines.append(_blob_asm(f"zsq_tune_p{i}", {"insn": f"p{i}_insn.bin",
                                                   "wgt": f"p{i}_wgt.bin"}))
    lines.append(f"static const char *const zsq_tune_names[{len(programs)}] = {{"
                 + ", ".join(_c_string(n) for n in names) + "};")
    lines.append(f"static const zsq_rt_program_t zsq_tune_programs[{len(programs)}] = {{")
    for i, p in enumerate(programs):
        lines.append(f"  {{(const uint64_t *)zsq_tune_p{i}_insn, {len(p.words)}, "
                     f"(const uint64_t *)zsq_tune_p{i}_wgt, {len(p.weights)}, {p.arena_words}, "
                     f"{cfg.rd_latency}, {cfg.wr_latency}, {cfg.outstanding}, {beat}}},")
    lines.append("};")
    arena = max(max(p.arena_words for p in programs), 1)
    lines.append(_BODY.replace("@@ARENA@@", str(arena)).replace("@@N@@", str(len(programs))))
    return "\n".join(lines)


def build_measurement_module(task, cand: Candidate, out_dir, *, board_build: bool = False
                             ) -> MeasurementModule:
    """Write and compile the measurement module of ``cand`` in ``out_dir``: the host C
    simulation (``csim``), or for ``board_build`` the board's runtime (``zynq``)
    cross-compiled for its ARM. Raises ZynqSqueezeError / ValueError (tile, compiler)."""
    import tvm_ffi

    from .. import native
    from ..codegen.hls_project import dae_config_header
    from ..toolchain import compiler

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    named, beat = _programs(task, cand)
    names, progs = [n for _, n, _, _ in named], [p for _, _, _, p in named]
    for i, p in enumerate(progs):
        (out_dir / f"p{i}_insn.bin").write_bytes(np.asarray(p.words, dtype="<u8").tobytes())
        (out_dir / f"p{i}_wgt.bin").write_bytes(np.asarray(p.weights, dtype="<u8").tobytes())
    (out_dir / "zsq_tune.cc").write_text(module_source(names, progs, beat))
    header = dae_config_header(cand.engine, "tuning measurement module", beat)
    (out_dir / "zsq_dae_config.h").write_text(header)
    host = not board_build
    backend = "csim" if host else "zynq"
    eng = compiler.engine_object(header, host=host, backend=backend)
    _, cxx, flags = compiler.toolchain(host)
    ffi = Path(tvm_ffi.__file__).parent
    incs = [out_dir, *native.include_dirs(), ffi / "include", ffi / "3rdparty" / "dlpack" / "include"]
    lib = out_dir / "zsq_tune.so"
    cmd = [cxx, "-std=c++17", *flags, *compiler.WARN_FLAGS, *compiler.HIDDEN,
           *[f"-I{d}" for d in incs], "-c", "zsq_tune.cc", "-o", "zsq_tune.o"]
    _run(cmd, out_dir)
    _run([cxx, "-shared", *flags, "zsq_tune.o", str(eng), "-o", lib.name], out_dir)
    return MeasurementModule(lib, names, [m for m, _, _, _ in named],
                             [b for _, _, b, _ in named], backend, beat)


def _run(cmd: list[str], cwd: Path) -> None:
    from ..errors import BuildError
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BuildError(f"{cmd[0]}: {e}") from None
    if proc.returncode != 0:
        raise BuildError(f"building the measurement module failed ({proc.returncode}): "
                         f"{' '.join(cmd[:2])} ...\n{proc.stderr[-2000:]}")


# --------------------------------------------------------------------------- tracker

class _NoServer(Exception):
    """No server with the key became free within the timeout."""


class _TrackerClient:
    """The tracker protocol of ``tvm.rpc`` (``base.TrackerCode``) over one socket with a
    timeout: ``tvm.rpc.connect_tracker`` retries a refused connection for 60 s and its
    ``request`` waits for a free server without limit."""

    def __init__(self, host: str, port: int, timeout: float):
        from tvm.rpc import base
        self._base = base
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", base.recvall(self.sock, 4))[0]
        except BaseException:
            self.close()
            raise
        if magic != base.RPC_TRACKER_MAGIC:
            self.close()
            raise ConnectionError(f"{host}:{port} is not a TVM RPC tracker")

    def _call(self, msg):
        self._base.sendjson(self.sock, msg)
        return self._base.recvjson(self.sock)

    def summary(self) -> dict:
        v = self._call([self._base.TrackerCode.SUMMARY])
        if v[0] != self._base.TrackerCode.SUCCESS:
            raise ConnectionError(f"tracker summary failed: {v!r}")
        return v[1]

    def request(self, key: str, wait_s: float, priority: int = 1) -> tuple[str, int, str]:
        """(host, port, matchkey) of a free server with ``key``; raises _NoServer."""
        self.sock.settimeout(wait_s)
        try:
            v = self._call([self._base.TrackerCode.REQUEST, key, "", priority])
        except TimeoutError:
            raise _NoServer() from None
        if v[0] != self._base.TrackerCode.SUCCESS:
            raise ConnectionError(f"tracker request failed: {v!r}")
        host, port, matchkey = v[1]
        return str(host), int(port), str(matchkey)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _servers_for(summary: dict, key: str) -> int:
    return sum(1 for s in summary.get("server_info", [])
               if str(s.get("key", "")) == f"server:{key}")


# --------------------------------------------------------------------------- measurer

class RpcMeasurer:
    """Measure candidates on RPC servers behind a tracker (module doc).

    ``tracker``: ``"HOST:PORT"`` (``--rpc-tracker``); ``key``: the servers' key
    (``--rpc-key``); ``repeat`` / ``number``: the remote ``time_evaluator``'s (wall times
    in ``detail``; cycles are the accelerator's); ``timeout_s``: limit for reaching the
    tracker and for a server with ``key`` to become free; ``session_timeout``: limit of
    one candidate's remote session (upload, load, runs), enforced by the server;
    ``board_build``: cross-compile for the board's ARM and its engine IP (``zynq``
    backend: the board's loaded bitstream must be the candidate's engine) instead of the
    host C simulation; ``workers``: measuring threads (default: one per server the
    tracker holds for ``key``). Raises ``OptionError`` for a malformed option.
    """

    name = "rpc"

    def __init__(self, tracker: str = "127.0.0.1:9190", key: str = DEFAULT_KEY, repeat: int = 1,
                 number: int = 1, timeout_s: float = 60.0, session_timeout: float = 600.0,
                 board_build: bool = False, workers: int | None = None, priority: int = 1):
        self.host, self.port = parse_tracker(tracker)
        self.tracker = f"{self.host}:{self.port}"
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise OptionError(f"--rpc-key expects a device key of letters, digits, '_', '.', "
                              f"'-' (e.g. zybo), got {key!r}")
        _check_positive("repeat", repeat, True)
        _check_positive("number", number, True)
        _check_positive("timeout_s", timeout_s, False)
        _check_positive("session_timeout", session_timeout, False)
        if workers is not None:
            _check_positive("workers", workers, True)
        self.key, self.repeat, self.number = key, repeat, number
        self.timeout_s, self.session_timeout = float(timeout_s), float(session_timeout)
        self.board_build, self.workers, self.priority = bool(board_build), workers, int(priority)

    # ------------------------------------------------------------------ measure
    def measure(self, task, candidates: list[Candidate]) -> list[Measurement]:
        if not candidates:
            return []
        t0 = time.perf_counter()
        try:
            import tvm.rpc  # noqa: F401
        except ImportError as e:
            return self._all_failed(candidates, f"tvm.rpc is not importable: {e}", t0)
        # how many servers hold the key: one worker each; none within timeout_s -> every
        # candidate fails at once, nothing is built
        deadline = t0 + self.timeout_s
        while True:
            try:
                client = _TrackerClient(self.host, self.port, self.timeout_s)
                try:
                    summary = client.summary()
                finally:
                    client.close()
            except (OSError, ConnectionError, ValueError, struct.error) as e:
                return self._all_failed(candidates, f"RPC tracker {self.tracker} unreachable: "
                                        f"{type(e).__name__}: {e} ({_TRACKER_HINT})", t0)
            n_servers = _servers_for(summary, self.key)
            if n_servers or time.perf_counter() >= deadline:
                break
            time.sleep(min(0.25, max(0.0, deadline - time.perf_counter())))
        if n_servers == 0:
            return self._all_failed(candidates, self._no_server(0), t0)
        n_workers = self.workers or max(1, n_servers)
        n_workers = min(n_workers, len(candidates))
        todo: queue.Queue = queue.Queue()
        for i in range(len(candidates)):
            todo.put(i)
        results: list[Measurement | None] = [None] * len(candidates)
        starved: list[str] = []
        build_root = Path(tempfile.mkdtemp(prefix="zsq-rpc-"))
        try:
            threads = [threading.Thread(target=self._worker, name=f"zsq-rpc-{w}",
                                        args=(task, candidates, todo, results, starved,
                                              build_root / f"w{w}"), daemon=True)
                       for w in range(n_workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            shutil.rmtree(build_root, ignore_errors=True)
        why = self._no_server(n_servers)
        for i, m in enumerate(results):
            if m is None:
                results[i] = Measurement(candidates[i], self.name, error=why,
                                         seconds=time.perf_counter() - t0,
                                         detail={"tracker": self.tracker, "key": self.key,
                                                 "transient": True})
        return results  # type: ignore[return-value]

    def _no_server(self, n_servers: int) -> str:
        return (f"no RPC server with key {self.key!r} became free within {self.timeout_s:g} s "
                f"(tracker {self.tracker} holds {n_servers} server(s) with that key; "
                f"{_TRACKER_HINT})")

    def _all_failed(self, candidates, error: str, t0: float) -> list[Measurement]:
        s = time.perf_counter() - t0
        return [Measurement(c, self.name, error=error, seconds=s,
                            detail={"tracker": self.tracker, "key": self.key,
                                    "transient": True})
                for c in candidates]

    def _worker(self, task, candidates, todo: queue.Queue, results, starved, build_dir: Path):
        """Measure candidates from ``todo`` until it is empty, or until no server became
        free in time (the candidate goes back for the other workers)."""
        built: dict[str, MeasurementModule] = {}
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            cand = candidates[i]
            t0 = time.perf_counter()
            detail = {"tracker": self.tracker, "key": self.key}
            try:
                key = cand.key()
                mod = built.get(key)
                if mod is None:
                    mod = build_measurement_module(task, cand, build_dir / key,
                                                   board_build=self.board_build)
                    built[key] = mod
            except Exception as e:  # noqa: BLE001 (a bad candidate is an error measurement)
                kind = "" if isinstance(e, (_Rejected, ScheduleError)) else f"{type(e).__name__}: "
                results[i] = Measurement(cand, self.name, error=f"{kind}{e}",
                                         resources=_model_resources(cand),
                                         seconds=time.perf_counter() - t0, detail=detail)
                continue
            detail.update(backend=mod.backend, beat_x100=mod.beat_x100)
            try:
                client = _TrackerClient(self.host, self.port, self.timeout_s)
                try:
                    host, port, matchkey = client.request(self.key, self.timeout_s, self.priority)
                finally:
                    client.close()
            except _NoServer:
                todo.put(i)
                starved.append(threading.current_thread().name)
                return
            except (OSError, ConnectionError, ValueError, struct.error) as e:
                results[i] = Measurement(cand, self.name, error=f"RPC tracker {self.tracker}: "
                                         f"{type(e).__name__}: {e}",
                                         seconds=time.perf_counter() - t0,
                                         detail={**detail, "transient": True})
                continue
            server = f"{host}:{port}"
            detail["server"] = server
            try:
                cycles, per, walls = self._run_remote(host, port, matchkey, mod, cand)
            except Exception as e:  # noqa: BLE001
                results[i] = Measurement(cand, self.name,
                                         error=f"RPC server {server} (key {self.key!r}): "
                                               f"{_short(e)}",
                                         seconds=time.perf_counter() - t0, detail=detail)
                continue
            models: dict[str, dict] = {}
            for model, name, batch, c in zip(mod.models, mod.names, mod.batch, per):
                m = models.setdefault(model, {"cycles": 0, "functions": {}})
                m["cycles"] += batch * c
                m["functions"][name.split("/", 1)[1]] = c
            detail.update(models=models, wall_s_per_run=walls, number=self.number,
                          repeat=self.repeat)
            results[i] = Measurement(cand, self.name, cycles=cycles,
                                     resources=_model_resources(cand),
                                     seconds=time.perf_counter() - t0, detail=detail)

    def _run_remote(self, host: str, port: int, matchkey: str, mod: MeasurementModule,
                    cand: Candidate) -> tuple[int, list[int], list[float]]:
        import tvm
        from tvm import rpc

        remote = rpc.connect(host, port, key=matchkey, session_timeout=self.session_timeout)
        name = f"zsq_tune_{cand.key()}.so"
        remote.upload(str(mod.path), target=name)
        rmod = remote.load_module(name)
        dev = remote.cpu()
        out = tvm.runtime.tensor(np.zeros(len(mod.names), dtype=np.int64), dev)
        ftimer = rmod.time_evaluator(RUN_FUNCTION, dev, number=self.number, repeat=self.repeat)
        walls = [float(t) for t in ftimer(out).results]
        per = [int(v) for v in out.numpy()]
        if any(v <= 0 for v in per):
            raise RuntimeError(f"the accelerator reported no cycles for a program: {per}")
        return sum(b * c for b, c in zip(mod.batch, per)), per, walls


def _model_resources(cand: Candidate) -> dict[str, int]:
    """The resource model's estimate of the engine (what the other measurers report)."""
    from ..schedule.dae_resources import estimate
    use = estimate(cand.engine)
    return {"bram18k": use.bram18k, "dsp": use.dsp, "lut": use.lut, "ff": use.ff}


def _short(e: BaseException, limit: int = 600) -> str:
    """One line of a (possibly multi-line TVM) error: its type and its message, TVM's
    boilerplate dropped, the end kept (where the cause is)."""
    name = type(e).__name__
    text = str(e)
    if text.startswith(name + ":"):
        text = text[len(name) + 1:]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln != "Error caught from RPC call:"
             and not ln.startswith(("Traceback", "File \"", "File '"))]
    s = " ".join(lines) or "(no message)"
    if len(s) > limit:
        s = "..." + s[-limit:]
    return f"{name}: {s}"
