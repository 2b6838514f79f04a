/*
 * zsq_runtime.h - public C99 API of the zynq-squeeze runtime (host simulation and ARM).
 *
 * A compiled model is a program: layer descriptors, a packed int8 weight blob and an
 * int32 parameter blob (see docs/ENGINE.md), plus an activation arena of arena_bytes the
 * caller owns (inputs written at their offsets before zsq_rt_run, outputs read after).
 *
 * Backends (one is linked in):
 *   csim - calls the engine's top function zsq_engine() (the HLS C++ compiled by g++);
 *   zynq - drives the synthesized IP on a Zynq board: AXI-Lite registers through
 *          /dev/uioN (env ZSQ_UIO, default /dev/uio0), one physically contiguous DMA
 *          buffer from u-dma-buf (env ZSQ_UDMABUF, default udmabuf0), polls ap_done with
 *          a timeout (env ZSQ_TIMEOUT_MS, default 10000).
 *
 * Assumed s_axilite register map of the IP (Vitis HLS, 64-bit m_axi addresses, ap_return
 * on s_axilite); check it against the generated x<top>_hw.h of your build:
 *   0x00 ap_ctrl: bit0 ap_start, bit1 ap_done, bit2 ap_idle, bit3 ap_ready
 *   0x04 GIE  0x08 IER  0x0c ISR   0x10 ap_return
 *   0x18/0x1c prog (lo/hi)   0x24 n_layers   0x2c/0x30 act   0x38/0x3c weights
 *   0x44/0x48 params         0x50/0x54 stats
 * Each can be overridden at compile time (ZSQ_REG_* macros in backends/zynq.c).
 */
#ifndef ZSQ_RUNTIME_H
#define ZSQ_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "zsq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime error codes (engine codes ZSQ_ERR_* from zsq_types.h pass through unchanged). */
#define ZSQ_RT_ERR_ARG -100     /* null pointer / bad count */
#define ZSQ_RT_ERR_ARENA -101   /* a tensor lies outside the arena */
#define ZSQ_RT_ERR_BLOB -102    /* weights or params of a layer lie outside their blob */
#define ZSQ_RT_ERR_DEVICE -103  /* cannot open / map the accelerator or DMA buffer */
#define ZSQ_RT_ERR_NOMEM -104   /* DMA buffer too small for the program */
#define ZSQ_RT_ERR_TIMEOUT -105 /* accelerator did not finish in time */

typedef struct zsq_rt_program {
  const zsq_layer_t *layers;  /* n_layers descriptors */
  int32_t n_layers;
  const int8_t *weights;      /* packed weights */
  size_t weights_bytes;
  const int32_t *params;      /* (bias, mult, shift) per output channel */
  size_t params_words;
  size_t arena_bytes;         /* size of the activation arena the caller passes */
} zsq_rt_program_t;

/* Check every descriptor's tensors, weights and params against the blob and arena sizes.
 * Returns 0 or a negative code; writes a message into err (if non-NULL). */
int zsq_rt_validate(const zsq_rt_program_t *p, char *err, size_t errlen);

/* Validate, then run the program on `arena` (arena_bytes long). stats may be NULL. */
int zsq_rt_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
               size_t errlen);

/* Static description of an error code (never NULL). */
const char *zsq_rt_strerror(int code);

/* "csim" or "zynq". */
const char *zsq_rt_backend(void);

/* Backend entry (implemented by backends/csim.c or backends/zynq.c); called by
 * zsq_rt_run after validation. */
int zsq_rt_backend_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
                       size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_RUNTIME_H */
