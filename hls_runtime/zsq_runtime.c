/*
 * zsq_runtime.c - backend-independent part of the zynq-squeeze runtime: validation of a
 * decoupled-engine program (instruction stream and its DDR footprint), error strings and
 * zsq_rt_run.
 *
 * The validation is what the board needs before it starts the IP: the hardware has no
 * bounds checks, so a STORE outside the arena would write over whatever lies next to the
 * DMA buffer, an unknown opcode would be routed to compute, and unbalanced tokens or a
 * missing FINISH hang the DATAFLOW region. The simulation checks more (on-chip buffer
 * footprints, requantization ranges, deadlocks) and reports them as ZSQD_ERR_* codes.
 */
#include "zsq_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsq_isa.h"
#include "zsq_isa_derived.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    int n = snprintf(err, errlen, "%s: ", zsq_rt_strerror(code));
    if (n < 0) n = 0;
    if ((size_t)n < errlen) {
      va_start(ap, fmt);
      vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

const char *zsq_rt_strerror(int code) {
  switch (code) {
    case ZSQ_RT_OK: return "ok";
    /* engine (simulation) codes, zsq_dae_sim.h */
    case -1: return "bad engine argument";
    case -2: return "unknown opcode or instruction on the wrong module";
    case -3: return "instruction fields out of range";
    case -4: return "tile overflows an on-chip buffer";
    case -5: return "access outside the weights or the arena";
    case -6: return "requantization parameters out of range";
    case -7: return "malformed program (FINISH, tokens or flags)";
    case -8: return "deadlock: a module waits for a token that is never pushed";
    case ZSQ_RT_ERR_ARG: return "bad runtime argument";
    case ZSQ_RT_ERR_ARENA: return "access outside the activation arena or over a live tensor";
    case ZSQ_RT_ERR_BLOB: return "access outside the weights";
    case ZSQ_RT_ERR_DEVICE: return "accelerator device unavailable";
    case ZSQ_RT_ERR_NOMEM: return "out of memory (DMA buffer too small)";
    case ZSQ_RT_ERR_TIMEOUT: return "accelerator timeout";
    case ZSQ_RT_ERR_INSN: return "malformed instruction stream";
    case ZSQ_RT_ERR_ENGINE: return "accelerator finished without a valid result";
    default: return "unknown error";
  }
}

/* Module an instruction is routed to by fetch (src/zsq_dae_top.cpp zsqd_fetch): 0 load,
 * 1 compute, 2 store, 3 every module (FINISH), -1 not an opcode of the ISA. */
static int route(uint64_t w) {
  const int op = (int)(w & 15u);
  switch (op) {
    case ZSQ_OP_SET: return (int)((w >> 22) & 3u);
    case ZSQ_OP_LOAD_INPUT:
    case ZSQ_OP_LOAD_WEIGHT:
    case ZSQ_OP_LOAD_PARAMS:
    case ZSQ_OP_LOAD_BYPASS: return ZSQ_MODULE_LOAD;
    case ZSQ_OP_CONV:
    case ZSQ_OP_REQUANT:
    case ZSQ_OP_POOL: return ZSQ_MODULE_COMPUTE;
    case ZSQ_OP_STORE: return ZSQ_MODULE_STORE;
    case ZSQ_OP_FINISH: return 3;
    default: return -1;
  }
}

static int in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* Field bounds, the same as the lowering's (schedule/instructions.py REG_RANGES) and the
 * simulation's, all from zsq_isa.h's ZSQ_LIMIT_* (partitioning/limits.py): every field is
 * bounded before anything multiplies it, so no product of the checks below or of
 * zsq_isa_derived (up to six factors) can overflow int64, whatever 32-bit values a
 * program holds. */
#define ZSQ_RT_DIM ZSQ_LIMIT_SPATIAL           /* sizes, offsets and pitches */
#define ZSQ_RT_GROUPS ZSQ_LIMIT_CHANNEL_GROUPS /* channel groups of 8 (or of PE_OC) */
#define ZSQ_RT_CONV_K ZSQ_LIMIT_KERNEL_FIELD   /* CONV kernel */
#define ZSQ_RT_CONV_S ZSQ_LIMIT_STRIDE_FIELD   /* CONV stride */

/* Token streams: 0 load->compute, 1 compute->load, 2 compute->store, 3 store->compute;
 * -1 where a module has no neighbour in that direction. Indexed [module]. */
static const int k_pop_prev[3] = {-1, 0, 2};
static const int k_pop_next[3] = {1, 3, -1};
static const int k_push_prev[3] = {-1, 1, 3};
static const int k_push_next[3] = {0, 2, -1};
static const char *k_module[3] = {"load", "compute", "store"};

/* The engine reads the compiler's products (strides, trip counts, start addresses): they
 * must match the operands the footprint checks are made on. Called once the operands are
 * bounded (zsq_isa_derived multiplies them). */
static int check_derived(int op, const int32_t *r, long long i, char *err, size_t errlen) {
  if (!zsq_isa_derived_ok(op, r))
    return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: a derived register does "
                "not match its operands", i);
  return ZSQ_RT_OK;
}

