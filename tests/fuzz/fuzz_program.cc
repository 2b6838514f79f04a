// fuzz_program.cc - libFuzzer target for the runtime's program validator
// (hls_runtime/zsq_runtime.c zsq_rt_validate) and the engine's C simulation
// (src/zsq_dae_sim.cpp zsqd_run, reached through zsq_rt_run and the csim backend).
//
// Input format (little endian), so that a real compiled program is a seed
// (benchmarks/fuzz_program.py writes them):
//
//   offset  size  field
//   0       4     magic "ZSQF"  (anything else: the input is ignored)
//   4       4     u32 arena_words      (<= kMaxArena; the zeroed arena has exactly this size)
//   8       4     u32 n_insn           (<= kMaxInsn, and the words must be present)
//   12      4     i32 rd_latency       \
//   16      4     i32 wr_latency        | HP-port timing (signed: bad values are
//   20      4     i32 outstanding       | for the validator to reject)
//   24      4     i32 beat_x100        /
//   28      4     u32 flags            bit 0: also run zsqd_run directly when the
//                                      runtime's validator rejects the program
//                                      bit 1: repair derived registers (below)
//   32      8*n   instruction words
//   ...     8*m   weight words: every remaining whole word (m may be 0)
//
// Each region is copied into its own heap block of exactly its size, so ASan sees a
// read or write one word past the instructions, the weights or the arena. The target
// checks what the API promises: no memory error, no undefined behaviour, a NUL-terminated
// message, zsq_rt_run returns the validator's code when it rejects, and every failure is
// a documented code. zsqd_run promises the same safety on its own (it checks every
// instruction's footprint before executing it), which flag bit 0 exercises.
//
// Flag bit 1 makes mutated operands reach the engine: a random change of a SET value
// almost always breaks a derived register (a product the compiler emits, e.g. a stride,
// src/zsq_isa_derived.h) and the validator stops there. With the bit, before every
// instruction whose derived registers do not hold their products the target inserts the
// SET words the compiler would have emitted (values that fit in 32 bits), so the program
// is consistent and its geometry is what the checks and the engine see.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "zsq_dae_sim.h"
#include "zsq_isa.h"
#include "zsq_isa_derived.h"
#include "zsq_runtime.h"

namespace {

constexpr uint32_t kMaxArena = 1u << 20;  // words: 8 MiB, a run stays fast
constexpr uint32_t kMaxInsn = 4096;
constexpr size_t kHeader = 32;

uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// documented: the codes zsq_rt_strerror describes
bool known_code(int rc) { return strcmp(zsq_rt_strerror(rc), zsq_rt_strerror(1)) != 0; }

[[noreturn]] void die(const char *what, int rc, const char *msg) {
  fprintf(stderr, "fuzz_program: %s (rc %d): %s\n", what, rc, msg);
  abort();
}

void check_msg(const char *err, size_t len, int rc) {
  if (memchr(err, 0, len) == nullptr) die("message not NUL-terminated", rc, "");
  if (!known_code(rc)) die("undocumented return code", rc, err);
  if (rc != 0 && err[0] == 0) die("failure without a message", rc, err);
}

int route(uint64_t w) {
  const int op = (int)(w & 15u);
  if (op == ZSQ_OP_SET) return (int)((w >> 22) & 3u);
  if (op == ZSQ_OP_LOAD_INPUT || op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS) return 0;
  if (op == ZSQ_OP_CONV || op == ZSQ_OP_REQUANT || op == ZSQ_OP_POOL) return 1;
  if (op == ZSQ_OP_STORE) return 2;
  return -1;  // FINISH or not an opcode
}

uint64_t set_word(int id, int32_t v) {
  return (uint64_t)(uint32_t)v << 32 | (uint64_t)(id & 0xFF) << 16 | ZSQ_OP_SET;
}

// zsq_isa_derived() multiplies up to six registers in int64: callers bound the operands
// first (the validators do since the fix of the defect reproduced by
// tests/fuzz/crashes/derived-overflow-*). repair() works on unbounded registers, so it
// evaluates the same formulas with overflow checks and leaves such instructions alone.
struct Checked {
  bool bad = false;
  int64_t mul(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) bad = true;
    return bad ? 0 : r;
  }
  int64_t add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) bad = true;
    return bad ? 0 : r;
  }
  int64_t sub(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) bad = true;
    return bad ? 0 : r;
  }
};

