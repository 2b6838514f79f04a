"""Tests of the HLS synthesizability lint (zynq_squeeze.hls.lint)."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from zynq_squeeze import native
from zynq_squeeze.hls import lint as hls_lint
from zynq_squeeze.hls.lint import lint_files, lint_source
from zynq_squeeze.hls.lint_dae import DAE_RULES


def rules(src: str) -> list[str]:
    return [i.rule for i in lint_source(textwrap.dedent(src), "t.cpp")]


def wrap(body: str) -> str:
    """A labelled, constant-bound function around ``body``."""
    return "void f(int *a) {\n" + textwrap.dedent(body) + "\n}\n"


CLEAN = """
#include <stdint.h>
#include <string.h>
template <class CFG>
void k(const int8_t *in, int n, int32_t *acc) {
row:
  for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 64
  lane:
    for (int u = 0; u < CFG::pe; u++) {
#pragma HLS UNROLL
      acc[u] += in[i * CFG::pe + u];
    }
  fixed:
    for (int j = 0; j < 16; j++) acc[j] = 0;
  }
}
"""


def test_clean_source_has_no_issues():
    assert lint_source(CLEAN, "clean.cpp") == []


# ---------------------------------------------------------------- dynamic allocation

@pytest.mark.parametrize("stmt", ["int *p = (int *)malloc(4);", "free(a);",
                                  "a = (int *)realloc(a, 8);", "int *q = (int*)calloc(2, 4);",
                                  "int *p = new int[4];", "delete[] a;"])
def test_dynamic_allocation_flagged(stmt):
    assert "dynamic-alloc" in rules(wrap(stmt))


def test_allocation_words_in_comments_strings_and_deleted_members_are_ok():
    src = """
    struct S { S(const S &) = delete; };
    /* malloc(4) new int */ // free(p)
    const char *msg = "call malloc(8) then delete";
    int renewed(int x) { return x; }
    """
    assert rules(src) == []


@pytest.mark.parametrize("decl", ["std::vector<int> v;", "std::string s;",
                                  "std::map<int, int> m;", "std::unique_ptr<int> p;"])
def test_std_containers_flagged(decl):
    assert "std-container" in rules(wrap(decl))


def test_unsupported_headers_flagged():
    assert rules("#include <vector>\n#include <iostream>\n") == ["unsupported-header"] * 2
    assert rules("#include <stdint.h>\n#include <string.h>\n#include <cstring>\n") == []


# ---------------------------------------------------------------- recursion

def test_direct_recursion_flagged():
    src = "int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }\n"
    issues = lint_source(src, "r.cpp")
    assert [i.rule for i in issues] == ["recursion"]
    assert "fact" in issues[0].message and issues[0].line == 1


def test_mutual_recursion_flagged_within_and_across_files(tmp_path):
    src = "int odd(int n);\nint even(int n) { return n == 0 ? 1 : odd(n - 1); }\n" \
          "int odd(int n) { return n == 0 ? 0 : even(n - 1); }\n"
    assert rules(src) == ["recursion", "recursion"]
    (tmp_path / "a.cpp").write_text("int pong(int);\nint ping(int n) { return pong(n); }\n")
    (tmp_path / "b.cpp").write_text("int ping(int);\nint pong(int n) { return ping(n); }\n")
    issues = lint_files([tmp_path])
    assert sorted((i.file.split("/")[-1], i.rule) for i in issues) == [
        ("a.cpp", "recursion"), ("b.cpp", "recursion")]


def test_no_recursion_for_method_calls_or_plain_call_chains():
    src = """
    struct B { int size() { return 1; } };
    int size(B &b) { return b.size(); }
    int g(int x) { return x + 1; }
    int h(int x) { return g(x) + g(x); }
    """
    assert rules(src) == []


# ---------------------------------------------------------------- loops

@pytest.mark.parametrize("loop", ["l: while (1) { a[0]++; }", "l: while (true) { a[0]++; }",
                                  "l: for (;;) { a[0]++; }", "l: do { a[0]++; } while (1);"])
def test_unbounded_loops_flagged(loop):
    assert "unbounded-loop" in rules(wrap(loop))


def test_unlabelled_loops_flagged():
    assert rules(wrap("for (int i = 0; i < 4; i++) a[i] = 0;")) == ["loop-label"]
    assert rules(wrap("int i = 0;\nwhile (i < 4) {\n#pragma HLS loop_tripcount max = 4\n"
                      "i++; }")) == ["loop-label"]
    # label + pragma line between label and loop, stacked inside a braced body
    assert rules(wrap("outer:\n#pragma HLS unroll\nfor (int i = 0; i < 4; i++) {\n"
                      "inner: for (int j = 0; j < 2; j++) a[i] += j; }")) == []


def test_ternary_and_case_are_not_labels():
    src = wrap("""
    int n = a[0];
    switch (n) {
    case 1:
      for (int i = 0; i < 4; i++) a[i] = 0;
      break;
    default:
      break;
    }
    """)
    assert rules(src) == ["loop-label"]
    src2 = wrap("int x = a[0] ? 1 : 2;\nfor (int i = 0; i < 4; i++) a[i] = x;")
    assert rules(src2) == ["loop-label"]


def test_variable_bound_needs_tripcount():
    src = wrap("""
    int n = a[0];
    lp:
      for (int i = 0; i < n; i++) a[i] = 0;
    """)
    assert rules(src) == ["loop-tripcount"]
    ok = wrap("""
    int n = a[0];
    lp:
      for (int i = 0; i < n; i++) {
    #pragma HLS loop_tripcount min = 1 max = 16
        a[i] = 0;
      }
    """)
    assert rules(ok) == []


def test_tripcount_of_a_nested_loop_does_not_count_for_the_outer_loop():
    src = wrap("""
    int n = a[0];
    outer:
      for (int i = 0; i < n; i++) {
      inner:
        for (int j = 0; j < n; j++) {
    #pragma HLS loop_tripcount max = 8
          a[j] = i;
        }
      }
    """)
    issues = lint_source(src, "t.cpp")
    assert [(i.rule, "outer" in i.message) for i in issues] == [("loop-tripcount", True)]


@pytest.mark.parametrize("cond", ["i < 16", "i < N_MAX", "i < CFG::depth", "i < K * 2",
                                  "i < (int)sizeof(int)", "i < kLen"])
def test_constant_bounds_need_no_tripcount(cond):
    src = ("#define N_MAX 8\nconstexpr int kLen = 4;\nstruct CFG { static constexpr int "
           "depth = 4; };\nconst int K = 3;\n"
           + wrap(f"lp: for (int i = 0; i < 1; i++) {{}}\nlq: for (int i = 0; {cond}; i++) a[i] = 0;"))
    assert rules(src) == []


def test_while_with_variable_condition_needs_tripcount():
    src = wrap("int i = 0;\nw: while (i < a[0]) i++;")
    assert rules(src) == ["loop-tripcount"]


# ---------------------------------------------------------------- library calls

@pytest.mark.parametrize("stmt", ['printf("%d", 1);', 'fprintf(stderr, "x");', 'puts("x");',
                                  "exit(1);", "abort();", "assert(a);", 'fopen("f", "r");',
                                  'system("ls");', "std::cout << 1;"])
def test_unsupported_calls_flagged(stmt):
    assert "unsupported-call" in rules(wrap(stmt))


def test_static_assert_and_memcpy_are_fine():
    src = wrap("static_assert(sizeof(int) == 4, \"int\");\nmemcpy(a, a + 4, 4);\n"
               "memset(a, 0, 4);")
    assert rules(src) == []


@pytest.mark.parametrize("stmt", ["throw 1;", "try { a[0] = 1; } catch (...) { a[0] = 2; }"])
def test_exceptions_flagged(stmt):
    assert "exception" in rules(wrap(stmt))


@pytest.mark.parametrize("decl", ["int (*fp)(int) = 0;", "typedef void (*cb_t)(int);",
                                  "a[0] = (*fp)(3);"])
def test_function_pointers_flagged(decl):
    assert "function-pointer" in rules(wrap(decl))


def test_pointer_to_array_is_not_a_function_pointer():
    assert rules(wrap("int8_t (*buf)[64] = 0;\nint x = sizeof(*a);")) == []


# ---------------------------------------------------------------- preprocessor

def test_simulation_only_sections_are_ignored():
    src = """
    #include <stdio.h>
    #ifndef __SYNTHESIS__
    #include <vector>
    static void dump(const int *a) { printf("%d\\n", a[0]); std::vector<int> v; }
    #endif
    #ifdef __SYNTHESIS__
    void k(int *a) { a[0] = 1; }
    #else
    void k(int *a) { for (;;) a[0] = (int)(long)malloc(4); }
    #endif
    #if !defined(__SYNTHESIS__) && defined(DEBUG)
    void dbg() { puts("x"); }
    #endif
    """
    assert rules(src) == []


def test_derived_macros_select_the_synthesis_branch():
    src = """
    #ifndef K_H
    #define K_H
    #if defined(__SYNTHESIS__) || defined(USE_HW)
    #define HW 1
    #else
    #define HW 0
    #endif
    #if !HW
    void host(int *a, int n) { for (int i = 0; i < n; i++) a[i] = 0; }
    #endif
    #if HW
    void hw(int *a) { l: for (int i = 0; i < 4; i++) a[i] = 0; }
    #endif
    #endif
    """
    assert rules(src) == []


def test_unknown_conditions_keep_both_branches():
    src = "#ifdef SOMETHING\nvoid a() { puts(\"a\"); }\n#else\nvoid b() { exit(1); }\n#endif\n"
    assert sorted(rules(src)) == ["unsupported-call", "unsupported-call"]


def test_line_numbers_survive_comments_and_strings():
    src = '/* a\n * b\n */\nconst char *s = "x\\"y";\n// c\nvoid f(int *a) {\n  free(a);\n}\n'
    issues = lint_source(src, "l.cpp")
    assert [(i.line, i.rule) for i in issues] == [(7, "dynamic-alloc")]
    assert str(issues[0]).startswith("l.cpp:7: [dynamic-alloc]")


def test_allow_comment_suppresses_one_rule_on_its_line():
    src = wrap("for (int i = 0; i < 4; i++) a[i] = 0;  // hls-lint: allow(loop-label)")
    assert rules(src) == []


def test_cli_exit_status(tmp_path, capsys):
    good = tmp_path / "good.cpp"
    good.write_text(CLEAN)
    bad = tmp_path / "bad.cpp"
    bad.write_text(wrap("free(a);"))
    assert hls_lint.main([str(good)]) == 0
    assert hls_lint.main([str(tmp_path)]) == 1
    assert "bad.cpp:2: [dynamic-alloc]" in capsys.readouterr().out


# ---------------------------------------------------------------- the real engine

def check_engine_issues(issues):
    """The engine sources are lint-clean: any issue fails."""
    assert issues == [], "HLS lint issues:\n" + "\n".join(str(i) for i in issues)


def test_engine_sources_pass_the_lint():
    """Every rule, the decoupled-engine ones included, holds on the engine's sources."""
    src = native.src_dir()
    files = sorted(list(src.glob("*.cpp")) + list(src.glob("*.h")))
    assert any(f.name == "zsq_dae_top.cpp" for f in files)
    check_engine_issues(lint_files(files))
    assert lint_files(files, rules="all") == []