/* DDR footprint of a load instruction (the registers as SET left them). */
static int check_load(const zsq_rt_program_t *p, uint64_t w, const int32_t *r, long long i,
                      char *err, size_t errlen) {
  const int op = (int)(w & 15u);
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int64_t base = r[ZSQ_LI_BASE], H = r[ZSQ_LI_H], W = r[ZSQ_LI_W], G = r[ZSQ_LI_G];
    const int64_t y0 = r[ZSQ_LI_Y0], x0 = r[ZSQ_LI_X0], g0 = r[ZSQ_LI_G0];
    const int64_t rows = r[ZSQ_LI_ROWS], cols = r[ZSQ_LI_COLS], ng = r[ZSQ_LI_NG];
    int64_t ya, yb, xa, xb;
    int rc;
    if (!in_range(H, 1, ZSQ_RT_DIM) || !in_range(W, 1, ZSQ_RT_DIM) ||
        !in_range(G, 1, ZSQ_RT_GROUPS) || !in_range(rows, 1, ZSQ_RT_DIM) ||
        !in_range(cols, 1, ZSQ_RT_DIM) || !in_range(ng, 1, G) || !in_range(g0, 0, G - ng) ||
        !in_range(y0, -ZSQ_RT_DIM, ZSQ_RT_DIM) || !in_range(x0, -ZSQ_RT_DIM, ZSQ_RT_DIM) ||
        !in_range(r[ZSQ_LI_PITCH], 1, ZSQ_RT_DIM))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: LOAD_INPUT: bad geometry", i);
    /* zero points: the pad byte is an int8 (the input tensor's zero point) */
    if (!in_range(r[ZSQ_LI_PAD], -128, 127))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: LOAD_INPUT: LI_PAD is not an int8", i);
    rc = check_derived(op, r, i, err, errlen);
    if (rc != ZSQ_RT_OK) return rc;
    ya = y0 < 0 ? 0 : y0;
    yb = y0 + rows > H ? H : y0 + rows;
    xa = x0 < 0 ? 0 : x0;
    xb = x0 + cols > W ? W : x0 + cols;
    if (ya < yb && xa < xb) { /* else the tile is all padding: nothing is read */
      const int64_t lo = base + (ya * W + xa) * G + g0;
      const int64_t hi = base + ((yb - 1) * W + xb - 1) * G + g0 + ng;
      if (lo < 0 || hi > p->arena_words)
        return fail(err, errlen, ZSQ_RT_ERR_ARENA,
                    "instruction %lld: LOAD_INPUT reads words [%lld, %lld), arena has %lld", i,
                    (long long)lo, (long long)hi, (long long)p->arena_words);
    }
  } else if (op == ZSQ_OP_LOAD_BYPASS) { /* residual add: a window inside its tensor */
    const int64_t base = r[ZSQ_LB_BASE], H = r[ZSQ_LB_H], W = r[ZSQ_LB_W], G = r[ZSQ_LB_G];
    const int64_t y0 = r[ZSQ_LB_Y0], x0 = r[ZSQ_LB_X0], g0 = r[ZSQ_LB_G0];
    const int64_t rows = r[ZSQ_LB_ROWS], cols = r[ZSQ_LB_COLS], ng = r[ZSQ_LB_NG];
    int64_t lo, hi;
    int rc;
    if (!in_range(H, 1, ZSQ_RT_DIM) || !in_range(W, 1, ZSQ_RT_DIM) ||
        !in_range(G, 1, ZSQ_RT_GROUPS) || !in_range(rows, 1, H) || !in_range(cols, 1, W) ||
        !in_range(ng, 1, G) || !in_range(g0, 0, G - ng) || !in_range(y0, 0, H - rows) ||
        !in_range(x0, 0, W - cols) || !in_range(r[ZSQ_LB_PITCH], 1, ZSQ_RT_DIM))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: LOAD_BYPASS: bad geometry", i);
    rc = check_derived(op, r, i, err, errlen);
    if (rc != ZSQ_RT_OK) return rc;
    lo = base + (y0 * W + x0) * G + g0;
    hi = base + ((y0 + rows - 1) * W + x0 + cols - 1) * G + g0 + ng;
    if (lo < 0 || hi > p->arena_words)
      return fail(err, errlen, ZSQ_RT_ERR_ARENA,
                  "instruction %lld: LOAD_BYPASS reads words [%lld, %lld), arena has %lld", i,
                  (long long)lo, (long long)hi, (long long)p->arena_words);
  } else if (op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS) {
    const int is_w = op == ZSQ_OP_LOAD_WEIGHT;
    const int64_t addr = is_w ? r[ZSQ_LW_ADDR] : r[ZSQ_LP_ADDR];
    const int64_t n = is_w ? r[ZSQ_LW_WORDS] : r[ZSQ_LP_CHANNELS];
    if (n < 1 || addr < 0 || addr + n > p->wgt_words)
      return fail(err, errlen, ZSQ_RT_ERR_BLOB,
                  "instruction %lld: %s reads words [%lld, %lld), weights have %lld", i,
                  is_w ? "LOAD_WEIGHT" : "LOAD_PARAMS", (long long)addr, (long long)(addr + n),
                  (long long)p->wgt_words);
  }
  return ZSQ_RT_OK;
}

