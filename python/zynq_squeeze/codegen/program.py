"""The layer program of one accelerator: descriptors, packed weights and parameters,
activation-arena layout, schedules and modeled cycles.

``build_program`` turns a list of ``(layer, input_tensor_id, output_tensor_id)`` into a
:class:`Program` the engine (C simulation through :mod:`zynq_squeeze.toolchain.csim`, or the
board through ``hls_runtime``) executes. Memory layout (docs/ENGINE.md):

* arena: every tensor HWC int8 at a 64-byte aligned offset; tensors whose lifetimes do
  not overlap share space (first fit over liveness intervals; a layer's input and output
  never overlap);
* weights: per conv, blocks in tile order (oc tile major, ic tile minor), each block
  ``[toc][kh][kw][tic]`` with channels innermost; each conv starts 64-byte aligned;
* params: per conv, per output channel the int32 triple (bias, mult, shift).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.config import EngineConfig, TileSchedule
from ..engine.descriptor import (
    LAYER_WORDS,
    layer_convs,
    make_descriptor,
    pack_descriptor,
    slot_tiles,
)
from ..quantize.layers import ConvLayer, FireLayer
from ..quantize.reference import run_layer
from ..schedule.cycle_model import LayerCost, check_fits, descriptor_cost
from ..schedule.tiling import default_schedule

ALIGN = 64
ACC_LIMIT = (1 << 31) - 1


def _align(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


def pack_weights(weight: np.ndarray, toc: int, tic: int) -> np.ndarray:
    """int8 [O, I, KH, KW] -> flat int8 in tile order (see module doc)."""
    o, i, _, _ = weight.shape
    wt = np.ascontiguousarray(np.asarray(weight, dtype=np.int8).transpose(0, 2, 3, 1))
    blocks = [wt[o0:o0 + toc, :, :, i0:i0 + tic].reshape(-1)
              for o0 in range(0, o, toc) for i0 in range(0, i, tic)]
    return np.concatenate(blocks)


def pack_params(conv) -> np.ndarray:
    """int32 [O, 3] = (bias, mult, shift) per output channel, flattened."""
    o = conv.out_channels
    p = np.empty((o, 3), dtype=np.int64)
    p[:, 0] = np.asarray(conv.bias, dtype=np.int64).reshape(o)
    p[:, 1] = np.asarray(conv.mult, dtype=np.int64).reshape(o)
    p[:, 2] = np.asarray(conv.shift, dtype=np.int64).reshape(o)
    return p.astype(np.int32).reshape(-1)


def check_conv_params(conv, name: str) -> None:
    """Validate one conv's integer parameters for the engine (no int32 overflow)."""
    w = np.asarray(conv.weight)
    if w.dtype != np.int8 or w.ndim != 4:
        raise ValueError(f"{name}: weight must be int8 [O, I, KH, KW], got {w.dtype} {w.shape}")
    o, i, kh, kw = w.shape
    for f in ("bias", "mult", "shift"):
        a = np.asarray(getattr(conv, f))
        if a.shape != (o,):
            raise ValueError(f"{name}: {f} must have shape ({o},), got {a.shape}")
    shift = np.asarray(conv.shift, dtype=np.int64)
    if np.any(shift < 1) or np.any(shift > 62):
        raise ValueError(f"{name}: shift must be in [1, 62]")
    mult = np.asarray(conv.mult, dtype=np.int64)
    if np.any(mult < -(1 << 31)) or np.any(mult >= (1 << 31)):
        raise ValueError(f"{name}: mult must fit int32")
    worst = np.abs(np.asarray(conv.bias, dtype=np.int64)) + 128 * 128 * i * kh * kw
    if np.any(worst > ACC_LIMIT):
        raise ValueError(f"{name}: bias + worst-case sum may overflow the int32 accumulator")
    if min(conv.pads) < 0 or min(conv.stride) < 1:
        raise ValueError(f"{name}: bad stride/pads {conv.stride} {conv.pads}")