// Whether zsq_isa_derived(op, r) overflows int64 (the same formulas, checked).
bool derived_overflows(int op, const int32_t *r) {
  Checked c;
  auto R = [r](int id) -> int64_t { return r[id & 63]; };
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int64_t g = R(ZSQ_LI_G), w = R(ZSQ_LI_W), x0 = R(ZSQ_LI_X0), cols = R(ZSQ_LI_COLS);
    const int64_t ng = R(ZSQ_LI_NG);
    int64_t cl = x0 < 0 ? -x0 : 0, cr = x0 + cols > w ? w - x0 : cols;
    if (cl > cols) cl = cols;
    if (cr < cl) cr = cl;
    c.add(c.add(R(ZSQ_LI_BASE), c.mul(c.add(c.add(c.mul(R(ZSQ_LI_Y0), w), x0), cl), g)), R(ZSQ_LI_G0));
    c.mul(w, g), c.mul(cols, ng), c.mul(cols, R(ZSQ_LI_PITCH)), c.mul(cl, ng);
    c.mul(c.sub(cr, cl), ng), c.mul(c.sub(cols, cr), ng);
  } else if (op == ZSQ_OP_CONV) {
    const int64_t sp = R(ZSQ_CV_SRC_PITCH), sc = R(ZSQ_CV_SRC_COLS);
    const int64_t red = c.mul(c.mul(R(ZSQ_CV_KH), R(ZSQ_CV_KW)), R(ZSQ_CV_NG));
    c.mul(c.mul(c.mul(R(ZSQ_CV_ROWS), R(ZSQ_CV_COLS)), R(ZSQ_CV_OG)), red);
    c.mul(c.add(c.mul(R(ZSQ_CV_SRC_Y0), sc), R(ZSQ_CV_SRC_X0)), sp);
    c.mul(c.sub(sc, R(ZSQ_CV_KW)), sp), c.mul(R(ZSQ_CV_SX), sp), c.mul(c.mul(R(ZSQ_CV_SY), sc), sp);
  } else if (op == ZSQ_OP_REQUANT) {
    c.mul(c.mul(R(ZSQ_RQ_ROWS), R(ZSQ_RQ_COLS)), R(ZSQ_RQ_OG));
  } else if (op == ZSQ_OP_POOL) {
    const int64_t og = R(ZSQ_PL_OG), sc = R(ZSQ_PL_SRC_COLS);
    const int64_t win = c.mul(R(ZSQ_PL_KH), R(ZSQ_PL_KW));
    c.mul(c.mul(c.mul(R(ZSQ_PL_ROWS), R(ZSQ_PL_COLS)), og), win);
    c.mul(c.add(c.mul(R(ZSQ_PL_Y0), sc), R(ZSQ_PL_X0)), og);
    c.mul(c.sub(sc, R(ZSQ_PL_KW)), og), c.mul(R(ZSQ_PL_SX), og), c.mul(c.mul(R(ZSQ_PL_SY), sc), og);
  } else if (op == ZSQ_OP_STORE) {
    const int64_t g = R(ZSQ_ST_G), w = R(ZSQ_ST_W);
    c.add(c.add(R(ZSQ_ST_BASE), c.mul(c.add(c.mul(R(ZSQ_ST_Y0), w), R(ZSQ_ST_X0)), g)), R(ZSQ_ST_G0));
    c.mul(w, g), c.mul(R(ZSQ_ST_COLS), R(ZSQ_ST_NG)), c.mul(R(ZSQ_ST_COLS), R(ZSQ_ST_PITCH));
  }
  return c.bad;
}

// The program with the SET words of mismatching derived registers inserted (flag bit 1).
std::vector<uint64_t> repair(const std::vector<uint64_t> &in) {
  std::vector<uint64_t> out;
  out.reserve(in.size() * 2);
  int32_t regs[3][64];
  memset(regs, 0, sizeof regs);
  for (uint64_t w : in) {
    const int m = route(w), op = (int)(w & 15u);
    if (m >= 0 && m < 3 && op != ZSQ_OP_SET && !derived_overflows(op, regs[m])) {
      int ids[7];
      int64_t vals[7];
      const int n = zsq_isa_derived(op, regs[m], ids, vals);
      for (int i = 0; i < n; i++) {
        if (regs[m][ids[i] & 63] == vals[i] || vals[i] < INT32_MIN || vals[i] > INT32_MAX) continue;
        regs[m][ids[i] & 63] = (int32_t)vals[i];
        out.push_back(set_word(ids[i], (int32_t)vals[i]));
      }
    }
    if (op == ZSQ_OP_SET && m < 3) regs[m][((w >> 16) & 0xFFu) & 63] = (int32_t)(uint32_t)(w >> 32);
    out.push_back(w);
  }
  return out;
}

