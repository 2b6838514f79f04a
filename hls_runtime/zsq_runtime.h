/*
 * zsq_runtime.h - public C99 API of the zynq-squeeze runtime (host simulation and ARM).
 *
 * A compiled model is a program of the decoupled engine (docs/ENGINE.md): 64-bit
 * instruction words ending with FINISH, a region of 64-bit weight and parameter words,
 * and the size of the activation arena (64-bit words, HWC tensors with channels padded
 * to groups of 8) that the caller owns: inputs written at their word offsets before
 * zsq_rt_run, outputs read after.
 *
 * Backends (one is linked in):
 *   csim - runs the engine's C simulation (zsqd_run of src/zsq_dae_sim.cpp, the HLS C++
 *          compiled by the host compiler against Xilinx's ap_types), timed with the
 *          program's HP-port constants;
 *   zynq - drives the synthesized zsq_dae IP on a Zynq board: AXI-Lite registers through
 *          /dev/uioN (env ZSQ_UIO, default /dev/uio0), one physically contiguous buffer
 *          from u-dma-buf (env ZSQ_UDMABUF, default udmabuf0) holding instructions and
 *          weights (copied once per program) and the arena (only the input and output
 *          words are copied per run, see zsq_rt_run_io); waits for ap_done on the UIO
 *          interrupt or by polling, with a timeout (env ZSQ_TIMEOUT_MS, default 10000).
 *          The environment is described in backends/zynq.c.
 *
 * The s_axilite register map of the IP is in zsq_regs.h, generated from the interface
 * definition python/zynq_squeeze/engine/interface.py (ENGINE_TOP); check it against the
 * xzsq_dae_hw.h of your build: python -m zynq_squeeze.engine.interface --check <file>.
 *
 * Nothing here aborts: every failure is a negative code and a message in err.
 */
#ifndef ZSQ_RUNTIME_H
#define ZSQ_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZSQ_RT_OK 0
/* Engine codes (zsq_dae_sim.h ZSQD_ERR_*, -1..-8) pass through unchanged. */
#define ZSQ_RT_ERR_ARG -100     /* null pointer, empty program, bad sizes or timing */
#define ZSQ_RT_ERR_ARENA -101   /* a LOAD_INPUT / STORE reaches outside the arena, or
                                   overwrites a tensor that is still live */
#define ZSQ_RT_ERR_BLOB -102    /* a LOAD_WEIGHT / LOAD_PARAMS reaches outside the weights */
#define ZSQ_RT_ERR_DEVICE -103  /* cannot open / map the accelerator or DMA buffer */
#define ZSQ_RT_ERR_NOMEM -104   /* DMA buffer too small for the program (or no host memory) */
#define ZSQ_RT_ERR_TIMEOUT -105 /* accelerator did not finish in time */
#define ZSQ_RT_ERR_INSN -106    /* malformed instruction stream (opcode, FINISH, tokens) */
#define ZSQ_RT_ERR_ENGINE -107  /* the accelerator signalled done without a valid result: no
                                   cycle count (cycles_ap_vld clear) or fewer cycles than
                                   instructions (the IP has no status register; see zynq.c) */

/* Instruction count limit: the IP's insn_count register is 32 bits, the simulation's
 * limit is ZSQD_MAX_INSN (zsq_dae_sim.h). */
#define ZSQ_RT_MAX_INSN (1 << 24)

typedef struct zsq_rt_program {
  const uint64_t *insn;  /* n_insn instruction words, the last one FINISH */
  int64_t n_insn;
  const uint64_t *wgt;   /* wgt_words words of packed weights and params */
  int64_t wgt_words;
  int64_t arena_words;   /* size of the activation arena the caller passes */
  /* HP-port timing model of the simulation (docs/ENGINE.md "Timing by execution");
   * ignored by the board, which counts real cycles. */
  int64_t rd_latency;    /* cycles from a read address to its first beat */
  int64_t wr_latency;    /* cycles from the last write beat to the response */
  int64_t outstanding;   /* AXI transactions in flight per port (>= 1) */
  int64_t beat_x100;     /* cycles x 100 per 64-bit beat (>= 1) */
} zsq_rt_program_t;

/* What a run measured. The board measures only cycles (the IP's hardware counter); it
 * sets every other field to -1 (not measured). */