def check_layer(layer) -> None:
    """Raise ValueError when ``layer`` is outside what the engine executes."""
    name = getattr(layer, "name", "layer")
    for k, c in enumerate(layer_convs(layer)):
        check_conv_params(c, f"{name}.conv{k}")
        if max(c.kernel) > 32 or max(c.stride) > 32 or max(c.pads) > 32:
            raise ValueError(f"{name}: kernel/stride/pad above 32 unsupported")
    if isinstance(layer, FireLayer):
        s = layer.squeeze.out_channels
        e1, e3 = layer.expand1, layer.expand3
        if e1.kernel != (1, 1) or e1.stride != (1, 1) or tuple(e1.pads) != (0, 0, 0, 0):
            raise ValueError(f"{name}: expand1 must be 1x1, stride 1, no padding")
        if e3.kernel != (3, 3) or e3.stride != (1, 1) or tuple(e3.pads) != (1, 1, 1, 1):
            raise ValueError(f"{name}: expand3 must be 3x3, stride 1, padding 1")
        if e1.in_channels != s or e3.in_channels != s:
            raise ValueError(f"{name}: expand input channels must equal squeeze outputs {s}")
    if layer.in_shape[0] != layer_convs(layer)[0].in_channels:
        raise ValueError(f"{name}: in_shape channels != conv input channels")
    p = layer.pool
    if p is not None and not p.global_pool:
        kh, kw = p.kernel
        t, l, b, r = p.pads
        if not (0 <= t < kh and 0 <= b < kh and 0 <= l < kw and 0 <= r < kw):
            raise ValueError(f"{name}: pool pads must be in [0, kernel)")
        if min(p.stride) < 1 or max(p.kernel) > 64 or max(p.stride) > 64:
            raise ValueError(f"{name}: unsupported pool window/stride")
    layer.out_shape  # raises for empty outputs


@dataclass
class Program:
    """A compiled layer program (see module doc). Blobs are little-endian bytes."""

    engine_cfg: EngineConfig
    layers: list                      # [(layer, in_id, out_id)]
    schedules: list[TileSchedule]
    descriptors: bytes
    weights: bytes
    params: bytes
    arena_bytes: int
    tensor_offsets: dict
    tensor_shapes: dict
    input_ids: list
    output_ids: list
    costs: list[LayerCost] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def params_words(self) -> int:
        return len(self.params) // 4

    @property
    def input_offsets(self) -> list[int]:
        return [self.tensor_offsets[t] for t in self.input_ids]

    @property
    def input_shapes(self) -> list[tuple[int, int, int]]:
        return [tuple(self.tensor_shapes[t]) for t in self.input_ids]

    @property
    def output_offsets(self) -> list[int]:
        return [self.tensor_offsets[t] for t in self.output_ids]

    @property
    def output_shapes(self) -> list[tuple[int, int, int]]:
        return [tuple(self.tensor_shapes[t]) for t in self.output_ids]

    @property
    def layer_cycles(self) -> list[int]:
        return [c.cycles for c in self.costs]

    @property
    def total_cycles(self) -> int:
        return sum(self.layer_cycles)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer, _, _ in self.layers)

    def descriptor(self, i: int) -> bytes:
        return self.descriptors[i * LAYER_WORDS * 4:(i + 1) * LAYER_WORDS * 4]


