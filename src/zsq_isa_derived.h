/*
 * zsq_isa_derived.h - the derived registers of the decoupled engine's instructions.
 *
 * C99 (the runtime includes it) and C++ (the simulation). The Python twin is
 * engine/isa.py derived(); tests/test_isa.py compares the two on random registers.
 */
#ifndef ZSQ_ISA_DERIVED_H
#define ZSQ_ISA_DERIVED_H

#include <stdint.h>

#include "zsq_isa.h"

/* The derived registers instruction `op` reads, from its module's registers `r` (indexed
 * by register id & 63): up to 7 (id, value) pairs in ids/vals, returns how many. The C
 * twin of engine/isa.py derived(): the compiler emits these products so the engine needs
 * no runtime multiplier; the simulation and the runtime check them before executing.
 * 64-bit arithmetic: a product outside int32 never matches a register. The products have
 * up to six factors: callers bound every operand first (the ZSQ_LIMIT_* field checks of
 * zsq_rt_validate and the simulation), else int64 itself can overflow. */
static inline int zsq_isa_derived(int op, const int32_t *r, int *ids, int64_t *vals) {
  int n = 0;
#define ZSQ_R(id) ((int64_t)r[(id) & 63])
#define ZSQ_D(id, v) (ids[n] = (id), vals[n] = (v), n++)
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int64_t g = ZSQ_R(ZSQ_LI_G), w = ZSQ_R(ZSQ_LI_W), x0 = ZSQ_R(ZSQ_LI_X0);
    const int64_t cols = ZSQ_R(ZSQ_LI_COLS), ng = ZSQ_R(ZSQ_LI_NG);
    int64_t cl = x0 < 0 ? -x0 : 0, cr = x0 + cols > w ? w - x0 : cols;
    if (cl > cols) cl = cols;
    if (cr < cl) cr = cl;
    ZSQ_D(ZSQ_LI_SRC0, ZSQ_R(ZSQ_LI_BASE) + (ZSQ_R(ZSQ_LI_Y0) * w + x0 + cl) * g + ZSQ_R(ZSQ_LI_G0));
    ZSQ_D(ZSQ_LI_ROW_STEP, w * g);
    ZSQ_D(ZSQ_LI_ROW_TRIPS, cols * ng);
    ZSQ_D(ZSQ_LI_ROW_PITCH, cols * ZSQ_R(ZSQ_LI_PITCH));
    ZSQ_D(ZSQ_LI_LEFT, cl * ng);
    ZSQ_D(ZSQ_LI_SPAN, (cr - cl) * ng);
    ZSQ_D(ZSQ_LI_RIGHT, (cols - cr) * ng);
  } else if (op == ZSQ_OP_CONV) {
    const int64_t sp = ZSQ_R(ZSQ_CV_SRC_PITCH), sc = ZSQ_R(ZSQ_CV_SRC_COLS);
    const int64_t red = ZSQ_R(ZSQ_CV_KH) * ZSQ_R(ZSQ_CV_KW) * ZSQ_R(ZSQ_CV_NG);
    ZSQ_D(ZSQ_CV_RED, red);
    ZSQ_D(ZSQ_CV_TRIPS, ZSQ_R(ZSQ_CV_ROWS) * ZSQ_R(ZSQ_CV_COLS) * ZSQ_R(ZSQ_CV_OG) * red);
    ZSQ_D(ZSQ_CV_Q0, (ZSQ_R(ZSQ_CV_SRC_Y0) * sc + ZSQ_R(ZSQ_CV_SRC_X0)) * sp);
    ZSQ_D(ZSQ_CV_KY_STEP, (sc - ZSQ_R(ZSQ_CV_KW)) * sp);
    ZSQ_D(ZSQ_CV_OX_STEP, ZSQ_R(ZSQ_CV_SX) * sp);
    ZSQ_D(ZSQ_CV_OY_STEP, ZSQ_R(ZSQ_CV_SY) * sc * sp);
  } else if (op == ZSQ_OP_REQUANT) {
    ZSQ_D(ZSQ_RQ_TRIPS, ZSQ_R(ZSQ_RQ_ROWS) * ZSQ_R(ZSQ_RQ_COLS) * ZSQ_R(ZSQ_RQ_OG));
  } else if (op == ZSQ_OP_POOL) {
    const int64_t og = ZSQ_R(ZSQ_PL_OG), sc = ZSQ_R(ZSQ_PL_SRC_COLS);
    const int64_t win = ZSQ_R(ZSQ_PL_KH) * ZSQ_R(ZSQ_PL_KW);
    ZSQ_D(ZSQ_PL_WIN, win);
    ZSQ_D(ZSQ_PL_TRIPS, ZSQ_R(ZSQ_PL_ROWS) * ZSQ_R(ZSQ_PL_COLS) * og * win);
    ZSQ_D(ZSQ_PL_S0, (ZSQ_R(ZSQ_PL_Y0) * sc + ZSQ_R(ZSQ_PL_X0)) * og);
    ZSQ_D(ZSQ_PL_WY_STEP, (sc - ZSQ_R(ZSQ_PL_KW)) * og);
    ZSQ_D(ZSQ_PL_PX_STEP, ZSQ_R(ZSQ_PL_SX) * og);
    ZSQ_D(ZSQ_PL_PY_STEP, ZSQ_R(ZSQ_PL_SY) * sc * og);
  } else if (op == ZSQ_OP_LOAD_BYPASS) { /* residual add: the bypass tile */
    const int64_t g = ZSQ_R(ZSQ_LB_G), w = ZSQ_R(ZSQ_LB_W);
    ZSQ_D(ZSQ_LB_SRC0, ZSQ_R(ZSQ_LB_BASE) + (ZSQ_R(ZSQ_LB_Y0) * w + ZSQ_R(ZSQ_LB_X0)) * g + ZSQ_R(ZSQ_LB_G0));
    ZSQ_D(ZSQ_LB_ROW_STEP, w * g);
    ZSQ_D(ZSQ_LB_ROW_TRIPS, ZSQ_R(ZSQ_LB_COLS) * ZSQ_R(ZSQ_LB_NG));
    ZSQ_D(ZSQ_LB_ROW_PITCH, ZSQ_R(ZSQ_LB_COLS) * ZSQ_R(ZSQ_LB_PITCH));
  } else if (op == ZSQ_OP_STORE) {
    const int64_t g = ZSQ_R(ZSQ_ST_G), w = ZSQ_R(ZSQ_ST_W);
    ZSQ_D(ZSQ_ST_DST0, ZSQ_R(ZSQ_ST_BASE) + (ZSQ_R(ZSQ_ST_Y0) * w + ZSQ_R(ZSQ_ST_X0)) * g + ZSQ_R(ZSQ_ST_G0));
    ZSQ_D(ZSQ_ST_ROW_STEP, w * g);
    ZSQ_D(ZSQ_ST_ROW_TRIPS, ZSQ_R(ZSQ_ST_COLS) * ZSQ_R(ZSQ_ST_NG));
    ZSQ_D(ZSQ_ST_ROW_PITCH, ZSQ_R(ZSQ_ST_COLS) * ZSQ_R(ZSQ_ST_PITCH));
  }
#undef ZSQ_R
#undef ZSQ_D
  return n;
}

/* 1 when every derived register `op` reads holds its product, else 0. */
static inline int zsq_isa_derived_ok(int op, const int32_t *r) {
  int ids[7];
  int64_t vals[7];
  const int n = zsq_isa_derived(op, r, ids, vals);
derived_cmp:
  for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 0 max = 7
    if ((int64_t)r[ids[i] & 63] != vals[i]) return 0;
  }
  return 1;
}

#endif /* ZSQ_ISA_DERIVED_H */