/* Compute instructions touch no DDR; their fields are bounded so that the derived
 * products (CV_TRIPS has six factors) stay exact, then the products are compared. The
 * on-chip buffer footprints depend on the engine's sizes: the simulation checks them. */
static int check_compute(uint64_t w, const int32_t *r, long long i, char *err, size_t errlen) {
  const int op = (int)(w & 15u);
#define ZSQ_C(id) ((int64_t)r[(id) - 64])
  if (op == ZSQ_OP_CONV) {
    if (!in_range(ZSQ_C(ZSQ_CV_ROWS), 1, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_CV_COLS), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_CV_OG), 1, ZSQ_RT_GROUPS) || !in_range(ZSQ_C(ZSQ_CV_KH), 1, ZSQ_RT_CONV_K) ||
        !in_range(ZSQ_C(ZSQ_CV_KW), 1, ZSQ_RT_CONV_K) || !in_range(ZSQ_C(ZSQ_CV_SY), 1, ZSQ_RT_CONV_S) ||
        !in_range(ZSQ_C(ZSQ_CV_SX), 1, ZSQ_RT_CONV_S) ||
        !in_range(ZSQ_C(ZSQ_CV_SRC_COLS), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_CV_NG), 1, ZSQ_RT_GROUPS) ||
        !in_range(ZSQ_C(ZSQ_CV_SRC_PITCH), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_CV_SRC_Y0), 0, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_CV_SRC_X0), 0, ZSQ_RT_DIM))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: CONV: bad geometry", i);
    /* depthwise (issue 11 item 3): no input-group loop */
    if ((w & ZSQ_CONV_DW) && ZSQ_C(ZSQ_CV_NG) != 1)
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: CONV: a depthwise step has CV_NG = 1", i);
  } else if (op == ZSQ_OP_REQUANT) {
    if (!in_range(ZSQ_C(ZSQ_RQ_ROWS), 1, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_RQ_COLS), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_RQ_OG), 1, ZSQ_RT_GROUPS) ||
        !in_range(ZSQ_C(ZSQ_RQ_DST_PITCH), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_RQ_DST_ROW0), 0, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_RQ_VY0), 0, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_RQ_VY1), 0, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_RQ_VX0), 0, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_RQ_VX1), 0, ZSQ_RT_DIM))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: REQUANT: bad geometry", i);
    /* residual add: the bypass rescaling within the wide (22-bit) lane's ranges; an
     * engine built with the narrow lane refuses more (src/zsq_dae_sim.cpp rq_ok) */
    if (((w >> 14) & 1u) && (((w >> 10) & 1u) || !in_range(ZSQ_C(ZSQ_RQ_BP_MULT), 1 << 14, (1 << 22) - 1) ||
                             !in_range(ZSQ_C(ZSQ_RQ_BP_SHIFT), 1, 47)))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: REQUANT: bypass multiplier "
                  "out of range (or with the average constants)", i);
    /* zero points: int8 offsets; the average's sum offset within the 25-bit A port */
    if (!in_range(ZSQ_C(ZSQ_RQ_ZP_OUT), -128, 127) || !in_range(ZSQ_C(ZSQ_RQ_BP_ZP), -128, 127) ||
        !in_range(ZSQ_C(ZSQ_RQ_AVG_BIAS), -((1 << 24) - 1), (1 << 24) - 1))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: REQUANT: zero point "
                  "registers out of range", i);
  } else if (op == ZSQ_OP_POOL) {
    const int64_t rows = ZSQ_C(ZSQ_PL_ROWS), cols = ZSQ_C(ZSQ_PL_COLS), og = ZSQ_C(ZSQ_PL_OG);
    const int64_t KH = ZSQ_C(ZSQ_PL_KH), KW = ZSQ_C(ZSQ_PL_KW);
    const int64_t srows = ZSQ_C(ZSQ_PL_SRC_ROWS), scols = ZSQ_C(ZSQ_PL_SRC_COLS);
    if (!in_range(rows, 1, ZSQ_RT_DIM) || !in_range(cols, 1, ZSQ_RT_DIM) ||
        !in_range(og, 1, ZSQ_RT_GROUPS) || !in_range(KH, 1, ZSQ_RT_DIM) ||
        !in_range(KW, 1, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_PL_SY), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_PL_SX), 1, ZSQ_RT_DIM) || !in_range(srows, 1, ZSQ_RT_DIM) ||
        !in_range(scols, 1, ZSQ_RT_DIM) || !in_range(ZSQ_C(ZSQ_PL_Y0), -KH, srows) ||
        !in_range(ZSQ_C(ZSQ_PL_X0), -KW, scols) ||
        !in_range(ZSQ_C(ZSQ_PL_DST_PITCH), 1, ZSQ_RT_DIM) ||
        !in_range(ZSQ_C(ZSQ_PL_DST_ROW0), 0, ZSQ_RT_DIM) ||
        /* PL_TRIPS = rows*cols*og * KH*KW must be a 32-bit register: 2^40 * 2^28 would
         * not even fit int64 */
        KH * KW > INT32_MAX / (rows * cols * og))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: POOL: bad geometry", i);
  }