// ZSQ_FUZZ_VERBOSE=1: print each input's codes (to check that the seeds run)
bool verbose() {
  static const bool v = getenv("ZSQ_FUZZ_VERBOSE") != nullptr;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < kHeader || memcmp(data, "ZSQF", 4) != 0) return 0;
  const uint32_t arena_words = rd32(data + 4), n_insn = rd32(data + 8);
  const int32_t rd = (int32_t)rd32(data + 12), wr = (int32_t)rd32(data + 16);
  const int32_t outst = (int32_t)rd32(data + 20), beat = (int32_t)rd32(data + 24);
  const uint32_t flags = rd32(data + 28);
  if (arena_words > kMaxArena || n_insn > kMaxInsn) return -1;  // not added to the corpus
  if ((size - kHeader) / 8 < n_insn) return -1;
  const size_t n_wgt = (size - kHeader) / 8 - n_insn;

  // exact-size blocks (at least one word, so the pointers are never null)
  std::vector<uint64_t> insn(n_insn ? n_insn : 1), wgt(n_wgt ? n_wgt : 1);
  if (n_insn) memcpy(insn.data(), data + kHeader, 8 * (size_t)n_insn);
  if ((flags & 2u) && n_insn) {
    const std::vector<uint64_t> r = repair(insn);
    insn = std::vector<uint64_t>(r.begin(), r.end());  // exact size, as ASan must see it
  }
  if (n_wgt) memcpy(wgt.data(), data + kHeader + 8 * (size_t)n_insn, 8 * n_wgt);

  zsq_rt_program_t p;
  p.insn = insn.data();
  p.n_insn = n_insn ? (int64_t)insn.size() : 0;
  p.wgt = wgt.data();
  p.wgt_words = (int64_t)n_wgt;
  p.arena_words = arena_words;
  p.rd_latency = rd;
  p.wr_latency = wr;
  p.outstanding = outst;
  p.beat_x100 = beat;

  char err[512];
  memset(err, 'x', sizeof err);
  const int v = zsq_rt_validate(&p, err, sizeof err);
  check_msg(err, sizeof err, v);

  std::vector<uint64_t> arena(arena_words ? arena_words : 1, 0);
  if (v == ZSQ_RT_OK) {
    zsq_rt_stats_t st;
    memset(err, 'x', sizeof err);
    const int rc = zsq_rt_run(&p, arena.data(), &st, err, sizeof err);
    check_msg(err, sizeof err, rc);
    if (verbose()) fprintf(stderr, "fuzz_program: valid, run %d %s\n", rc, err);
    if (rc == ZSQ_RT_OK && (st.cycles < 1 || st.macs < 0 || st.rd_bytes < 0 || st.wr_bytes < 0))
      die("implausible stats of a successful run", rc, err);
  } else {
    // a rejected program is rejected by zsq_rt_run too, with the same code
    memset(err, 'x', sizeof err);
    const int rc = zsq_rt_run(&p, arena.data(), nullptr, err, sizeof err);
    check_msg(err, sizeof err, rc);
    if (rc != v) die("zsq_rt_run and zsq_rt_validate disagree", rc, err);
    if (verbose()) fprintf(stderr, "fuzz_program: rejected %d %s\n", rc, err);
    if ((flags & 1u) && n_insn > 0 && n_wgt > 0 && arena_words > 0) {
      // the simulation's own checks: an error code, never an out-of-bounds access
      zsqd_timing_t t = {rd, wr, outst, beat};
      zsqd_stats_t s;
      memset(err, 'x', sizeof err);
      const int rs = zsqd_run(insn.data(), p.n_insn, wgt.data(), (int64_t)n_wgt, arena.data(),
                              arena_words, &t, nullptr, &s, err, (int)sizeof err);
      if (memchr(err, 0, sizeof err) == nullptr) die("zsqd_run message not NUL-terminated", rs, "");
      if (rs > 0 || rs < -8) die("zsqd_run returned an undocumented code", rs, err);
      if (verbose()) fprintf(stderr, "fuzz_program: zsqd_run %d %s\n", rs, err);
    }
  }
  return 0;
}
