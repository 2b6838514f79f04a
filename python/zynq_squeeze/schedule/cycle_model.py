"""Analytic cycle model of the engine (and the buffer-fit rules of its tiles).

It walks a layer's tiles in the engine's order and charges, per item (one output-channel
tile of one spatial tile of one convolution), exactly what ``src/zsq_engine.cpp`` charges
while it executes (docs/ENGINE.md, "Pipeline" and "Cycle model", has the formulas):

* AXI burst: ``burst_overhead + ceil(bytes / axi_bytes)``; a contiguous HWC run is one
  burst (full-depth rows; full-width full-depth blocks are one run; else one per pixel);
* compute step: ``px * kh * ceil(kw * tic / pe_ic) * ceil(toc / pe_oc) + pipeline_depth``
  (the MAC array reduces ``pe_ic`` consecutive bytes of a ``kw * tic`` kernel row);
* items run through a lockstep 3-stage pipeline: compute (loads + MAC array into one
  half of the ping-pong accumulator; the next item's first loads are prefetched during
  the last compute step) | requant ``px * ceil(toc / rq_lanes)`` + pool
  ``out_px * kh * kw * ceil(toc / pe_oc)`` | store; each step costs the max of its stages;
* FIRE and spatial_outer CONV assemble the output tile over all channels and store it
  once (full-depth rows); oc_outer CONV stores per item.

Loads are skipped when the buffer already holds the block (same tag), which happens when
a convolution has a single input-channel step.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..engine.config import EngineConfig, TileSchedule
from ..engine.descriptor import KIND_CONV, POOL_NONE, make_descriptor
from ..errors import ScheduleError


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerCost:
    """Modeled cost of one layer: cycles, DDR bytes moved, MACs executed."""

    cycles: int
    ddr_bytes: int
    macs: int


@dataclass
class _Axis:
    o0: int
    no: int
    c0: int
    nc: int
    i0: int
    ni: int
    q0: int
    nq: int
    qi0: int
    nqi: int


def axis_geom(d: dict, is_y: bool, t: int) -> _Axis:
    """Geometry of spatial tile ``t`` along rows (``is_y``) or columns (engine's axis_geom)."""
    T = d["th"] if is_y else d["tw"]
    out_n = d["out_h"] if is_y else d["out_w"]
    conv_n = d["conv_h"] if is_y else d["conv_w"]
    o0 = t * T
    no = min(T, out_n - o0)
    if d["pool_kind"] == POOL_NONE:
        c0, nc = o0, no
    elif d["pool_global"]:
        c0, nc = 0, conv_n
    else:
        ps = d["pool_sh"] if is_y else d["pool_sw"]
        pk = d["pool_kh"] if is_y else d["pool_kw"]
        plo = d["pool_pt"] if is_y else d["pool_pl"]
        c0 = max(0, o0 * ps - plo)
        c1 = min(conv_n, (o0 + no - 1) * ps - plo + pk)
        nc = c1 - c0
    c = d["conv"][0]
    k, s, plo = (c["kh"], c["sh"], c["pt"]) if is_y else (c["kw"], c["sw"], c["pl"])
    q0 = max(0, c0 - 1)
    nq = min(conv_n, c0 + nc + 1) - q0
    return _Axis(o0, no, c0, nc, c0 * s - plo, (nc - 1) * s + k, q0, nq, q0 * s - plo,
                 (nq - 1) * s + k)


def _n_tiles(d: dict) -> tuple[int, int]:
    return _cdiv(d["out_h"], d["th"]), _cdiv(d["out_w"], d["tw"])


def buffer_needs(d: dict, cfg: EngineConfig) -> list[tuple[str, int, int]]:
    """(buffer, needed, capacity) for the worst tile, in the engine's check order."""
    n_ty, n_tx = _n_tiles(d)
    ys = [axis_geom(d, True, t) for t in range(n_ty)]
    xs = [axis_geom(d, False, t) for t in range(n_tx)]

    def mx(attr):
        return max(getattr(a, attr) for a in ys), max(getattr(a, attr) for a in xs)

    (noy, nox), (ncy, ncx), (niy, nix) = mx("no"), mx("nc"), mx("ni")
    (nqy, nqx), (nqiy, nqix) = mx("nq"), mx("nqi")
    out_px, conv_px = noy * nox, ncy * ncx
    c0 = d["conv"][0]
    tic = min(d["tic"], d["in_c"])
    K0 = c0["kh"] * c0["kw"]
    pool = d["pool_kind"] != POOL_NONE
    # w_buf: pe_oc banks; a block's channel o lives in bank o % pe_oc (need and capacity
    # are per bank)
    wcap = _cdiv(cfg.w_buf_bytes, cfg.pe_oc)

    def wb(toc):
        return _cdiv(toc, cfg.pe_oc)

    if d["kind"] == KIND_CONV:
        toc = min(d["toc"], d["out_c"])
        needs = [("param_buf", toc, cfg.param_depth),
                 ("in_buf", niy * nix * tic, cfg.in_buf_bytes),
                 ("w_buf", wb(toc) * K0 * tic, wcap),
                 ("acc_buf", conv_px * toc, cfg.acc_words)]
        if pool:
            needs.append(("cv_buf", conv_px * toc, cfg.out_buf_bytes))
        needs.append(("out_buf", out_px * (d["out_c"] if assembles(d) else toc),
                      cfg.out_buf_bytes))
        return needs
    S, E1, E3 = c0["oc"], d["conv"][1]["oc"], d["conv"][2]["oc"]
    toc_s, toc1, toc3 = min(d["toc"], S), min(d["toc"], E1), min(d["toc"], E3)
    tocm = max(toc1, toc3)
    needs = [("param_buf", max(toc_s, tocm), cfg.param_depth),
             ("in_buf", nqiy * nqix * tic, cfg.in_buf_bytes),
             ("w_buf", max(wb(toc_s) * K0 * tic, wb(toc1) * S, wb(toc3) * 9 * S), wcap),
             ("acc_buf", max(nqy * nqx * toc_s, conv_px * tocm), cfg.acc_words),
             ("sq_buf", (ncy + 2) * (ncx + 2) * S, cfg.sq_buf_bytes)]
    if pool:
        needs.append(("cv_buf", conv_px * tocm, cfg.out_buf_bytes))
    needs.append(("out_buf", out_px * (E1 + E3), cfg.out_buf_bytes))
    return needs


def check_fits(d: dict, cfg: EngineConfig, name: str = "layer") -> None:
    """Raise :class:`ScheduleError` naming the first on-chip buffer the tiles overflow."""
    for buf, need, cap in buffer_needs(d, cfg):
        if need > cap:
            raise ScheduleError(
                f"{name}: tile toc={d['toc']} tic={d['tic']} th={d['th']} tw={d['tw']} "
                f"needs {need} in {buf}, which holds {cap}")


def fits(d: dict, cfg: EngineConfig) -> bool:
    return all(need <= cap for _, need, cap in buffer_needs(d, cfg))


class _State:
    def __init__(self, cfg: EngineConfig, db: bool):
        self.cfg = cfg
        self.db = db
        self.in_tag = self.w_tag = self.p_tag = None
        self.total = cfg.layer_overhead
        self.r1 = self.s1 = self.s2 = 0
        self.pend = None
        self.bytes = 0
        self.macs = 0

    def burst(self, n: int, b: int) -> int:
        return n * (self.cfg.burst_overhead + _cdiv(b, self.cfg.axi_bytes))

    def hwc(self, rows: int, cols: int, nc: int, width: int, depth: int) -> int:
        if rows <= 0 or cols <= 0 or nc <= 0:
            return 0
        self.bytes += rows * cols * nc
        if nc == depth:
            if cols == width:
                return self.burst(1, rows * cols * nc)
            return self.burst(rows, cols * nc)
        return self.burst(rows * cols, nc)

    def _step(self, A: int, R: int, S: int) -> None:
        # one lockstep pipeline step: compute of item k | requant+pool of k-1 | store of k-2
        self.total += max(A, self.r1, self.s2)
        self.s2, self.r1, self.s1 = self.s1, R, S

    def start_item(self, P: int, L0: int, drain: bool) -> int:
        """Begin an item (params load P, first loads L0); returns its compute-stage cycles
        so far. With double buffering L0 is prefetched during the previous item's last
        compute step, and ``drain`` inserts an empty step (fire: sq_buf complete)."""
        if not self.db:
            return P + L0
        if self.pend is None:
            A = P + L0
        else:
            pA, pC, pR, pS = self.pend
            self._step(pA + max(pC, L0), pR, pS)
            self.pend = None
            A = P
        if drain:
            self._step(0, 0, 0)
        return A

    def end_item(self, A: int, C_last: int, R: int, S: int) -> None:
        if self.db:
            self.pend = (A, C_last, R, S)
        else:
            self.total += A + C_last + R + S

    def finish(self) -> None:
        if self.pend is not None:
            pA, pC, pR, pS = self.pend
            self._step(pA + pC, pR, pS)
            self.pend = None
        if self.db:
            self._step(0, 0, 0)
            self._step(0, 0, 0)


def _load_step(st, d, slot, oc_tile, toc_a, ty, tx, j, tic, reg, onchip):
    c = d["conv"][slot]
    K = c["kh"] * c["kw"]
    ic0 = j * tic
    tic_a = min(tic, c["ic"] - ic0)
    cyc = 0
    if not onchip:
        t = (slot, ty, tx, j)
        if t != st.in_tag:
            iy0, ny, ix0, nx = reg
            vr = min(d["in_h"], iy0 + ny) - max(0, iy0)
            vc = min(d["in_w"], ix0 + nx) - max(0, ix0)
            if vr > 0 and vc > 0:
                cyc += st.hwc(vr, vc, tic_a, d["in_w"], d["in_c"])
            st.in_tag = t
    tw = (slot, oc_tile, j)
    if tw != st.w_tag:
        n = toc_a * K * tic_a
        st.bytes += n
        cyc += st.burst(1, n)
        st.w_tag = tw
    return cyc


def _run_item(st, d, slot, oc_tile, toc_a, ty, tx, ch, cw, reg, onchip, drain=False):
    """Loads and compute of one item; returns (A, C_last) for :meth:`_State.end_item`."""
    cfg = st.cfg
    c = d["conv"][slot]
    tic = c["ic"] if onchip else min(d["tic"], c["ic"])
    n_ic = _cdiv(c["ic"], tic)
    npx = ch * cw
    P = 0
    tp = (slot, oc_tile)
    if tp != st.p_tag:
        st.bytes += 12 * toc_a
        P = st.burst(1, 12 * toc_a)
        st.p_tag = tp
    L0 = _load_step(st, d, slot, oc_tile, toc_a, ty, tx, 0, tic, reg, onchip)
    A = st.start_item(P, L0, drain)
    ogrp = _cdiv(toc_a, cfg.pe_oc)
    C = 0
    for j in range(n_ic):
        tic_a = min(tic, c["ic"] - j * tic)
        if j > 0:
            Ln = _load_step(st, d, slot, oc_tile, toc_a, ty, tx, j, tic, reg, onchip)
            A += max(C, Ln) if st.db else C + Ln
        C = npx * c["kh"] * _cdiv(c["kw"] * tic_a, cfg.pe_ic) * ogrp + cfg.pipeline_depth
        st.macs += npx * c["kh"] * c["kw"] * tic_a * toc_a
    return A, C


def _pool_window(d):
    if d["pool_kind"] == POOL_NONE:
        return 0, 0
    if d["pool_global"]:
        return d["conv_h"], d["conv_w"]
    return d["pool_kh"], d["pool_kw"]


def _requant_cycles(d, cfg, toc_a, ch, cw, ay, ax):
    """Requant (rq_lanes channels per cycle) + pool (pe_oc channels per cycle)."""
    R = ch * cw * _cdiv(toc_a, cfg.rq_lanes)
    kh, kw = _pool_window(d)
    return R + ay.no * ax.no * kh * kw * _cdiv(toc_a, cfg.pe_oc)


def assembles(d: dict) -> bool:
    """Whether the output tile is assembled over all channels before one store (FIRE and
    spatial_outer CONV) rather than stored per output-channel tile (oc_outer CONV)."""
    return d["kind"] != KIND_CONV or d["loop_order"] == 0


# Buffer depths decide which tiles are legal (buffer_needs), never what a tile costs:
# costs are memoized on the descriptor and the remaining engine fields, which makes the
# engine search (many buffer variants of one MAC array) cheap.
_BUFFER_FIELDS = ("in_buf_bytes", "w_buf_bytes", "acc_words", "out_buf_bytes",
                  "sq_buf_bytes", "param_depth")
_COST_MEMO: dict = {}
_COST_MEMO_MAX = 200_000


def _frozen(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    return v


def descriptor_cost(d: dict, cfg: EngineConfig) -> LayerCost:
    """Modeled cost of one layer descriptor (walks the tiles like the engine; memoized)."""
    key = (_frozen(d), dataclasses.replace(cfg, **{f: 0 for f in _BUFFER_FIELDS}))
    cost = _COST_MEMO.get(key)
    if cost is None:
        if len(_COST_MEMO) >= _COST_MEMO_MAX:
            _COST_MEMO.clear()
        cost = _COST_MEMO[key] = _descriptor_cost(d, cfg)
    return cost


def _descriptor_cost(d: dict, cfg: EngineConfig) -> LayerCost:
    st = _State(cfg, bool(d["double_buffer"]))
    n_ty, n_tx = _n_tiles(d)
    ys = [axis_geom(d, True, t) for t in range(n_ty)]
    xs = [axis_geom(d, False, t) for t in range(n_tx)]
    asm = assembles(d)

    def store(ay, ax, nc):
        return st.hwc(ay.no, ax.no, nc, d["out_w"], d["out_c"])

    if d["kind"] == KIND_CONV:
        toc = min(d["toc"], d["out_c"])
        n_ot = _cdiv(d["out_c"], toc)

        def item(ty, tx, ot):
            ay, ax = ys[ty], xs[tx]
            toc_a = min(toc, d["out_c"] - ot * toc)
            A, C = _run_item(st, d, 0, ot, toc_a, ty, tx, ay.nc, ax.nc,
                             (ay.i0, ay.ni, ax.i0, ax.ni), False)
            R = _requant_cycles(d, cfg, toc_a, ay.nc, ax.nc, ay, ax)
            if not asm:
                S = store(ay, ax, toc_a)
            else:
                S = store(ay, ax, d["out_c"]) if ot == n_ot - 1 else 0
            st.end_item(A, C, R, S)

        if d["loop_order"] == 0:
            for ty in range(n_ty):
                for tx in range(n_tx):
                    for ot in range(n_ot):
                        item(ty, tx, ot)
        else:
            for ot in range(n_ot):
                for ty in range(n_ty):
                    for tx in range(n_tx):
                        item(ty, tx, ot)
    else:
        S, E1, E3 = (d["conv"][i]["oc"] for i in range(3))
        toc_s = min(d["toc"], S)
        toc3 = min(d["toc"], E3)
        for ty in range(n_ty):
            for tx in range(n_tx):
                ay, ax = ys[ty], xs[tx]
                for ot in range(_cdiv(S, toc_s)):
                    toc_a = min(toc_s, S - ot * toc_s)
                    A, C = _run_item(st, d, 0, ot, toc_a, ty, tx, ay.nq, ax.nq,
                                     (ay.qi0, ay.nqi, ax.qi0, ax.nqi), False)
                    st.end_item(A, C, ay.nq * ax.nq * _cdiv(toc_a, cfg.rq_lanes), 0)
                for slot, E in ((1, E1), (2, E3)):
                    toc = min(d["toc"], E)
                    for ot in range(_cdiv(E, toc)):
                        toc_a = min(toc, E - ot * toc)
                        A, C = _run_item(st, d, slot, ot, toc_a, ty, tx, ay.nc, ax.nc, None,
                                         True, drain=(slot == 1 and ot == 0))
                        R = _requant_cycles(d, cfg, toc_a, ay.nc, ax.nc, ay, ax)
                        last = slot == 2 and (ot + 1) * toc3 >= E3
                        st.end_item(A, C, R, store(ay, ax, d["out_c"]) if last else 0)
    st.finish()
    return LayerCost(st.total, st.bytes, st.macs)


def layer_cost(layer, sched: TileSchedule, cfg: EngineConfig) -> LayerCost:
    """Modeled cost of ``layer`` tiled by ``sched`` on engine ``cfg``."""
    return descriptor_cost(make_descriptor(layer, sched), cfg)


def cycles_to_ms(cycles: int, cfg: EngineConfig) -> float:
    return cycles / (cfg.clock_mhz * 1e3)
