"""Analytic cycle model of the engine (and the buffer-fit rules of its tiles).

It walks a layer's tiles in the engine's order and charges, per item (one output-channel
tile of one spatial tile of one convolution), exactly what ``src/zsq_engine.cpp`` charges
while it executes (docs/ENGINE.md has the formulas):

* AXI burst: ``burst_overhead + ceil(bytes / axi_bytes)``; a contiguous HWC run is one
  burst (full-depth rows; full-width full-depth blocks are one run; else one per pixel);
* compute step: ``px * kh * kw * ceil(tic / pe_ic) * ceil(toc / pe_oc) + pipeline_depth``;
* item: ``L0 + sum_j max(C_j, L_{j+1})`` (double buffering; ``sum L_j + C_j`` without),
  plus requant ``px * ceil(toc / rq_lanes)`` and pool ``out_px * kh * kw * ceil(toc / rq_lanes)``;
* stores overlap the next item: ``total += max(X_i, S_{i-1})``; the last store is added
  at the end, plus ``layer_overhead``.

Loads are skipped when the buffer already holds the block (same tag), which happens when
a convolution has a single input-channel step.
"""
from __future__ import annotations

from dataclasses import dataclass

from .descriptor import KIND_CONV, POOL_NONE, make_descriptor
from .errors import ScheduleError
from .schedule import EngineConfig, TileSchedule


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
    if d["kind"] == KIND_CONV:
        toc = min(d["toc"], d["out_c"])
        needs = [("param_buf", toc, cfg.param_depth),
                 ("in_buf", niy * nix * tic, cfg.in_buf_bytes),
                 ("w_buf", toc * K0 * tic, cfg.w_buf_bytes),
                 ("acc_buf", conv_px * toc, cfg.acc_words)]
        if pool:
            needs.append(("cv_buf", conv_px * toc, cfg.out_buf_bytes))
        needs.append(("out_buf", out_px * toc, cfg.out_buf_bytes))
        return needs
    S, E1, E3 = c0["oc"], d["conv"][1]["oc"], d["conv"][2]["oc"]
    toc_s, toc1, toc3 = min(d["toc"], S), min(d["toc"], E1), min(d["toc"], E3)
    tocm = max(toc1, toc3)
    needs = [("param_buf", max(toc_s, tocm), cfg.param_depth),
             ("in_buf", nqiy * nqix * tic, cfg.in_buf_bytes),
             ("w_buf", max(toc_s * K0 * tic, toc1 * S, toc3 * 9 * S), cfg.w_buf_bytes),
             ("acc_buf", max(nqy * nqx * toc_s, conv_px * tocm), cfg.acc_words),
             ("sq_buf", (ncy + 2) * (ncx + 2) * S, cfg.sq_buf_bytes)]
    if pool:
        needs.append(("cv_buf", conv_px * tocm, cfg.out_buf_bytes))
    needs.append(("out_buf", out_px * tocm, cfg.out_buf_bytes))
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
        self.prev_store = 0
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

    def account(self, X: int, S: int) -> None:
        if self.db:
            self.total += max(X, self.prev_store)
            self.prev_store = S
        else:
            self.total += X + S


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


def _run_item(st, d, slot, oc_tile, toc_a, ty, tx, ch, cw, reg, onchip):
    cfg = st.cfg
    c = d["conv"][slot]
    K = c["kh"] * c["kw"]
    tic = c["ic"] if onchip else min(d["tic"], c["ic"])
    n_ic = _cdiv(c["ic"], tic)
    npx = ch * cw
    X = 0
    tp = (slot, oc_tile)
    if tp != st.p_tag:
        st.bytes += 12 * toc_a
        X += st.burst(1, 12 * toc_a)
        st.p_tag = tp
    X += _load_step(st, d, slot, oc_tile, toc_a, ty, tx, 0, tic, reg, onchip)
    ogrp = _cdiv(toc_a, cfg.pe_oc)
    for j in range(n_ic):
        tic_a = min(tic, c["ic"] - j * tic)
        Ln = (_load_step(st, d, slot, oc_tile, toc_a, ty, tx, j + 1, tic, reg, onchip)
              if j + 1 < n_ic else 0)
        C = npx * K * _cdiv(tic_a, cfg.pe_ic) * ogrp + cfg.pipeline_depth
        st.macs += npx * K * tic_a * toc_a
        X += max(C, Ln) if st.db else C + Ln
    return X


def _finish_item(st, d, toc_a, ch, cw, ay, ax, X):
    ogrp = _cdiv(toc_a, st.cfg.rq_lanes)
    R = ch * cw * ogrp
    if d["pool_kind"] != POOL_NONE:
        if d["pool_global"]:
            kh, kw = d["conv_h"], d["conv_w"]
        else:
            kh, kw = d["pool_kh"], d["pool_kw"]
        R += ay.no * ax.no * kh * kw * ogrp
    S = st.hwc(ay.no, ax.no, toc_a, d["out_w"], d["out_c"])
    st.account(X + R, S)


def descriptor_cost(d: dict, cfg: EngineConfig) -> LayerCost:
    """Modeled cost of one layer descriptor (walks the tiles like the engine)."""
    st = _State(cfg, bool(d["double_buffer"]))
    n_ty, n_tx = _n_tiles(d)
    ys = [axis_geom(d, True, t) for t in range(n_ty)]
    xs = [axis_geom(d, False, t) for t in range(n_tx)]
    if d["kind"] == KIND_CONV:
        toc = min(d["toc"], d["out_c"])
        n_ot = _cdiv(d["out_c"], toc)

        def item(ty, tx, ot):
            ay, ax = ys[ty], xs[tx]
            oc0 = ot * toc
            toc_a = min(toc, d["out_c"] - oc0)
            X = _run_item(st, d, 0, ot, toc_a, ty, tx, ay.nc, ax.nc,
                          (ay.i0, ay.ni, ax.i0, ax.ni), False)
            _finish_item(st, d, toc_a, ay.nc, ax.nc, ay, ax, X)

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
        for ty in range(n_ty):
            for tx in range(n_tx):
                ay, ax = ys[ty], xs[tx]
                for ot in range(_cdiv(S, toc_s)):
                    toc_a = min(toc_s, S - ot * toc_s)
                    X = _run_item(st, d, 0, ot, toc_a, ty, tx, ay.nq, ax.nq,
                                  (ay.qi0, ay.nqi, ax.qi0, ax.nqi), False)
                    st.account(X + ay.nq * ax.nq * _cdiv(toc_a, cfg.rq_lanes), 0)
                for slot, E in ((1, E1), (2, E3)):
                    toc = min(d["toc"], E)
                    for ot in range(_cdiv(E, toc)):
                        toc_a = min(toc, E - ot * toc)
                        X = _run_item(st, d, slot, ot, toc_a, ty, tx, ay.nc, ax.nc, None, True)
                        _finish_item(st, d, toc_a, ay.nc, ax.nc, ay, ax, X)
    st.total += st.prev_store
    return LayerCost(st.total, st.bytes, st.macs)


def layer_cost(layer, sched: TileSchedule, cfg: EngineConfig) -> LayerCost:
    """Modeled cost of ``layer`` tiled by ``sched`` on engine ``cfg``."""
    return descriptor_cost(make_descriptor(layer, sched), cfg)


def cycles_to_ms(cycles: int, cfg: EngineConfig) -> float:
    return cycles / (cfg.clock_mhz * 1e3)
