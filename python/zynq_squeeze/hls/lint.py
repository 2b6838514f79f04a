"""A synthesizability lint for the engine's HLS C++ (no HLS tool needed).

It reads C/C++ source text the way a reviewer would before handing it to Vitis HLS and
flags constructs that do not synthesize or break the project's HLS rules:

=====================  ================================================================
rule id                what it flags
=====================  ================================================================
``dynamic-alloc``      ``malloc/calloc/realloc/free``, ``new``, ``delete``
``std-container``      ``std::vector/string/map/...``, smart pointers, ``std::function``
``unsupported-header`` ``#include`` of ``<vector>``, ``<iostream>``, ``<thread>``, ...
``recursion``          a function calling itself, or a call cycle among the functions
                       defined in the scanned files
``unbounded-loop``     ``while (1)``, ``while (true)``, ``for (;;)``, ``do ... while (1)``
``loop-label``         a ``for``/``while``/``do`` loop without a label (``name: for ...``)
``loop-tripcount``     a loop whose bound is not a compile-time constant and whose body
                       has no ``#pragma HLS loop_tripcount``
``unsupported-call``   ``printf``, ``fprintf``, ``puts``, ``exit``, ``abort``, ``assert``,
                       ``fopen`` and file I/O, ``system``, ``std::cout``, threads
``exception``          ``throw``, ``try``, ``catch``
``function-pointer``   function-pointer declarations, casts and calls
=====================  ================================================================

How the text is read:

* comments, string and character literals are blanked first (line numbers are kept);
* preprocessor conditionals are evaluated with ``__SYNTHESIS__`` defined, in three-valued
  logic: a branch whose condition is known false for synthesis (``#ifndef __SYNTHESIS__``,
  the ``#else`` of ``#ifdef __SYNTHESIS__``, ``#if !ZSQ_USE_HLS_KERNEL`` after
  ``#define ZSQ_USE_HLS_KERNEL 1`` in a live branch, ...) is simulation-only and skipped;
  a condition that depends on anything unknown keeps every branch (conservative);
* a loop bound is a compile-time constant when every name in the loop condition other
  than the loop variable is an ALL_CAPS macro, a qualified ``Cfg::member``, a
  ``constexpr`` / literal ``const`` / ``#define`` / enumerator / template value
  parameter of the scanned text, or ``sizeof(...)``.

A line may opt out of a rule with a comment ``hls-lint: allow(rule-id[, rule-id])``.

Rule sets: ``rules="base"`` (the default) runs the rules above; ``rules="dae"`` runs the
rules of the decoupled access/execute, II=1 engine (DATAFLOW legality, II=1
preconditions, top-level interface, one MAC array: :mod:`zynq_squeeze.hls.lint_dae`
lists them); ``rules="all"`` runs both.

``python -m zynq_squeeze.hls.lint [--rules base|dae|all] FILE_OR_DIR...`` prints the
issues and exits 1 if any.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LintIssue", "RULES", "RULE_SETS", "lint_source", "lint_files",
           "strip_comments_and_strings", "main"]

RULE_SETS = ("base", "dae", "all")

RULES = {
    "dynamic-alloc": "dynamic memory allocation does not synthesize",
    "std-container": "standard-library containers allocate dynamically",
    "unsupported-header": "header of a non-synthesizable library",
    "recursion": "recursion does not synthesize",
    "unbounded-loop": "loop without an exit bound",
    "loop-label": "every loop must be labelled (labels name the loops in csynth.xml)",
    "loop-tripcount": "variable-bound loop needs #pragma HLS loop_tripcount",
    "unsupported-call": "library call that does not synthesize",
    "exception": "C++ exceptions do not synthesize",
    "function-pointer": "function pointers do not synthesize",
}


@dataclass(frozen=True, order=True)
class LintIssue:
    """One finding: ``file:line: [rule] message``."""

    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message}"


# --------------------------------------------------------------------------- lexing


def strip_comments_and_strings(text: str) -> str:
    """``text`` with comments, string and char literals replaced by blanks.

    Newlines are kept (so offsets map to the same line numbers); a string literal keeps
    its quotes and becomes ``"  "`` of the same length.
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            # a line comment continued with backslash-newline goes on
            while j < n and j > 0 and text[j - 1] == "\\":
                k = text.find("\n", j + 1)
                j = n if k < 0 else k
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum()
                                                                      or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i + m.end())
                end = n if end < 0 else end + len(m.group(1)) + 2
                out.append('R"' + re.sub(r"[^\n]", " ", text[i + 2:end - 1]) + '"')
                i = end
            else:
                out.append(c)
                i += 1
        elif c in "\"'":
            if c == "'" and i > 0 and (text[i - 1].isalnum()) and i + 1 < n and text[i + 1].isalnum():
                out.append(c)  # C++14 digit separator 1'000'000
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j, n - 1)
            out.append(c + " " * (j - i - 1) + (text[j] if text[j] == c else ""))
            if text[j] != c:
                out.append("\n" if text[j] == "\n" else "")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ------------------------------------------------------------ preprocessor (3-valued)