#undef ZSQ_C
  return check_derived(op, r, i, err, errlen);
}

/* DDR footprint of a STORE: the whole destination tensor lies in the arena. */
static int check_store(const zsq_rt_program_t *p, const int32_t *r, long long i, char *err,
                       size_t errlen) {
  const int64_t base = r[ZSQ_ST_BASE - 128], H = r[ZSQ_ST_H - 128], W = r[ZSQ_ST_W - 128];
  const int64_t G = r[ZSQ_ST_G - 128], y0 = r[ZSQ_ST_Y0 - 128], x0 = r[ZSQ_ST_X0 - 128];
  const int64_t g0 = r[ZSQ_ST_G0 - 128], rows = r[ZSQ_ST_ROWS - 128];
  const int64_t cols = r[ZSQ_ST_COLS - 128], ng = r[ZSQ_ST_NG - 128];
  int rc;
  if (!in_range(H, 1, ZSQ_RT_DIM) || !in_range(W, 1, ZSQ_RT_DIM) ||
      !in_range(G, 1, ZSQ_RT_GROUPS) || !in_range(rows, 1, H) || !in_range(cols, 1, W) ||
      !in_range(ng, 1, G) || !in_range(g0, 0, G - ng) || !in_range(y0, 0, H - rows) ||
      !in_range(x0, 0, W - cols) || !in_range(r[ZSQ_ST_PITCH - 128], 1, ZSQ_RT_DIM) ||
      !in_range(r[ZSQ_ST_ROW0 - 128], 0, ZSQ_RT_DIM))
    return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: STORE: bad geometry", i);
  rc = check_derived(ZSQ_OP_STORE, r, i, err, errlen);
  if (rc != ZSQ_RT_OK) return rc;
  if (base < 0 || base + H * W * G > p->arena_words)
    return fail(err, errlen, ZSQ_RT_ERR_ARENA,
                "instruction %lld: STORE writes words [%lld, %lld), arena has %lld", i,
                (long long)base, (long long)(base + H * W * G), (long long)p->arena_words);
  return ZSQ_RT_OK;
}

/* Tensor lifetimes. A tensor is a LOAD_INPUT / STORE descriptor (base, H, W, G): arena
 * words [base, base + H*W*G). A compiled program writes a tensor (STOREs), then reads it
 * (LOAD_INPUTs); a STORE after a read of the same descriptor starts a new tensor there
 * (the allocator reuses a dead tensor's words for one of the same shape). A tensor is live
 * from its first to its last instruction, from the start if it is read before it is
 * written (a program input, written by the host) and to the end if it is written and never
 * read (a program output, read by the host). Two tensors live at the same time must not
 * share a word: a STORE would overwrite data still to be read (the engine has no other
 * guard; the compiler's allocator never does this). */
typedef struct {
  int64_t base, h, w, g;
  int64_t first, last; /* instructions touching it */
  int read, written;
} zsq_tensor_t;

typedef struct {
  zsq_tensor_t *t;
  int32_t *slot; /* open addressing over descriptors: index + 1 of its newest tensor, 0 free */
  int64_t n, cap, nslot;
} zsq_tensors_t;

/* Distinct tensors a program may have (the table and the pairwise check stay small; a
 * model of the engine has one per layer output plus its inputs). */
#define ZSQ_RT_MAX_TENSORS 4096

static uint64_t desc_hash(int64_t base, int64_t h, int64_t w, int64_t g) {
  uint64_t x = (uint64_t)base * 0x9E3779B97F4A7C15ull;
  x ^= ((uint64_t)h << 40) ^ ((uint64_t)w << 20) ^ (uint64_t)g;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 31);
}

