/*
 * zsq_engine_cfg.h - the engine configuration struct (hls4ml style).
 *
 * All sizes are static constexpr members taken from zsq_config.h (generated per model)
 * and checked by static_assert; every template of the engine is parameterised by it.
 */
#ifndef ZSQ_ENGINE_CFG_H
#define ZSQ_ENGINE_CFG_H

#include <stdint.h>
#include "zsq_config_select.h"

struct zsq_engine_cfg {
  static constexpr int pe_oc = ZSQ_PE_OC;
  static constexpr int pe_ic = ZSQ_PE_IC;
  static constexpr int in_buf_bytes = ZSQ_IN_BUF_BYTES;
  static constexpr int w_buf_bytes = ZSQ_W_BUF_BYTES;
  /* w_buf is pe_oc banks (one per MAC row): output channel o of a block lives in bank
   * o % pe_oc at row o / pe_oc; each bank holds w_bank_bytes */
  static constexpr int w_bank_bytes = (ZSQ_W_BUF_BYTES + ZSQ_PE_OC - 1) / ZSQ_PE_OC;
  static constexpr int acc_words = ZSQ_ACC_WORDS;
  static constexpr int out_buf_bytes = ZSQ_OUT_BUF_BYTES;
  static constexpr int sq_buf_bytes = ZSQ_SQ_BUF_BYTES;
  static constexpr int param_depth = ZSQ_PARAM_DEPTH;
  static constexpr int rq_lanes = ZSQ_RQ_LANES;
  static constexpr int axi_bytes = ZSQ_AXI_BYTES;
  static constexpr int burst_overhead = ZSQ_BURST_OVERHEAD;
  static constexpr int pipeline_depth = ZSQ_PIPELINE_DEPTH;
  static constexpr int layer_overhead = ZSQ_LAYER_OVERHEAD;
  typedef int8_t act_t;   /* activations and weights */
  typedef int32_t acc_t;  /* accumulators */
};

template <class CFG>
struct zsq_check_cfg {
  static_assert(CFG::pe_oc >= 1 && CFG::pe_oc <= 256, "pe_oc out of range");
  static_assert(CFG::pe_ic >= 1 && CFG::pe_ic <= 256, "pe_ic out of range");
  static_assert(CFG::pe_oc * CFG::pe_ic <= 4096, "MAC array too large");
  static_assert(CFG::in_buf_bytes >= 64, "input buffer too small");
  static_assert(CFG::w_buf_bytes >= 64, "weight buffer too small");
  static_assert(CFG::acc_words >= 16, "accumulator buffer too small");
  static_assert(CFG::out_buf_bytes >= 16, "output buffer too small");
  static_assert(CFG::sq_buf_bytes >= 16, "squeeze buffer too small");
  static_assert(CFG::param_depth >= 1, "parameter buffer too small");
  static_assert(CFG::rq_lanes >= 1 && CFG::rq_lanes <= 256, "rq_lanes out of range");
  static_assert(CFG::axi_bytes == 4 || CFG::axi_bytes == 8 || CFG::axi_bytes == 16,
                "AXI width must be 32, 64 or 128 bits");
  static_assert(CFG::burst_overhead >= 0 && CFG::pipeline_depth >= 0 &&
                CFG::layer_overhead >= 0, "cycle-model constants must be >= 0");
  static constexpr bool ok = true;
};

#endif /* ZSQ_ENGINE_CFG_H */
