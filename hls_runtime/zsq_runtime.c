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
    case ZSQ_RT_ERR_ARENA: return "access outside the activation arena";
    case ZSQ_RT_ERR_BLOB: return "access outside the weights";
    case ZSQ_RT_ERR_DEVICE: return "accelerator device unavailable";
    case ZSQ_RT_ERR_NOMEM: return "DMA buffer too small";
    case ZSQ_RT_ERR_TIMEOUT: return "accelerator timeout";
    case ZSQ_RT_ERR_INSN: return "malformed instruction stream";
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
    case ZSQ_OP_LOAD_PARAMS: return ZSQ_MODULE_LOAD;
    case ZSQ_OP_CONV:
    case ZSQ_OP_REQUANT:
    case ZSQ_OP_POOL: return ZSQ_MODULE_COMPUTE;
    case ZSQ_OP_STORE: return ZSQ_MODULE_STORE;
    case ZSQ_OP_FINISH: return 3;
    default: return -1;
  }
}

static int in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

/* Token streams: 0 load->compute, 1 compute->load, 2 compute->store, 3 store->compute;
 * -1 where a module has no neighbour in that direction. Indexed [module]. */
static const int k_pop_prev[3] = {-1, 0, 2};
static const int k_pop_next[3] = {1, 3, -1};
static const int k_push_prev[3] = {-1, 1, 3};
static const int k_push_next[3] = {0, 2, -1};
static const char *k_module[3] = {"load", "compute", "store"};

/* DDR footprint of a load instruction (the registers as SET left them). */
static int check_load(const zsq_rt_program_t *p, uint64_t w, const int32_t *r, long long i,
                      char *err, size_t errlen) {
  const int op = (int)(w & 15u);
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int64_t base = r[ZSQ_LI_BASE], H = r[ZSQ_LI_H], W = r[ZSQ_LI_W], G = r[ZSQ_LI_G];
    const int64_t y0 = r[ZSQ_LI_Y0], x0 = r[ZSQ_LI_X0], g0 = r[ZSQ_LI_G0];
    const int64_t rows = r[ZSQ_LI_ROWS], cols = r[ZSQ_LI_COLS], ng = r[ZSQ_LI_NG];
    int64_t ya, yb, xa, xb;
    if (!in_range(H, 1, 1 << 14) || !in_range(W, 1, 1 << 14) || !in_range(G, 1, 1 << 12) ||
        !in_range(rows, 1, 1 << 14) || !in_range(cols, 1, 1 << 14) || !in_range(ng, 1, G) ||
        !in_range(g0, 0, G - ng) || !in_range(y0, -(1 << 14), 1 << 14) ||
        !in_range(x0, -(1 << 14), 1 << 14))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: LOAD_INPUT: bad geometry", i);
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

/* DDR footprint of a STORE: the whole destination tensor lies in the arena. */
static int check_store(const zsq_rt_program_t *p, const int32_t *r, long long i, char *err,
                       size_t errlen) {
  const int64_t base = r[ZSQ_ST_BASE - 128], H = r[ZSQ_ST_H - 128], W = r[ZSQ_ST_W - 128];
  const int64_t G = r[ZSQ_ST_G - 128], y0 = r[ZSQ_ST_Y0 - 128], x0 = r[ZSQ_ST_X0 - 128];
  const int64_t g0 = r[ZSQ_ST_G0 - 128], rows = r[ZSQ_ST_ROWS - 128];
  const int64_t cols = r[ZSQ_ST_COLS - 128], ng = r[ZSQ_ST_NG - 128];
  if (!in_range(H, 1, 1 << 14) || !in_range(W, 1, 1 << 14) || !in_range(G, 1, 1 << 12) ||
      !in_range(rows, 1, H) || !in_range(cols, 1, W) || !in_range(ng, 1, G) ||
      !in_range(g0, 0, G - ng) || !in_range(y0, 0, H - rows) || !in_range(x0, 0, W - cols))
    return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: STORE: bad geometry", i);
  if (base < 0 || base + H * W * G > p->arena_words)
    return fail(err, errlen, ZSQ_RT_ERR_ARENA,
                "instruction %lld: STORE writes words [%lld, %lld), arena has %lld", i,
                (long long)base, (long long)(base + H * W * G), (long long)p->arena_words);
  return ZSQ_RT_OK;
}

int zsq_rt_validate(const zsq_rt_program_t *p, char *err, size_t errlen) {
  int32_t regs[3][64];
  int64_t pushed[4] = {0, 0, 0, 0}, popped[4] = {0, 0, 0, 0};
  long long i;
  int k;
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
  memset(regs, 0, sizeof regs);
  for (i = 0; i < p->n_insn; i++) {
    const uint64_t w = p->insn[i];
    const int op = (int)(w & 15u);
    const int m = route(w);
    int rc;
    if (m < 0) return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: unknown opcode %d", i, op);
    if (op == ZSQ_OP_SET && m == 3) /* reg[7:6] == 3: fetch would send it to every module */
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: SET of register %d, which "
                  "belongs to no module", i, (int)((w >> 16) & 0xFFu));
    if (m == 3) {
      /* every module stops at its first FINISH: one more word would never execute */
      if (i != p->n_insn - 1)
        return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: FINISH before the end "
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
          (push_prev && k_push_prev[m] < 0) || (push_next && k_push_next[m] < 0))
        return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: dependency flag of a %s "
                    "instruction towards a module that does not exist", i, k_module[m]);
      if (pop_prev) popped[k_pop_prev[m]]++;
      if (pop_next) popped[k_pop_next[m]]++;
      if (push_prev) pushed[k_push_prev[m]]++;
      if (push_next) pushed[k_push_next[m]]++;
    }
    /* the engine reads the compiler's products (strides, trip counts, start addresses):
     * they must match the operands the footprint checks below are made on */
    if (op != ZSQ_OP_SET && !zsq_isa_derived_ok(op, regs[m]))
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "instruction %lld: a derived register does "
                  "not match its operands", i);
    rc = ZSQ_RT_OK;
    if (m == ZSQ_MODULE_LOAD && op != ZSQ_OP_SET) rc = check_load(p, w, regs[0], i, err, errlen);
    else if (m == ZSQ_MODULE_STORE && op == ZSQ_OP_STORE) rc = check_store(p, regs[2], i, err, errlen);
    if (rc != ZSQ_RT_OK) return rc;
  }
  if (route(p->insn[p->n_insn - 1]) != 3)
    return fail(err, errlen, ZSQ_RT_ERR_INSN, "the program does not end with FINISH "
                "(last of %lld words has opcode %d)", (long long)p->n_insn,
                (int)(p->insn[p->n_insn - 1] & 15u));
  for (k = 0; k < 4; k++) {
    static const char *names[4] = {"load->compute", "compute->load", "compute->store",
                                   "store->compute"};
    if (pushed[k] != popped[k])
      return fail(err, errlen, ZSQ_RT_ERR_INSN, "%s tokens: %lld pushed, %lld popped "
                  "(the engine would hang)", names[k], (long long)pushed[k], (long long)popped[k]);
  }
  return ZSQ_RT_OK;
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
