"""Fast cycle model of the decoupled engine: replays a program's instruction words
without executing data (docs/ENGINE.md, "Timing by execution").

``simulate`` tracks each module's registers (``SET``), charges every instruction what
``src/zsq_dae.h`` charges while it executes (``ZSQD_LOOP``: trips + depth per pipelined
loop; ``ZSQD_RD_LOOPS`` / ``ZSQD_WR_LOOPS``: burst regions of 16-beat bursts) with the
HP-port formula of ``zsqd_charge_runs`` in ``src/zsq_dae.h``, and runs the same
discrete-event schedule as that driver: fetch routes one word per cycle and stalls on a
full command queue, load / compute / store execute their queues in order, an instruction
starts at max(module free, word arrival, push time of the tokens it pops). Its cycles and
per-instruction completion times are those of the C simulation exactly
(tests/test_timing.py); it does not check footprints (``zsqd_run`` does).

``layer_cycles`` is the tiler's cost: the cycles of one layer lowered alone.
"""
# Hot loops compare with conditional expressions: max() costs ~25 % of simulate().
# ruff: noqa: FURB136, PLR1730
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import isa
from ..engine.dae_config import PE_IC, DaeConfig, DaeTile
from ..errors import EngineError
from ..quantize.layers import layer_signature
from .instructions import Tensor, lower_layers

# zsq_dae_sim.h error codes (the same failures zsqd_run reports)
ERR_OPCODE = -2
ERR_PROGRAM = -7
ERR_DEADLOCK = -8

# token streams (zsq_dae_sim.cpp): 0 load->compute, 1 compute->load, 2 compute->store,
# 3 store->compute. Per module: the stream a POP_PREV / POP_NEXT / PUSH_PREV / PUSH_NEXT
# flag uses (-1: no such neighbour).
_POP_PREV = (-1, 0, 2)
_POP_NEXT = (1, 3, -1)
_PUSH_PREV = (-1, 1, 3)
_PUSH_NEXT = (0, 2, -1)

_ROUTE = {isa.OP_LOAD_INPUT: 0, isa.OP_LOAD_WEIGHT: 0, isa.OP_LOAD_PARAMS: 0,
          isa.OP_LOAD_BYPASS: 0,
          isa.OP_CONV: 1, isa.OP_REQUANT: 1, isa.OP_POOL: 1, isa.OP_STORE: 2,
          isa.OP_FINISH: 3}