static int touch_tensor(zsq_tensors_t *ts, int64_t base, int64_t h, int64_t w, int64_t g,
                        int is_store, long long i, char *err, size_t errlen) {
  uint64_t k = desc_hash(base, h, w, g) & (uint64_t)(ts->nslot - 1);
  zsq_tensor_t *t = NULL;
  for (;; k = (k + 1) & (uint64_t)(ts->nslot - 1)) {
    const int32_t s = ts->slot[k];
    if (s == 0) break;
    t = &ts->t[s - 1];
    if (t->base == base && t->h == h && t->w == w && t->g == g) break;
    t = NULL;
  }
  if (t && is_store && t->read) t = NULL; /* written again after a read: a new tensor */
  if (!t) {
    if (ts->n >= ts->cap)
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: more than %d tensors in "
                  "the arena", i, ZSQ_RT_MAX_TENSORS);
    t = &ts->t[ts->n++];
    t->base = base, t->h = h, t->w = w, t->g = g;
    t->first = i;
    t->read = t->written = 0;
    ts->slot[k] = (int32_t)ts->n;
  }
  t->last = i;
  if (is_store) t->written = 1;
  else if (!t->written) t->read = 2; /* read before any write: a program input */
  else t->read = 1;
  return ZSQ_RT_OK;
}

static int by_base(const void *a, const void *b) {
  const zsq_tensor_t *x = (const zsq_tensor_t *)a, *y = (const zsq_tensor_t *)b;
  return x->base < y->base ? -1 : x->base > y->base ? 1 : (x->first < y->first ? -1 : x->first > y->first);
}

static void live_text(char *buf, size_t n, int64_t v, int64_t n_insn) {
  if (v < 0) snprintf(buf, n, "start");
  else if (v >= n_insn) snprintf(buf, n, "end");
  else snprintf(buf, n, "%lld", (long long)v);
}

/* Sorted by base, each tensor is compared with the ones that start inside it: O(T log T)
 * plus the pairs that share words. Reports the conflict that begins first. */
static int check_lifetimes(zsq_tensors_t *ts, int64_t n_insn, char *err, size_t errlen) {
  int64_t a, b, at = -1, bt = -1, when = -1;
  if (ts->n < 2) return ZSQ_RT_OK;
  qsort(ts->t, (size_t)ts->n, sizeof *ts->t, by_base);
  for (a = 0; a < ts->n; a++) { /* live intervals, with the host's ends */
    zsq_tensor_t *t = &ts->t[a];
    if (t->read == 2) t->first = -1;
    if (t->written && !t->read) t->last = n_insn;
  }
  for (a = 0; a < ts->n; a++) {
    const zsq_tensor_t *x = &ts->t[a];
    const int64_t end = x->base + x->h * x->w * x->g;
    for (b = a + 1; b < ts->n && ts->t[b].base < end; b++) {
      const zsq_tensor_t *y = &ts->t[b];
      int64_t start;
      if (y->h == x->h && y->w == x->w && y->g == x->g && y->base == x->base) continue;
      if (x->first > y->last || y->first > x->last) continue; /* never live together */
      start = x->first > y->first ? x->first : y->first;
      if (start < 0) start = 0; /* two program inputs: the first instruction */
      if (when < 0 || start < when) when = start, at = a, bt = b;
    }
  }
  if (when >= 0) {
    const zsq_tensor_t *x = &ts->t[at], *y = &ts->t[bt];
    char x0[24], x1[24], y0[24], y1[24];
    live_text(x0, sizeof x0, x->first, n_insn);
    live_text(x1, sizeof x1, x->last, n_insn);
    live_text(y0, sizeof y0, y->first, n_insn);
    live_text(y1, sizeof y1, y->last, n_insn);
    return fail(err, errlen, ZSQ_RT_ERR_ARENA,
                "instruction %lld: the tensor at arena word %lld (%lldx%lldx%lld words, live "
                "over instructions [%s, %s]) overlaps the tensor at word %lld (%lldx%lldx%lld "
                "words, live over [%s, %s]): one would overwrite the other", (long long)when,
                (long long)x->base, (long long)x->h, (long long)x->w, (long long)x->g, x0, x1,
                (long long)y->base, (long long)y->h, (long long)y->w, (long long)y->g, y0, y1);
  }
  return ZSQ_RT_OK;
}

