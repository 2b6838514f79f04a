"""Size the engine for a model on a board: MAC array and buffers, by the cycle model.

Candidates: MAC arrays ``pe_oc x pe_ic`` (plus ``rq_lanes`` requantization lanes) that use
most of the board's DSPs, each with a few buffer recipes (balanced, weight-heavy,
activation-heavy) scaled to the largest size whose BRAM18K (``resources``) fits the
board. Every candidate is scored by the total modeled cycles of the model's layers with
the default tiler; the fastest wins (ties: fewer BRAM18K, then fewer DSPs). The choice is
deterministic and cached on disk per (board, clock, layer geometry).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ..boards import Board
from ..cache import cache_dir
from ..engine.config import EngineConfig
from ..errors import ScheduleError, ZynqSqueezeError
from ..quantize.layers import layer_signature
from .cycle_model import layer_cost
from .resources import bank_capacity, estimate, fits
from .tiling import default_schedule

PE_OC = (8, 12, 16, 24, 32, 48, 64)
PE_IC = (2, 3, 4, 6, 8, 12, 16)
RQ_LANES = (4, 8)
MIN_DSP_USE = 0.7  # of the DSPs left after requantization
# Per-bank depths in words at scale 1: in_buf, w_buf, acc, out (per lane), sq_buf.
RECIPES = {
    "balanced": (8192, 512, 512, 4096, 8192),
    "weights": (4096, 1024, 512, 2048, 4096),
    "activations": (16384, 256, 512, 4096, 16384),
}
SCALES = (0.125, 0.1875, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
SEARCH_VERSION = 3
# Headroom for place and route: designs above ~90 % BRAM or ~80 % LUT rarely close timing.
MAX_BRAM_UTIL = 0.92
MAX_LUT_UTIL = 0.8
TOP_SHAPES = 8  # MAC arrays (ranked by proxy_cycles) that get the full cycle model


class EngineSearchError(ZynqSqueezeError):
    """No engine fits the board and schedules every layer."""


@dataclass(frozen=True)
class Candidate:
    cycles: int
    bram18k: int
    dsp: int
    config: EngineConfig


def mac_shapes(board: Board, rq: int) -> list[tuple[int, int]]:
    """MAC array shapes within the DSPs left after ``rq`` requantization lanes."""
    budget = board.dsp - 4 * rq
    return [(po, pi) for po in PE_OC for pi in PE_IC
            if MIN_DSP_USE * budget <= po * pi <= budget]


def _conv_planes(layer):
    """(conv, input H, input W) of each convolution of a layer (fire: expands read the
    squeeze output)."""
    _, h, w = layer.in_shape
    if layer.kind != "fire":
        return [(layer.conv, h, w)]
    sh, sw = layer.squeeze.out_hw(h, w)
    return [(layer.squeeze, h, w), (layer.expand1, sh, sw), (layer.expand3, sh, sw)]


def proxy_cycles(layers, po: int, pi: int, rq: int) -> int:
    """A closed-form lower bound: MAC-array steps (kernel rows of ``kw * C`` bytes in
    ``pe_ic`` groups, ``pe_oc`` channels at a time) or requantization (``rq`` lanes),
    whichever is slower, per conv; used only to rank MAC arrays before the cycle model."""
    total = 0
    for layer in layers:
        for conv, h, w in _conv_planes(layer):
            oh, ow = conv.out_hw(h, w)
            kh, kw = conv.kernel
            o, i = conv.out_channels, conv.in_channels
            compute = oh * ow * kh * -(-kw * i // pi) * -(-o // po)
            requant = oh * ow * -(-o // rq)
            total += max(compute, requant)
    return total


def with_buffers(base: EngineConfig, po: int, pi: int, rq: int, recipe, scale: float
                 ) -> EngineConfig:
    """An engine with MAC array po x pi and the recipe's buffers at ``scale``, each bank
    filled up to the capacity of the block RAMs it occupies anyway."""
    d_in, d_w, d_acc, d_out, d_sq = (max(16, int(v * scale)) for v in recipe)
    d_in, d_sq, d_w = (bank_capacity(d, 8 * pi) for d in (d_in, d_sq, d_w))
    d_acc = bank_capacity(d_acc, 32)
    d_out = bank_capacity(-(-d_out * rq // po), 8) * po // rq  # out/cv banks are per pe_oc
    return dataclasses.replace(
        base, pe_oc=po, pe_ic=pi, rq_lanes=rq,
        in_buf_bytes=d_in * pi, w_buf_bytes=d_w * pi * po, acc_words=d_acc * po,
        out_buf_bytes=d_out * rq, sq_buf_bytes=d_sq * pi)


def model_cycles(cfg: EngineConfig, layers) -> int | None:
    """Total modeled cycles of ``layers`` on ``cfg`` (None if a layer cannot be tiled)."""
    total = 0
    for layer in layers:
        try:
            total += layer_cost(layer, default_schedule(layer, cfg), cfg).cycles
        except ScheduleError:
            return None
    return total


def _largest_fitting(base, po, pi, rq, recipe, board) -> EngineConfig | None:
    best = None
    for s in SCALES:
        cfg = with_buffers(base, po, pi, rq, recipe, s)
        if fits(estimate(cfg), board, bram_util=MAX_BRAM_UTIL, lut_util=MAX_LUT_UTIL):
            best = cfg
        else:
            break
    return best


def candidates(board: Board, layers, clock_mhz: float) -> list[Candidate]:
    base = dataclasses.replace(EngineConfig(), axi_bits=board.hp_port_bits,
                               clock_mhz=clock_mhz)
    shapes = [(po, pi, rq) for rq in RQ_LANES for po, pi in mac_shapes(board, rq)]
    shapes.sort(key=lambda t: (proxy_cycles(layers, *t), t))
    out = []
    for po, pi, rq in shapes[:TOP_SHAPES]:
        for recipe in RECIPES.values():
            cfg = _largest_fitting(base, po, pi, rq, recipe, board)
            if cfg is None:
                continue
            cycles = model_cycles(cfg, layers)
            if cycles is not None:
                use = estimate(cfg)
                out.append(Candidate(cycles, use.bram18k, use.dsp, cfg))
    return out


def _cache_key(board: Board, layers, clock_mhz: float) -> str:
    """Changes with the board, the layers, and the models the choice depends on."""
    from pathlib import Path

    from . import cycle_model, resources, tiling

    h = hashlib.sha256(json.dumps([SEARCH_VERSION, board.name, clock_mhz,
                                   dataclasses.asdict(EngineConfig()),
                                   [layer_signature(x) for x in layers]]).encode())
    for mod in (cycle_model, resources, tiling):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:24]


def search_engine(board: Board, layers, clock_mhz: float | None = None,
                  use_cache: bool = True) -> EngineConfig:
    """The fastest engine (by the cycle model) that fits ``board`` for ``layers``."""
    clock = clock_mhz or board.default_clock_mhz
    path = cache_dir() / f"engine-search-{_cache_key(board, layers, clock)}.json"
    if use_cache and path.is_file():
        try:
            return EngineConfig.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError):
            pass  # a damaged cache entry is recomputed
    cands = candidates(board, layers, clock)
    if not cands:
        raise EngineSearchError(
            f"no engine fits {board.name} ({board.bram18k} BRAM18K, {board.dsp} DSP) and "
            "tiles every layer of this model")
    best = min(cands, key=lambda c: (c.cycles, c.bram18k, c.dsp,
                                     json.dumps(c.config.to_json(), sort_keys=True)))
    if use_cache:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(best.config.to_json(), sort_keys=True))
        tmp.replace(path)
    return best.config
