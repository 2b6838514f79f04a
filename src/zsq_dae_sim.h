/*
 * zsq_dae_sim.h - the C API of the decoupled engine's simulation (zsq_dae_sim.cpp).
 *
 * zsqd_run executes a program (64-bit instruction words) on the simulated engine: the
 * weights/params region and the activation arena are 64-bit word arrays, timing holds
 * the HP-port constants, insn_end (optional, n_insn entries, zeroed by the caller)
 * receives each instruction's completion cycle. Returns 0 or a negative ZSQD_ERR_* code
 * with a message naming the instruction; never aborts.
 */
#ifndef ZSQ_DAE_SIM_H
#define ZSQ_DAE_SIM_H

#include <stdint.h>

#define ZSQD_MAX_INSN (1 << 24)
#define ZSQD_SHIFT_MAX 40 /* quantize/requant.py SHIFT_MAX */
#define ZSQD_WIDE_SHIFT_MAX 47 /* quantize/requant.py WIDE_SHIFT_MAX (ZSQD_WIDE_RQ engines) */
#define ZSQD_AVG_BIAS_MAX ((1 << 24) - 1) /* RQ_AVG_BIAS: |d * zp| within the 25-bit A port (quantize/requant.py A_MAX) */

#define ZSQD_ERR_ARG -1      /* null pointer, empty program, bad timing constants */
#define ZSQD_ERR_OPCODE -2   /* unknown opcode, or an instruction on the wrong module */
#define ZSQD_ERR_FIELD -3    /* register values out of range for the instruction */
#define ZSQD_ERR_BUFFER -4   /* a tile overflows an on-chip buffer */
#define ZSQD_ERR_DDR -5      /* an access outside the weights or the arena */
#define ZSQD_ERR_REQUANT -6  /* requantization parameters out of range */
#define ZSQD_ERR_PROGRAM -7  /* no FINISH, unbalanced tokens, flags towards no module */
#define ZSQD_ERR_DEADLOCK -8 /* a module waits for a token that is never pushed */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t rd_latency;  /* cycles from a read address to its first beat */
  int64_t wr_latency;  /* cycles from the last write beat to the response */
  int64_t outstanding; /* AXI transactions in flight per port */
  int64_t beat_x100;   /* cycles x 100 per 64-bit beat (DDR shared by the data ports) */
} zsqd_timing_t;

typedef struct {
  int64_t cycles;       /* the whole program, at the PL clock */
  int64_t load_busy;    /* cycles each module spent executing */
  int64_t compute_busy;
  int64_t store_busy;
  int64_t macs;         /* executed MACs (pe_oc x 8 per CONV iteration) */
  int64_t rd_bytes;     /* activation, weight and param bytes read */
  int64_t wr_bytes;     /* activation bytes written */
} zsqd_stats_t;

int zsqd_run(const uint64_t *insn, int64_t n_insn, const uint64_t *wgt, int64_t n_wgt,
             uint64_t *act, int64_t n_act, const zsqd_timing_t *timing, int64_t *insn_end,
             zsqd_stats_t *stats, char *err, int errlen);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_DAE_SIM_H */
