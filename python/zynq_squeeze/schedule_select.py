"""Choose the engine for a board and the tile schedule of every layer.

The engine comes from a tuning log when one is given, else from the board's default
MAC array and buffer budget. Layer schedules come from the tuning log (matched by
layer signature) or, for layers it does not cover, from the default tiler.
"""
from __future__ import annotations

import json
from pathlib import Path

from .boards import Board
from .errors import ZynqSqueezeError
from .layers import Layer
from .schedule import EngineConfig, TileSchedule

TUNING_LOG_VERSION = 1


class TuningLogError(ZynqSqueezeError):
    """A tuning log cannot be read (missing, not JSON, wrong version or fields)."""


def default_engine(board: Board, clock_mhz: float | None = None) -> EngineConfig:
    """The default engine for ``board``: MAC array within its DSPs, buffers within its BRAM."""
    clock = clock_mhz or board.default_clock_mhz
    if board.dsp >= 360:
        return EngineConfig(pe_oc=16, pe_ic=16, axi_bits=board.hp_port_bits, clock_mhz=clock)
    if board.dsp >= 220:
        return EngineConfig(axi_bits=board.hp_port_bits, clock_mhz=clock)
    return EngineConfig(pe_oc=8, pe_ic=8, in_buf_bytes=16 * 1024, w_buf_bytes=8 * 1024,
                        acc_words=4 * 1024, out_buf_bytes=8 * 1024, sq_buf_bytes=16 * 1024,
                        axi_bits=board.hp_port_bits, clock_mhz=clock)


def layer_signature(layer: Layer) -> str:
    """A key naming a layer's geometry (what a schedule depends on)."""
    c, h, w = layer.in_shape
    if layer.kind == "fire":
        convs = (layer.squeeze, layer.expand1, layer.expand3)
    else:
        convs = (layer.conv,)
    parts = [f"{layer.kind}:{c}x{h}x{w}"]
    for cv in convs:
        kh, kw = cv.kernel
        parts.append(f"{cv.out_channels}k{kh}x{kw}s{cv.stride[0]}x{cv.stride[1]}"
                     f"p{'.'.join(map(str, cv.pads))}")
    if layer.pool is not None:
        p = layer.pool
        parts.append("gap" if p.global_pool else
                     f"{p.kind}{p.kernel[0]}x{p.kernel[1]}s{p.stride[0]}"
                     f"p{'.'.join(map(str, p.pads))}{'c' if p.ceil_mode else ''}")
    return "|".join(parts)


def read_tuning_log(path: Path) -> dict:
    """Parse and validate a tuning log; raises ``TuningLogError`` naming the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TuningLogError(f"tuning log {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TuningLogError(f"tuning log {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("version") != TUNING_LOG_VERSION:
        raise TuningLogError(f"tuning log {path}: expected an object with "
                             f"\"version\": {TUNING_LOG_VERSION}")
    try:
        engine = EngineConfig.from_json(data["engine"]) if "engine" in data else None
        layers = {str(k): TileSchedule.from_json(v) for k, v in data.get("layers", {}).items()}
    except (TypeError, ValueError, KeyError) as e:
        raise TuningLogError(f"tuning log {path}: bad entry: {e}") from None
    return {"engine": engine, "layers": layers}


def write_tuning_log(path: Path, engine: EngineConfig, layers: list[Layer],
                     schedules: list[TileSchedule]) -> None:
    """Write a tuning log that reproduces ``engine`` and ``schedules``."""
    data = {"version": TUNING_LOG_VERSION, "engine": engine.to_json(),
            "layers": {layer_signature(lay): s.to_json() for lay, s in zip(layers, schedules)}}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def choose_engine(board: Board, layers: list[Layer], *, clock_mhz: float | None = None,
                  tuning_log: Path | None = None) -> EngineConfig:
    """The engine for this model on ``board``."""
    if tuning_log is not None:
        eng = read_tuning_log(tuning_log)["engine"]
        if eng is not None:
            return eng
    return default_engine(board, clock_mhz)


def choose_schedules(engine: EngineConfig, layers: list[Layer], *,
                     tuning_log: Path | None = None) -> list[TileSchedule | None]:
    """Per layer: the tuning log's schedule, or None (the default tiler decides)."""
    logged = read_tuning_log(tuning_log)["layers"] if tuning_log is not None else {}
    return [logged.get(layer_signature(layer)) for layer in layers]
