/*
 * zsq_requant.h - requantization of int32 accumulators to int8 (the one rounding rule).
 *
 *   y = (int64(acc + bias) * mult + (1 << (shift - 1))) >> shift   (arithmetic shift:
 *       rounds half toward +infinity), then ReLU (optional), then saturation to int8.
 *
 * Bit-exact with zynq_squeeze.requant.requantize. mult in [2^30, 2^31), shift in [1, 62].
 */
#ifndef ZSQ_REQUANT_H
#define ZSQ_REQUANT_H

#include <stdint.h>

static inline int8_t zsq_requant(int32_t acc, int32_t mult, int32_t shift, int relu) {
#pragma HLS INLINE
  const int64_t prod = (int64_t)acc * (int64_t)mult;
  int64_t y = (prod + ((int64_t)1 << (shift - 1))) >> shift;
  if (relu && y < 0) y = 0;
  if (y > 127) y = 127;
  if (y < -128) y = -128;
  return (int8_t)y;
}

/* Requantize an accumulator tile acc[rows*cols][toc] (adding bias) into an int8 HWC
 * tile: accumulator pixel (r, c) goes to dst[((r * dst_cols) + c) * dst_stride + dst_c0 + o]. */
template <class CFG>
void zsq_requant_tile(const int32_t *acc, int rows, int cols, int toc, const int32_t *bias,
                      const int32_t *mult, const int32_t *shift, int relu, int8_t *dst,
                      int dst_cols, int dst_stride, int dst_c0) {
rq_row:
  for (int r = 0; r < rows; r++) {
#pragma HLS loop_tripcount min = 1 max = 64
  rq_col:
    for (int c = 0; c < cols; c++) {
#pragma HLS loop_tripcount min = 1 max = 64
      const int32_t *a = acc + (r * cols + c) * toc;
      int8_t *d = dst + (r * dst_cols + c) * dst_stride + dst_c0;
    rq_oc:
      for (int o = 0; o < toc; o++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::rq_lanes
        d[o] = zsq_requant(a[o] + bias[o], mult[o], shift[o], relu);
      }
    }
  }
}

#endif /* ZSQ_REQUANT_H */
