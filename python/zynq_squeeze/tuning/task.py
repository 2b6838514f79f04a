"""From Relax modules to a ``TuneTask``: the accelerator layers the codegen would schedule.

The same steps as a compile up to the schedule (calibrate when the module carries no
calibration, partition, lower each offloaded function, first-layer patch mode), so the
layer signatures the tuner keys its tiles on are exactly those ``choose_tiles`` looks up
at compile time.
"""
from __future__ import annotations

import hashlib
import warnings

from ..boards import Board, get_board
from ..errors import ZynqSqueezeError
from ..quantize.layers import layer_signature
from .measure import ModelFunction, TuneTask

# Clocks the space offers (MHz): the board's default and the steps Vivado's clocking
# wizard makes from the PS's 1 GHz IO PLL (1000/7 = 142.86).
DEFAULT_CLOCKS = (100.0, 125.0, 142.86, 150.0)
# Highest PL clock offered per PS family (MHz). An engineering assumption, NOT a timing
# result: no synthesis or place-and-route of the engine has been run at these clocks (nor
# at the 100 MHz default). 150 MHz on Zynq-7000 -1 parts (every board here) is a common
# ceiling for HLS datapaths with DSP48E1 MACs and BRAM buffers; UltraScale+ -1: 300. The
# ``model`` and ``sim`` measurers take any offered clock as met; ``hls`` checks csynth's
# estimate, and only ``block_design.tcl``'s WNS >= 0 check shows it closes.
MAX_CLOCK = {"zynq7": 150.0, "zynqmp": 300.0}


class TuneError(ZynqSqueezeError, ValueError):
    """A tuning request cannot be carried out (no offloaded layers, a bad option)."""


def clock_choices(board: Board, clocks=None) -> tuple[float, ...]:
    """``clocks`` (default ``DEFAULT_CLOCKS``) capped at the board family's maximum,
    sorted, at least the board's default clock. Raises ``TuneError`` for none left."""
    cap = MAX_CLOCK[board.family]
    given = tuple(DEFAULT_CLOCKS if clocks is None else clocks)
    for c in given:
        if not isinstance(c, (int, float)) or isinstance(c, bool) or not 1.0 <= c <= 500.0:
            raise TuneError(f"clock {c!r} MHz is outside [1, 500] MHz")
    out = tuple(sorted({float(c) for c in given if c <= cap}))
    if not out:
        raise TuneError(f"no clock in {list(given)} MHz is within {board.name}'s "
                        f"{cap:g} MHz limit")
    return out


def model_hash(layers) -> str:
    """sha256 (16 hex digits) of a model's accelerator layers, signatures in order: all
    its schedule and timing depend on (weights do not change cycles)."""
    text = "\n".join(layer_signature(layer) for layer in layers)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_functions(mod, calibration=None) -> tuple[object, list[ModelFunction]]:
    """(calibrated module, its offloaded functions as the codegen schedules them)."""
    from ..codegen.lower import lower_function
    from ..partitioning.partitioner import partition_with_report
    from ..quantize.calibrate import calibrate, ensure_calibrated
    from ..toolchain.relax_ext import _first_layer_mode

    if calibration is not None:
        mod = calibrate(mod, calibration, progress=False)
    else:
        # cycles do not depend on the calibration: the synthetic set's warning would
        # only mislead here (a compile with the tuning log warns where it matters)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mod = ensure_calibrated(mod, progress=False)
    pmod, _ = partition_with_report(mod)
    out = []
    for func in pmod.functions.values():
        if func.attrs is None or "Codegen" not in func.attrs:
            continue
        lf = lower_function(func)
        layers, tensors, _ = _first_layer_mode(lf)
        out.append(ModelFunction(lf.symbol, layers, tensors, list(lf.inputs),
                                 list(lf.outputs), int(lf.batch), dict(lf.views)))
    out.sort(key=lambda f: f.symbol)
    return mod, out


def make_task(models, board: str | Board = "zybo-z7-20", *, clocks=None, weights=None,
              calibration=None) -> TuneTask:
    """The task of tuning ``models`` together for one engine on ``board``.

    ``models``: one Relax module, a list of modules or of (name, module), or a dict name
    -> module. ``weights``: name -> weight of that model's latency in the cost (default
    1 each). ``calibration``: samples for every model (optional; cycles do not depend on
    it). Raises ``TuneError`` when a model offloads nothing."""
    board = board if isinstance(board, Board) else get_board(board)
    named = _named(models)
    weights = dict(weights or {})
    unknown = sorted(set(weights) - {n for n, _ in named})
    if unknown:
        raise TuneError(f"weight for unknown model {unknown[0]!r} (models: "
                        f"{', '.join(n for n, _ in named)})")
    for n, w in weights.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not w > 0:
            raise TuneError(f"weight of model {n!r} must be a positive number, got {w!r}")
    task = TuneTask(board, [], clock_choices(board, clocks), weights=weights)
    for name, mod in named:
        mod, fns = model_functions(mod, calibration)
        layers = [layer for fn in fns for layer, _, _ in fn.layers]
        if not layers:
            raise TuneError(f"model {name!r} offloads nothing to the accelerator: "
                            "there is nothing to tune")
        task.models.append((name, layers))
        task.functions[name] = fns
        task.modules[name] = mod
    return task


def _named(models) -> list[tuple[str, object]]:
    if isinstance(models, dict):
        out = list(models.items())
    elif isinstance(models, (list, tuple)):
        out = [m if isinstance(m, tuple) else (f"model{i}" if len(models) > 1 else "model", m)
               for i, m in enumerate(models)]
    else:
        out = [("model", models)]
    if not out:
        raise TuneError("no model to tune")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise TuneError(f"model names must be unique, got {names}")
    return out