def _allocate(layers, tensors, inputs, outputs) -> tuple[dict, int]:
    """First-fit arena allocation over tensor liveness intervals [def, last use]."""
    n = len(layers)
    first, last = {}, {}
    for t in inputs:
        first[t] = -1
    for i, (_, ti, to) in enumerate(layers):
        first.setdefault(to, i)
        last[ti] = max(last.get(ti, i), i)
        last.setdefault(to, i)
    for t in outputs:
        last[t] = n
    placed: list[tuple[int, int, int, int]] = []  # (off, end, first, last)
    offsets = {}
    order = sorted(first, key=lambda t: (first[t], str(t)))
    for t in order:
        c, h, w = tensors[t]
        size = _align(c * h * w)
        lo, hi = first[t], last.get(t, first[t])
        busy = sorted((o, e) for o, e, f, l in placed if not (l < lo or f > hi))
        off = 0
        for o, e in busy:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[t] = off
        placed.append((off, off + size, lo, hi))
    arena = max((e for _, e, _, _ in placed), default=0)
    return offsets, max(arena, ALIGN)


def build_program(layers, tensors, inputs, outputs, engine_cfg: EngineConfig | None = None,
                  schedules=None, check: bool = True) -> Program:
    """Build the program of ``layers`` (list of ``(Layer, in_id, out_id)``).

    ``tensors``: tensor id -> (C, H, W); ``inputs``/``outputs``: tensor ids (arena
    inputs written by the caller, outputs read back). ``schedules``: None (default
    tiler for every layer), a list aligned with ``layers`` (None entries use the
    default), or a dict layer name -> TileSchedule. With ``check`` (default) a schedule
    that overflows a buffer raises :class:`~zynq_squeeze.errors.ScheduleError`;
    ``check=False`` leaves that to the engine (tests of its error path).
    """
    cfg = engine_cfg or EngineConfig()
    layers = [tuple(x) for x in layers]
    tensors = {k: tuple(int(d) for d in v) for k, v in tensors.items()}
    produced = set(inputs)
    for layer, ti, to in layers:
        if not isinstance(layer, (ConvLayer, FireLayer)):
            raise TypeError(f"not an accelerator layer: {type(layer).__name__}")
        check_layer(layer)
        if ti not in tensors or to not in tensors:
            raise ValueError(f"{layer.name}: unknown tensor {ti!r} or {to!r}")
        if ti not in produced:
            raise ValueError(f"{layer.name}: input tensor {ti!r} is not produced before use")
        if tensors[ti] != tuple(layer.in_shape):
            raise ValueError(f"{layer.name}: tensor {ti!r} {tensors[ti]} != in_shape {layer.in_shape}")
        if tensors[to] != tuple(layer.out_shape):
            raise ValueError(f"{layer.name}: tensor {to!r} {tensors[to]} != out_shape {layer.out_shape}")
        if ti == to:
            raise ValueError(f"{layer.name}: in-place layers are not supported")
        if to in produced:
            raise ValueError(f"{layer.name}: tensor {to!r} written twice")
        produced.add(to)
    for t in outputs:
        if t not in produced:
            raise ValueError(f"output tensor {t!r} is never produced")
    if len(layers) > 256:
        raise ValueError("at most 256 layers per program")

    scheds: list[TileSchedule] = []
    for k, (layer, _, _) in enumerate(layers):
        s = None
        if isinstance(schedules, dict):
            s = schedules.get(layer.name)
        elif schedules is not None:
            s = schedules[k]
        scheds.append(s if s is not None else default_schedule(layer, cfg))

    offsets, arena = _allocate(layers, tensors, list(inputs), list(outputs))
    wparts, pparts = [], []
    wpos = ppos = 0
    descs, costs = [], []
    for (layer, ti, to), s in zip(layers, scheds):
        w_offs, p_offs = [], []
        for conv, (toc, tic) in zip(layer_convs(layer), slot_tiles(layer, s)):
            pad = _align(wpos) - wpos
            if pad:
                wparts.append(np.zeros(pad, dtype=np.int8))
                wpos += pad
            w_offs.append(wpos)
            blob = pack_weights(conv.weight, toc, tic)
            wparts.append(blob)
            wpos += blob.size
            p_offs.append(ppos)
            pb = pack_params(conv)
            pparts.append(pb)
            ppos += pb.size
        d = make_descriptor(layer, s, offsets[ti], offsets[to], w_offs, p_offs)
        if check:
            check_fits(d, cfg, layer.name)
        descs.append(d)
        costs.append(descriptor_cost(d, cfg))
    weights = np.concatenate(wparts).astype(np.int8) if wparts else np.zeros(0, np.int8)
    params = np.concatenate(pparts).astype("<i4") if pparts else np.zeros(0, "<i4")
    return Program(
        engine_cfg=cfg, layers=layers, schedules=scheds,
        descriptors=b"".join(pack_descriptor(d) for d in descs),
        weights=weights.tobytes(), params=params.tobytes(), arena_bytes=arena,
        tensor_offsets=offsets, tensor_shapes=tensors, input_ids=list(inputs),
        output_ids=list(outputs), costs=costs)