int zsq_rt_validate(const zsq_rt_program_t *p, char *err, size_t errlen) {
  int32_t regs[3][64];
  int64_t pushed[4] = {0, 0, 0, 0}, popped[4] = {0, 0, 0, 0};
  zsq_tensors_t ts;
  long long i;
  int k, rc;
  if (err && errlen) err[0] = 0;
  if (!p) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null program");
  if (!p->insn || !p->wgt) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null instruction or weight pointer");
  if (p->n_insn < 1 || p->n_insn > ZSQ_RT_MAX_INSN)
    return fail(err, errlen, ZSQ_RT_ERR_ARG, "n_insn %lld outside [1, %d]", (long long)p->n_insn,
                ZSQ_RT_MAX_INSN);
  if (p->wgt_words < 1 || p->arena_words < 1)
    return fail(err, errlen, ZSQ_RT_ERR_ARG, "wgt_words %lld and arena_words %lld must be > 0",
                (long long)p->wgt_words, (long long)p->arena_words);
  if (p->rd_latency < 0 || p->wr_latency < 0 || p->outstanding < 1 || p->beat_x100 < 1)
    return fail(err, errlen, ZSQ_RT_ERR_ARG,
                "timing constants rd_latency %lld, wr_latency %lld (>= 0), outstanding %lld, "
                "beat_x100 %lld (>= 1)", (long long)p->rd_latency, (long long)p->wr_latency,
                (long long)p->outstanding, (long long)p->beat_x100);
  /* the lifetime table, sized by the program's LOAD_INPUT / STORE words */
  memset(&ts, 0, sizeof ts);
  for (i = 0; i < p->n_insn; i++) {
    const int op = (int)(p->insn[i] & 15u);
    if ((op == ZSQ_OP_LOAD_INPUT || op == ZSQ_OP_STORE || op == ZSQ_OP_LOAD_BYPASS) &&
        ts.cap < ZSQ_RT_MAX_TENSORS)
      ts.cap++;
  }
  if (ts.cap > 0) {
    for (ts.nslot = 2; ts.nslot < 2 * ts.cap; ts.nslot *= 2) {
    }
    ts.t = (zsq_tensor_t *)malloc((size_t)ts.cap * sizeof *ts.t);
    ts.slot = (int32_t *)calloc((size_t)ts.nslot, sizeof *ts.slot);
    if (!ts.t || !ts.slot) {
      free(ts.t);
      free(ts.slot);
      return fail(err, errlen, ZSQ_RT_ERR_NOMEM, "no memory for the tensor table (%lld tensors)",
                  (long long)ts.cap);
    }
  }
  memset(regs, 0, sizeof regs);
  rc = ZSQ_RT_OK;
  for (i = 0; i < p->n_insn && rc == ZSQ_RT_OK; i++) {
    const uint64_t w = p->insn[i];
    const int op = (int)(w & 15u);
    const int m = route(w);
    if (m < 0) {
      rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: unknown opcode %d", i, op);
      break;
    }
    if (op == ZSQ_OP_SET && m == 3) { /* reg[7:6] == 3: fetch would send it to every module */
      rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: SET of register %d, which "
                "belongs to no module", i, (int)((w >> 16) & 0xFFu));
      break;
    }
    if (m == 3) {
      /* every module stops at its first FINISH: one more word would never execute */
      if (i != p->n_insn - 1)
        rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: FINISH before the end "
                  "(%lld words)", i, (long long)p->n_insn);
      continue;
    }
    if (op == ZSQ_OP_SET) {
      const int reg = (int)((w >> 16) & 0xFFu);
      regs[m][reg & 63] = (int32_t)(uint32_t)(w >> 32);
    }
    /* dependency flags (pop before, push after; SET words carry them too) */
    {
      const int pop_prev = (int)((w >> 4) & 1u), pop_next = (int)((w >> 5) & 1u);
      const int push_prev = (int)((w >> 6) & 1u), push_next = (int)((w >> 7) & 1u);
      if ((pop_prev && k_pop_prev[m] < 0) || (pop_next && k_pop_next[m] < 0) ||
          (push_prev && k_push_prev[m] < 0) || (push_next && k_push_next[m] < 0)) {
        rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: dependency flag of a %s "
                  "instruction towards a module that does not exist", i, k_module[m]);
        break;
      }
      if (pop_prev) popped[k_pop_prev[m]]++;
      if (pop_next) popped[k_pop_next[m]]++;
      if (push_prev) pushed[k_push_prev[m]]++;
      if (push_next) pushed[k_push_next[m]]++;
    }
    if (op == ZSQ_OP_SET) continue;
    /* fields bounded first, then the derived registers, then the DDR footprint */
    if (m == ZSQ_MODULE_LOAD) {
      rc = check_load(p, w, regs[0], i, err, errlen);
      if (rc == ZSQ_RT_OK && op == ZSQ_OP_LOAD_INPUT)
        rc = touch_tensor(&ts, regs[0][ZSQ_LI_BASE], regs[0][ZSQ_LI_H], regs[0][ZSQ_LI_W],
                          regs[0][ZSQ_LI_G], 0, i, err, errlen);
      if (rc == ZSQ_RT_OK && op == ZSQ_OP_LOAD_BYPASS) /* a read: keeps the bypass live */
        rc = touch_tensor(&ts, regs[0][ZSQ_LB_BASE], regs[0][ZSQ_LB_H], regs[0][ZSQ_LB_W],
                          regs[0][ZSQ_LB_G], 0, i, err, errlen);
    } else if (m == ZSQ_MODULE_COMPUTE) {
      rc = check_compute(w, regs[1], i, err, errlen);
    } else {
      rc = check_store(p, regs[2], i, err, errlen);
      if (rc == ZSQ_RT_OK)
        rc = touch_tensor(&ts, regs[2][ZSQ_ST_BASE - 128], regs[2][ZSQ_ST_H - 128],
                          regs[2][ZSQ_ST_W - 128], regs[2][ZSQ_ST_G - 128], 1, i, err, errlen);
    }
  }
  if (rc == ZSQ_RT_OK && route(p->insn[p->n_insn - 1]) != 3)
    rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "the program does not end with FINISH "
              "(last of %lld words has opcode %d)", (long long)p->n_insn,
              (int)(p->insn[p->n_insn - 1] & 15u));
  for (k = 0; k < 4 && rc == ZSQ_RT_OK; k++) {
    static const char *names[4] = {"load->compute", "compute->load", "compute->store",
                                   "store->compute"};
    if (pushed[k] != popped[k])
      rc = fail(err, errlen, ZSQ_RT_ERR_INSN, "%s tokens: %lld pushed, %lld popped "
                "(the engine would hang)", names[k], (long long)pushed[k], (long long)popped[k]);
  }
  if (rc == ZSQ_RT_OK) rc = check_lifetimes(&ts, p->n_insn, err, errlen);
  free(ts.t);
  free(ts.slot);
  return rc;
}