# ---------------------------------------------------------------- DAE engine rules

FIXTURES = Path(__file__).parent / "fixtures" / "hls_lint"
VIOLATIONS = sorted(p for p in FIXTURES.glob("*.cpp") if p.name != "dae_clean.cpp")


def expected(path: Path) -> list[tuple[int, str]]:
    """(line, rule) pairs declared by ``// expect: rule[, rule]`` comments of a fixture."""
    out = []
    for no, line in enumerate(path.read_text().split("\n"), 1):
        m = re.search(r"//\s*expect:\s*(.*)$", line)
        if m:
            out += [(no, r.strip()) for r in m.group(1).split(",")]
    return sorted(out)


def test_clean_dae_design_passes_every_rule():
    clean = FIXTURES / "dae_clean.cpp"
    issues = lint_files([clean], rules="all")
    assert issues == [], "\n".join(map(str, issues))
    assert lint_source(clean.read_text(), "dae_clean.cpp", rules="all") == []


@pytest.mark.parametrize("path", VIOLATIONS, ids=lambda p: p.stem)
def test_each_violation_is_flagged_with_its_rule_and_line(path):
    want = expected(path)
    assert want, f"{path.name} declares no expected issue"
    got = sorted((i.line, i.rule) for i in lint_files([path], rules="dae"))
    assert got == want, "\n".join(map(str, lint_files([path], rules="dae")))