def chain_program(layers, engine_cfg: EngineConfig | None = None, schedules=None,
                  check: bool = True) -> Program:
    """Program of a linear chain of layers: tensor ``k`` feeds layer ``k``."""
    tensors = {0: tuple(layers[0].in_shape)}
    triples = []
    for k, layer in enumerate(layers):
        tensors[k + 1] = tuple(layer.out_shape)
        triples.append((layer, k, k + 1))
    return build_program(triples, tensors, [0], [len(layers)], engine_cfg, schedules, check)


def run_reference(program_or_layers, inputs) -> list[np.ndarray]:
    """Golden-model outputs of a :class:`Program` (inputs in ``input_ids`` order) or of a
    chain of layers (one input). Arrays are int8 (C, H, W)."""
    if isinstance(program_or_layers, Program):
        p = program_or_layers
        vals = dict(zip(p.input_ids, inputs))
        for layer, ti, to in p.layers:
            vals[to] = run_layer(layer, vals[ti])
        return [vals[t] for t in p.output_ids]
    x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    for layer in program_or_layers:
        x = run_layer(layer, x)
    return [x]


def engine_config_header(cfg: EngineConfig, comment: str = "") -> str:
    """Text of the engine's ``zsq_config.h`` for ``cfg`` (deterministic)."""
    if cfg.axi_bits not in (32, 64, 128):
        raise ValueError("axi_bits must be 32, 64 or 128")
    lines = ["/*", " * zsq_config.h - generated by zynq_squeeze.codegen.program.engine_config_header."]
    for ln in comment.splitlines():
        lines.append(f" * {ln}".rstrip())
    lines += [" */", "#ifndef ZSQ_CONFIG_H", "#define ZSQ_CONFIG_H", ""]
    vals = [("ZSQ_PE_OC", cfg.pe_oc), ("ZSQ_PE_IC", cfg.pe_ic),
            ("ZSQ_IN_BUF_BYTES", cfg.in_buf_bytes), ("ZSQ_W_BUF_BYTES", cfg.w_buf_bytes),
            ("ZSQ_ACC_WORDS", cfg.acc_words), ("ZSQ_OUT_BUF_BYTES", cfg.out_buf_bytes),
            ("ZSQ_SQ_BUF_BYTES", cfg.sq_buf_bytes), ("ZSQ_PARAM_DEPTH", cfg.param_depth),
            ("ZSQ_RQ_LANES", cfg.rq_lanes),
            ("ZSQ_AXI_BYTES", cfg.axi_bytes), ("ZSQ_BURST_OVERHEAD", cfg.burst_overhead),
            ("ZSQ_PIPELINE_DEPTH", cfg.pipeline_depth),
            ("ZSQ_LAYER_OVERHEAD", cfg.layer_overhead)]
    for k, v in vals:
        if int(v) != v or v < 0:
            raise ValueError(f"{k} must be a non-negative integer, got {v}")
        lines.append(f"#define {k} {int(v)}")
    lines += [f"#define ZSQ_CLOCK_KHZ {int(round(cfg.clock_mhz * 1000))}", "",
              "#endif /* ZSQ_CONFIG_H */", ""]
    return "\n".join(lines)
