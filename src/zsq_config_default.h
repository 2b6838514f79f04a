/*
 * zsq_config_default.h - default global parameters of the zynq-squeeze engine.
 *
 * The code generator writes a zsq_config.h with the same macros for every compiled
 * model (python: zynq_squeeze.program.engine_config_header). zsq_config_select.h picks
 * that header when it is on the include path, else this default (Zybo Z7-20 sizing,
 * identical to zynq_squeeze.schedule.EngineConfig()).
 */
#ifndef ZSQ_CONFIG_H
#define ZSQ_CONFIG_H

#define ZSQ_PE_OC 16            /* MAC array: output channels per cycle */
#define ZSQ_PE_IC 12            /* MAC array: input channels per cycle */
#define ZSQ_IN_BUF_BYTES 65536  /* input tile buffer, per ping-pong half */
#define ZSQ_W_BUF_BYTES 49152   /* weight block buffer, per ping-pong half */
#define ZSQ_ACC_WORDS 16384     /* int32 accumulator tile */
#define ZSQ_OUT_BUF_BYTES 24576 /* output tile buffer per ping-pong half (and pre-pool tile) */
#define ZSQ_SQ_BUF_BYTES 49152  /* fire squeeze tile with halo */
#define ZSQ_PARAM_DEPTH 512     /* output channels per tile (bias/mult/shift buffers) */
#define ZSQ_RQ_LANES 7          /* output channels requantized / pooled per cycle */
#define ZSQ_AXI_BYTES 8         /* AXI data width in bytes */
#define ZSQ_BURST_OVERHEAD 24   /* modeled cycles per AXI burst (address + DDR latency) */
#define ZSQ_PIPELINE_DEPTH 12   /* modeled MAC pipeline fill per compute step */
#define ZSQ_LAYER_OVERHEAD 200  /* modeled cycles per layer (descriptor fetch, setup) */

#endif /* ZSQ_CONFIG_H */