int zsq_rt_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats, char *err,
               size_t errlen) {
  int rc = zsq_rt_validate(p, err, errlen);
  if (rc != ZSQ_RT_OK) return rc;
  if (!arena) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null arena");
  rc = zsq_rt_backend_run(p, arena, stats, err, errlen);
  if (rc != ZSQ_RT_OK && err && errlen && err[0] == 0)
    fail(err, errlen, rc, "%s backend", zsq_rt_backend());
  return rc;
}

/* ---- input and output ranges (zsq_rt_run_io) ----
 * The board copies only these ranges between the caller's arena and its DMA copy, so a
 * range that misses a program input would run the engine on stale words, and one that
 * misses its output would return the caller's old words: both refused here, where the
 * simulation sees them too. */

static int by_word(const void *a, const void *b) {
  const zsq_rt_range_t *x = (const zsq_rt_range_t *)a, *y = (const zsq_rt_range_t *)b;
  return x->word < y->word ? -1 : x->word > y->word;
}

/* Sorts the n ranges and merges the ones that touch; drops empty ones; returns the count. */
static int merge_ranges(zsq_rt_range_t *r, int n) {
  int k, m = 0;
  qsort(r, (size_t)n, sizeof *r, by_word);
  for (k = 0; k < n; k++) {
    if (r[k].words == 0) continue;
    if (m > 0 && r[k].word <= r[m - 1].word + r[m - 1].words) {
      const int64_t end = r[k].word + r[k].words;
      if (end > r[m - 1].word + r[m - 1].words) r[m - 1].words = end - r[m - 1].word;
    } else {
      r[m++] = r[k];
    }
  }
  return m;
}

/* [lo, hi) inside one of the merged ranges r[0..n) (merged: then it is inside one). */
static int covered(const zsq_rt_range_t *r, int n, int64_t lo, int64_t hi) {
  int k;
  for (k = 0; k < n; k++)
    if (r[k].word <= lo && hi <= r[k].word + r[k].words) return 1;
  return 0;
}

static int check_ranges(const zsq_rt_program_t *p, const zsq_rt_range_t *r, int n,
                        const char *what, char *err, size_t errlen) {
  int k;
  if (n < 0 || (n > 0 && !r))
    return fail(err, errlen, ZSQ_RT_ERR_ARG, "%d %s ranges at %p", n, what, (const void *)r);
  for (k = 0; k < n; k++)
    if (r[k].word < 0 || r[k].words < 0 || r[k].word > p->arena_words ||
        r[k].words > p->arena_words - r[k].word)
      return fail(err, errlen, ZSQ_RT_ERR_ARG, "%s range %d: words [%lld, %lld) outside the "
                  "arena of %lld words", what, k, (long long)r[k].word,
                  (long long)r[k].word + (long long)r[k].words, (long long)p->arena_words);
  return ZSQ_RT_OK;
}

