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

#if !defined(__SYNTHESIS__) && !defined(ZSQ_HLS_KERNEL) && defined(__AVX512F__) && \
    !defined(ZSQ_SIM_NO_VNNI)
#include <immintrin.h>
#include <string.h>
#define ZSQ_SIM_RQ_AVX512 1
/* host simulation: 8 channels at a time in int64 lanes (same integers as zsq_requant) */
static inline void zsq_requant8(const int32_t *a, const int32_t *bias, const int32_t *mult,
                                const int8_t *shift, int relu, int8_t *d) {
  const __m512i acc = _mm512_cvtepi32_epi64(
      _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)a), _mm256_loadu_si256((const __m256i *)bias)));
  const __m512i m = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)mult));
  int64_t sh8;
  memcpy(&sh8, shift, 8);
  const __m512i sh = _mm512_cvtepi8_epi64(_mm_cvtsi64_si128(sh8));
  const __m512i prod = _mm512_mul_epi32(acc, m); /* signed 32 x 32 -> 64 */
  const __m512i rnd = _mm512_sllv_epi64(_mm512_set1_epi64(1), _mm512_sub_epi64(sh, _mm512_set1_epi64(1)));
  __m512i y = _mm512_srav_epi64(_mm512_add_epi64(prod, rnd), sh);
  y = _mm512_max_epi64(y, _mm512_set1_epi64(relu ? 0 : -128));
  y = _mm512_min_epi64(y, _mm512_set1_epi64(127));
  _mm_storel_epi64((__m128i *)d, _mm512_cvtepi64_epi8(y));
}
#endif

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
                      const int32_t *mult, const int8_t *shift, int relu, int8_t *dst,
                      int dst_cols, int dst_stride, int dst_c0) {
rq_row:
  for (int r = 0; r < rows; r++) {
#pragma HLS loop_tripcount min = 1 max = 64
  rq_col:
    for (int c = 0; c < cols; c++) {
#pragma HLS loop_tripcount min = 1 max = 64
      const int32_t *a = acc + (r * cols + c) * toc;
      int8_t *d = dst + (r * dst_cols + c) * dst_stride + dst_c0;
      int o0 = 0;
#if !defined(__SYNTHESIS__) && defined(ZSQ_SIM_RQ_AVX512)
      for (; o0 + 8 <= toc; o0 += 8) zsq_requant8(a + o0, bias + o0, mult + o0, shift + o0, relu, d + o0);
#endif
    rq_oc:
      for (int o = o0; o < toc; o++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::rq_lanes
        d[o] = zsq_requant(a[o] + bias[o], mult[o], shift[o], relu);
      }
    }
  }
}

#endif /* ZSQ_REQUANT_H */
