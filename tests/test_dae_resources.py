"""Resource model of the decoupled engine (schedule/dae_resources.py) against the HLS
source it models: buffer declarations and ARRAY_PARTITION / STREAM pragmas of
src/zsq_dae_top.cpp, runtime multiplies of src/zsq_dae.h; plus properties."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.schedule import dae_resources as dr

SRC = Path(__file__).resolve().parents[1] / "src"
TOP = (SRC / "zsq_dae_top.cpp").read_text()
MODULES = (SRC / "zsq_dae.h").read_text()
CFG_H = (SRC / "zsq_dae_cfg.h").read_text()

_TYPE_BITS = {"zsqd_word": 64, "ap_int<32>": 32, "bool": 1}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _cfg_values(cfg: DaeConfig) -> dict[str, int]:
    """``C::NAME`` -> value for ``cfg``, from the struct of src/zsq_dae_cfg.h."""
    macros = cfg.macros()
    out = {}
    for name, expr in re.findall(r"static constexpr int (\w+) = ([^;]+);", CFG_H):
        expr = re.sub(r"ZSQD_\w+", lambda m: str(macros[m.group(0)]), expr)
        out[name] = int(eval(expr, {"__builtins__": {}}))  # literals and * only
    return out


def _dim(expr: str, vals: dict) -> int:
    expr = expr.strip()
    return int(expr) if expr.isdigit() else vals[expr.removeprefix("C::")]


def parsed_arrays(cfg: DaeConfig) -> dict[str, tuple[int, int, int]]:
    """name -> (word bits, depth, memories) of every array the source keeps in memory:
    dims named by ARRAY_PARTITION ... complete become banks, the last dim is the depth;
    arrays partitioned completely in every dim are registers and left out."""
    vals = _cfg_values(cfg)
    code = _strip_comments(TOP)
    out = {}
    for typ, name, dims in re.findall(
            r"^\s*(zsqd_word|ap_int<32>)\s+(\w+)((?:\[[^\]]+\])+)\s*;", code, flags=re.M):
        sizes = [_dim(d, vals) for d in re.findall(r"\[([^\]]+)\]", dims)]
        parts = re.findall(rf"ARRAY_PARTITION variable = {name} complete(?: dim = (\d+))?",
                           code)
        full = {int(d) - 1 for d in parts if d} | (set(range(len(sizes))) if "" in parts
                                                   else set())
        rest = [s for i, s in enumerate(sizes) if i not in full]
        if not rest:
            continue
        assert len(rest) == 1, f"{name}: more than one unpartitioned dim"
        out[name] = (_TYPE_BITS[typ], rest[0], math.prod(sizes[i] for i in full))
    return out


def parsed_streams() -> dict[str, tuple[int, int]]:
    """stream name -> (bits, depth) from the declarations and STREAM pragmas."""
    code = _strip_comments(TOP)
    out = {}
    for typ, names in re.findall(r"hls::stream<(\w+)>\s+([\w ,]+);", code):
        for n in (x.strip() for x in names.split(",")):
            m = re.search(rf"STREAM variable = {n} depth = (\d+)", code)
            out[n] = (_TYPE_BITS[typ], int(m.group(1)) if m else dr.DEFAULT_STREAM_DEPTH)
    return out


CONFIGS = [DaeConfig(), DaeConfig(k=1, in_rows=3000, w_rows=100, p_rows=20, acc_rows=777,
                                  cv_rows=16, sq_rows=5000, out_rows=1024),
           DaeConfig(k=4, p_rows=64), DaeConfig(k=2, w_rows=64, p_rows=1)]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_arrays_match_source(cfg):
    src = parsed_arrays(cfg)
    model = {a.name: (a.word_bits, a.depth, a.memories) for a in dr.dae_arrays(cfg)}
    assert model == src


def test_streams_match_source():
    cfg = DaeConfig()
    model = {f.name: (f.word_bits, f.depth) for f in dr.dae_fifos(cfg)
             if not f.name.startswith("gmem")}
    assert model == parsed_streams()


def test_m_axi_bundles_match_source():
    bundles = set(re.findall(r"m_axi port = \w+ offset = slave bundle = (\w+)", TOP))
    assert bundles == {b for b, _ in dr.M_AXI_BUNDLES}
    # gmem_wr is the only one written (act_wr is the only non-const pointer)
    assert re.search(r"zsqd_word \*act_wr", TOP) and "const zsqd_word *act_rd" in TOP


# ---- runtime multiplies --------------------------------------------------------------
_CONST = re.compile(r"^(\d+|C::\w+|ZSQ\w*|PE_\w+)$")


def _operand(tokens: list[str], i: int, step: int) -> list[str]:
    """Tokens of the operand of the '*' at ``i`` (step -1: left, +1: right)."""
    j, depth, out = i + step, 0, []
    open_, close = ("(", ")") if step > 0 else (")", "(")
    while 0 <= j < len(tokens):
        t = tokens[j]
        if t == open_:
            depth += 1
        elif t == close:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and t in ("+", "-", "*", "<", ">", "=", ";", ",", "?", ":", "+=",
                                  "<=", ">=", "==", "<<", ">>", "&&", "||"):
            break
        out.append(t)
        j += step
        if depth == 0 and t not in (open_,) and not (step < 0 and t == "::"):
            if not (j < len(tokens) and 0 <= j and tokens[j] in ("::", "(", "[") and step > 0):
                break
    return out


def synthesized(code: str) -> str:
    """``code`` as Vitis HLS compiles it: conditional blocks resolved with only
    ``__SYNTHESIS__`` defined (the host fast paths and simulation charges drop out)."""
    def cond(expr: str) -> bool:
        expr = re.sub(r"defined\s*\(?\s*(\w+)\s*\)?",
                      lambda m: "True" if m.group(1) == "__SYNTHESIS__" else "False", expr)
        expr = expr.replace("&&", " and ").replace("||", " or ")
        expr = re.sub(r"!(?!=)", " not ", expr)
        return bool(eval(expr, {"__builtins__": {}}))

    out, stack = [], []  # stack of (this branch active, some branch taken)
    for line in code.split("\n"):
        d = line.strip()
        active = all(a for a, _ in stack)
        if d.startswith("#ifdef") or d.startswith("#ifndef") or d.startswith("#if"):
            if d.startswith("#ifdef"):
                c = d.split()[1] == "__SYNTHESIS__"
            elif d.startswith("#ifndef"):
                c = d.split()[1] != "__SYNTHESIS__"
            else:
                c = cond(d[3:])
            stack.append((c, c))
        elif d.startswith("#elif"):
            a, taken = stack.pop()
            c = not taken and cond(d[5:])
            stack.append((c, taken or c))
        elif d.startswith("#else"):
            a, taken = stack.pop()
            stack.append((not taken, True))
        elif d.startswith("#endif"):
            stack.pop()
        elif active and not d.startswith("#"):
            out.append(line)
    return "\n".join(out)


def runtime_muls(code: str) -> list[tuple[str, int]]:
    """(statement, runtime multiplies) of synthesized code: simulation-only parts,
    declarations and products bound to DSP (MAC array, requantization) left out."""
    code = synthesized(_strip_comments(code))
    out = []
    for stmt in re.split(r"[;{}]", code):
        s = " ".join(stmt.split())
        if not s or s.startswith("#") or "ZSQD_" in s or re.search(r"\b(p|prod)\s*=", s):
            continue
        toks = re.findall(r"\w+::\w+|\w+|\+=|<=|>=|==|<<|>>|&&|\|\||\S", s)
        n = 0
        for i, t in enumerate(toks):
            if t != "*" or i == 0:
                continue
            prev = toks[i - 1]
            if prev in ("zsqd_word", "int", "uint64_t", "uint32_t", "int32_t", "const", "(",
                        ",", "="):
                continue  # pointer declarator or dereference
            left, right = _operand(toks, i, -1), _operand(toks, i, 1)
            names = [x for x in left + right if re.match(r"\w", x)]
            if all(_CONST.match(x) for x in left if re.match(r"\w", x)) or \
                    all(_CONST.match(x) for x in right if re.match(r"\w", x)):
                continue  # a constant factor: shifts / constant multipliers
            if names:
                n += 1
        if n:
            out.append((s, n))
    return out


def _function(code: str, name: str) -> str:
    """The synthesized body of function ``name`` of ``code``."""
    code = synthesized(_strip_comments(code))
    a = code.index(f"void {name}(")
    b = code.find("\ntemplate", a + 1)
    return code[a:b if b > 0 else len(code)]


def test_setup_multiplies_match_source():
    per_module = {"load": _function(MODULES, "zsqd_load_exec"),
                  "compute": _function(MODULES, "zsqd_compute_exec"),
                  "store": _function(MODULES, "zsqd_store_exec")}
    for module, code in per_module.items():
        found = runtime_muls(code)
        table = [(expr, n) for m, expr, n in dr.SETUP_MULS if m == module]
        assert sum(n for _, n in found) == sum(n for _, n in table), (module, found)
        for stmt, n in found:
            # the table expressions inside the statement (one statement may declare
            # several; an expression inside a longer one is the same product)
            flat = stmt.replace(" ", "")
            hits = [(e.replace(" ", ""), tn) for e, tn in table if e.replace(" ", "") in flat]
            hits = [(e, tn) for e, tn in hits if not any(e != f and e in f for f, _ in hits)]
            assert hits and sum(tn for _, tn in hits) == n, (module, stmt, n, hits)
    # nothing else in the synthesized code multiplies at runtime (the top file included)
    assert runtime_muls(TOP) == []
    assert dr.setup_mul_count() == 0  # derived registers replaced them


def test_dsp_bound_products_are_in_the_source():
    # the model counts one DSP per MAC product and per requant lane because the source
    # binds exactly these two products to DSP
    binds = re.findall(r"BIND_OP variable = (\w+) op = mul impl = dsp", MODULES)
    # prod twice: the narrow and the wide lane's branch (`if (WIDE)`, a template constant:
    # one per build)
    assert sorted(binds) == ["p", "prod", "prod"]
    assert "ap_int<42> prod = a * ap_int<17>(ap_uint<16>(mult.range(15, 0)))" in MODULES
    assert "ap_int<42> prod = a * ap_int<18>(ap_uint<17>(mult.range(21, 5)))" in MODULES
    assert "ap_int<25> a" in MODULES  # 25 x 17 bits: one DSP48E1 (25 x 18)


def _product_bindings(code: str) -> dict[str, str | None]:
    """variable -> BIND_OP impl (``dsp``, ``fabric``, or None: unbound) of every runtime
    product the synthesized modules declare (``T v = a * b;``)."""
    names = [re.match(r"(?:[\w:<>]+\s+)+(\w+)\s*=", s) for s, _ in runtime_muls(code)]
    names = [m.group(1) for m in names if m] + re.findall(
        r"BIND_OP variable = (\w+) op = mul impl = dsp", code)
    return {n: (m.group(1) if (m := re.search(
        rf"BIND_OP variable = {n} op = mul impl = (\w+)", code)) else None) for n in names}


def test_every_runtime_product_is_bound_and_counted():
    """Each product of the synthesized modules carries a BIND_OP: the DSP48E1 count is the
    MAC array and the requantization lanes (``dsp``), the residual add's 8 x 16-bit bypass
    product is in LUTs (``fabric``, ``BYPASS_PER_LANE``). Unbound, Vitis HLS would map that
    product to a DSP48E1 per lane (24 more at k = 3: 240 of the Zybo's 220) while the model
    still says 216. The same source without the fabric pragma is caught."""
    assert _product_bindings(MODULES) == {"bprod": "fabric", "p": "dsp", "prod": "dsp",
                                          "prod_lo": "fabric"}
    assert dr.BYPASS_PER_LANE[0] > 0 and dr.WIDE_RQ_PER_LANE[0] > 0
    assert dr.logic_breakdown(DaeConfig(k=3))["residual_add"][0] == 24 * dr.BYPASS_PER_LANE[0]
    # the wide multiplier's 25 x 5-bit low product (DaeConfig.wide_rq engines only)
    assert dr.logic_breakdown(DaeConfig(k=3))["wide_requant"][0] == 24 * dr.WIDE_RQ_PER_LANE[0]
    assert dr.logic_breakdown(DaeConfig(k=3, wide_rq=False))["wide_requant"] == (0, 0)
    for v in ("bprod", "prod_lo"):
        pragma = f"#pragma HLS BIND_OP variable = {v} op = mul impl = fabric\n"
        assert MODULES.count(pragma) == 1
        assert _product_bindings(MODULES.replace(pragma, ""))[v] is None


# ---- properties --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_dsp_formula(k):
    cfg = DaeConfig(k=k)
    assert dr.estimate(cfg).dsp == 64 * k + 8 * k
    assert dr.estimate(cfg).dsp_by == {"mac": 64 * k, "requant": 8 * k, "setup": 0}
    assert dr.estimate(cfg, "dsp").dsp == 72 * k  # no setup multiply left to bind
    assert dr.estimate(cfg, "dsp").lut == dr.estimate(cfg).lut
    with pytest.raises(ValueError):
        dr.estimate(cfg, "auto")


def test_bram_primitives():
    assert dr.bram18_per_bank(512, 64) == 2        # 512x36 twice
    assert dr.bram18_per_bank(2048, 64) == 8
    assert dr.bram18_per_bank(2560, 64) == 10
    assert dr.bram18_per_bank(512, 32) == 1
    assert dr.bram18_per_bank(16384, 1) == 1
    assert dr.bram18_per_bank(4096, 4) == 1
    assert dr.bank_storage(64, 64) == "lutram" and dr.bank_storage(65, 64) == "bram"
    assert dr.bank_storage(16, 64) == "lutram" and dr.bank_storage(1024, 1) == "lutram"
    assert dr.lutram_luts(32, 64) == 44 and dr.lutram_luts(64, 64) == 88


def test_default_engine_bram_by_array():
    use = dr.estimate(DaeConfig())  # K=3, 2048-row activation buffers, 512-row weights
    assert use.bram["in_buf"] == 2 * 3 * 8
    assert use.bram["w_buf"] == 2 * 24 * 2
    assert use.bram["acc"] == 24 * 4          # 2048 x 32 bit: 4 RAMB18
    assert use.bram["p_buf"] == 0             # 64 rows: one RAM64M column deep -> LUTRAM
    assert dr.estimate(DaeConfig(p_rows=65)).bram["p_buf"] == 2 * 24 * 2
    assert use.bram["load_q"] == 2 and use.bram["l2c"] == 0   # 512 x 64 BRAM, 8 x 1 SRL
    assert sum(v for k, v in use.bram.items() if k.startswith("gmem")) == 8
    assert use.bram18k == sum(use.bram.values())


def test_p_buf_in_lutram_when_shallow():
    use = dr.estimate(DaeConfig(p_rows=32))
    assert use.bram["p_buf"] == 0
    assert use.lut_by["buffer_storage"] >= 2 * 24 * dr.lutram_luts(32, 64)


FIELDS = ("in_rows", "w_rows", "p_rows", "acc_rows", "cv_rows", "sq_rows", "out_rows")


@pytest.mark.parametrize("field", FIELDS)
def test_bram_monotone_in_depth(field):
    prev = None
    for d in (16, 64, 100, 512, 513, 1024, 3000, 4096, 9000):
        use = dr.estimate(DaeConfig(k=2, **{field: d}))
        if prev is not None:
            assert use.bram18k >= prev.bram18k
            # past the LUTRAM step, more rows never cost fewer LUTs either
            if d > dr.LUTRAM_MAX_DEPTH + 1:
                assert use.lut >= prev.lut - 1 or prev.bram18k < use.bram18k
        prev = use


@pytest.mark.parametrize("k", [1, 2, 3])
def test_logic_grows_with_k(k):
    a, b = dr.estimate(DaeConfig(k=k)), dr.estimate(DaeConfig(k=k + 1))
    assert b.lut > a.lut and b.ff > a.ff and b.bram18k > a.bram18k


def test_round_depth():
    assert dr.round_depth(0) == 32 and dr.round_depth(33) == 64
    assert dr.round_depth(65) == 512 and dr.round_depth(513) == 1024
    assert dr.round_depth(2100, 32) == 2560
    for n in (1, 40, 64, 65, 700, 5000):
        d = dr.round_depth(n)
        assert d >= n
        # the rounding is free: the same storage as the exact need
        assert dr.Array("x", 64, d).bram18k == dr.Array("x", 64, max(16, n)).bram18k


def test_to_json_round_trip_keys():
    j = dr.estimate(DaeConfig()).to_json()
    assert {"bram18k", "dsp", "lut", "ff", "bram", "dsp_by", "lut_by", "ff_by"} <= set(j)
    assert j["lut"] == sum(j["lut_by"].values()) and j["ff"] == sum(j["ff_by"].values())


def test_docstring_names_every_constant():
    doc = dr.__doc__
    for name in ("M_AXI_READ", "M_AXI_WRITE", "S_AXILITE", "SMARTCONNECT_DATA",
                 "SMARTCONNECT_CTRL", "FIFO_MEM_CTRL", "MAC_TREE_PER_OC", "REQUANT_PER_LANE",
                 "POOL_PER_LANE", "COUNTERS", "LUT_PER_COUNTER", "REGS_READ", "FSM",
                 "LUT_PER_SETUP_MUL", "LUT_PER_BRAM_BANK", "LUTRAM_MAX_DEPTH",
                 "LUTRAM_MAX_BITS", "SRL_MAX_DEPTH", "DSP_PER_SETUP_MUL"):
        assert name in doc, name


def test_regs_read_match_source():
    for module, fn in (("load", "zsqd_load_exec"), ("compute", "zsqd_compute_exec"),
                       ("store", "zsqd_store_exec")):
        regs = set(re.findall(r"regs\[(ZSQ_\w+)", _function(MODULES, fn)))
        assert len(regs) == dr.REGS_READ[module], (module, sorted(regs))


def test_zero_point_add_is_as_narrow_as_counted():
    """``ZERO_POINT_PER_LANE`` counts a 10-bit add of ``RQ_ZP_OUT`` (the lane's result
    clamped to [-256, 255] first): the add in ``zsqd_requant`` must be declared that
    narrow. ``y += zp_out`` on the W-bit (42 / 48) rounding result would be a 48-bit
    carry chain and 48-bit saturation compares per lane (~0.9k LUT more at k = 3)."""
    body = MODULES[MODULES.index("static inline ap_int<8> zsqd_requant("):]
    body = body[:body.index("\n}\n")]
    adds = [s.strip() for s in body.split(";") if re.search(r"[+-]=?\s*zp_out\b", s)]
    assert adds, "no zero point add in zsqd_requant"
    for stmt in adds:
        m = re.match(r"(?:/\*.*?\*/\s*)*ap_int<(\d+)>\s+\w+\s*=", stmt, re.S)
        assert m and int(m.group(1)) <= 10, stmt


def test_param_bits_are_the_fields_the_lane_reads():
    """The p_buf half select is counted over the params bits ``zsqd_requant`` reads: bias
    [31:0], mult [53:32] (the narrow lane only [47:32]), shift [59:54], pre [63:60]."""
    assert "ap_uint<16>(mult.range(15, 0))" in MODULES  # the narrow lane: 16 of 22 bits
    for f in ("param.range(31, 0)", "param.range(53, 32)", "param.range(59, 54)",
              "param.range(63, 60)"):
        assert f in MODULES, f
    assert dr.PARAM_BITS_USED == 32 + 16 + 6 + 4
    assert dr.WIDE_PARAM_BITS_USED == 32 + 22 + 6 + 4
