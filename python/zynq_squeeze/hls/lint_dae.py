"""Rules of the decoupled access/execute (DAE), II=1 engine, for the HLS lint.

These rules check what would stop a VTA-shaped design (fetch -> load / compute / store
processes joined by ``hls::stream`` queues inside one ``#pragma HLS DATAFLOW`` region,
ping-pong buffer halves, ``ap_uint<64>`` m_axi ports, II=1 loops, one MAC array) from
synthesizing as intended. They are a separate rule set: ``lint_source(..., rules="dae")``
or ``rules="all"`` (see :mod:`zynq_squeeze.hls.lint`).

======================  ================================================================
rule id                 what it flags
======================  ================================================================
``dataflow-body``       in a function with ``#pragma HLS DATAFLOW``: a loop, ``if`` /
                        ``switch`` / ``?:`` (a conditionally executed process), a nested
                        block, an assignment or arithmetic (in a statement, an initializer
                        or a process argument): the body may hold only declarations, their
                        pragmas and process calls
``dataflow-stream``     an ``hls::stream`` declared in the region without exactly one
                        producer and one (other) consumer process
``dataflow-buffer``     an array declared in the region written or read by more than one
                        process, or shared by two processes without ``#pragma HLS stream
                        variable=X type=unsync|shared|pipo`` and without being split
                        (``ARRAY_PARTITION ... complete dim=1`` and passed as ``X[c]``)
``dataflow-bypass``     a scalar declared in the region, produced by process A and read by
                        a process that is not the next one (or that runs before A)
``pipeline-divmod``     ``/`` or ``%`` in a ``PIPELINE II=1`` loop whose right operand is
                        not a compile-time power of two (literal, resolvable constant or a
                        ``1 << k`` shift)
``pipeline-loop``       a loop nested in a pipelined loop with a runtime trip count that is
                        not fully unrolled
``pipeline-call``       a call, in a pipelined loop, of a function defined in the scanned
                        files that has no ``#pragma HLS INLINE``
``pipeline-bank``       in a pipelined loop, an access to an ``ARRAY_PARTITION``-ed array
                        of the same function whose index in the partitioned dimension is
                        not a constant / unrolled-loop variable (for ``cyclic factor=F``,
                        runtime terms multiplied by a multiple of F are allowed)
``interface-type``      on the top function (the one with ``#pragma HLS INTERFACE``): a
                        struct/class parameter, or an m_axi pointer that is not
                        ``[const] ap_uint<W>*`` with W in 32, 64, 128, 256, 512
``interface-pragma``    an m_axi port without ``bundle=`` or ``offset=slave``, a pointer
                        without an m_axi INTERFACE, a scalar or the return without
                        ``s_axilite``
``pointer-data``        in the top and every function it reaches: a pointer stored in a
                        variable, an array or a struct member, or compared with
                        ``nullptr`` / ``NULL`` / ``0`` (or tested with ``!p``)
``mac-array``           the function marked ``// zsq: mac-array`` (on the line before its
                        definition) called from 0 or 2+ sites; a marker on no definition;
                        a top function while no function carries the marker
======================  ================================================================

How processes' roles are found: a process writes a stream parameter that it calls
``.write(`` / ``.write_nb(`` / ``<<`` on, reads one it calls ``.read(`` / ``.read_nb(`` /
``>>`` on; it writes an array / pointer / reference parameter that it assigns to
(``p[i] = ``, ``+=``, ``++``, the first argument of ``memcpy`` / ``memset``) and reads one
whose value it uses; ``const`` and by-value parameters are only read. Arguments passed on
to a function defined in the scanned files are followed one level.

Known limits (text analysis, no C++ front end): a partition pragma is not followed into
the callees the array is passed to, overloads are told apart by their parameter count,
and a constant is resolved only from literals, ``#define``s, ``constexpr`` / literal
``const`` declarations (``Struct::member`` included) and a function template's explicit
arguments at its call sites.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import lint as _L

__all__ = ["DAE_RULES", "dae_issues"]

DAE_RULES = {
    "dataflow-body": "a DATAFLOW region holds only declarations and process calls",
    "dataflow-stream": "every stream of a DATAFLOW region has one producer and one consumer",
    "dataflow-buffer": "every buffer of a DATAFLOW region has one writer and one reader",
    "dataflow-bypass": "a scalar channel must go to the next process only",
    "pipeline-divmod": "division / modulo by a non power of two breaks II=1",
    "pipeline-loop": "a runtime-bound inner loop cannot be unrolled in an II=1 pipeline",
    "pipeline-call": "a non-inlined call inside an II=1 pipeline",
    "pipeline-bank": "runtime index into a partitioned array dimension",
    "interface-type": "top-level port type that does not map to AXI cleanly",
    "interface-pragma": "top-level port without the required INTERFACE pragma",
    "pointer-data": "pointer-valued data does not synthesize as intended",
    "mac-array": "exactly one MAC array instance",
}

_IDENT = re.compile(r"[A-Za-z_]\w*")
_QNAME = r"[A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)*"
# template arguments with one level of nesting: stream<ap_uint<64> >
_TARGS = r"<(?:[^;(){}<>]|<[^;(){}<>]*>)*>"
_CALL = re.compile(r"(" + _QNAME + r")\s*(" + _TARGS + r")?\s*\(")
_NOT_CALLS = set(_L._KEYWORDS) | {"static_assert", "alignof", "sizeof", "decltype"}
_BUILTIN = {"void", "bool", "char", "short", "int", "long", "float", "double", "unsigned",
            "signed", "size_t", "ssize_t", "ptrdiff_t", "half"}
_AXI_WIDTHS = {32, 64, 128, 256, 512}


# ------------------------------------------------------------------ source model


@dataclass
class _Src:
    file: str
    text: str            # original
    code: str            # live C++ and #pragma lines (same offsets as text)
    cpp: str             # live C++ only
    macros: dict
    allowed: dict


@dataclass
class _Param:
    type: str
    name: str
    dims: list[str]

    @property
    def pointer(self) -> bool:
        return "*" in self.type or bool(self.dims)

    @property
    def ref(self) -> bool:
        return "&" in self.type

    @property
    def const(self) -> bool:
        return bool(re.search(r"\bconst\b", self.type)) and (self.pointer or self.ref)

    @property
    def stream(self) -> bool:
        return bool(re.search(r"\bstream\s*<", self.type))


@dataclass
class _Func:
    name: str
    src: _Src
    line: int
    header: int                  # offset of the header's first character
    body: tuple[int, int]        # '{' .. just past '}'
    params: list[_Param]
    tparams: list[str]
    inline: bool


@dataclass
class _Call:
    name: str
    pos: int
    targs: str | None
    args: list[tuple[str, int]]  # (text, offset)
    end: int


@dataclass
class _Program:
    srcs: list[_Src]
    funcs: list[_Func] = field(default_factory=list)
    by_name: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)     # name or Struct::name -> set of ints
    aliases: dict = field(default_factory=dict)    # typedef / using name -> type text
    structs: dict = field(default_factory=dict)    # struct name -> (src, start, end)
    tvals: dict = field(default_factory=dict)      # (func, template param) -> set of ints


def _split_top(text: str, sep: str = ",") -> list[tuple[str, int]]:
    """``text`` split at depth-0 ``sep`` (brackets and template angles), with offsets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{<":
            depth += 1
        elif c in ")]}>" and depth > 0:
            depth -= 1
        elif c == sep and depth == 0:
            parts.append((text[start:i], start))
            start = i + 1
    parts.append((text[start:], start))
    return parts


def _parse_param(text: str) -> _Param | None:
    t = text.strip()
    if not t or t == "void" or t == "...":
        return None
    eq = [o for s, o in _split_top(t, "=")]
    if len(eq) > 1:
        t = t[:eq[1] - 1].strip()
    m = re.match(r"(.*?)\(\s*([*&]+)\s*(?:const\s+)?([A-Za-z_]\w*)\s*\)\s*((?:\[[^\]]*\]\s*)*)$", t,
                 re.S)
    if m:  # pointer to array: int8_t (*w)[N]
        return _Param(m.group(1).strip() + " " + m.group(2),
                      m.group(3), re.findall(r"\[([^\]]*)\]", m.group(4)))
    m = re.match(r"(.*?)((?:\s*\[[^\]]*\])*)\s*$", t, re.S)
    head, dims = m.group(1), re.findall(r"\[([^\]]*)\]", m.group(2))
    nm = re.search(r"([A-Za-z_]\w*)\s*$", head)
    if nm and head[:nm.start()].strip() and nm.group(1) not in _BUILTIN:
        return _Param(head[:nm.start()].strip(), nm.group(1), dims)
    return _Param(head.strip(), "", dims)


def _header_of(cpp: str, brace: int) -> int:
    k = brace - 1
    while k >= 0 and cpp[k] not in ";{}":
        k -= 1
    return k + 1


def _build(srcs: list[_Src]) -> _Program:
    prog = _Program(srcs)
    for s in srcs:
        for f in _L._find_functions(s.cpp, s.file):
            h0 = _header_of(s.cpp, f.body[0])
            header = s.cpp[h0:f.body[0]]
            hs = h0 + len(header) - len(header.lstrip())
            tparams = []
            tm = re.match(r"\s*template\s*<([^{};]*?)>", header)
            if tm:
                for p, _ in _split_top(tm.group(1)):
                    pm = re.search(r"([A-Za-z_]\w*)\s*(?:=.*)?$", p.strip())
                    if pm:
                        tparams.append(pm.group(1))
            params: list[_Param] = []
            for nm in re.finditer(r"\b" + re.escape(f.name) + r"\s*\(", header):
                if tm and nm.start() < tm.end():
                    continue
                p0 = nm.end() - 1
                inner = header[p0 + 1:_L._match_close(header, p0) - 1]
                params = [p for p in (_parse_param(x) for x, _ in _split_top(inner)) if p]
                break
            body = s.code[f.body[0]:f.body[1]]
            inline = bool(re.search(r"(?im)^[ \t]*#\s*pragma\s+HLS\s+inline\b(?![ \t]*off)", body))
            fn = _Func(f.name, s, _L._line_of(s.cpp, hs), hs, f.body, params, tparams, inline)
            prog.funcs.append(fn)
            prog.by_name.setdefault(f.name, []).append(fn)
    _collect_constants(prog)
    return prog


# ------------------------------------------------------------------ constants


def _collect_constants(prog: _Program) -> None:
    raw: list[tuple[str, str]] = []
    for s in prog.srcs:
        for k, v in s.macros.items():
            if isinstance(v, int) and not isinstance(v, bool):
                prog.consts.setdefault(k, set()).add(v)
        for m in re.finditer(r"\b(struct|class)\s+([A-Za-z_]\w*)\s*(?::[^{;]*)?\{", s.cpp):
            end = _L._match_close(s.cpp, m.end() - 1)
            prog.structs[m.group(2)] = (s, m.end(), end)
        for m in re.finditer(r"\btypedef\s+(?:struct\s+\w*\s*\{.*?\}|([^;{}]*?))\s*([A-Za-z_]\w*)\s*;",
                             s.cpp, re.S):
            prog.aliases[m.group(2)] = (m.group(1) or "struct").strip()
        for m in re.finditer(r"\busing\s+([A-Za-z_]\w*)\s*=\s*([^;]*);", s.cpp):
            prog.aliases[m.group(1)] = m.group(2).strip()
        for m in re.finditer(r"\b(?:constexpr\b|const\s+(?=(?:unsigned\s+|signed\s+)?(?:int|long|"
                             r"short|char|size_t|u?int\d+_t|unsigned)\b))[^;=(){}]*?\b"
                             r"([A-Za-z_]\w*)\s*=\s*([^;{}]*);", s.cpp):
            owner = None
            for sname, (ss, a, b) in prog.structs.items():
                if ss is s and a <= m.start() < b:
                    owner = sname
            raw.append((m.group(1), m.group(2)))
            if owner:
                raw.append((owner + "::" + m.group(1), m.group(2)))
    for _ in range(4):  # fixpoint: constants defined from constants
        for name, expr in raw:
            v = _eval(prog, expr, {})
            if v is not None:
                prog.consts.setdefault(name, set()).add(v)
    # explicit template arguments at call sites
    for s in prog.srcs:
        for m in _CALL.finditer(s.cpp):
            if not m.group(2):
                continue
            name = re.split(r"\s*::\s*", m.group(1))[-1]
            for fn in prog.by_name.get(name, []):
                targs = _split_top(m.group(2)[1:-1])
                for tp, (ta, _) in zip(fn.tparams, targs):
                    vals = _values(prog, ta.strip(), {})
                    key = (fn.name, tp)
                    if vals is None:
                        prog.tvals[key] = None
                    elif prog.tvals.get(key, set()) is not None:
                        prog.tvals.setdefault(key, set()).update(vals)


def _values(prog: _Program, expr: str, tctx: dict) -> set[int] | None:
    """Possible values of a constant expression; None when it is not compile-time known."""
    e = expr.strip()
    while e.startswith("(") and _L._match_close(e, 0) == len(e):
        e = e[1:-1].strip()
    qm = re.fullmatch(_QNAME, e)
    if qm:
        name = re.sub(r"\s+", "", e)
        if name in tctx:
            return tctx[name]
        if name in prog.consts:
            return set(prog.consts[name])
        if "::" in name:
            base, member = name.rsplit("::", 1)
            base = prog.aliases.get(base, base)
            if base + "::" + member in prog.consts:
                return set(prog.consts[base + "::" + member])
            # a template type parameter (CFG::x): every struct member of that name
            vals = set()
            for k, v in prog.consts.items():
                if k.endswith("::" + member):
                    vals |= v
            return vals or None
        return None
    v = _eval(prog, e, tctx)
    return None if v is None else {v}


def _eval(prog: _Program, expr: str, tctx: dict) -> int | None:
    """Value of ``expr`` when every name in it has one known value, else None."""
    e = re.sub(r"\b(?:static_cast|int|unsigned|long)\b\s*(?:<[^<>]*>)?", " ", expr)
    e = re.sub(r"\(\s*(?:int|unsigned|long|size_t|u?int\d+_t)\s*\)", " ", e)

    def sub(m):
        vals = _values(prog, m.group(0), tctx) if not re.fullmatch(r"\d\w*", m.group(0)) else None
        if vals is None or len(vals) != 1:
            raise KeyError(m.group(0))
        return f" {next(iter(vals))} "

    try:
        e = re.sub(_QNAME, sub, e)
    except KeyError:
        return None
    if not e.strip():
        return None
    try:
        return _L._Expr(e, {}).parse()
    except (ValueError, IndexError):
        return None


def _tctx(prog: _Program, fn: _Func | None) -> dict:
    ctx = {}
    if fn:
        for tp in fn.tparams:
            ctx[tp] = prog.tvals.get((fn.name, tp))
    return ctx


# ------------------------------------------------------------------ calls and roles


def _calls(cpp: str, a: int, b: int) -> list[_Call]:
    out = []
    for m in _CALL.finditer(cpp, a, b):
        name = re.split(r"\s*::\s*", m.group(1))[-1]
        if name in _NOT_CALLS:
            continue
        before = cpp[max(0, m.start() - 2):m.start()].rstrip()
        if before.endswith((".", "->")) or cpp[max(0, m.start() - 2):m.start()].endswith("->"):
            continue
        p0 = m.end() - 1
        p1 = _L._match_close(cpp, p0)
        inner = cpp[p0 + 1:p1 - 1]
        args = [(t, p0 + 1 + o) for t, o in _split_top(inner)] if inner.strip() else []
        out.append(_Call(name, m.start(), m.group(2), args, p1))
    return out


def _arg_base(arg: str) -> tuple[str | None, list[str]]:
    """(variable, subscripts) of an argument like ``x``, ``&x``, ``buf[0]``; else (None, [])."""
    m = re.fullmatch(r"\s*&?\s*([A-Za-z_]\w*)\s*((?:\[[^\[\]]*\]\s*)*)", arg)
    if not m:
        return None, []
    return m.group(1), [x.strip() for x in re.findall(r"\[([^\[\]]*)\]", m.group(2))]


def _arg_bases(arg: str) -> list[str]:
    """Variables an argument may denote: ``x``, ``buf[0]``, or both arms of ``c ? x : y``."""
    parts = _split_top(arg, "?")
    if len(parts) == 2:
        arms = _split_top(parts[1][0], ":")
        if len(arms) == 2:
            return [b for b in (_arg_base(a)[0] for a, _ in arms) if b]
    base = _arg_base(arg)[0]
    return [base] if base else []


def _resolve(prog: _Program, name: str, nargs: int) -> _Func | None:
    cands = [f for f in prog.by_name.get(name, []) if len(f.params) == nargs] or \
        prog.by_name.get(name, [])
    return cands[0] if cands else None


_ASSIGN = re.compile(r"\s*(?:(=)(?!=)|(\+=|-=|\*=|/=|%=|&=|\|=|\^=|<<=|>>=|\+\+|--))")


def _role(prog: _Program, fn: _Func, idx: int, depth: int = 0) -> set[str]:
    """{'w', 'r'} subset: does ``fn`` write / read its parameter number ``idx``."""
    if idx >= len(fn.params):
        return set()
    p = fn.params[idx]
    if not p.name:
        return set()
    cpp = fn.src.cpp
    b0, b1 = fn.body
    body = cpp[b0:b1]
    roles: set[str] = set()
    name = re.escape(p.name)
    if not re.search(r"\b" + name + r"\b", body):
        return roles
    if p.stream:
        if re.search(r"\b" + name + r"\s*(?:\[[^\]]*\]\s*)?(?:\.\s*write(?:_nb)?\s*\(|<<)", body):
            roles.add("w")
        if re.search(r"\b" + name + r"\s*(?:\[[^\]]*\]\s*)?(?:\.\s*read(?:_nb)?\s*\(|>>)", body):
            roles.add("r")
    elif not (p.pointer or p.ref) or p.const:
        roles.add("r")
    # arguments passed on (one level)
    in_calls: list[tuple[int, int]] = []
    for c in _calls(cpp, b0, b1):
        for ai, (arg, off) in enumerate(c.args):
            if p.name not in _arg_bases(arg):
                continue
            in_calls.append((off, off + len(arg)))
            if c.name in ("memcpy", "memmove"):
                roles.add("w" if ai == 0 else "r")
            elif c.name == "memset":
                roles.add("w" if ai == 0 else "r")
            elif depth == 0:
                g = _resolve(prog, c.name, len(c.args))
                if g is not None:
                    roles |= _role(prog, g, ai, depth + 1)
    if p.stream or (p.const or not (p.pointer or p.ref)):
        return roles
    for m in re.finditer(r"(?<![\w.>:])" + name + r"\b", body):
        pos = b0 + m.start()
        if any(a <= pos < e for a, e in in_calls):
            continue
        j = b0 + m.end()
        while True:
            k = _L._skip_ws(cpp, j)
            if k < len(cpp) and cpp[k] == "[":
                j = _L._match_close(cpp, k)
                continue
            mm = re.match(r"\s*\.\s*\w+\s*\(", cpp[k:k + 80]) if k < len(cpp) else None
            if mm:
                j = _L._match_close(cpp, k + mm.end() - 1)
                continue
            break
        am = _ASSIGN.match(cpp, j)
        pre = cpp[max(0, pos - 3):pos]
        if am and am.group(1):
            roles.add("w")
        elif am or re.search(r"(\+\+|--)\s*$", pre):
            roles |= {"w", "r"}
        else:
            roles.add("r")
    return roles


# ------------------------------------------------------------------ rule 1: DATAFLOW


def _pragmas(code: str, a: int, b: int, kind: str):
    """(offset, lowered text after the kind) of ``#pragma HLS <kind>`` lines in [a, b)."""
    for m in re.finditer(r"(?im)^[ \t]*#\s*pragma\s+HLS\s+" + kind + r"\b(.*)$", code[a:b]):
        yield a + m.start(), _norm_pragma(m.group(1))


def _norm_pragma(text: str) -> str:
    """``key = value`` -> ``key=value``, lowercased except the names (variable, port,
    factor, bundle values) that must keep their spelling."""
    def tok(m):
        key, val = m.group(1), m.group(2)
        if key and key.lower() in ("variable=", "port=", "factor=", "bundle="):
            return key.lower() + val
        return (key or "").lower() + val.lower()
    return re.sub(r"(\S+?=)?(\S+)", tok, re.sub(r"\s*=\s*", "=", text))


def _pragma_var(text: str) -> str | None:
    m = re.search(r"\bvariable=([A-Za-z_]\w*)", text)
    return m.group(1) if m else None


@dataclass
class _Var:
    name: str
    kind: str        # stream / array / scalar
    pos: int
    dims: list[str]


def _is_static(prog: _Program, expr: str, tctx: dict, extra: set[str] = frozenset()) -> bool:
    e = re.sub(r"\bsizeof\s*\([^()]*\)", "0", expr)
    for m in re.finditer(_QNAME, e):
        name = re.sub(r"\s+", "", m.group(0))
        if re.fullmatch(r"\d\w*", name) or name in extra or name in ("true", "false"):
            continue
        if name in _BUILTIN or re.fullmatch(r"u?int\d+_t", name) or name in ("static_cast",):
            continue
        if _values(prog, name, tctx) is None:
            return False
    return True


def _has_arith(expr: str) -> bool:
    e = re.sub(r"\[[^\[\]]*\]", "", expr)
    e = re.sub(_TARGS, "", e)
    return bool(re.search(r"\?|[-+*/%^|]|<<|>>|(?<![&(,\s])\s*&\s*(?=\w)|\+\+|--", e))


def _inner_procs(prog: _Program, cpp: str, a: int, b: int) -> list:
    """Processes called inside a (flagged) loop / conditional of a region: their channels
    still count, so that one mistake is reported once."""
    return [(c, g) for c in _calls(cpp, a, b)
            if (g := _resolve(prog, c.name, len(c.args))) is not None]


def _dataflow(prog: _Program, fn: _Func, add) -> None:
    s = fn.src
    code, cpp = s.code, s.cpp
    b0, b1 = fn.body
    tctx = _tctx(prog, fn)
    vars_: dict[str, _Var] = {}
    procs: list[tuple[_Call, _Func | None]] = []
    pos = b0 + 1
    while True:
        pos = _L._skip_ws(code, pos)
        if pos >= b1 - 1 or code[pos] == "}":
            break
        end = _L._statement_end(code, pos)
        if end <= pos:
            break
        stmt = cpp[pos:end].strip()
        first = _L._word_at(cpp, pos)
        lab = re.match(r"([A-Za-z_]\w*)\s*:(?!:)\s*", stmt)
        if lab and first not in _L._KEYWORDS:
            first = _L._word_at(stmt, lab.end())
        if stmt in (";", "return;") or first in ("static_assert", "typedef", "using"):
            pass
        elif first in ("for", "while", "do"):
            kw = re.search(r"\b" + first + r"\b", cpp[pos:end])
            add(s, pos + kw.start(), "dataflow-body", f"'{first}' loop in the DATAFLOW region of "
                f"'{fn.name}': wrap it in a process")
            procs += _inner_procs(prog, cpp, pos, end)
        elif first in ("if", "switch") or stmt.startswith("{"):
            what = f"'{first}'" if first in ("if", "switch") else "a block"
            add(s, pos, "dataflow-body", f"{what} in the DATAFLOW region of '{fn.name}': "
                "processes must execute unconditionally")
            procs += _inner_procs(prog, cpp, pos, end)
        elif first == "return":
            add(s, pos, "dataflow-body", f"'return <value>' in the DATAFLOW region of '{fn.name}'")
        else:
            cm = re.fullmatch(r"(?:::)?(" + _QNAME + r")\s*(" + _TARGS + r")?\s*(\(.*\))\s*;",
                              stmt, re.S)
            if cm and _L._match_close(stmt, cm.start(3)) == cm.end(3):
                calls = [c for c in _calls(cpp, pos, end) if c.pos == pos + stmt.find(cm.group(1))]
                c = calls[0] if calls else _calls(cpp, pos, end)[0]
                for arg, off in c.args:
                    if "?" in arg:
                        add(s, off, "dataflow-body", f"'?:' in an argument of '{c.name}': a "
                            "conditionally selected channel")
                    elif _has_arith(arg):
                        add(s, off, "dataflow-body", f"arithmetic '{arg.strip()}' in an argument "
                            f"of '{c.name}' in the DATAFLOW region: compute it inside a process")
                procs.append((c, _resolve(prog, c.name, len(c.args))))
            elif "?" in stmt:
                add(s, pos, "dataflow-body", f"'?:' in the DATAFLOW region of '{fn.name}': "
                    "a conditionally executed process")
                procs += _inner_procs(prog, cpp, pos, end)
            else:
                d = re.match(r"(?:(?:static|const|constexpr|volatile)\s+)*(?:(?:unsigned|signed)\s+)?"
                             r"(" + _QNAME + r")\s*(" + _TARGS + r")?\s*(?=[*&]*\s*[A-Za-z_])", stmt)
                if not d or d.group(1) in _L._KEYWORDS - _BUILTIN - {"const", "static"}:
                    add(s, pos, "dataflow-body", f"statement '{stmt[:40]}' in the DATAFLOW region of "
                        f"'{fn.name}' is neither a declaration nor a process call")
                else:
                    typ = d.group(0)
                    is_stream = bool(re.search(r"\bstream\s*<", typ))
                    for dec, off in _split_top(stmt[d.end():].rstrip(";")):
                        dm = re.match(r"\s*[*&]*\s*([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)(.*)$", dec, re.S)
                        if not dm:
                            continue
                        dims = re.findall(r"\[([^\]]*)\]", dm.group(2))
                        init = dm.group(3).strip()
                        kind = "stream" if is_stream else ("array" if dims else "scalar")
                        vars_[dm.group(1)] = _Var(dm.group(1), kind, pos, dims)
                        if init and not is_stream:
                            val = init.lstrip("=").strip().strip("{}()")
                            if val and not _is_static(prog, val, tctx):
                                add(s, pos, "dataflow-body", f"initializer of '{dm.group(1)}' "
                                    "computes in the DATAFLOW region: compute it inside a process")
        pos = end
    # pragmas of the region
    unsync = set()
    split = set()
    for ppos, txt in _pragmas(code, b0, b1, "stream"):
        v = _pragma_var(txt)
        if v and re.search(r"\btype=(unsync|shared|pipo)\b", txt):
            unsync.add(v)
    for ppos, txt in _pragmas(code, b0, b1, "array_partition"):
        v = _pragma_var(txt)
        dm = re.search(r"\bdim=(\d+)", txt)
        if v and "complete" in txt and (dm is None or dm.group(1) in ("1", "0")):
            split.add(v)
    # uses: var -> [(process index, part, roles, call)]
    uses: dict[str, list] = {}
    for k, (c, callee) in enumerate(procs):
        for ai, (arg, off) in enumerate(c.args):
            base, subs = _arg_base(arg)
            if base not in vars_:
                continue
            roles = _role(prog, callee, ai) if callee else None
            if roles is None:
                rule = {"stream": "dataflow-stream", "array": "dataflow-buffer"}.get(
                    vars_[base].kind, "dataflow-bypass")
                add(s, c.pos, rule, f"process '{c.name}' is not defined in the linted files: "
                    f"cannot tell whether it reads or writes '{base}'")
                continue
            part = subs[0] if subs and _is_static(prog, subs[0], tctx) else None
            uses.setdefault(base, []).append((k, part, roles, c))

    def pname(k):
        return f"'{procs[k][0].name}'"

    for name, v in vars_.items():
        us = uses.get(name, [])
        if v.kind == "stream":
            groups: dict = {}
            for u in us:
                groups.setdefault(u[1], []).append(u)
            if not groups:
                groups[None] = []
            for part, g in sorted(groups.items(), key=lambda x: str(x[0])):
                label = name if part is None else f"{name}[{part}]"
                wr = sorted({k for k, _, r, _ in g if "w" in r})
                rd = sorted({k for k, _, r, _ in g if "r" in r})
                if len(wr) != 1 or len(rd) != 1 or wr == rd:
                    add(s, v.pos, "dataflow-stream", f"stream '{label}' has producers "
                        f"[{', '.join(map(pname, wr))}] and consumers [{', '.join(map(pname, rd))}]: "
                        "it needs exactly one of each, in two different processes")
        elif v.kind == "array":
            is_split = name in split and us and all(p is not None for _, p, _, _ in us)
            groups = {}
            for u in us:
                groups.setdefault(u[1] if is_split else None, []).append(u)
            for part, g in sorted(groups.items(), key=lambda x: str(x[0])):
                label = name if part is None else f"{name}[{part}]"
                wr = sorted({k for k, _, r, _ in g if "w" in r})
                rd = sorted({k for k, _, r, _ in g if "r" in r})
                procs_of = sorted({k for k, _, _, _ in g})
                if len(wr) > 1:
                    add(s, v.pos, "dataflow-buffer", f"buffer '{label}' is written by "
                        f"{len(wr)} processes ({', '.join(map(pname, wr))}): one writer only")
                if len(rd) > 1:
                    add(s, v.pos, "dataflow-buffer", f"buffer '{label}' is read by "
                        f"{len(rd)} processes ({', '.join(map(pname, rd))}): one reader only")
                if (len(procs_of) >= 2 and not is_split and name not in unsync
                        and len(wr) <= 1 and len(rd) <= 1):
                    add(s, v.pos, "dataflow-buffer", f"buffer '{label}' is shared by "
                        f"{', '.join(map(pname, procs_of))} without '#pragma HLS stream "
                        f"variable={name} type=unsync' (or shared/pipo) and is not split into "
                        "parts (ARRAY_PARTITION complete dim=1, passed as "
                        f"{name}[0], {name}[1])")
        else:
            wr = sorted({k for k, _, r, _ in us if "w" in r})
            for k, _, r, c in us:
                if "r" not in r or k in wr:
                    continue
                for p in wr:
                    if k > p + 1 or k < p:
                        how = "before it is produced" if k < p else "skipping " + ", ".join(
                            pname(j) for j in range(p + 1, k))
                        add(s, c.pos, "dataflow-bypass", f"scalar '{name}' produced by {pname(p)} "
                            f"is read by {pname(k)} {how}: pass it through a stream or to the "
                            "next process only")


# ------------------------------------------------------------------ rule 2: II=1


def _is_pow2_operand(prog: _Program, text: str, tctx: dict) -> tuple[bool, str]:
    """(ok, operand text) for the right operand at the start of ``text``."""
    t = text.lstrip()
    if t.startswith("("):
        end = _L._match_close(t, 0)
        op = t[:end]
        if re.fullmatch(r"\(\s*1[uUlL]*\s*<<.*\)", op, re.S):
            return True, op
    else:
        m = re.match(r"(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*|" + _QNAME + r"(?:\s*" + _TARGS + r")?", t)
        op = m.group(0) if m else t[:12]
    vals = _values(prog, re.sub(r"[uUlL]+$", "", op) if re.match(r"\d", op) else op, tctx)
    ok = bool(vals) and all(v > 0 and v & (v - 1) == 0 for v in vals)
    return ok, op.strip()


def _loop_vars_of(lp) -> set[str]:
    if lp.kind != "for":
        return set()
    parts = _L._split_for_head(lp.head)
    if not parts:
        return set()
    return set(_L._loop_vars(parts[0])) | set(_L._loop_vars_incr(parts[2]))


def _const_trip(lp, constants) -> bool:
    if lp.kind != "for":
        return False
    parts = _L._split_for_head(lp.head)
    if not parts or not parts[1].strip():
        return False
    return _L._bound_is_constant(parts[1], _loop_vars_of(lp), constants)


def _owner(loops, pos):
    best = None
    for lp in loops:
        if lp.body[0] <= pos < lp.body[1] and (best is None or lp.body[0] >= best.body[0]):
            best = lp
    return best


def _terms(expr: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in "+-" and depth == 0 and i > 0 and expr[:i].strip() and expr[:i].rstrip()[-1] not in "*/%(+-":
            out.append(expr[start:i])
            start = i + 1
    out.append(expr[start:])
    return [t for t in out if t.strip()]


def _pipeline(prog: _Program, s: _Src, add) -> None:
    code, cpp = s.code, s.cpp
    loops = _L._find_loops(code)
    constants = _L._constant_names(cpp, s.macros) | {k for k in prog.consts}
    funcs = [f for f in prog.funcs if f.src is s]
    for ppos, txt in _pragmas(code, 0, len(code), "pipeline"):
        if re.search(r"\boff\b", txt):
            continue
        ii = re.search(r"\bii=(\S+)", txt)
        if ii and ii.group(1) != "1":
            continue
        lp = _owner(loops, ppos)
        if lp is None:
            continue
        fn = next((f for f in funcs if f.body[0] <= lp.start < f.body[1]), None)
        tctx = _tctx(prog, fn)
        b0, b1 = lp.body
        where = f"pipelined loop '{lp.label or lp.kind}'"
        # nested loops: constant-bound ones are unrolled by the pipeline, others need UNROLL
        unrolled: set[str] = set()
        for inner in loops:
            if not (b0 <= inner.start < b1):
                continue
            full = any(_owner(loops, up) is inner and not re.search(r"\bfactor=", ut)
                       for up, ut in _pragmas(code, inner.body[0], inner.body[1], "unroll"))
            if _const_trip(inner, constants) or full:
                unrolled |= _loop_vars_of(inner)
            if not full and not _const_trip(inner, constants):
                add(s, inner.start, "pipeline-loop", f"loop '{inner.label or inner.kind}' inside "
                    f"{where} has a runtime trip count and is not fully unrolled")
        # division and modulo
        for m in re.finditer(r"[/%]", cpp[b0:b1]):
            p = b0 + m.start()
            rest = cpp[p + 1:p + 200]
            rest = rest[1:] if rest.startswith("=") else rest
            ok, op = _is_pow2_operand(prog, rest, tctx)
            if not ok:
                add(s, p, "pipeline-divmod", f"'{cpp[p]} {op}' in {where}: the divisor is not a "
                    "compile-time power of two (a divider breaks II=1)")
        # calls of non-inlined functions
        for c in _calls(cpp, b0, b1):
            g = _resolve(prog, c.name, len(c.args))
            if g is not None and not g.inline:
                add(s, c.pos, "pipeline-call", f"call of '{c.name}' in {where}: add "
                    f"'#pragma HLS INLINE' to '{c.name}' (a sub-function call limits II)")
        # partitioned arrays of this function
        if fn is None:
            continue
        parts: dict[str, tuple[str, set | None, str | None, int]] = {}
        for up, ut in _pragmas(code, fn.body[0], fn.body[1], "array_partition"):
            v = _pragma_var(ut)
            if not v:
                continue
            kind = "complete" if "complete" in ut else ("cyclic" if "cyclic" in ut else "block")
            fm = re.search(r"\bfactor=([\w:]+)", ut)
            dm = re.search(r"\bdim=(\d+)", ut)
            fac = fm.group(1) if fm else None
            parts[v] = (kind, _values(prog, fac, tctx) if fac else None, fac,
                        int(dm.group(1)) if dm else 1)
        for v, (kind, fvals, ftext, dim) in parts.items():
            for m in re.finditer(r"(?<![\w.>:])" + re.escape(v) + r"\s*\[", cpp[b0:b1]):
                p = b0 + m.start()
                if _is_declaration(cpp, p):
                    continue  # `T v[N];` declares the array: not an access
                subs, j = [], b0 + m.end() - 1
                while j < len(cpp) and cpp[j] == "[":
                    e = _L._match_close(cpp, j)
                    subs.append(cpp[j + 1:e - 1])
                    j = _L._skip_ws(cpp, e)
                dims = range(len(subs)) if dim == 0 else [dim - 1]
                for d in dims:
                    if d >= len(subs):
                        continue
                    idx = subs[d]
                    if _is_static(prog, idx, tctx, unrolled):
                        continue
                    if kind == "cyclic" and _cyclic_ok(prog, idx, tctx, unrolled, fvals, ftext):
                        continue
                    add(s, p, "pipeline-bank", f"'{v}[{idx.strip()}]' in {where}: runtime index "
                        f"into dimension {d + 1} of '{v}' ({kind} partition): the bank is not "
                        "known statically")


_NOT_TYPES = {"return", "case", "else", "do", "goto", "throw", "sizeof", "delete", "new"}


def _is_declaration(cpp: str, p: int) -> bool:
    """True when the name at ``p`` follows a type (``zsqd_word w[...]``, ``ap_int<32> s[...]``):
    the subscript is the array's size, not an index."""
    m = re.search(r"([\w>]+)\s+$", cpp[max(0, p - 80):p])
    return bool(m) and m.group(1) not in _NOT_TYPES


def _cyclic_ok(prog, idx, tctx, unrolled, fvals, ftext) -> bool:
    """Each runtime term is a multiple of the cyclic factor: the bank is still static."""
    for term in _terms(idx):
        if _is_static(prog, term, tctx, unrolled):
            continue
        t = term.strip()
        while t.startswith("(") and _L._match_close(t, 0) == len(t):
            t = t[1:-1].strip()
        factors = [f.strip() for f, _ in _split_top(t, "*")]
        good = False
        for f in factors:
            if ftext and re.sub(r"\s+", "", f) == re.sub(r"\s+", "", ftext):
                good = True
            else:
                vals = _values(prog, f, tctx)
                if vals and fvals and all(v % fv == 0 for v in vals for fv in fvals):
                    good = True
        if not good:
            return False
    return True


# ------------------------------------------------------------------ rule 3: interface


def _base_type(t: str) -> str:
    t = re.sub(r"\b(const|volatile|struct|class|__restrict__|__restrict|restrict)\b", " ", t)
    return re.sub(r"\s+", " ", t.replace("*", " ").replace("&", " ")).strip()


def _interface(prog: _Program, top: _Func, add) -> None:
    s = top.src
    b0, b1 = top.body
    ports: dict[str, list[tuple[str, str, int]]] = {}
    for ppos, txt in _pragmas(s.code, b0, b1, "interface"):
        pm = re.search(r"\bport=([A-Za-z_]\w*)", txt)
        mode = re.search(r"\bmode=(\w+)", txt)
        mode = mode.group(1) if mode else (txt.split() or [""])[0]
        if pm:
            ports.setdefault(pm.group(1), []).append((mode, txt, ppos))
    line_of = top.header
    for p in top.params:
        modes = {m for m, _, _ in ports.get(p.name, [])}
        base = _base_type(p.type)
        resolved = prog.aliases.get(base, base)
        is_struct = base in prog.structs or resolved == "struct" or resolved in prog.structs
        if is_struct:
            add(s, line_of, "interface-type", f"port '{p.name}' of '{top.name}' has struct/class "
                f"type '{base}': pass flat ap_uint words")
        elif not p.stream and not re.fullmatch(r"ap_u?int\s*<[^<>]*>|ap_u?fixed\s*<[^<>]*>|"
                                                r"(?:unsigned |signed )?(?:int|char|short|long|bool|"
                                                r"long long)|u?int(?:8|16|32|64)_t|float|double",
                                                resolved):
            add(s, line_of, "interface-type", f"port '{p.name}' of '{top.name}' has type '{base}' "
                "that is not an ap_(u)int or builtin scalar")
        if p.pointer:
            if "m_axi" in modes:
                wm = re.fullmatch(r"ap_uint\s*<\s*([^<>]+?)\s*>", resolved)
                w = _values(prog, wm.group(1), {}) if wm else None
                if not is_struct and (not w or not w <= _AXI_WIDTHS):
                    add(s, line_of, "interface-type", f"m_axi port '{p.name}' of '{top.name}' is "
                        f"'{p.type.strip()}': use ap_uint<W>* with W in 32, 64, 128, 256, 512")
                for mode, txt, ppos in ports[p.name]:
                    if mode != "m_axi":
                        continue
                    if not re.search(r"\bbundle=\w", txt):
                        add(s, ppos, "interface-pragma", f"m_axi port '{p.name}' names no bundle=")
                    if not re.search(r"\boffset=slave\b", txt):
                        add(s, ppos, "interface-pragma", f"m_axi port '{p.name}' needs offset=slave")
            elif "s_axilite" in modes and not re.match(r"ap_", resolved):
                pass  # a pointer to a builtin scalar on s_axilite: an output register
            elif not p.stream:
                add(s, line_of, "interface-pragma", f"pointer port '{p.name}' of '{top.name}' has no "
                    "'#pragma HLS INTERFACE m_axi' (or s_axilite, for a scalar output)")
        elif not p.stream and "s_axilite" not in modes:
            add(s, line_of, "interface-pragma", f"scalar port '{p.name}' of '{top.name}' has no "
                "'#pragma HLS INTERFACE s_axilite'")
    if "s_axilite" not in {m for m, _, _ in ports.get("return", [])}:
        add(s, line_of, "interface-pragma", f"'{top.name}' has no '#pragma HLS INTERFACE "
            "s_axilite port=return' (the control interface)")


_PTR_DECL = re.compile(
    r"(?:(?<=[;{}])|(?<=\bfor\s\()|(?<=\bfor\())\s*(?:(?:static|const|constexpr|volatile|register)\s+)*"
    r"(" + _QNAME + r")\s*(?:" + _TARGS + r")?\s*(?:const\s+)?(?:\*+\s*(?:const\s+|__restrict\s+)?"
    r"([A-Za-z_]\w*)\s*(?:=|;|,|\[)|\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\[)")


def _reach(prog: _Program, top: _Func) -> list[_Func]:
    seen, todo, out = {id(top)}, [top], [top]
    while todo:
        f = todo.pop()
        for c in _calls(f.src.cpp, f.body[0], f.body[1]):
            for g in prog.by_name.get(c.name, []):
                if id(g) not in seen:
                    seen.add(id(g))
                    todo.append(g)
                    out.append(g)
    return out


def _pointer_data(prog: _Program, top: _Func, add) -> None:
    funcs = _reach(prog, top)
    used_types: set[str] = set()
    for f in funcs:
        s = f.src
        b0, b1 = f.body
        text = s.cpp[b0:b1]
        used_types |= set(_IDENT.findall(text)) | {_base_type(p.type) for p in f.params}
        ptr_names = {p.name for p in f.params if p.pointer and p.name}
        for m in _PTR_DECL.finditer(s.cpp, b0 + 1, b1):
            if m.group(1) in _L._KEYWORDS - _BUILTIN or m.group(1) in ("return", "delete"):
                continue
            name = m.group(2) or m.group(3)
            ptr_names.add(name)
            add(s, m.start(1), "pointer-data", f"'{name}' in '{f.name}' stores a pointer: "
                "use array indices (offsets) instead")
        for name in sorted(ptr_names):
            n = re.escape(name)
            for m in re.finditer(r"(?<![\w.>])(?:" + n + r"\s*[!=]=\s*(?:nullptr|NULL|0)\b|"
                                 r"(?:nullptr|NULL|0)\s*[!=]=\s*" + n + r"\b|!\s*" + n + r"\b(?!\s*[\[(.])|"
                                 r"(?<=\bif\s\()" + n + r"\s*\)|(?<=\bif\()" + n + r"\s*\))",
                                 text):
                add(s, b0 + m.start(), "pointer-data", f"pointer '{name}' compared with null in "
                    f"'{f.name}': the hardware has no null pointers")
    for sname, (s, a, b) in prog.structs.items():
        if sname not in used_types:
            continue
        body = s.cpp[a:b - 1]
        for stmt, off in _split_top(body, ";"):
            if "{" in stmt or re.search(r"\b(?:typedef|using|static|friend)\b", stmt):
                continue
            for m in re.finditer(r"(?:^|,)\s*(?:(?:const\s+)?" + _QNAME + r"\s*(?:" + _TARGS +
                                 r")?\s*)?(?:const\s+)?(?:\*+\s*([A-Za-z_]\w*)|"
                                 r"\(\s*\*\s*([A-Za-z_]\w*)\s*\))", stmt):
                name = m.group(1) or m.group(2)
                add(s, a + off + m.start() + len(m.group(0)) - len(m.group(0).lstrip(", \n\t")),
                    "pointer-data", f"member '{name}' of '{sname}' is a pointer")


# ------------------------------------------------------------------ rule 4: one MAC array


def _mac_array(prog: _Program, add) -> None:
    marked = []
    for s in prog.srcs:
        for m in re.finditer(r"//[ \t]*zsq:[ \t]*mac-array\b", s.text):
            line = _L._line_of(s.text, m.start())
            fn = next((f for f in prog.funcs if f.src is s and f.line == line + 1), None)
            if fn is None:
                add(s, m.start(), "mac-array", "'// zsq: mac-array' is not on the line before a "
                    "function definition")
            else:
                marked.append(fn)
    for fn in marked:
        sites = []
        for g in prog.funcs:
            sites += [(g, c) for c in _calls(g.src.cpp, g.body[0], g.body[1]) if c.name == fn.name]
        if len(sites) != 1:
            where = ", ".join(f"{g.src.file}:{_L._line_of(g.src.cpp, c.pos)}" for g, c in sites)
            nm = re.compile(r"\b" + re.escape(fn.name) + r"\s*\(").search(fn.src.cpp, fn.header,
                                                                       fn.body[0])
            add(fn.src, nm.start() if nm else fn.header, "mac-array",
                f"MAC array '{fn.name}' is called from "
                f"{len(sites)} sites{(' (' + where + ')') if where else ''}: it must be "
                "instantiated exactly once")
    if not marked:
        for top in _tops(prog):
            add(top.src, top.header, "mac-array", "no function is marked '// zsq: mac-array': "
                "mark the MAC array's definition so that its instances are counted")


def _tops(prog: _Program) -> list[_Func]:
    return [f for f in prog.funcs
            if any(True for _ in _pragmas(f.src.code, f.body[0], f.body[1], "interface"))]


# ------------------------------------------------------------------ entry point


def dae_issues(files: list[tuple[str, str]]) -> list[_L.LintIssue]:
    """DAE / II=1 / interface / MAC-array issues of ``files`` = [(filename, text)].

    All files form one program (a top in one file calls processes defined in another).
    Lines are 1-based; ``hls-lint: allow(rule)`` comments apply as for the other rules.
    """
    srcs = []
    for name, text in files:
        macros: dict = {"__SYNTHESIS__": 1}
        stripped = _L.strip_comments_and_strings(text)
        code, _ = _L._preprocess(stripped, macros)
        cpp = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), code)
        srcs.append(_Src(name, text, code, cpp, macros, _L._allowed_rules(text)))
    prog = _build(srcs)
    issues: set[_L.LintIssue] = set()

    def add(src: _Src, pos: int, rule: str, msg: str) -> None:
        line = _L._line_of(src.text, pos)
        if rule not in src.allowed.get(line, ()):
            issues.add(_L.LintIssue(src.file, line, rule, msg))

    for f in prog.funcs:
        if any(True for _ in _pragmas(f.src.code, f.body[0], f.body[1], "dataflow")):
            _dataflow(prog, f, add)
    for s in srcs:
        _pipeline(prog, s, add)
    for top in _tops(prog):
        _interface(prog, top, add)
        _pointer_data(prog, top, add)
    _mac_array(prog, add)
    return sorted(issues)