def test_corpus_covers_every_dae_rule():
    seen = {rule for p in VIOLATIONS for _, rule in expected(p)}
    assert seen == set(DAE_RULES)


def test_dae_rules_are_off_by_default_and_base_rules_off_in_dae():
    src = (FIXTURES / "pl_divmod.cpp").read_text()
    assert lint_source(src, "d.cpp") == []
    assert [i.rule for i in lint_source(wrap("free(a);"), "t.cpp", rules="dae")] == []
    with pytest.raises(ValueError, match="rules must be one of base, dae, all"):
        lint_source(src, "d.cpp", rules="dea")


def _mutate(old: str, new: str, count: int = 1) -> str:
    text = (FIXTURES / "dae_clean.cpp").read_text()
    assert text.count(old) == count, old
    return text.replace(old, new)


def _line(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_unsplit_buffer_without_unsync_is_flagged_in_the_clean_design():
    part = "#pragma HLS ARRAY_PARTITION variable = in_buf complete dim = 1\n"
    # split halves alone are legal; unsync alone is legal; neither is not
    assert lint_source(_mutate(part, ""), "m.cpp", rules="dae") == []
    text = _mutate(part + "#pragma HLS stream variable = in_buf type = unsync\n", "")
    issues = lint_source(text, "m.cpp", rules="dae")
    assert [(i.line, i.rule) for i in issues] == [
        (_line(text, "static word_t in_buf"), "dataflow-buffer")]
    assert "'fetch'" not in issues[0].message and "'load', 'compute'" in issues[0].message


def test_second_writer_of_a_buffer_half_is_flagged_in_the_clean_design():
    # compute writing the input half it reads makes two writers of in_buf[0] and in_buf[1]
    text = _mutate("ex2st.write(true);\n  }\n}",
                   "ex2st.write(true);\n    if (half) in1[0] = 0; else in0[0] = 0;\n  }\n}")
    text = text.replace("void compute(hls::stream<word_t> &ex_q, const word_t in0[cfg::buf_words],\n"
                        "             const word_t in1[cfg::buf_words]",
                        "void compute(hls::stream<word_t> &ex_q, word_t in0[cfg::buf_words],\n"
                        "             word_t in1[cfg::buf_words]")
    issues = lint_source(text, "m.cpp", rules="dae")
    assert sorted(i.message.split("'")[1] for i in issues) == ["in_buf[0]", "in_buf[1]"]
    assert {i.rule for i in issues} == {"dataflow-buffer"}


def test_token_read_by_the_wrong_process_is_flagged_in_the_clean_design():
    # store reads ld2ex as well: two consumers of one token stream
    text = _mutate("    ex2st.read();\n  store_word:", "    ex2st.read();\n    ld2ex.read();\n"
                   "  store_word:")
    text = text.replace("hls::stream<bool> &ex2st,\n           hls::stream<bool> &st2ex)",
                        "hls::stream<bool> &ex2st,\n           hls::stream<bool> &st2ex, "
                        "hls::stream<bool> &ld2ex)")
    text = text.replace("store(st_q, out_buf[0], out_buf[1], dst, ex2st, st2ex);",
                        "store(st_q, out_buf[0], out_buf[1], dst, ex2st, st2ex, ld2ex);")
    issues = lint_source(text, "m.cpp", rules="dae")
    assert [(i.rule, i.line) for i in issues] == [("dataflow-stream",
                                                   _line(text, 'hls::stream<bool> ld2ex("ld2ex")'))]
    assert "consumers ['compute', 'store']" in issues[0].message


def test_helper_called_inside_a_pipeline_must_be_inlined():
    text = _mutate("    const word_t x = a[i];", "    const word_t x = a[i] + pick(i);")
    text = text.replace("// zsq: mac-array", "static word_t pick(int i) { return i; }\n\n"
                        "// zsq: mac-array")
    issues = lint_source(text, "m.cpp", rules="dae")
    assert [(i.rule, i.line) for i in issues] == [("pipeline-call", _line(text, "a[i] + pick(i)"))]
    inl = text.replace("{ return i; }", "{\n#pragma HLS INLINE\n  return i;\n}")
    assert lint_source(inl, "m.cpp", rules="dae") == []


def test_template_divisor_resolved_from_call_sites():
    text = _mutate("mac_array<cfg::lanes>(", "mac_array<6>(")
    issues = lint_source(text, "m.cpp", rules="dae")
    assert [(i.rule, i.line) for i in issues] == [
        ("pipeline-divmod", _line(text, "(i / LANES) % 2"))]


def test_allow_comment_applies_to_dae_rules():
    src = (FIXTURES / "pl_call.cpp").read_text().replace(
        "// expect: pipeline-call", "// hls-lint: allow(pipeline-call)")
    assert lint_source(src, "a.cpp", rules="dae") == []


def test_cli_rules_flag(capsys):
    path = str(FIXTURES / "pl_loop.cpp")
    assert hls_lint.main([path]) == 0
    assert hls_lint.main(["--rules", "dae", path]) == 1
    assert "pl_loop.cpp:13: [pipeline-loop]" in capsys.readouterr().out
    assert hls_lint.main(["--rules=all", str(FIXTURES / "dae_clean.cpp")]) == 0


def test_bypass_buffer_is_held_to_the_buffer_rule(tmp_path):
    """bp_buf (residual add, load -> compute) is a DATAFLOW buffer like in_buf: without
    its split halves and its unsync pragma, the engine's own source is flagged."""
    src = native.src_dir()
    for f in list(src.glob("*.cpp")) + list(src.glob("*.h")):
        (tmp_path / f.name).write_text(f.read_text())
    top = tmp_path / "zsq_dae_top.cpp"
    text = top.read_text()
    for pragma in ("#pragma HLS ARRAY_PARTITION variable = bp_buf complete dim = 1\n",
                   "#pragma HLS STREAM variable = bp_buf type = unsync\n"):
        assert text.count(pragma) == 1
        text = text.replace(pragma, "")
    top.write_text(text)
    files = sorted(list(tmp_path.glob("*.cpp")) + list(tmp_path.glob("*.h")))
    issues = [i for i in lint_files(files, rules="dae") if i.rule == "dataflow-buffer"]
    assert len(issues) == 1 and "bp_buf" in issues[0].message, issues


def test_standalone_pool_source_select_must_stay_inline(tmp_path):
    """The POOL source word (cv_buf or in_buf[POOL_IN_HALF], issue 11 item 4) is chosen by
    an INLINE helper inside the II=1 pl_win loop: the same source with the pragma dropped
    is flagged (a sub-function call there would cost the pipeline its II)."""
    src = native.src_dir()
    text = (src / "zsq_dae.h").read_text()
    head = "static inline zsqd_word zsqd_pool_src("
    start = text.index(head)
    body = text.index("#pragma HLS INLINE\n", start)
    assert body - start < 400, "zsqd_pool_src lost its INLINE pragma"
    bad = text[:body] + text[body + len("#pragma HLS INLINE\n"):]
    for f in src.glob("*"):
        if f.suffix in (".cpp", ".h"):
            (tmp_path / f.name).write_text(bad if f.name == "zsq_dae.h" else f.read_text())
    issues = [i for i in lint_files(sorted(tmp_path.glob("*.[ch]*")), rules="dae")
              if i.rule == "pipeline-call"]
    assert issues and all("zsqd_pool_src" in i.message for i in issues), issues