_TOK = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(&&|\|\||==|!=|<=|>=|<<|>>|[-+*/%<>!~&|^?:()]))")


class _Expr:
    """Recursive-descent evaluator of ``#if`` expressions; None = unknown."""

    def __init__(self, text: str, macros: dict[str, int | None]):
        self.toks: list[tuple[str, object]] = []
        text = text.strip()
        pos = 0
        while pos < len(text):
            m = _TOK.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise ValueError("cannot parse")
            pos = m.end()
            if m.group(1):
                self.toks.append(("num", int(m.group(1), 0)))
            elif m.group(2):
                self.toks.append(("id", m.group(2)))
            elif m.group(3):
                self.toks.append(("op", m.group(3)))
        self.i = 0
        self.macros = macros

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", None)

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, op):
        t = self.take()
        if t != ("op", op):
            raise ValueError("syntax")

    def parse(self):
        v = self.ternary()
        if self.peek()[0] != "end":
            raise ValueError("trailing tokens")
        return v

    def ternary(self):
        c = self.binary(0)
        if self.peek() == ("op", "?"):
            self.take()
            a = self.ternary()
            self.expect(":")
            b = self.ternary()
            if c is None:
                return a if a == b else None
            return a if c else b
        return c

    _PREC = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
             ("<<", ">>"), ("+", "-"), ("*", "/", "%")]

    def binary(self, level):
        if level == len(self._PREC):
            return self.unary()
        lhs = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self._PREC[level]:
            op = self.take()[1]
            rhs = self.binary(level + 1)
            lhs = self._apply(op, lhs, rhs)
        return lhs

    @staticmethod
    def _apply(op, a, b):
        if op == "||":
            if a or b:  # None is falsy: only a known non-zero decides
                return 1 if (a not in (None, 0) or b not in (None, 0)) else None
            return None if (a is None or b is None) else 0
        if op == "&&":
            if a == 0 or b == 0:
                return 0
            return None if (a is None or b is None) else 1
        if a is None or b is None:
            return None
        try:
            return int({
                "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
                "==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
                ">": lambda: a > b, "<=": lambda: a <= b, ">=": lambda: a >= b,
                "<<": lambda: a << b, ">>": lambda: a >> b, "+": lambda: a + b,
                "-": lambda: a - b, "*": lambda: a * b,
                "/": lambda: int(a / b), "%": lambda: a % b,
            }[op]())
        except (ZeroDivisionError, ValueError):
            return None

    def unary(self):
        t = self.take()
        if t == ("op", "!"):
            v = self.unary()
            return None if v is None else int(not v)
        if t == ("op", "-"):
            v = self.unary()
            return None if v is None else -v
        if t == ("op", "+"):
            return self.unary()
        if t == ("op", "~"):
            v = self.unary()
            return None if v is None else ~v
        if t == ("op", "("):
            v = self.ternary()
            self.expect(")")
            return v
        if t[0] == "num":
            return t[1]
        if t[0] == "id":
            name = t[1]
            if name == "defined":
                paren = self.peek() == ("op", "(")
                if paren:
                    self.take()
                nt = self.take()
                if nt[0] != "id":
                    raise ValueError("defined needs a name")
                if paren:
                    self.expect(")")
                return _defined(self.macros, nt[1])
            if self.peek() == ("op", "("):  # function-like: __has_include(...), etc.
                depth = 0
                while True:
                    x = self.take()
                    if x[0] == "end":
                        break
                    if x == ("op", "("):
                        depth += 1
                    elif x == ("op", ")"):
                        depth -= 1
                        if depth == 0:
                            break
                return None
            if name in ("true",):
                return 1
            if name in ("false",):
                return 0
            v = self.macros.get(name)
            if v is _UNDEF:
                return 0
            return v if isinstance(v, int) else None
        raise ValueError("syntax")