@dataclass
class Timing:
    """Modeled run of one program (all times in PL clock cycles)."""

    cycles: int               # whole program: the last module's finish
    insn_end: np.ndarray      # completion cycle of every word (FINISH: the latest module)
    load_busy: int            # cycles each module spent executing (SETs included)
    compute_busy: int
    store_busy: int
    macs: int                 # pe_oc x 8 per CONV iteration (pe_oc per CONV_DW iteration)
    rd_bytes: int             # bytes read by load (activations, weights, params)
    wr_bytes: int             # bytes written by store
    # most tokens waiting in each stream (l2c, c2l, c2s, s2c) at a push; the hardware
    # streams hold cfg.token_depth, which the C driver (and so this model) does not bound
    token_peak: tuple[int, int, int, int] = (0, 0, 0, 0)
    insn_bytes: np.ndarray | None = None  # DDR bytes each word moves (loads, stores)
    insn_cost: np.ndarray | None = None   # cycles each word occupies its module
    insn_module: np.ndarray | None = None  # 0 load, 1 compute, 2 store, 3 FINISH

    @property
    def busy(self) -> tuple[int, int, int]:
        """(load, compute, store) busy cycles."""
        return self.load_busy, self.compute_busy, self.store_busy


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _run(regions: int, n: int, depth: int, lat: int, issue: int, beat_x100: int) -> int:
    """Cycles of ``regions`` pipelined loops, each one AXI burst region of ``n`` beats
    (``zsqd_charge_runs`` in src/zsq_dae.h): per region max(loop, latency + streaming)."""
    if regions <= 0 or n <= 0:
        return 0
    b = (n * beat_x100 + 99) // 100
    s = ((n + 15) // 16) * issue
    axi = lat + (b if b > s else s)
    loop = n + depth
    return regions * (loop if loop > axi else axi)


def load_input_cost(H: int, W: int, G: int, y0: int, x0: int, rows: int, cols: int, ng: int,
                    dl: int, rd_lat: int, rd_issue: int, beat_x100: int) -> tuple[int, int]:
    """(cycles, DDR beats) of one LOAD_INPUT of the window (y0, x0, rows, cols) x ``ng``
    groups of an (H, W, G groups) tensor, as ``src/zsq_dae.h`` charges it."""
    # the valid columns [cl, cr) of every row (isa.derived's clamping)
    cl = -x0 if x0 < 0 else 0
    cl = cl if cl < cols else cols
    cr_ = W - x0 if x0 + cols > W else cols
    cr_ = cr_ if cr_ > cl else cl
    nv = (min(y0 + rows, H) - max(y0, 0)) if cl < cr_ else 0
    nv = nv if nv > 0 else 0
    trips = cols * ng
    # rows outside the image: one zero loop; rows inside: zeros, the valid span as
    # burst region(s) (one per row when ng == G, else one per pixel), zeros
    cyc = (rows - nv) * (trips + dl if trips > 0 else 0)
    beats = 0
    if nv:
        left, right = cl * ng, (cols - cr_) * ng
        per_row = (left + dl if left > 0 else 0) + (right + dl if right > 0 else 0)
        if ng == G:
            per_row += _run(1, ng * (cr_ - cl), dl, rd_lat, rd_issue, beat_x100)
        else:
            per_row += _run(cr_ - cl, ng, dl, rd_lat, rd_issue, beat_x100)
        cyc += nv * per_row
        beats = nv * (cr_ - cl) * ng
    return cyc, beats


def _costs(cfg: DaeConfig, words: list[int], beat_x100: int):
    """Per word: (module or 3 for FINISH, cost in cycles); plus (macs, rd beats, wr beats).

    Costs depend only on each module's registers, which SETs change in module order (a
    sub-order of program order), so one pass in program order charges every instruction
    as the C modules do."""
    dl, dm, drq, dp, ds = (cfg.depth_load, cfg.depth_mac, cfg.depth_rq, cfg.depth_pool,
                           cfg.depth_store)
    rd_lat, wr_lat = cfg.rd_latency, cfg.wr_latency
    rd_issue = _cdiv(rd_lat, cfg.outstanding)  # cycles per burst when latency-bound
    wr_issue = _cdiv(wr_lat, cfg.outstanding)
    mac_per_trip = cfg.pe_oc * PE_IC
    CONV_DW = isa.CONV_DW
    OP_SET, OP_LI, OP_LW, OP_LP = isa.OP_SET, isa.OP_LOAD_INPUT, isa.OP_LOAD_WEIGHT, isa.OP_LOAD_PARAMS
    OP_CONV, OP_RQ, OP_POOL, OP_ST, OP_FIN = (isa.OP_CONV, isa.OP_REQUANT, isa.OP_POOL,
                                              isa.OP_STORE, isa.OP_FINISH)
    OP_LB = isa.OP_LOAD_BYPASS
    lr = [0] * 64  # load registers
    cr = [0] * 64  # compute registers (ids - 64)
    sr = [0] * 64  # store registers (ids - 128)
    regs = (lr, cr, sr, None)
    mods = []
    costs = []
    ddr = [0] * len(words)  # DDR bytes each word moves (loads and stores)
    macs = rd_beats_all = wr_beats_all = 0
    for i, w in enumerate(words):
        op = w & 15
        if op == OP_SET:
            m = (w >> 22) & 3
            if m == 3:
                raise EngineError(f"accelerator error {ERR_OPCODE}: instruction {i}: "
                                  "SET of a register of no module", ERR_OPCODE)
            v = (w >> 32) & 0xFFFFFFFF
            regs[m][(w >> 16) & 63] = v - (1 << 32) if v >= 1 << 31 else v
            mods.append(m)
            costs.append(1)
            continue
        if op == OP_LI:
            cyc, beats = load_input_cost(lr[1], lr[2], lr[3], lr[4], lr[5], lr[7], lr[8], lr[9],
                                         dl, rd_lat, rd_issue, beat_x100)
            rd_beats_all += beats
            ddr[i] = beats * 8
            costs.append(cyc)
            mods.append(0)
            continue
        elif op == OP_LW or op == OP_LP:
            n = lr[17] if op == OP_LW else lr[25]
            cyc = _run(1, n, dl, rd_lat, rd_issue, beat_x100)
            beats = n if n > 0 else 0
            rd_beats_all += beats
            ddr[i] = beats * 8
            costs.append(cyc)
            mods.append(0)
            continue
        elif op == OP_CONV:
            trips = cr[0] * cr[1] * cr[2] * cr[3] * cr[4] * cr[8]
            # a depthwise step (CONV_DW) uses one product per MAC row per cycle
            macs += trips * (cfg.pe_oc if w & CONV_DW else mac_per_trip)
            costs.append(trips + dm if trips > 0 else 0)
            mods.append(1)
            continue
        elif op == OP_RQ:
            trips = cr[16] * cr[17] * cr[18]
            costs.append(trips + drq if trips > 0 else 0)
            mods.append(1)
            continue
        elif op == OP_POOL:
            trips = cr[32] * cr[33] * cr[34] * cr[35] * cr[36]
            costs.append(trips + dp if trips > 0 else 0)
            mods.append(1)
            continue
        elif op == OP_ST or op == OP_LB:
            # STORE, and LOAD_BYPASS (residual add) which reads a window the same way:
            # one burst region per row when the region spans every group, else per pixel
            st = op == OP_ST
            G, rows, cols, ng = (sr[3], sr[7], sr[8], sr[9]) if st else (lr[35], lr[39], lr[40],
                                                                         lr[41])
            depth, lat, issue = (ds, wr_lat, wr_issue) if st else (dl, rd_lat, rd_issue)
            if ng == G:
                per_row = _run(1, cols * ng, depth, lat, issue, beat_x100)
            else:
                per_row = _run(cols, ng, depth, lat, issue, beat_x100)
            cyc = rows * per_row if rows > 0 else 0
            beats = rows * cols * ng if rows > 0 and cols > 0 else 0
            if st:
                wr_beats_all += beats
            else:
                rd_beats_all += beats
            ddr[i] = beats * 8
            costs.append(cyc)
            mods.append(2 if st else 0)
            continue
        elif op == OP_FIN:
            costs.append(1)
            mods.append(3)
            continue
        else:
            raise EngineError(f"accelerator error {ERR_OPCODE}: instruction {i}: unknown opcode",
                              ERR_OPCODE)
    return mods, costs, macs, rd_beats_all, wr_beats_all, ddr


def simulate(cfg: DaeConfig, words, beat_x100: int = 100) -> Timing:
    """Time the program ``words`` (64-bit instruction words) on the engine ``cfg``.

    ``beat_x100``: cycles x 100 per 64-bit DDR beat (as ``toolchain.dae_sim``). Raises
    EngineError for programs the C simulation rejects on their instruction stream
    (unknown opcode, no FINISH, flags towards no module, deadlock, unbalanced tokens)."""
    if beat_x100 < 1:
        raise ValueError("beat_x100 must be >= 1")
    if isinstance(words, np.ndarray):
        words = words.astype(np.uint64, copy=False).tolist()
    else:
        words = [int(w) & 0xFFFFFFFFFFFFFFFF for w in words]
    n = len(words)
    if n < 1:
        raise EngineError("accelerator error -1: instruction -1: bad arguments", -1)
    mods, costs, macs, rd_beats, wr_beats, ddr = _costs(cfg, words, beat_x100)

    # per module queue: global index, cost, popped streams, pushed streams
    q = ([], [], [])
    qc = ([], [], [])
    qpop = ([], [], [])
    qpush = ([], [], [])
    for i in range(n):
        m = mods[i]
        if m == 3:  # FINISH: every module; its flags are ignored
            for k in range(3):
                q[k].append(i)
                qc[k].append(1)
                qpop[k].append(())
                qpush[k].append(())
            continue
        w = words[i]
        pops, pushes = (), ()
        if w & 0xF0:
            if (w & isa.POP_PREV and _POP_PREV[m] < 0) or (w & isa.POP_NEXT and _POP_NEXT[m] < 0) \
                    or (w & isa.PUSH_PREV and _PUSH_PREV[m] < 0) \
                    or (w & isa.PUSH_NEXT and _PUSH_NEXT[m] < 0):
                raise EngineError(f"accelerator error {ERR_PROGRAM}: instruction {i}: dependency "
                                  "flag towards a module that does not exist", ERR_PROGRAM)
            pops = tuple(s for f, s in ((isa.POP_PREV, _POP_PREV[m]), (isa.POP_NEXT, _POP_NEXT[m]))
                         if w & f)
            pushes = tuple(s for f, s in ((isa.PUSH_PREV, _PUSH_PREV[m]),
                                          (isa.PUSH_NEXT, _PUSH_NEXT[m])) if w & f)
        q[m].append(i)
        qc[m].append(costs[i])
        qpop[m].append(pops)
        qpush[m].append(pushes)
    for k in range(3):
        if not q[k] or mods[q[k][-1]] != 3:
            raise EngineError(f"accelerator error {ERR_PROGRAM}: instruction {n - 1}: program "
                              "must end with FINISH", ERR_PROGRAM)

    QD = cfg.queue_depth
    lens = [len(q[k]) for k in range(3)]
    arrive = [[0] * lens[k] for k in range(3)]
    start = [[-1] * lens[k] for k in range(3)]
    end = [0] * n
    tok = ([], [], [], [])
    tok_pop = ([], [], [], [])  # when each token was popped (its consumer's start)
    popped = [0, 0, 0, 0]
    fetched = [0, 0, 0]
    pos = [0, 0, 0]
    t_mod = [0, 0, 0]
    busy = [0, 0, 0]
    t_fetch = 0
    nw = 0
    # The C driver's loop: fetch as far as the queues allow, then run each module until it
    # waits for a token or a word; repeat. Times depend only on the dependencies, not on
    # this interleaving, but following it keeps the stall and deadlock rules identical.
    while pos[0] < lens[0] or pos[1] < lens[1] or pos[2] < lens[2]:
        progressed = False
        while nw < n:
            m = mods[nw]
            t = t_fetch + 1
            if m == 3:
                ok = True
                for k in range(3):
                    f = fetched[k]
                    if f >= QD:
                        s = start[k][f - QD]
                        if s < 0:
                            ok = False
                            break
                        if s > t:
                            t = s
                if not ok:
                    break
                for k in range(3):
                    arrive[k][fetched[k]] = t
                    fetched[k] += 1
            else:
                f = fetched[m]
                if f >= QD:
                    s = start[m][f - QD]
                    if s < 0:
                        break  # the queue is full until that instruction starts
                    if s > t:
                        t = s
                arrive[m][f] = t
                fetched[m] = f + 1
            t_fetch = t
            nw += 1
            progressed = True
        for m in range(3):
            p = pos[m]
            f = fetched[m]
            if p >= f:
                continue
            tm = t_mod[m]
            b = busy[m]
            qm, cm, popm, pushm, am, sm = q[m], qc[m], qpop[m], qpush[m], arrive[m], start[m]
            while p < f:
                pops = popm[p]
                t0 = am[p]
                if t0 < tm:
                    t0 = tm
                if pops:
                    if any(len(tok[s]) <= popped[s] for s in pops):
                        break  # a token this instruction pops is not pushed yet
                    for s in pops:
                        tt = tok[s][popped[s]]
                        popped[s] += 1
                        if tt > t0:
                            t0 = tt
                    for s in pops:
                        tok_pop[s].append(t0)
                c = cm[p]
                t1 = t0 + c
                sm[p] = t0
                tm = t1
                b += c
                for s in pushm[p]:
                    tok[s].append(t1)
                gi = qm[p]
                if t1 > end[gi]:
                    end[gi] = t1
                p += 1
            if p != pos[m]:
                progressed = True
            pos[m] = p
            t_mod[m] = tm
            busy[m] = b
        if not progressed:
            raise EngineError(f"accelerator error {ERR_DEADLOCK}: instruction {nw}: deadlock: a "
                              "module waits for a token that is never pushed", ERR_DEADLOCK)
    for s in range(4):
        if popped[s] != len(tok[s]):
            raise EngineError(f"accelerator error {ERR_PROGRAM}: instruction {n - 1}: tokens "
                              "pushed but never popped", ERR_PROGRAM)
    # token k is in its stream from its push to its pop; at push k, the tokens popped no
    # later than that cycle have left
    peak = tuple(int((np.arange(1, len(tok[s]) + 1) - np.searchsorted(
        np.asarray(tok_pop[s], dtype=np.int64), np.asarray(tok[s], dtype=np.int64),
        side="right")).max()) if tok[s] else 0 for s in range(4))
    return Timing(max(t_mod), np.array(end, dtype=np.int64), busy[0], busy[1], busy[2], macs,
                  rd_beats * 8, wr_beats * 8, peak, np.array(ddr, dtype=np.int64),
                  np.array(costs, dtype=np.int64), np.array(mods, dtype=np.int8))


MODULES = ("load", "compute", "store")


def layer_busy(timing: Timing, layer_ends) -> list[dict[str, int]]:
    """Per layer of a program: the cycles the load, compute and store modules spent
    executing its words (the words after the previous layer's end up to ``layer_ends[i]``,
    inclusive: ``DaeProgram.layer_ends``). The busiest module is what limits the layer:
    the modules overlap, so the layer takes at least that long."""
    if timing.insn_module is None or timing.insn_cost is None:
        raise ValueError("timing has no per-instruction costs")
    out, prev = [], 0
    for end in layer_ends:
        mods = timing.insn_module[prev:end + 1]
        cost = timing.insn_cost[prev:end + 1]
        out.append({name: int(cost[mods == m].sum()) for m, name in enumerate(MODULES)})
        prev = end + 1
    return out


def layer_limits(timing: Timing, layer_ends) -> list[str]:
    """Per layer: the module (load, compute or store) busiest within it."""
    return [max(busy, key=busy.get) for busy in layer_busy(timing, layer_ends)]


# ---- per-layer cost for the tiler ----------------------------------------------------
_layer_cache: dict[tuple, int] = {}
_CACHE_MAX = 1 << 16


def layer_words(cfg: DaeConfig, layer, tile: DaeTile) -> list[int]:
    """Instruction words of ``layer`` lowered alone with ``tile`` (placeholder tensors:
    the input at word 0, the output after it; addresses do not change timing)."""
    c, h, w = layer.in_shape
    src = Tensor(0, c, h, w)
    dst = Tensor(src.words, *layer.out_shape)
    bp = (Tensor(dst.base + dst.words, *layer.out_shape),) if layer.kind == "conv_add" else ()
    words, _, _, _ = lower_layers(cfg, [layer], [tile], [(src, dst, *bp)])
    return words


def layer_cycles(cfg: DaeConfig, layer, tile: DaeTile, beat_x100: int = 100) -> int:
    """Cycles of ``layer`` run alone with ``tile`` (one-layer program, from its first
    fetch to its FINISH). Memoized on (cfg, layer geometry, tile, beat_x100): the timing
    does not depend on weight values. Raises ScheduleError when the tile cannot be
    lowered."""
    key = (cfg, layer_signature(layer), tile, beat_x100)
    v = _layer_cache.get(key)
    if v is None:
        v = simulate(cfg, layer_words(cfg, layer, tile), beat_x100).cycles
        if len(_layer_cache) >= _CACHE_MAX:
            _layer_cache.clear()
        _layer_cache[key] = v
    return v


def clear_cache() -> None:
    """Forget the memoized layer cycles."""
    _layer_cache.clear()


__all__ = ["Timing", "clear_cache", "layer_cycles", "layer_words", "simulate"]
