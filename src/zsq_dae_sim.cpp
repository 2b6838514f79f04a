/*
 * zsq_dae_sim.cpp - the decoupled engine in simulation: executes the modules'
 * instruction streams in dependency order and times them (never synthesized).
 *
 * A small discrete-event simulation of the DATAFLOW region (docs/ENGINE.md, "Timing
 * by execution"): fetch routes one word per cycle into the command queues and stalls
 * while a queue is full; load, compute and store each execute their queue in order, an
 * instruction starting when its module is free, the word has arrived and the tokens it
 * pops have been pushed; it lasts what its executed loops and AXI transfers cost
 * (zsq_dae.h charges them while the functions run). Before executing, every instruction's
 * footprint is checked against the buffers and the DDR regions it touches, so a bad
 * program returns an error code instead of reading or writing out of bounds.
 */
#ifndef __SYNTHESIS__

#include <stdio.h>
#include <string.h>

#include <mutex>
#include <vector>

#include "zsq_dae.h"
#include "zsq_dae_sim.h"
#include "zsq_isa_derived.h"

typedef zsqd_cfg C;

thread_local zsqd_charge zsqd_now;

namespace {

struct Buffers {
  zsqd_word in_buf[2][C::K][C::IN_ROWS];
  zsqd_word w_buf[2][C::PE_OC][C::W_ROWS];
  zsqd_word p_buf[2][C::PE_OC][C::P_ROWS];
  ap_int<32> acc[C::ACC_ROWS][C::PE_OC];
  zsqd_word cv_buf[C::K][C::CV_ROWS];
  zsqd_word sq_buf[C::K][C::SQ_ROWS];
  zsqd_word out_buf[2][C::K][C::OUT_ROWS];
  zsqd_word bp_buf[2][C::K][C::BP_ROWS]; /* residual add */
};

/* One engine instance's on-chip state; runs are serialised (one engine, one caller). */
Buffers g_buf;
std::mutex g_lock;

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Cost of the instruction just executed: what its loops and burst regions charged
 * (zsq_dae.h zsqd_charge_runs: the HP-port model, docs/ENGINE.md). */
int64_t charge_cost() { return zsqd_now.cycles; }

struct Err {
  char *msg;
  int len;
  int fail(int code, long idx, const char *what) {
    if (msg && len > 0) snprintf(msg, len, "instruction %ld: %s", idx, what);
    return code;
  }
};

int field_ok(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* Field bounds (the runtime's and the lowering's, schedule/instructions.py REG_RANGES;
 * zsq_isa.h ZSQ_LIMIT_* from partitioning/limits.py):
 * each field is bounded before anything multiplies it, so no product below or in
 * zsq_isa_derived (up to six factors) overflows int64 whatever 32-bit values a program
 * holds; the derived registers are compared only then. */
const int64_t DIM = ZSQ_LIMIT_SPATIAL;          // sizes, offsets and pitches
const int64_t GROUPS = ZSQ_LIMIT_CHANNEL_GROUPS; // channel groups
const int64_t KMAX = ZSQ_LIMIT_KERNEL_FIELD, SMAX = ZSQ_LIMIT_STRIDE_FIELD;

int derived_ok(int op, const int32_t *r, long idx, Err &e) {
  if (!zsq_isa_derived_ok(op, r))
    return e.fail(ZSQD_ERR_FIELD, idx, "a derived register does not match its operands");
  return 0;
}

/* Footprint checks of one instruction against the module's registers (simulation). */
int check_load(const zsqd_word &w, const int32_t *r, int64_t act_words, int64_t wgt_words,
               long idx, Err &e) {
  const int op = w.range(3, 0);
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int64_t H = r[ZSQ_LI_H], W = r[ZSQ_LI_W], G = r[ZSQ_LI_G], base = r[ZSQ_LI_BASE];
    const int64_t y0 = r[ZSQ_LI_Y0], x0 = r[ZSQ_LI_X0], g0 = r[ZSQ_LI_G0];
    const int64_t rows = r[ZSQ_LI_ROWS], cols = r[ZSQ_LI_COLS], ng = r[ZSQ_LI_NG], pitch = r[ZSQ_LI_PITCH];
    if (!field_ok(H, 1, DIM) || !field_ok(W, 1, DIM) || !field_ok(G, 1, GROUPS) ||
        !field_ok(rows, 1, DIM) || !field_ok(cols, 1, DIM) || !field_ok(ng, 1, G) ||
        !field_ok(g0, 0, G - ng) || !field_ok(y0, -DIM, DIM) || !field_ok(x0, -DIM, DIM) ||
        !field_ok(pitch, cdiv(ng, C::K), DIM))
      return e.fail(ZSQD_ERR_FIELD, idx, "LOAD_INPUT: bad geometry");
    /* zero points: the pad byte is an int8 (the input tensor's zero point) */
    if (!field_ok(r[ZSQ_LI_PAD], -128, 127)) return e.fail(ZSQD_ERR_FIELD, idx, "LOAD_INPUT: LI_PAD is not an int8");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    if ((rows * cols - 1) * pitch + cdiv(ng, C::K) > C::IN_ROWS)
      return e.fail(ZSQD_ERR_BUFFER, idx, "LOAD_INPUT: tile overflows in_buf");
    const int64_t ya = y0 < 0 ? 0 : y0, yb = y0 + rows > H ? H : y0 + rows;
    const int64_t xa = x0 < 0 ? 0 : x0, xb = x0 + cols > W ? W : x0 + cols;
    if (ya < yb && xa < xb) {
      const int64_t lo = base + (ya * W + xa) * G + g0, hi = base + ((yb - 1) * W + xb - 1) * G + g0 + ng;
      if (lo < 0 || hi > act_words) return e.fail(ZSQD_ERR_DDR, idx, "LOAD_INPUT: outside the arena");
    }
  } else if (op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS) {
    const bool is_w = op == ZSQ_OP_LOAD_WEIGHT;
    const int64_t addr = is_w ? r[ZSQ_LW_ADDR] : r[ZSQ_LP_ADDR];
    const int64_t n = is_w ? r[ZSQ_LW_WORDS] : r[ZSQ_LP_CHANNELS];
    if (n < 1 || addr < 0 || addr + n > wgt_words)
      return e.fail(ZSQD_ERR_DDR, idx, is_w ? "LOAD_WEIGHT: outside the weights" : "LOAD_PARAMS: outside the weights");
    if (cdiv(n, C::PE_OC) > (is_w ? C::W_ROWS : C::P_ROWS))
      return e.fail(ZSQD_ERR_BUFFER, idx, is_w ? "LOAD_WEIGHT: block overflows w_buf" : "LOAD_PARAMS: overflows p_buf");
  } else if (op == ZSQ_OP_LOAD_BYPASS) { /* residual add: a window inside its tensor */
    if (!C::RESIDUAL) return e.fail(ZSQD_ERR_OPCODE, idx, "LOAD_BYPASS: engine built without the residual add");
    const int64_t base = r[ZSQ_LB_BASE], H = r[ZSQ_LB_H], W = r[ZSQ_LB_W], G = r[ZSQ_LB_G];
    const int64_t y0 = r[ZSQ_LB_Y0], x0 = r[ZSQ_LB_X0], g0 = r[ZSQ_LB_G0];
    const int64_t rows = r[ZSQ_LB_ROWS], cols = r[ZSQ_LB_COLS], ng = r[ZSQ_LB_NG], pitch = r[ZSQ_LB_PITCH];
    if (!field_ok(H, 1, DIM) || !field_ok(W, 1, DIM) || !field_ok(G, 1, GROUPS) ||
        !field_ok(rows, 1, H) || !field_ok(cols, 1, W) || !field_ok(ng, 1, G) || !field_ok(g0, 0, G - ng) ||
        !field_ok(y0, 0, H - rows) || !field_ok(x0, 0, W - cols) || !field_ok(pitch, cdiv(ng, C::K), DIM))
      return e.fail(ZSQD_ERR_FIELD, idx, "LOAD_BYPASS: bad geometry");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    if ((rows * cols - 1) * pitch + cdiv(ng, C::K) > C::BP_ROWS)
      return e.fail(ZSQD_ERR_BUFFER, idx, "LOAD_BYPASS: tile overflows bp_buf");
    if (base < 0 || base + ((y0 + rows - 1) * W + x0 + cols - 1) * G + g0 + ng > act_words)
      return e.fail(ZSQD_ERR_DDR, idx, "LOAD_BYPASS: outside the arena");
  } else if (op != ZSQ_OP_SET) {
    return e.fail(ZSQD_ERR_OPCODE, idx, "not a load instruction");
  }
  return 0;
}

/* a requantization multiplier the engine's lane takes: mult in [2^14, 2^15) and shift in
 * [1, 40], or with the wide lane (C::WIDE_RQ) mult in [2^14, 2^22) and shift in [1, 47] */
bool rq_ok(int64_t mult, int64_t shift) {
  return mult >= (1 << 14) && mult < (C::WIDE_RQ ? (1 << 22) : (1 << 15)) && shift >= 1 &&
         shift <= (C::WIDE_RQ ? ZSQD_WIDE_SHIFT_MAX : ZSQD_SHIFT_MAX);
}

int check_params(const zsqd_word *wgt, int64_t addr, int64_t n, long idx, Err &e) {
  for (int64_t i = 0; i < n; i++) {
    const zsqd_word p = wgt[addr + i];
    const int mult = p.range(53, 32), shift = p.range(59, 54);
    if (!rq_ok(mult, shift))
      return e.fail(ZSQD_ERR_REQUANT, idx, "LOAD_PARAMS: requantization parameters out of range");
  }
  return 0;
}

int check_compute(const zsqd_word &w, const int32_t *r, long idx, Err &e) {
  const int op = w.range(3, 0);
  if (op == ZSQ_OP_CONV) {
    const int64_t rows = r[ZSQ_CV_ROWS - 64], cols = r[ZSQ_CV_COLS - 64], nog = r[ZSQ_CV_OG - 64];
    const int64_t KH = r[ZSQ_CV_KH - 64], KW = r[ZSQ_CV_KW - 64], SY = r[ZSQ_CV_SY - 64], SX = r[ZSQ_CV_SX - 64];
    const int64_t scols = r[ZSQ_CV_SRC_COLS - 64], ng = r[ZSQ_CV_NG - 64], sp = r[ZSQ_CV_SRC_PITCH - 64];
    const int64_t sy0 = r[ZSQ_CV_SRC_Y0 - 64], sx0 = r[ZSQ_CV_SRC_X0 - 64];
    if (!field_ok(rows, 1, DIM) || !field_ok(cols, 1, DIM) || !field_ok(nog, 1, GROUPS) ||
        nog > C::P_ROWS || !field_ok(KH, 1, KMAX) || !field_ok(KW, 1, KMAX) || !field_ok(SY, 1, SMAX) ||
        !field_ok(SX, 1, SMAX) || !field_ok(scols, 1, DIM) || !field_ok(ng, 1, GROUPS) ||
        !field_ok(sp, cdiv(ng, C::K), DIM) || !field_ok(sy0, 0, DIM) || !field_ok(sx0, 0, DIM) ||
        (cols - 1) * SX + KW + sx0 > scols)
      return e.fail(ZSQD_ERR_FIELD, idx, "CONV: bad geometry");
    /* depthwise (issue 11 item 3): one source row per oc group, no input-group loop */
    const bool dw = w[12];
    if (dw && ng != 1) return e.fail(ZSQD_ERR_FIELD, idx, "CONV: a depthwise step has CV_NG = 1");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    if (rows * cols * nog > C::ACC_ROWS) return e.fail(ZSQD_ERR_BUFFER, idx, "CONV: tile overflows acc");
    if (nog * KH * KW * ng > C::W_ROWS) return e.fail(ZSQD_ERR_BUFFER, idx, "CONV: block overflows w_buf");
    const int64_t last = (((rows - 1) * SY + KH - 1 + sy0) * scols + (cols - 1) * SX + KW - 1 + sx0) * sp +
                         (dw ? nog : cdiv(ng, C::K));
    if (last > (w[9] ? C::SQ_ROWS : C::IN_ROWS))
      return e.fail(ZSQD_ERR_BUFFER, idx, "CONV: source window outside its buffer");
  } else if (op == ZSQ_OP_REQUANT) {
    const int64_t rows = r[ZSQ_RQ_ROWS - 64], cols = r[ZSQ_RQ_COLS - 64], nog = r[ZSQ_RQ_OG - 64];
    const int64_t dp = r[ZSQ_RQ_DST_PITCH - 64], d0 = r[ZSQ_RQ_DST_ROW0 - 64];
    const int dst = w.range(12, 11);
    if (!field_ok(rows, 1, DIM) || !field_ok(cols, 1, DIM) || !field_ok(nog, 1, GROUPS) ||
        nog > C::P_ROWS || !field_ok(dp, 1, DIM) || !field_ok(d0, 0, DIM) || dst > ZSQ_RQ_DST_SQ ||
        !field_ok(r[ZSQ_RQ_VY0 - 64], 0, DIM) || !field_ok(r[ZSQ_RQ_VY1 - 64], 0, DIM) ||
        !field_ok(r[ZSQ_RQ_VX0 - 64], 0, DIM) || !field_ok(r[ZSQ_RQ_VX1 - 64], 0, DIM))
      return e.fail(ZSQD_ERR_FIELD, idx, "REQUANT: bad geometry");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    if (w[10] && !rq_ok(r[ZSQ_RQ_AVG_MULT - 64], r[ZSQ_RQ_AVG_SHIFT - 64]))
      return e.fail(ZSQD_ERR_REQUANT, idx, "REQUANT: average constants out of range");
    /* zero points: int8 offsets; the average's sum offset keeps a within 25 bits' range */
    if (!field_ok(r[ZSQ_RQ_ZP_OUT - 64], -128, 127) || !field_ok(r[ZSQ_RQ_BP_ZP - 64], -128, 127) ||
        !field_ok(r[ZSQ_RQ_AVG_BIAS - 64], -ZSQD_AVG_BIAS_MAX, ZSQD_AVG_BIAS_MAX))
      return e.fail(ZSQD_ERR_REQUANT, idx, "REQUANT: zero point registers out of range");
    if (w[14]) { /* residual add: the bypass rescaling and the bp_buf rows it reads */
      if (!C::RESIDUAL) return e.fail(ZSQD_ERR_OPCODE, idx, "REQUANT: engine built without the residual add");
      if (w[10]) return e.fail(ZSQD_ERR_FIELD, idx, "REQUANT: a residual add with the average constants");
      if (!rq_ok(r[ZSQ_RQ_BP_MULT - 64], r[ZSQ_RQ_BP_SHIFT - 64]))
        return e.fail(ZSQD_ERR_REQUANT, idx, "REQUANT: bypass multiplier out of range");
      if (rows * cols * nog > C::BP_ROWS) return e.fail(ZSQD_ERR_BUFFER, idx, "REQUANT: bypass rows outside bp_buf");
    }
    const int64_t cap = dst == ZSQ_RQ_DST_OUT ? C::OUT_ROWS : dst == ZSQ_RQ_DST_CV ? C::CV_ROWS : C::SQ_ROWS;
    if (rows * cols * nog > C::ACC_ROWS || (rows * cols - 1) * dp + d0 + nog > cap)
      return e.fail(ZSQD_ERR_BUFFER, idx, "REQUANT: tile overflows its buffer");
  } else if (op == ZSQ_OP_POOL) {
    const int64_t rows = r[ZSQ_PL_ROWS - 64], cols = r[ZSQ_PL_COLS - 64], nog = r[ZSQ_PL_OG - 64];
    const int64_t KH = r[ZSQ_PL_KH - 64], KW = r[ZSQ_PL_KW - 64], SY = r[ZSQ_PL_SY - 64], SX = r[ZSQ_PL_SX - 64];
    const int64_t srows = r[ZSQ_PL_SRC_ROWS - 64], scols = r[ZSQ_PL_SRC_COLS - 64];
    const int64_t y0 = r[ZSQ_PL_Y0 - 64], x0 = r[ZSQ_PL_X0 - 64];
    const int64_t dp = r[ZSQ_PL_DST_PITCH - 64], d0 = r[ZSQ_PL_DST_ROW0 - 64];
    if (!field_ok(rows, 1, DIM) || !field_ok(cols, 1, DIM) || !field_ok(nog, 1, GROUPS) ||
        nog > C::P_ROWS || !field_ok(KH, 1, DIM) || !field_ok(KW, 1, DIM) || !field_ok(SY, 1, DIM) ||
        !field_ok(SX, 1, DIM) || !field_ok(srows, 1, DIM) || !field_ok(scols, 1, DIM) ||
        !field_ok(y0, -KH, srows) || !field_ok(x0, -KW, scols) || !field_ok(dp, 1, DIM) ||
        !field_ok(d0, 0, DIM) ||
        /* PL_TRIPS = rows*cols*nog * KH*KW is a 32-bit register (2^40 * 2^28 overflows) */
        KH * KW > INT32_MAX / (rows * cols * nog))
      return e.fail(ZSQD_ERR_FIELD, idx, "POOL: bad geometry");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    /* the source: cv_buf, or a loaded in_buf tile (POOL_SRC_IN, a standalone pool) */
    const int64_t src_cap = w[10] ? (int64_t)C::IN_ROWS : (int64_t)C::CV_ROWS;
    if (srows * scols * nog > src_cap)
      return e.fail(ZSQD_ERR_BUFFER, idx, w[10] ? "POOL: source overflows in_buf" : "POOL: source overflows cv_buf");
    if (w[9] ? rows * cols * nog > C::ACC_ROWS : (rows * cols - 1) * dp + d0 + nog > C::OUT_ROWS)
      return e.fail(ZSQD_ERR_BUFFER, idx, "POOL: tile overflows its buffer");
    /* taps outside the source are skipped, but the cv_buf row they would address must exist */
    const int64_t lo = (y0 * scols + x0) * nog;
    const int64_t hi = (((rows - 1) * SY + y0 + KH - 1) * scols + (cols - 1) * SX + x0 + KW - 1) * nog + nog;
    if (lo < -src_cap * 64 || hi > src_cap * 64)
      return e.fail(ZSQD_ERR_FIELD, idx, "POOL: window far outside the source");
  } else if (op != ZSQ_OP_SET) {
    return e.fail(ZSQD_ERR_OPCODE, idx, "not a compute instruction");
  }
  return 0;
}

int check_store(const zsqd_word &w, const int32_t *r, int64_t act_words, long idx, Err &e) {
  const int op = w.range(3, 0);
  if (op == ZSQ_OP_STORE) {
    const int64_t base = r[ZSQ_ST_BASE - 128], H = r[ZSQ_ST_H - 128], W = r[ZSQ_ST_W - 128], G = r[ZSQ_ST_G - 128];
    const int64_t y0 = r[ZSQ_ST_Y0 - 128], x0 = r[ZSQ_ST_X0 - 128], g0 = r[ZSQ_ST_G0 - 128];
    const int64_t rows = r[ZSQ_ST_ROWS - 128], cols = r[ZSQ_ST_COLS - 128], ng = r[ZSQ_ST_NG - 128];
    const int64_t pitch = r[ZSQ_ST_PITCH - 128], row0 = r[ZSQ_ST_ROW0 - 128];
    if (!field_ok(H, 1, DIM) || !field_ok(W, 1, DIM) || !field_ok(G, 1, GROUPS) ||
        !field_ok(rows, 1, H) || !field_ok(cols, 1, W) || !field_ok(ng, 1, G) || !field_ok(g0, 0, G - ng) ||
        !field_ok(y0, 0, H - rows) || !field_ok(x0, 0, W - cols) || !field_ok(pitch, 1, DIM) ||
        !field_ok(row0, 0, DIM))
      return e.fail(ZSQD_ERR_FIELD, idx, "STORE: bad geometry");
    if (derived_ok(op, r, idx, e)) return ZSQD_ERR_FIELD;
    if ((rows * cols - 1) * pitch + row0 + cdiv(ng, C::K) > C::OUT_ROWS)
      return e.fail(ZSQD_ERR_BUFFER, idx, "STORE: region outside out_buf");
    if (base < 0 || base + H * W * G > act_words) return e.fail(ZSQD_ERR_DDR, idx, "STORE: outside the arena");
  } else if (op != ZSQ_OP_SET) {
    return e.fail(ZSQD_ERR_OPCODE, idx, "not a store instruction");
  }
  return 0;
}

int route(const zsqd_word &w) {
  const int op = w.range(3, 0);
  if (op == ZSQ_OP_SET) return w.range(23, 22);
  if (op == ZSQ_OP_LOAD_INPUT || op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS ||
      op == ZSQ_OP_LOAD_BYPASS)
    return ZSQ_MODULE_LOAD;
  if (op == ZSQ_OP_CONV || op == ZSQ_OP_REQUANT || op == ZSQ_OP_POOL) return ZSQ_MODULE_COMPUTE;
  if (op == ZSQ_OP_STORE) return ZSQ_MODULE_STORE;
  if (op == ZSQ_OP_FINISH) return 3;
  return -1;
}

}  // namespace