typedef struct zsq_rt_stats {
  int64_t cycles;        /* the whole program, PL clock cycles */
  int64_t load_busy;     /* cycles each module spent executing (simulation) */
  int64_t compute_busy;
  int64_t store_busy;
  int64_t macs;          /* executed MACs (simulation) */
  int64_t rd_bytes;      /* activation, weight and param bytes read (simulation) */
  int64_t wr_bytes;      /* activation bytes written (simulation) */
  int64_t copied_bytes;  /* bytes the host copied between the caller's memory and the DMA
                            buffer in this run: the input and output ranges, plus the
                            instructions and weights when the program was not resident
                            yet (board); 0 for the simulation, which runs in place */
} zsq_rt_stats_t;

/* A range of arena words, [word, word + words). */
typedef struct zsq_rt_range {
  int64_t word;
  int64_t words;
} zsq_rt_range_t;

/* Check the program: sizes > 0, timing constants, every word a known opcode with flags
 * towards modules that exist, SET registers routed to a module, exactly one FINISH and
 * it is last, dependency tokens balanced between each pair of modules, every field of
 * every instruction within its range (sizes and offsets up to 2^14, channel groups up to
 * 2^12; any 32-bit register values are safe: fields are bounded before they are
 * multiplied) and its derived registers equal to their products, every LOAD_INPUT /
 * STORE / LOAD_WEIGHT / LOAD_PARAMS inside the arena / weights, and no two tensors live at
 * the same time sharing arena words (ZSQ_RT_ERR_ARENA: a STORE would overwrite a tensor
 * still to be read; a tensor is a LOAD_INPUT / STORE descriptor, at most 4096 of them).
 * The board has no other guard against writing outside its buffer. Returns 0 or a
 * negative code with a message in err (if non-NULL); ZSQ_RT_ERR_NOMEM if the tensor
 * table (a few hundred KiB at most) cannot be allocated. */
int zsq_rt_validate(const zsq_rt_program_t *p, char *err, size_t errlen);

/* Validate, then run the program on `arena` (arena_words 64-bit words, updated in place).
 * stats may be NULL. */
int zsq_rt_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats, char *err,
               size_t errlen);

/* zsq_rt_run, moving only part of the arena: the caller has written the n_in input ranges
 * and reads the n_out output ranges; the rest of `arena` is neither read nor written by
 * the board, whose DMA copy of the arena keeps whatever earlier runs left there (the
 * engine writes every other word it reads in the same run). The ranges must lie inside
 * the arena, every word a LOAD_INPUT reads before any STORE wrote its tensor (a program
 * input) must be in an input range, and every output word must be written by a STORE
 * (ZSQ_RT_ERR_ARG otherwise: a range the board would not copy). in / out may be NULL when
 * their count is 0. The csim backend checks the ranges and runs on `arena` in place.
 * Defined by the backend (backends/csim.c, backends/zynq.c). zsq_rt_run is the same with
 * the whole arena as the one input and the one output range. */
int zsq_rt_run_io(const zsq_rt_program_t *p, uint64_t *arena, const zsq_rt_range_t *in,
                  int n_in, const zsq_rt_range_t *out, int n_out, zsq_rt_stats_t *stats,
                  char *err, size_t errlen);

/* What zsq_rt_run_io checks before the backend runs: zsq_rt_validate, a non-NULL arena and
 * the ranges as described above. Returns 0 or a negative code with a message. */
int zsq_rt_check_io(const zsq_rt_program_t *p, const uint64_t *arena, const zsq_rt_range_t *in,
                    int n_in, const zsq_rt_range_t *out, int n_out, char *err, size_t errlen);

/* One line on the backend's state (the zynq backend: device nodes, buffer, cache mode,
 * interrupt or polling, bytes copied so far), for logs and tests; never NULL. */
const char *zsq_rt_backend_info(void);

/* Static description of an error code (never NULL). */
const char *zsq_rt_strerror(int code);

/* "csim" or "zynq". */
const char *zsq_rt_backend(void);

/* Backend entry (backends/csim.c or backends/zynq.c); called by zsq_rt_run after
 * validation. */
int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen);

/* Release what a backend keeps between runs (the zynq backend's mappings and the copy of
 * the last program's instructions and weights in the DMA buffer). Safe to call anytime. */
void zsq_rt_release(void);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_RUNTIME_H */
