/*
 * zsq_types.h - shared C/C++ definitions of the zynq-squeeze int8 engine.
 *
 * The layer descriptor (zsq_layer_t), the statistics record (zsq_stats_t) and the
 * engine error codes. Included by the HLS engine (C++), by the C runtime (C99) and
 * mirrored byte-for-byte by python/zynq_squeeze/engine/descriptor.py (every descriptor field is
 * an int32_t, so the Python side packs a flat little-endian int32 array).
 * See docs/ENGINE.md for the meaning of every field.
 */
#ifndef ZSQ_TYPES_H
#define ZSQ_TYPES_H

#include <stdint.h>

#define ZSQ_MAGIC 0x4C51535A /* "ZSQL" little-endian */
#define ZSQ_VERSION 1

#define ZSQ_KIND_CONV 1
#define ZSQ_KIND_FIRE 2

#define ZSQ_POOL_NONE 0
#define ZSQ_POOL_MAX 1
#define ZSQ_POOL_AVG 2

#define ZSQ_ORDER_SPATIAL_OUTER 0
#define ZSQ_ORDER_OC_OUTER 1

/* conv slots of a descriptor: CONV uses slot 0; FIRE uses 0 = squeeze, 1 = expand1x1,
 * 2 = expand3x3 */
#define ZSQ_N_CONV_SLOTS 3

/* Maximum layers per program (size of the per-layer statistics arrays). */
#define ZSQ_MAX_LAYERS 256

/* Engine error codes (returned negated by zsq_engine; 0 = success). */
#define ZSQ_OK 0
#define ZSQ_ERR_BAD_ARG -1        /* null pointer or n_layers out of [0, ZSQ_MAX_LAYERS] */
#define ZSQ_ERR_BAD_MAGIC -2      /* descriptor magic/version mismatch */
#define ZSQ_ERR_BAD_KIND -3       /* unknown layer kind */
#define ZSQ_ERR_BAD_SHAPE -4      /* non-positive or inconsistent sizes / offsets */
#define ZSQ_ERR_BAD_CONV -5       /* bad kernel/stride/pad, or fire expand geometry */
#define ZSQ_ERR_BAD_POOL -6       /* bad pool window/stride/pads */
#define ZSQ_ERR_BAD_TILE -7       /* tile extents < 1 or loop order unknown */
#define ZSQ_ERR_IN_BUF -8         /* input tile larger than the input buffer */
#define ZSQ_ERR_W_BUF -9          /* weight block larger than the weight buffer */
#define ZSQ_ERR_ACC_BUF -10       /* accumulator tile larger than the accumulator buffer */
#define ZSQ_ERR_OUT_BUF -11       /* output (or pre-pool) tile larger than the output buffer */
#define ZSQ_ERR_SQ_BUF -12        /* fire squeeze tile (with halo) larger than the squeeze buffer */
#define ZSQ_ERR_PARAM_BUF -13     /* output-channel tile larger than the parameter buffer */
#define ZSQ_ERR_BAD_REQUANT -14   /* shift outside [1, 62] */

/* One layer of the program: 80 int32 words (320 bytes). Unused fields must be 0. */
typedef struct zsq_conv_desc {
  int32_t oc, ic;          /* output / input channels of this convolution */
  int32_t kh, kw;          /* kernel */
  int32_t sh, sw;          /* stride */
  int32_t pt, pl, pb, pr;  /* zero padding top, left, bottom, right */
  int32_t relu;            /* 1: ReLU before saturation */
  int32_t w_off;           /* byte offset of its packed weights in the weight blob */
  int32_t p_off;           /* int32-word offset of its params (bias, mult, shift per channel) */
} zsq_conv_desc_t;

typedef struct zsq_layer {
  int32_t magic, version, kind;
  int32_t in_c, in_h, in_w, in_off;        /* input tensor (HWC int8 at arena byte offset) */
  int32_t out_c, out_h, out_w, out_off;    /* output tensor (post-pool) */
  int32_t conv_h, conv_w;                  /* convolution output plane (pre-pool) */
  int32_t loop_order, double_buffer;       /* schedule */
  int32_t toc, tic, th, tw;                /* tile: out channels, in channels, out rows, out cols */
  int32_t pool_kind, pool_kh, pool_kw, pool_sh, pool_sw;
  int32_t pool_pt, pool_pl, pool_pb, pool_pr;
  int32_t pool_ceil, pool_count_include_pad, pool_global;
  zsq_conv_desc_t conv[ZSQ_N_CONV_SLOTS];
  int32_t reserved[10];
} zsq_layer_t;

#define ZSQ_LAYER_WORDS 80

/* Modeled accelerator cycles and traffic, filled by zsq_engine. */
typedef struct zsq_stats {
  int64_t total_cycles;
  int32_t n_layers;
  int32_t reserved;
  int64_t layer_cycles[ZSQ_MAX_LAYERS];
  int64_t layer_ddr_bytes[ZSQ_MAX_LAYERS];
  int64_t layer_macs[ZSQ_MAX_LAYERS];      /* MACs executed (incl. recomputed halo rows) */
} zsq_stats_t;

#ifdef __cplusplus
static_assert(sizeof(zsq_conv_desc_t) == 13 * 4, "zsq_conv_desc_t layout");
static_assert(sizeof(zsq_layer_t) == ZSQ_LAYER_WORDS * 4, "zsq_layer_t must be 80 int32 words");
#else
typedef char zsq_layer_size_check[(sizeof(zsq_layer_t) == ZSQ_LAYER_WORDS * 4) ? 1 : -1];
#endif

#endif /* ZSQ_TYPES_H */
