/*
 * zsq_dae_cfg.h - parameters of the decoupled engine (docs/ENGINE.md).
 *
 * Every size is a macro the code generator may override (-D or a generated header
 * included first); the defaults are the Zybo Z7-20 engine. The config struct carries them
 * as static constexpr members (hls4ml style), checked by static_assert.
 */
#ifndef ZSQ_DAE_CFG_H
#define ZSQ_DAE_CFG_H

#include <stdint.h>

/* A generated zsq_dae_config.h (the model's ZSQD_* macros: the HLS project, builds with
 * -I<dir of the header>) is picked up when it is on the include path; -D still works. */
#if defined(__has_include)
#if __has_include("zsq_dae_config.h")
#include "zsq_dae_config.h"
#endif
#endif

/* The code generator writes the model's engine as zsq_dae_config.h (ZSQD_* macros). */
#if defined(__has_include)
#if __has_include("zsq_dae_config.h")
#include "zsq_dae_config.h"
#endif
#endif

#ifndef ZSQD_K
#define ZSQD_K 3 /* PE_OC = 8*K output channels per cycle; K activation words per cycle */
#endif
#ifndef ZSQD_IN_ROWS
#define ZSQD_IN_ROWS 2048 /* rows per bank of each in_buf half (K banks of 64-bit words) */
#endif
#ifndef ZSQD_W_ROWS
#define ZSQD_W_ROWS 512 /* rows per bank of each w_buf half (PE_OC banks of 64-bit words) */
#endif
#ifndef ZSQD_P_ROWS
#define ZSQD_P_ROWS 64 /* output-channel groups of PE_OC per p_buf half */
#endif
#ifndef ZSQD_ACC_ROWS
#define ZSQD_ACC_ROWS 2048 /* accumulator rows (pixel x og) of PE_OC int32 */
#endif
#ifndef ZSQD_CV_ROWS
#define ZSQD_CV_ROWS 2048 /* rows per bank of the pre-pool buffer */
#endif
#ifndef ZSQD_SQ_ROWS
#define ZSQD_SQ_ROWS 2048 /* rows per bank of the fire squeeze buffer */
#endif
#ifndef ZSQD_OUT_ROWS
#define ZSQD_OUT_ROWS 2048 /* rows per bank of each out_buf half */
#endif
#ifndef ZSQD_BP_ROWS
#define ZSQD_BP_ROWS 512 /* rows per bank of each bp_buf half (residual add bypass tiles) */
#endif
#ifndef ZSQD_RESIDUAL
#define ZSQD_RESIDUAL 1 /* 1: the residual add's datapath (LOAD_BYPASS, REQUANT RQ_ADD) is built */
#endif
#ifndef ZSQD_WIDE_RQ
#define ZSQD_WIDE_RQ 1 /* 1: the 22-bit requantization multiplier (a x mult[21:5] on the lane's
                          DSP48E1, a x mult[4:0] in fabric); 0: 15 bits, one DSP48E1 */
#endif
#ifndef ZSQD_QUEUE_DEPTH
#define ZSQD_QUEUE_DEPTH 512 /* command queue depth (instructions) */
#endif
#ifndef ZSQD_TOKEN_DEPTH
#define ZSQD_TOKEN_DEPTH 8 /* dependency-token queue depth */
#endif

/* Timing model (simulation only; docs/ENGINE.md "Timing by execution"). */
#ifndef ZSQD_RD_LATENCY
#define ZSQD_RD_LATENCY 40 /* cycles from read address to first beat on an HP port */
#endif
#ifndef ZSQD_WR_LATENCY
#define ZSQD_WR_LATENCY 30 /* cycles from last write beat to the write response */
#endif
#ifndef ZSQD_OUTSTANDING
#define ZSQD_OUTSTANDING 8 /* AXI transactions in flight per port */
#endif
#ifndef ZSQD_DDR_BEAT_X100
#define ZSQD_DDR_BEAT_X100 100 /* cycles x 100 per 64-bit beat with every data port busy */
#endif
#ifndef ZSQD_DEPTH_LOAD
#define ZSQD_DEPTH_LOAD 4 /* pipeline depths of the modules' loops */
#endif
#ifndef ZSQD_DEPTH_MAC
#define ZSQD_DEPTH_MAC 10
#endif
#ifndef ZSQD_DEPTH_RQ
#define ZSQD_DEPTH_RQ 8
#endif
#ifndef ZSQD_DEPTH_POOL
#define ZSQD_DEPTH_POOL 6
#endif
#ifndef ZSQD_DEPTH_STORE
#define ZSQD_DEPTH_STORE 4
#endif

struct zsqd_cfg {
  static constexpr int K = ZSQD_K;
  static constexpr int PE_IC = 8;
  static constexpr int PE_OC = 8 * ZSQD_K;
  static constexpr int IN_ROWS = ZSQD_IN_ROWS;
  static constexpr int W_ROWS = ZSQD_W_ROWS;
  static constexpr int P_ROWS = ZSQD_P_ROWS;
  static constexpr int ACC_ROWS = ZSQD_ACC_ROWS;
  static constexpr int CV_ROWS = ZSQD_CV_ROWS;
  static constexpr int SQ_ROWS = ZSQD_SQ_ROWS;
  static constexpr int OUT_ROWS = ZSQD_OUT_ROWS;
  static constexpr int BP_ROWS = ZSQD_BP_ROWS;
  static constexpr bool RESIDUAL = ZSQD_RESIDUAL != 0;
  static constexpr bool WIDE_RQ = ZSQD_WIDE_RQ != 0;
  static constexpr int QUEUE_DEPTH = ZSQD_QUEUE_DEPTH;
  static constexpr int TOKEN_DEPTH = ZSQD_TOKEN_DEPTH;
};

static_assert(ZSQD_K >= 1 && ZSQD_K <= 4, "K must be 1..4 (PE_OC 8..32)");
static_assert(ZSQD_IN_ROWS >= 16 && ZSQD_W_ROWS >= 16 && ZSQD_P_ROWS >= 1 &&
              ZSQD_ACC_ROWS >= 16 && ZSQD_CV_ROWS >= 16 && ZSQD_SQ_ROWS >= 16 &&
              ZSQD_OUT_ROWS >= 16 && ZSQD_BP_ROWS >= 16, "buffer depths");

#endif /* ZSQ_DAE_CFG_H */