_UNDEF = object()  # macro known to be undefined
_MAYBE = object()  # defined or not depending on an unknown condition


def _defined(macros, name) -> int | None:
    """1 / 0 when it is known whether ``name`` is defined, else None."""
    if name not in macros:
        return None
    v = macros[name]
    if v is _UNDEF:
        return 0
    if v is _MAYBE:
        return None
    return 1


def _eval_if(expr: str, macros) -> int | None:
    try:
        v = _Expr(expr, macros).parse()
    except (ValueError, IndexError):
        return None
    return None if v is None else int(bool(v))


def _preprocess(code: str, macros: dict) -> tuple[str, list[tuple[int, str]]]:
    """Blank preprocessor lines and synthesis-dead branches of ``code``.

    Returns (code with only live C++ text and ``#pragma HLS`` lines, includes as
    (offset, header)) — offsets and line numbers are preserved.
    """
    lines = code.split("\n")
    out = []
    includes: list[tuple[int, str]] = []
    # stack of [parent_live, branch_state, any_branch_taken]
    # branch_state: 1 live, 0 dead, None unknown (kept)
    stack: list[list] = []
    offset = 0
    i = 0

    def live() -> bool:
        return all(s[1] != 0 for s in stack)

    def certain() -> bool:
        return all(s[1] == 1 for s in stack)

    while i < len(lines):
        line = lines[i]
        start_off = offset
        m = re.match(r"\s*#\s*(\w*)(.*)", line)
        if m:
            # join continuation lines
            full = line
            n_extra = 0
            while full.endswith("\\") and i + n_extra + 1 < len(lines):
                n_extra += 1
                full = full[:-1] + " " + lines[i + n_extra]
            m = re.match(r"\s*#\s*(\w*)(.*)", full)
            d, rest = m.group(1), m.group(2).strip()
            block = lines[i:i + n_extra + 1]
            keep = False
            if d in ("if", "ifdef", "ifndef"):
                if d == "if":
                    v = _eval_if(rest, macros)
                else:
                    name = rest.split()[0] if rest.split() else ""
                    known = _defined(macros, name)
                    if known is None and d == "ifndef" and name not in macros:
                        nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
                        if re.match(r"\s*#\s*define\s+" + re.escape(name) + r"\b", nxt):
                            known = 0  # include guard: the first inclusion is the live one
                    v = known if d == "ifdef" else (None if known is None else 1 - known)
                stack.append([live(), v, v == 1])
            elif d == "elif":
                if stack:
                    top = stack[-1]
                    if top[2]:
                        top[1] = 0
                    else:
                        prev_unknown = top[1] is None
                        v = _eval_if(rest, macros)
                        top[1] = None if (prev_unknown and v == 1) else v
                        top[2] = top[2] or (v == 1 and not prev_unknown)
            elif d == "else":
                if stack:
                    top = stack[-1]
                    if top[2]:
                        top[1] = 0
                    elif top[1] is None:
                        top[1] = None
                    else:
                        top[1] = 1
                        top[2] = True
            elif d == "endif":
                if stack:
                    stack.pop()
            elif d == "define" and live():
                dm = re.match(r"([A-Za-z_]\w*)(\()?\s*(.*)", rest)
                if dm:
                    name, fn, body = dm.group(1), dm.group(2), dm.group(3).strip()
                    if not certain():
                        macros[name] = _MAYBE
                    elif fn or not body:
                        macros[name] = "?" if fn else 1
                    else:
                        try:
                            v = _Expr(body, macros).parse()
                        except (ValueError, IndexError):
                            v = None
                        macros[name] = v if isinstance(v, int) else "?"
            elif d == "undef" and live():
                name = rest.split()[0] if rest.split() else ""
                macros[name] = _UNDEF if certain() else _MAYBE
            elif d == "include" and live():
                hm = re.match(r"<([^>]+)>", rest)
                if hm:
                    includes.append((start_off, hm.group(1).strip()))
            elif d == "pragma" and live():
                keep = True
            for k, bl in enumerate(block):
                out.append(bl if keep else " " * len(bl))
            for bl in block:
                offset += len(bl) + 1
            i += n_extra + 1
            continue
        out.append(line if live() else " " * len(line))
        offset += len(line) + 1
        i += 1
    return "\n".join(out), includes


# ------------------------------------------------------------------ code structure