int zsq_rt_check_io(const zsq_rt_program_t *p, const uint64_t *arena, const zsq_rt_range_t *in,
                    int n_in, const zsq_rt_range_t *out, int n_out, char *err, size_t errlen) {
  int32_t regs[3][64];
  zsq_rt_range_t *ins = NULL, *stored = NULL;
  int64_t *seen = NULL; /* open addressing: (base, H, W, G) of the tensors stored so far;
                           H == 0 marks a free slot */
  int64_t n_store = 0, n_stored = 0, nslot = 2, i;
  int rc = zsq_rt_validate(p, err, errlen), m_in, k;
  if (rc != ZSQ_RT_OK) return rc;
  if (!arena) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null arena");
  rc = check_ranges(p, in, n_in, "input", err, errlen);
  if (rc == ZSQ_RT_OK) rc = check_ranges(p, out, n_out, "output", err, errlen);
  if (rc != ZSQ_RT_OK) return rc;
  for (i = 0; i < p->n_insn; i++) n_store += (p->insn[i] & 15u) == ZSQ_OP_STORE;
  while (nslot < 2 * n_store + 2) nslot *= 2;
  ins = (zsq_rt_range_t *)malloc(((size_t)n_in + 1) * sizeof *ins);
  stored = (zsq_rt_range_t *)malloc(((size_t)n_store + 1) * sizeof *stored);
  seen = (int64_t *)calloc((size_t)nslot * 4, sizeof *seen);
  if (!ins || !stored || !seen) {
    rc = fail(err, errlen, ZSQ_RT_ERR_NOMEM, "no memory to check %d input ranges and %lld "
              "STOREs", n_in, (long long)n_store);
    goto done;
  }
  if (n_in > 0) memcpy(ins, in, (size_t)n_in * sizeof *ins);
  m_in = merge_ranges(ins, n_in);
  memset(regs, 0, sizeof regs);
  /* the program is valid: every field is bounded, no product below overflows */
  for (i = 0; i < p->n_insn && rc == ZSQ_RT_OK; i++) {
    const uint64_t w = p->insn[i];
    const int op = (int)(w & 15u);
    if (op == ZSQ_OP_SET) {
      regs[route(w) & 3][((w >> 16) & 0xFFu) & 63] = (int32_t)(uint32_t)(w >> 32);
    } else if (op == ZSQ_OP_STORE || op == ZSQ_OP_LOAD_INPUT || op == ZSQ_OP_LOAD_BYPASS) {
      const int st = op == ZSQ_OP_STORE, bp = op == ZSQ_OP_LOAD_BYPASS;
      const int32_t *r = st ? regs[2] : regs[0];
      /* LOAD_BYPASS: the same fields 32 registers up (isa.py LB_* = LI_* + 32) */
      const int o = bp ? ZSQ_LB_BASE - ZSQ_LI_BASE : 0;
      const int64_t base = st ? r[ZSQ_ST_BASE - 128] : r[ZSQ_LI_BASE + o];
      const int64_t H = st ? r[ZSQ_ST_H - 128] : r[ZSQ_LI_H + o];
      const int64_t W = st ? r[ZSQ_ST_W - 128] : r[ZSQ_LI_W + o];
      const int64_t G = st ? r[ZSQ_ST_G - 128] : r[ZSQ_LI_G + o];
      uint64_t s = desc_hash(base, H, W, G) & (uint64_t)(nslot - 1);
      int64_t *e = seen + 4 * s;
      while (e[1] != 0 && !(e[0] == base && e[1] == H && e[2] == W && e[3] == G)) {
        s = (s + 1) & (uint64_t)(nslot - 1);
        e = seen + 4 * s;
      }
      if (st) {
        if (e[1] == 0) { /* a new tensor: its words are the program's to write */
          e[0] = base, e[1] = H, e[2] = W, e[3] = G;
          stored[n_stored].word = base;
          stored[n_stored++].words = H * W * G;
        }
      } else if (e[1] == 0) { /* read before any STORE of it: a program input */
        const int64_t y0 = r[ZSQ_LI_Y0 + o], x0 = r[ZSQ_LI_X0 + o], g0 = r[ZSQ_LI_G0 + o];
        const int64_t ya = y0 < 0 ? 0 : y0, xa = x0 < 0 ? 0 : x0;
        const int64_t yb = y0 + r[ZSQ_LI_ROWS + o] > H ? H : y0 + r[ZSQ_LI_ROWS + o];
        const int64_t xb = x0 + r[ZSQ_LI_COLS + o] > W ? W : x0 + r[ZSQ_LI_COLS + o];
        if (ya < yb && xa < xb) {
          const int64_t lo = base + (ya * W + xa) * G + g0;
          const int64_t hi = base + ((yb - 1) * W + xb - 1) * G + g0 + r[ZSQ_LI_NG + o];
          if (!covered(ins, m_in, lo, hi))
            rc = fail(err, errlen, ZSQ_RT_ERR_ARG, "instruction %lld: LOAD_INPUT/BYPASS reads arena "
                      "words [%lld, %lld) of a program input, not inside the input ranges (the "
                      "board would not copy them)", (long long)i, (long long)lo, (long long)hi);
        }
      }
    }
  }
  if (rc == ZSQ_RT_OK) {
    const int m_st = merge_ranges(stored, (int)n_stored);
    for (k = 0; k < n_out; k++)
      if (out[k].words > 0 && !covered(stored, m_st, out[k].word, out[k].word + out[k].words)) {
        rc = fail(err, errlen, ZSQ_RT_ERR_ARG, "output range %d: arena words [%lld, %lld) are "
                  "not all inside tensors the program stores", k, (long long)out[k].word,
                  (long long)(out[k].word + out[k].words));
        break;
      }
  }
done:
  free(ins);
  free(stored);
  free(seen);
  return rc;
}