extern "C" int zsqd_run(const uint64_t *insn_words, int64_t n_insn, const uint64_t *wgt_words,
                        int64_t n_wgt, uint64_t *act_words, int64_t n_act, const zsqd_timing_t *timing,
                        int64_t *insn_end, zsqd_stats_t *stats, char *err, int errlen) {
  Err e{err, errlen};
  if (err && errlen > 0) err[0] = 0;
  if (!insn_words || !wgt_words || !act_words || !timing || n_insn < 1 || n_insn > ZSQD_MAX_INSN ||
      n_wgt < 1 || n_act < 1)
    return e.fail(ZSQD_ERR_ARG, -1, "bad arguments");
  if (timing->beat_x100 < 1 || timing->rd_latency < 0 || timing->wr_latency < 0 || timing->outstanding < 1)
    return e.fail(ZSQD_ERR_ARG, -1, "bad timing constants");
  std::lock_guard<std::mutex> guard(g_lock);
  const zsqd_word *insn = reinterpret_cast<const zsqd_word *>(insn_words);
  const zsqd_word *wgt = reinterpret_cast<const zsqd_word *>(wgt_words);
  zsqd_word *act = reinterpret_cast<zsqd_word *>(act_words);
  static_assert(sizeof(zsqd_word) == 8, "ap_uint<64> must be 8 bytes for the host buffers");

  /* fetch routing: per module, the global indices of its words (routes decoded once: the
   * fetch loop below reads them again) */
  std::vector<long> q[3];
  std::vector<signed char> routes((size_t)n_insn);
  for (int k = 0; k < 3; k++) q[k].reserve((size_t)n_insn);
  for (long i = 0; i < n_insn; i++) {
    const int m = route(insn[i]);
    if (m < 0) return e.fail(ZSQD_ERR_OPCODE, i, "unknown opcode");
    routes[i] = (signed char)m;
    if (m == 3) { for (int k = 0; k < 3; k++) q[k].push_back(i); }
    else q[m].push_back(i);
  }
  for (int k = 0; k < 3; k++)
    if (q[k].empty() || (insn[q[k].back()].range(3, 0) != ZSQ_OP_FINISH))
      return e.fail(ZSQD_ERR_PROGRAM, n_insn - 1, "program must end with FINISH");

  int32_t regs[3][ZSQ_N_REGS];
  memset(regs, 0, sizeof(regs));
  /* token streams: push times; [0] load->compute, [1] compute->load, [2] compute->store,
   * [3] store->compute */
  std::vector<int64_t> tok[4];
  for (int k = 0; k < 4; k++) tok[k].reserve((size_t)n_insn);
  size_t popped[4] = {0, 0, 0, 0};
  std::vector<int64_t> arrive[3], start[3];
  for (int k = 0; k < 3; k++) { arrive[k].assign(q[k].size(), -1); start[k].assign(q[k].size(), -1); }
  size_t fetched[3] = {0, 0, 0}, pos[3] = {0, 0, 0};
  int64_t t_fetch = 0, t_mod[3] = {0, 0, 0}, busy[3] = {0, 0, 0};
  long next_word = 0;
  zsqd_stats_t st;
  memset(&st, 0, sizeof(st));

  while (pos[0] < q[0].size() || pos[1] < q[1].size() || pos[2] < q[2].size()) {
    bool progressed = false;
    /* fetch: one word per cycle, stalls while the destination queue is full */
    while (next_word < n_insn) {
      const int m = routes[next_word];
      int64_t t = t_fetch + 1;
      bool ok = true;
      for (int k = 0; k < 3 && ok; k++) {
        if (m != 3 && m != k) continue;
        if (fetched[k] >= (size_t)C::QUEUE_DEPTH) {
          const int64_t s = start[k][fetched[k] - C::QUEUE_DEPTH];
          if (s < 0) ok = false;
          else if (s > t) t = s;
        }
      }
      if (!ok) break;
      for (int k = 0; k < 3; k++)
        if (m == 3 || m == k) arrive[k][fetched[k]++] = t;
      t_fetch = t;
      next_word++;
      progressed = true;
    }
    /* modules */
    for (int m = 0; m < 3; m++) {
      while (pos[m] < fetched[m]) {
        const long gi = q[m][pos[m]];
        const zsqd_word w = insn[gi];
        const bool pop_prev = w[4], pop_next = w[5], push_prev = w[6], push_next = w[7];
        const int op = w.range(3, 0);
        /* token streams this module pops from: prev (load->compute / compute->store), next */
        const int in_prev = m == 1 ? 0 : m == 2 ? 2 : -1;
        const int in_next = m == 0 ? 1 : m == 1 ? 3 : -1;
        const int out_prev = m == 1 ? 1 : m == 2 ? 3 : -1;
        const int out_next = m == 0 ? 0 : m == 1 ? 2 : -1;
        if (op != ZSQ_OP_FINISH && ((pop_prev && in_prev < 0) || (pop_next && in_next < 0) ||
                                    (push_prev && out_prev < 0) || (push_next && out_next < 0)))
          return e.fail(ZSQD_ERR_PROGRAM, gi, "dependency flag towards a module that does not exist");
        if (op != ZSQ_OP_FINISH) {
          if (pop_prev && tok[in_prev].size() <= popped[in_prev]) break;
          if (pop_next && tok[in_next].size() <= popped[in_next]) break;
        }
        int64_t t0 = t_mod[m] > arrive[m][pos[m]] ? t_mod[m] : arrive[m][pos[m]];
        if (op != ZSQ_OP_FINISH) {
          if (pop_prev) { const int64_t tt = tok[in_prev][popped[in_prev]++]; if (tt > t0) t0 = tt; }
          if (pop_next) { const int64_t tt = tok[in_next][popped[in_next]++]; if (tt > t0) t0 = tt; }
        }
        int rc = 0;
        memset(&zsqd_now, 0, sizeof(zsqd_now));
        zsqd_now.rd_latency = timing->rd_latency;
        zsqd_now.wr_latency = timing->wr_latency;
        zsqd_now.outstanding = timing->outstanding;
        zsqd_now.beat_x100 = timing->beat_x100;
        if (op == ZSQ_OP_FINISH) {
          zsqd_now.cycles = 1;
        } else if (m == 0) {
          rc = check_load(w, regs[0], n_act, n_wgt, gi, e);
          if (!rc && op == ZSQ_OP_LOAD_PARAMS) rc = check_params(wgt, regs[0][ZSQ_LP_ADDR], regs[0][ZSQ_LP_CHANNELS], gi, e);
          if (!rc) zsqd_load_exec<C>(w, regs[0], act, wgt, g_buf.in_buf, g_buf.w_buf, g_buf.p_buf, g_buf.bp_buf);
        } else if (m == 1) {
          rc = check_compute(w, regs[1], gi, e);
          if (!rc) zsqd_compute_exec<C>(w, regs[1], g_buf.in_buf, g_buf.w_buf, g_buf.p_buf, g_buf.acc,
                                        g_buf.cv_buf, g_buf.sq_buf, g_buf.out_buf, g_buf.bp_buf);
        } else {
          rc = check_store(w, regs[2], n_act, gi, e);
          if (!rc) zsqd_store_exec<C>(w, regs[2], g_buf.out_buf, act);
        }
        if (rc) return rc;
        const int64_t cost = charge_cost();
        const int64_t t1 = t0 + cost;
        start[m][pos[m]] = t0;
        t_mod[m] = t1;
        busy[m] += cost;
        st.macs += zsqd_now.macs;
        if (m == 0) st.rd_bytes += zsqd_now.rd_beats * 8;
        if (m == 2) st.wr_bytes += zsqd_now.wr_beats * 8;
        if (op != ZSQ_OP_FINISH) {
          if (push_prev) tok[out_prev].push_back(t1);
          if (push_next) tok[out_next].push_back(t1);
        }
        if (insn_end) insn_end[gi] = t1 > insn_end[gi] ? t1 : insn_end[gi];
        pos[m]++;
        progressed = true;
      }
    }
    if (!progressed)
      return e.fail(ZSQD_ERR_DEADLOCK, next_word, "deadlock: a module waits for a token that is never pushed");
  }
  for (int k = 0; k < 4; k++)
    if (popped[k] != tok[k].size())
      return e.fail(ZSQD_ERR_PROGRAM, n_insn - 1, "tokens pushed but never popped");
  st.cycles = t_mod[0];
  for (int k = 1; k < 3; k++) if (t_mod[k] > st.cycles) st.cycles = t_mod[k];
  st.load_busy = busy[0];
  st.compute_busy = busy[1];
  st.store_busy = busy[2];
  if (stats) *stats = st;
  return 0;
}

int zsqd_sim_top(const zsqd_word *insn, uint32_t insn_count, const zsqd_word *wgt,
                 const zsqd_word *act_rd, zsqd_word *act_wr, uint64_t *cycles) {
  /* The C-simulation view of the top: unbounded host arrays, default timing. */
  (void)act_rd; /* gmem_rd and gmem_wr address the same arena */
  zsqd_timing_t t = {ZSQD_RD_LATENCY, ZSQD_WR_LATENCY, ZSQD_OUTSTANDING, ZSQD_DDR_BEAT_X100};
  zsqd_stats_t st;
  const int rc = zsqd_run(reinterpret_cast<const uint64_t *>(insn), insn_count,
                          reinterpret_cast<const uint64_t *>(wgt), (int64_t)1 << 40,
                          reinterpret_cast<uint64_t *>(act_wr), (int64_t)1 << 40, &t, nullptr, &st, nullptr, 0);
  if (cycles) *cycles = rc ? 0 : (uint64_t)st.cycles;
  return rc;
}

#endif /* __SYNTHESIS__ */