_KEYWORDS = {
    "if", "else", "for", "while", "do", "switch", "case", "default", "return", "break",
    "continue", "goto", "sizeof", "alignof", "alignas", "decltype", "static_assert",
    "typeid", "noexcept", "new", "delete", "throw", "try", "catch", "operator", "template",
    "typename", "class", "struct", "union", "enum", "namespace", "using", "typedef",
    "const", "constexpr", "static", "inline", "extern", "volatile", "unsigned", "signed",
    "int", "char", "short", "long", "float", "double", "bool", "void", "auto",
    "__attribute__", "__restrict", "__restrict__", "restrict", "public", "private",
    "protected", "virtual", "explicit", "friend", "mutable", "register", "this",
    "static_cast", "reinterpret_cast", "const_cast", "dynamic_cast", "defined",
}

_IDENT = re.compile(r"[A-Za-z_]\w*")


def _match_close(code: str, pos: int) -> int:
    """Index just past the bracket matching ``code[pos]`` (one of ([{)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[code[pos]]]
    i = pos + 1
    n = len(code)
    while i < n and stack:
        c = code[i]
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if c == stack[-1]:
                stack.pop()
            else:  # unbalanced: give up gracefully
                stack.pop()
        elif c == "#":  # a pragma line inside code: skip it
            j = code.find("\n", i)
            i = n if j < 0 else j
            continue
        i += 1
    return i


def _skip_ws(code: str, i: int) -> int:
    n = len(code)
    while i < n:
        if code[i].isspace():
            i += 1
        elif code[i] == "#":  # pragma line
            j = code.find("\n", i)
            i = n if j < 0 else j
        else:
            break
    return i


def _word_at(code: str, i: int) -> str:
    m = _IDENT.match(code, i)
    return m.group(0) if m else ""


def _statement_end(code: str, i: int) -> int:
    """Index just past the statement starting at (or after whitespace from) ``i``."""
    n = len(code)
    i = _skip_ws(code, i)
    if i >= n:
        return n
    if code[i] == "{":
        return _match_close(code, i)
    w = _word_at(code, i)
    if w and w not in _KEYWORDS:  # label?
        j = _skip_ws(code, i + len(w))
        if j < n and code[j] == ":" and not code.startswith("::", j):
            return _statement_end(code, j + 1)
    if w in ("for", "while", "switch", "if"):
        j = _skip_ws(code, i + len(w))
        if j < n and code[j] == "(":
            j = _match_close(code, j)
        end = _statement_end(code, j)
        if w == "if":
            k = _skip_ws(code, end)
            if _word_at(code, k) == "else":
                end = _statement_end(code, k + 4)
        return end
    if w == "do":
        body_end = _statement_end(code, i + 2)
        k = _skip_ws(code, body_end)
        if _word_at(code, k) == "while":
            k = _skip_ws(code, k + 5)
            if k < n and code[k] == "(":
                k = _match_close(code, k)
            k = _skip_ws(code, k)
            if k < n and code[k] == ";":
                k += 1
        return k
    # expression / declaration statement: up to ';' at depth 0
    j = i
    while j < n:
        c = code[j]
        if c in "([{":
            j = _match_close(code, j)
            continue
        if c == ";":
            return j + 1
        if c == "}":
            return j
        j += 1
    return n


@dataclass
class _Loop:
    kind: str          # for / while / do
    start: int         # offset of the keyword
    head: str          # text inside the parentheses (for/while), or do's while(...)
    body: tuple[int, int]
    label: str | None


def _find_loops(code: str) -> list[_Loop]:
    loops: list[_Loop] = []
    do_tails: set[int] = set()
    for m in re.finditer(r"\b(for|while|do)\b", code):
        kw, pos = m.group(1), m.start()
        if pos in do_tails:
            continue
        label = _label_before(code, pos)
        if kw == "do":
            b0 = _skip_ws(code, m.end())
            b1 = _statement_end(code, b0)
            k = _skip_ws(code, b1)
            head = ""
            if _word_at(code, k) == "while":
                do_tails.add(k)
                p = _skip_ws(code, k + 5)
                if p < len(code) and code[p] == "(":
                    head = code[p + 1:_match_close(code, p) - 1]
            loops.append(_Loop("do", pos, head, (b0, b1), label))
            continue
        p = _skip_ws(code, m.end())
        if p >= len(code) or code[p] != "(":
            continue
        q = _match_close(code, p)
        head = code[p + 1:q - 1]
        b0 = _skip_ws(code, q)
        b1 = _statement_end(code, b0)
        loops.append(_Loop(kw, pos, head, (b0, b1), label))
    return loops


def _prev_significant(code: str, j: int) -> int:
    """Index of the last character at or before ``j`` that is neither whitespace nor part
    of a preprocessor (pragma) line; -1 if none."""
    while True:
        while j >= 0 and code[j].isspace():
            j -= 1
        if j < 0:
            return -1
        ls = code.rfind("\n", 0, j + 1) + 1
        if code[ls:j + 1].lstrip().startswith("#"):
            j = ls - 1
            continue
        return j


def _label_before(code: str, pos: int) -> str | None:
    """The label right before offset ``pos`` (skipping whitespace and pragma lines)."""
    j = _prev_significant(code, pos - 1)
    if j < 0 or code[j] != ":" or (j > 0 and code[j - 1] == ":"):
        return None
    k = j - 1
    while k >= 0 and code[k].isspace():
        k -= 1
    e = k + 1
    while k >= 0 and (code[k].isalnum() or code[k] == "_"):
        k -= 1
    name = code[k + 1:e]
    if not name or name[0].isdigit() or name in _KEYWORDS:
        return None
    # `case X:` and `a ? b : c` are not labels: the label must start a statement
    p = _prev_significant(code, k)
    if p >= 0 and code[p] not in ";{}:)" and not code[max(0, p - 3):p + 1] == "else":
        return None
    return name


def _constant_names(code: str, macros: dict) -> set[str]:
    names = {k for k in macros}
    for m in re.finditer(r"\bconstexpr\b[^;=(){}]*?\b([A-Za-z_]\w*)\s*(?:=|\{)", code):
        names.add(m.group(1))
    for m in re.finditer(r"\bconst\s+(?:unsigned\s+|signed\s+)?(?:int|long|short|char|"
                         r"size_t|u?int\d+_t|unsigned)\s+([A-Za-z_]\w*)\s*=\s*"
                         r"([^;,]*)[;,]", code):
        if re.fullmatch(r"[\s\d()+\-*/%<>xXa-fA-FuUlL]*", m.group(2)) and re.search(r"\d", m.group(2)):
            names.add(m.group(1))
    for m in re.finditer(r"\benum\b[^{;]*\{([^}]*)\}", code):
        for e in m.group(1).split(","):
            em = _IDENT.match(e.strip())
            if em:
                names.add(em.group(0))
    for m in re.finditer(r"\btemplate\s*<([^<>]*)>", code):
        for p in m.group(1).split(","):
            pm = re.match(r"\s*(?:int|unsigned|long|short|bool|size_t|u?int\d+_t|char)\s+"
                          r"([A-Za-z_]\w*)", p)
            if pm:
                names.add(pm.group(1))
    return names


def _bound_is_constant(cond: str, loop_vars: set[str], constants: set[str]) -> bool:
    cond = re.sub(r"\bsizeof\s*\([^()]*\)", "0", cond)
    cond = re.sub(r"(?:[A-Za-z_]\w*\s*::\s*)+[A-Za-z_]\w*", "0", cond)  # Cfg::member
    for m in _IDENT.finditer(cond):
        name = m.group(0)
        if name in loop_vars or name in ("true", "false") or name in _KEYWORDS \
                or re.fullmatch(r"u?int\d+_t|size_t|ptrdiff_t", name):
            continue  # casts are not bounds
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or name in constants:
            continue
        return False
    return True


def _line_of(code: str, pos: int) -> int:
    return code.count("\n", 0, pos) + 1


# ------------------------------------------------------------------ functions

@dataclass
class _Function:
    name: str
    file: str
    line: int
    body: tuple[int, int]
    calls: set[str]


def _find_functions(code: str, file: str) -> list[_Function]:
    funcs: list[_Function] = []
    i, n = 0, len(code)
    while i < n:
        j = code.find("{", i)
        if j < 0:
            break
        # header: text since the previous ; { } (at this level)
        k = j - 1
        while k >= 0 and code[k] not in ";{}":
            k -= 1
        header = code[k + 1:j]
        name = _function_name(header)
        if name:
            end = _match_close(code, j)
            body = code[j + 1:end - 1]
            calls = set()
            for cm in re.finditer(r"([A-Za-z_]\w*)\s*(?:<[^<>;(){}]*>\s*)?\(", body):
                cn = cm.group(1)
                before = body[:cm.start()].rstrip()
                if cn in _KEYWORDS or before.endswith((".", "->")):
                    continue
                calls.add(cn)
            hstart = k + 1 + (len(header) - len(header.lstrip()))
            funcs.append(_Function(name, file, _line_of(code, hstart), (j, end), calls))
            i = end
        else:
            i = j + 1
    return funcs


def _function_name(header: str) -> str | None:
    h = header.strip()
    if not h.endswith(")") and not re.search(r"\)\s*(?:const|noexcept|override|final|"
                                                r"->[^(){}]*|\s)*$", h):
        return None
    h = re.sub(r"\btemplate\s*<[^{};]*?>\s*", " ", h)
    # constructor init list: Foo(args) : a(1), b(2)
    depth = 0
    for m in re.finditer(r"[A-Za-z_]\w*(?:\s*::\s*~?[A-Za-z_]\w*)*|[()]", h):
        tok = m.group(0)
        if tok == "(":
            depth += 1
            continue
        if tok == ")":
            depth -= 1
            continue
        if depth != 0:
            continue
        rest = h[m.end():].lstrip()
        if rest.startswith("("):
            last = re.split(r"\s*::\s*", tok)[-1]
            if last in _KEYWORDS or tok in _KEYWORDS:
                if last in ("if", "for", "while", "switch", "catch", "return", "sizeof",
                            "static_assert", "decltype", "alignas", "do", "else", "case"):
                    return None
                continue
            if "=" in h[:m.start()]:
                return None  # an initializer `x = f(...)`
            return last
    return None


def _recursion_issues(funcs: list[_Function]) -> list[LintIssue]:
    issues = []
    by_name: dict[str, list[_Function]] = {}
    for f in funcs:
        by_name.setdefault(f.name, []).append(f)
    graph = {name: set() for name in by_name}
    for f in funcs:
        graph[f.name] |= {c for c in f.calls if c in by_name}
    for f in funcs:
        if f.name in f.calls:
            issues.append(LintIssue(f.file, f.line, "recursion",
                                    f"function '{f.name}' calls itself"))
    # Tarjan SCC for mutual recursion
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    sccs = []
    counter = [0]

    def strong(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(comp)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    for comp in sccs:
        if len(comp) > 1:
            names = sorted(comp)
            for name in names:
                f = by_name[name][0]
                issues.append(LintIssue(f.file, f.line, "recursion",
                                        f"function '{name}' is part of a call cycle: "
                                        f"{' -> '.join(names)}"))
    return issues


# ------------------------------------------------------------------ rules

_ALLOC_CALLS = r"\b(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|alloca|strdup)\s*\("
_STD_TYPES = (r"\bstd\s*::\s*(vector|string|wstring|map|multimap|unordered_map|set|multiset|"
              r"unordered_set|list|forward_list|deque|queue|priority_queue|stack|"
              r"shared_ptr|unique_ptr|weak_ptr|make_shared|make_unique|function|"
              r"basic_string|stringstream|ostringstream|istringstream|any|regex)\b")
_UNSUPPORTED_CALLS = (r"(?<![\w.>:])(printf|fprintf|sprintf|snprintf|vprintf|vfprintf|puts|fputs|"
                      r"putchar|fputc|getchar|scanf|fscanf|sscanf|gets|fgets|exit|_exit|abort|"
                      r"assert|fopen|fclose|fread|fwrite|fseek|ftell|fflush|remove|rename|"
                      r"system|popen|pclose|perror|sleep|usleep|"
                      r"pthread_\w+|rand|srand|getenv|setjmp|longjmp)\s*\(")
_STD_IO = (r"\bstd\s*::\s*(cout|cerr|clog|cin|ifstream|ofstream|fstream|thread|jthread|"
           r"mutex|async|atomic|condition_variable|exit|abort|printf|filesystem|chrono)\b")
_BAD_HEADERS = {
    "vector", "string", "map", "unordered_map", "set", "unordered_set", "list", "deque",
    "forward_list", "queue", "stack", "memory", "functional", "iostream", "fstream",
    "sstream", "thread", "mutex", "future", "atomic", "condition_variable", "regex",
    "filesystem", "chrono", "pthread.h", "unistd.h", "exception", "stdexcept", "any",
    "cassert", "assert.h",
}
_FPTR = re.compile(r"\(\s*(?:[A-Za-z_]\w*\s*::\s*)*\*\s*(?:const\s+)?[A-Za-z_]?\w*\s*\)\s*\(")


def _allowed_rules(original: str) -> dict[int, set[str]]:
    allowed: dict[int, set[str]] = {}
    for no, line in enumerate(original.split("\n"), 1):
        m = re.search(r"hls-lint:\s*allow\(([^)]*)\)", line)
        if m:
            allowed[no] = {r.strip() for r in m.group(1).split(",") if r.strip()}
    return allowed


def _lint_one(text: str, filename: str, macros: dict | None = None):
    """(issues, functions) of one file (recursion across files is checked by the caller)."""
    macros = {} if macros is None else macros
    macros.setdefault("__SYNTHESIS__", 1)
    stripped = strip_comments_and_strings(text)
    code, includes = _preprocess(stripped, macros)
    issues: list[LintIssue] = []

    def add(pos, rule, msg):
        issues.append(LintIssue(filename, _line_of(code, pos), rule, msg))

    for off, hdr in includes:
        base = hdr.strip()
        if base in _BAD_HEADERS:
            add(off, "unsupported-header", f"#include <{base}> is not synthesizable")
    # only C++ text (pragma lines blanked) for the token rules
    cpp = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), code)
    for m in re.finditer(_ALLOC_CALLS, cpp):
        add(m.start(), "dynamic-alloc", f"'{m.group(1)}': dynamic memory management")
    for m in re.finditer(r"\bnew\b", cpp):
        before = cpp[max(0, m.start() - 20):m.start()]
        if re.search(r"operator\s*$", before):
            continue
        add(m.start(), "dynamic-alloc", "'new' allocates memory dynamically")
    for m in re.finditer(r"\bdelete\b", cpp):
        before = cpp[max(0, m.start() - 20):m.start()]
        if re.search(r"(=|operator)\s*$", before):
            continue  # `= delete;` declarations
        add(m.start(), "dynamic-alloc", "'delete' frees dynamic memory")
    for m in re.finditer(_STD_TYPES, cpp):
        add(m.start(), "std-container", f"std::{m.group(1)} uses dynamic memory")
    for m in re.finditer(_UNSUPPORTED_CALLS, cpp):
        name = m.group(1)
        # a declaration `int read(...)` or definition of a same-named function is not a call
        before = cpp[max(0, m.start() - 40):m.start()]
        if re.search(r"\b(?:int|void|char|long|auto|bool|float|double|\w+_t)\s*[*&]*\s*$", before):
            continue
        add(m.start(), "unsupported-call", f"'{name}' is not synthesizable "
            "(guard it with #ifndef __SYNTHESIS__)")
    for m in re.finditer(_STD_IO, cpp):
        add(m.start(), "unsupported-call", f"std::{m.group(1)} is not synthesizable")
    for m in re.finditer(r"\b(throw|try|catch)\b", cpp):
        add(m.start(), "exception", f"'{m.group(1)}': exceptions are not synthesizable")
    for m in _FPTR.finditer(cpp):
        add(m.start(), "function-pointer", "function pointer")

    # loops
    constants = _constant_names(cpp, macros)
    loops = _find_loops(code)
    tripcount_owner: dict[int, bool] = {}
    for pm in re.finditer(r"(?im)^[ \t]*#\s*pragma\s+HLS\s+loop_tripcount\b", code):
        owner = None
        for idx, lp in enumerate(loops):
            if lp.body[0] <= pm.start() < lp.body[1]:
                if owner is None or lp.body[0] >= loops[owner].body[0]:
                    owner = idx
        if owner is not None:
            tripcount_owner[owner] = True
    for idx, lp in enumerate(loops):
        head = lp.head
        where = f"{lp.kind} loop" + (f" '{lp.label}'" if lp.label else "")
        if lp.label is None:
            add(lp.start, "loop-label", f"unlabelled {lp.kind} loop (write 'name: {lp.kind} ...')")
        if lp.kind == "for":
            parts = _split_for_head(head)
            if parts is None:  # range-for
                continue
            init, cond, incr = parts
            if cond.strip() == "" or re.fullmatch(r"\s*(1|true)\s*", cond):
                add(lp.start, "unbounded-loop", f"{where} has no exit condition")
                continue
            loop_vars = set(_loop_vars(init)) | set(_loop_vars_incr(incr))
            if not loop_vars:
                loop_vars = set()
            const = _bound_is_constant(cond, loop_vars, constants)
        else:
            if re.fullmatch(r"\s*(1|true|!\s*0)\s*", head):
                add(lp.start, "unbounded-loop", f"{where} never exits (while ({head.strip()}))")
                continue
            const = False
        if not const and not tripcount_owner.get(idx):
            add(lp.start, "loop-tripcount",
                f"{where}: bound is not a compile-time constant and the body has no "
                "#pragma HLS loop_tripcount")
    funcs = _find_functions(cpp, filename)
    allowed = _allowed_rules(text)
    issues = [i for i in issues if i.rule not in allowed.get(i.line, ())]
    return issues, funcs, allowed


def _split_for_head(head: str):
    depth = 0
    cuts = []
    for i, c in enumerate(head):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth == 0:
            cuts.append(i)
    if len(cuts) != 2:
        return None
    return head[:cuts[0]], head[cuts[0] + 1:cuts[1]], head[cuts[1] + 1:]


def _loop_vars(init: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"([A-Za-z_]\w*)\s*=(?!=)", init)]


def _loop_vars_incr(incr: str) -> list[str]:
    return [m.group(1) for m in re.finditer(
        r"(?:\+\+|--)\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*(?:\+\+|--|[-+*/]?=)", incr)
        if m.group(1)] + [m.group(2) for m in re.finditer(
            r"(?:\+\+|--)\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*(?:\+\+|--|[-+*/]?=)", incr)
            if m.group(2)]


def _check_rules(rules: str) -> None:
    if rules not in RULE_SETS:
        raise ValueError(f"rules must be one of {', '.join(RULE_SETS)}, not {rules!r}")


def lint_source(text: str, filename: str = "<source>", rules: str = "base") -> list[LintIssue]:
    """Lint one C/C++ source text; returns the issues sorted by (file, line).

    ``rules``: ``"base"`` (synthesizability), ``"dae"`` (decoupled access/execute engine
    rules) or ``"all"``.
    """
    _check_rules(rules)
    out: list[LintIssue] = []
    if rules in ("base", "all"):
        issues, funcs, allowed = _lint_one(text, filename)
        out += issues + [i for i in _recursion_issues(funcs)
                         if "recursion" not in allowed.get(i.line, ())]
    if rules in ("dae", "all"):
        from .lint_dae import dae_issues  # lint_dae builds on this module's parser
        out += dae_issues([(filename, text)])
    return sorted(set(out))


def _expand(paths) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir()
                              if q.suffix in (".h", ".hpp", ".hh", ".c", ".cc", ".cpp", ".cxx")))
        else:
            out.append(p)
    return out


def lint_files(paths, rules: str = "base") -> list[LintIssue]:
    """Lint files (directories expand to their C/C++ files) as one program: one shared
    call graph (mutual recursion across the files is found) and, for the ``dae`` rules,
    one set of functions (a top in one file calls processes defined in another).

    ``rules``: ``"base"``, ``"dae"`` or ``"all"`` (see :func:`lint_source`).
    """
    _check_rules(rules)
    issues: list[LintIssue] = []
    funcs: list[_Function] = []
    allowed_by_file = {}
    texts = []
    for p in _expand(paths):
        text = p.read_text(encoding="utf-8", errors="replace")
        texts.append((str(p), text))
        if rules in ("base", "all"):
            iss, fs, allowed = _lint_one(text, str(p))
            issues += iss
            funcs += fs
            allowed_by_file[str(p)] = allowed
    for i in _recursion_issues(funcs):
        if "recursion" not in allowed_by_file.get(i.file, {}).get(i.line, ()):
            issues.append(i)
    if rules in ("dae", "all"):
        from .lint_dae import dae_issues
        issues += dae_issues(texts)
    return sorted(set(issues))


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m zynq_squeeze.hls.lint PATH...``; exit status 1 when issues are found."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rules = "base"
    if len(argv) >= 2 and argv[0] == "--rules" and argv[1] in RULE_SETS:
        rules, argv = argv[1], argv[2:]
    elif argv and argv[0].startswith("--rules=") and argv[0][8:] in RULE_SETS:
        rules, argv = argv[0][8:], argv[1:]
    if not argv or argv[0].startswith("--"):
        print("usage: python -m zynq_squeeze.hls.lint [--rules base|dae|all] FILE_OR_DIR...",
              file=sys.stderr)
        return 2
    issues = lint_files(argv, rules=rules)
    for i in issues:
        print(i)
    print(f"{len(issues)} issue(s)", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
