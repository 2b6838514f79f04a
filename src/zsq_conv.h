/*
 * zsq_conv.h - the convolution tile kernel: accumulate one (output-channel tile x
 * input-channel tile) block of a convolution into the int32 accumulator tile.
 *
 * Buffers (all HWC, channels innermost):
 *   in   [in_rows][in_cols][cin]   input tile incl. zero padding (cin = channels of the tile)
 *   w    [pe_oc][w_bank_bytes]     weight block [toc][kh][kw][cin] as packed in the weight
 *                                  blob, output channel o in bank o % pe_oc at row o / pe_oc
 *   acc  [ch][cw][toc]             int32 accumulators of the conv output region
 * Output pixel (y, x) of the region reads the input window whose top-left is
 * (row0 + y*sh, col0 + x*sw) in buffer coordinates.
 *
 * Two bodies compute the same integers:
 *  - HLS (__SYNTHESIS__ or ZSQ_HLS_KERNEL): a PE_OC x PE_IC MAC array, fully unrolled,
 *    pipelined II=1 over (pixel, ky, oc group, group of PE_IC bytes of the kw*cin kernel
 *    row): exactly the modeled compute cycles  px * kh * ceil(kw*cin/PE_IC) * ceil(toc/PE_OC).
 *  - host simulation (default): for each pixel, output channel and kernel row, one
 *    contiguous int8 dot product over kw*cin (kx and channels are adjacent in HWC), which
 *    g++ -O3 -march=native vectorizes.
 */
#ifndef ZSQ_CONV_H
#define ZSQ_CONV_H

#include <stdint.h>

#if defined(__SYNTHESIS__) || defined(ZSQ_HLS_KERNEL)
#define ZSQ_USE_HLS_KERNEL 1
#else
#define ZSQ_USE_HLS_KERNEL 0
#endif

#if !ZSQ_USE_HLS_KERNEL
#ifndef ZSQ_SIM_SHORT_DOT
#define ZSQ_SIM_SHORT_DOT 32 /* below this reduction length the simulation vectorizes over toc */
#endif
/* Contiguous int8 dot product; the hot loop of the simulation. */
static inline int32_t zsq_dot_i8(const int8_t *__restrict a, const int8_t *__restrict b, int n) {
  int32_t s = 0;
dot:
  for (int i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
  return s;
}
#endif

/* ---- host simulation: VNNI kernel (u8 x s8 -> s32 dot products, vpdpbusd) ----------
 * Activations are biased to u8 (a ^ 0x80 = a + 128) and the bias is removed with a
 * per-channel correction 128 * sum(w); int32 arithmetic wraps, so the result is exact
 * (the true accumulator fits int32). The weight block is transposed to
 * [ky][kx*cin/4][toc (padded to the vector)][4], zero padded. */
#if !ZSQ_USE_HLS_KERNEL
#if !defined(ZSQ_SIM_NO_VNNI) && ((defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__))
#define ZSQ_SIM_VNNI 1
#include <immintrin.h>
#include <string.h>
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define ZSQ_VL 16
typedef __m512i zsq_vec;
static inline zsq_vec zsq_v_zero() { return _mm512_setzero_si512(); }
static inline zsq_vec zsq_v_load(const void *p) { return _mm512_loadu_si512(p); }
static inline void zsq_v_store(void *p, zsq_vec v) { _mm512_storeu_si512(p, v); }
static inline zsq_vec zsq_v_set1(int32_t v) { return _mm512_set1_epi32(v); }
static inline zsq_vec zsq_v_dp(zsq_vec a, zsq_vec x, zsq_vec w) { return _mm512_dpbusd_epi32(a, x, w); }
static inline zsq_vec zsq_v_add(zsq_vec a, zsq_vec b) { return _mm512_add_epi32(a, b); }
static inline zsq_vec zsq_v_sub(zsq_vec a, zsq_vec b) { return _mm512_sub_epi32(a, b); }
#else
#define ZSQ_VL 8
typedef __m256i zsq_vec;
static inline zsq_vec zsq_v_zero() { return _mm256_setzero_si256(); }
static inline zsq_vec zsq_v_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void zsq_v_store(void *p, zsq_vec v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline zsq_vec zsq_v_set1(int32_t v) { return _mm256_set1_epi32(v); }
static inline zsq_vec zsq_v_dp(zsq_vec a, zsq_vec x, zsq_vec w) { return _mm256_dpbusd_avx_epi32(a, x, w); }
static inline zsq_vec zsq_v_add(zsq_vec a, zsq_vec b) { return _mm256_add_epi32(a, b); }
static inline zsq_vec zsq_v_sub(zsq_vec a, zsq_vec b) { return _mm256_sub_epi32(a, b); }
#endif

static inline int32_t zsq_ld4u(const int8_t *p) { /* 4 activation bytes, biased to u8 */
  int32_t v;
  memcpy(&v, p, 4);
  return v ^ (int32_t)0x80808080u;
}
static inline int32_t zsq_ld4u_tail(const int8_t *p, int n) {
  int32_t v = 0;
  memcpy(&v, p, (size_t)n);
  return v ^ (int32_t)0x80808080u;
}

template <class CFG>
void zsq_conv_tile_vnni(const int8_t *in, int in_cols, int cin, const int8_t (*w)[CFG::w_bank_bytes],
                        int toc, int kh, int kw, int sh, int sw, int row0, int col0, int ch, int cw,
                        int32_t *acc) {
  const int kwc = kw * cin, kq = (kwc + 3) / 4, qfull = kwc / 4, rem = kwc - 4 * qfull;
  const int ng = (toc + ZSQ_VL - 1) / ZSQ_VL, opad = ng * ZSQ_VL;
  const int wstride = kh * kwc, rstride = in_cols * cin;
  /* kh * kq * 4 <= K*cin + 3*kh <= w_bank_bytes + 96; opad <= param_depth + ZSQ_VL */
  alignas(64) static int8_t wv[(CFG::param_depth + ZSQ_VL) * (CFG::w_bank_bytes + 96)];
  alignas(64) static int32_t corr[CFG::param_depth + ZSQ_VL];
  for (int o = 0; o < opad; o++) {
    const int8_t *wo = o < toc ? w[o % CFG::pe_oc] + (o / CFG::pe_oc) * wstride : nullptr;
    int32_t sum = 0;
    for (int ky = 0; ky < kh; ky++) {
      for (int q = 0; q < kq; q++) {
        int8_t *d = wv + ((ky * kq + q) * opad + o) * 4;
        for (int b = 0; b < 4; b++) {
          const int k = 4 * q + b;
          const int8_t v = (wo && k < kwc) ? wo[ky * kwc + k] : 0;
          d[b] = v;
          sum += v;
        }
      }
    }
    corr[o] = 128 * sum;
  }
  const int npx = ch * cw;
  const int vstride = opad * 4; /* bytes between consecutive q of one channel group */
  for (int p0 = 0; p0 < npx; p0 += 4) {
    const int np = npx - p0 < 4 ? npx - p0 : 4;
    const int8_t *ip[4];
    for (int i = 0; i < 4; i++) {
      const int p = p0 + (i < np ? i : 0);
      const int y = p / cw, x = p - (p / cw) * cw;
      ip[i] = in + ((row0 + y * sh) * in_cols + (col0 + x * sw)) * cin;
    }
    for (int g = 0; g < ng; g++) {
      zsq_vec a0 = zsq_v_zero(), a1 = zsq_v_zero(), a2 = zsq_v_zero(), a3 = zsq_v_zero();
      for (int ky = 0; ky < kh; ky++) {
        const int8_t *wr = wv + (ky * kq * opad + g * ZSQ_VL) * 4;
        const int8_t *r0 = ip[0] + ky * rstride, *r1 = ip[1] + ky * rstride;
        const int8_t *r2 = ip[2] + ky * rstride, *r3 = ip[3] + ky * rstride;
        int q = 0;
        for (; q < qfull; q++) {
          const zsq_vec wq = zsq_v_load(wr + q * vstride);
          a0 = zsq_v_dp(a0, zsq_v_set1(zsq_ld4u(r0 + 4 * q)), wq);
          a1 = zsq_v_dp(a1, zsq_v_set1(zsq_ld4u(r1 + 4 * q)), wq);
          a2 = zsq_v_dp(a2, zsq_v_set1(zsq_ld4u(r2 + 4 * q)), wq);
          a3 = zsq_v_dp(a3, zsq_v_set1(zsq_ld4u(r3 + 4 * q)), wq);
        }
        if (rem) {
          const zsq_vec wq = zsq_v_load(wr + q * vstride);
          a0 = zsq_v_dp(a0, zsq_v_set1(zsq_ld4u_tail(r0 + 4 * q, rem)), wq);
          a1 = zsq_v_dp(a1, zsq_v_set1(zsq_ld4u_tail(r1 + 4 * q, rem)), wq);
          a2 = zsq_v_dp(a2, zsq_v_set1(zsq_ld4u_tail(r2 + 4 * q, rem)), wq);
          a3 = zsq_v_dp(a3, zsq_v_set1(zsq_ld4u_tail(r3 + 4 * q, rem)), wq);
        }
      }
      const zsq_vec cv = zsq_v_load(corr + g * ZSQ_VL);
      const zsq_vec res[4] = {zsq_v_sub(a0, cv), zsq_v_sub(a1, cv), zsq_v_sub(a2, cv),
                              zsq_v_sub(a3, cv)};
      const int o0 = g * ZSQ_VL;
      for (int i = 0; i < np; i++) {
        int32_t *ap = acc + (p0 + i) * toc + o0;
        if (o0 + ZSQ_VL <= toc) {
          zsq_v_store(ap, zsq_v_add(zsq_v_load(ap), res[i]));
        } else {
          alignas(64) int32_t t[ZSQ_VL];
          zsq_v_store(t, res[i]);
          for (int l = 0; l < toc - o0; l++) ap[l] = (int32_t)((uint32_t)ap[l] + (uint32_t)t[l]);
        }
      }
    }
  }
}
#endif /* ZSQ_SIM_VNNI */
#endif /* !ZSQ_USE_HLS_KERNEL */

template <class CFG>
void zsq_conv_tile(const int8_t *in, int in_cols, int cin, const int8_t (*w)[CFG::w_bank_bytes],
                   int toc, int kh,
                   int kw, int sh, int sw, int row0, int col0, int ch, int cw, int32_t *acc) {
#if ZSQ_USE_HLS_KERNEL
  /* kx and channels are adjacent in HWC: a kernel row is kw*cin consecutive bytes of
   * both the input tile and the weight block, reduced pe_ic bytes per cycle */
  const int kwc = kw * cin;
  const int n_og = (toc + CFG::pe_oc - 1) / CFG::pe_oc;
  const int n_ig = (kwc + CFG::pe_ic - 1) / CFG::pe_ic;
conv_px:
  for (int p = 0; p < ch * cw; p++) {
#pragma HLS loop_tripcount min = 1 max = CFG::acc_words
    const int y = p / cw, x = p - (p / cw) * cw;
  conv_ky:
    for (int ky = 0; ky < kh; ky++) {
#pragma HLS loop_tripcount min = 1 max = 7
      const int8_t *ip = in + ((row0 + y * sh + ky) * in_cols + (col0 + x * sw)) * cin;
    conv_oc_grp:
      for (int og = 0; og < n_og; og++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth / CFG::pe_oc
        int32_t part[CFG::pe_oc];
#pragma HLS ARRAY_PARTITION variable = part complete
      pe_init:
        for (int u = 0; u < CFG::pe_oc; u++) {
#pragma HLS UNROLL
          part[u] = 0;
        }
      conv_ic_grp:
        for (int ig = 0; ig < n_ig; ig++) {
#pragma HLS loop_tripcount min = 1 max = 64
#pragma HLS PIPELINE II = 1
        pe_oc:
          for (int u = 0; u < CFG::pe_oc; u++) {
#pragma HLS UNROLL
            const int o = og * CFG::pe_oc + u;
            int32_t s = 0;
          pe_ic:
            for (int v = 0; v < CFG::pe_ic; v++) {
#pragma HLS UNROLL
              const int i = ig * CFG::pe_ic + v;
              if (o < toc && i < kwc)
                s += (int32_t)ip[i] * (int32_t)w[u][(og * kh + ky) * kwc + i];
            }
            part[u] += s;
          }
        }
      pe_acc:
        for (int u = 0; u < CFG::pe_oc; u++) {
#pragma HLS UNROLL
          const int o = og * CFG::pe_oc + u;
          if (o < toc) acc[p * toc + o] += part[u];
        }
      }
    }
  }
#else
#if defined(ZSQ_SIM_VNNI)
  zsq_conv_tile_vnni<CFG>(in, in_cols, cin, w, toc, kh, kw, sh, sw, row0, col0, ch, cw, acc);
  return;
#endif
  const int kwc = kw * cin;
  const int wstride = kh * kwc;
  const int rstride = in_cols * cin;
  if (kwc < ZSQ_SIM_SHORT_DOT && toc >= 8) {
    /* short reductions (conv1's 3 channels, narrow squeeze outputs): vectorize over
     * output channels instead, with the weight block transposed to [ky][kx*cin][toc] */
    static int16_t wt[CFG::pe_oc * CFG::w_bank_bytes];
    for (int o = 0; o < toc; o++)
      for (int k = 0; k < wstride; k++)
        wt[k * toc + o] = w[o % CFG::pe_oc][(o / CFG::pe_oc) * wstride + k];
    for (int y = 0; y < ch; y++) {
      for (int x = 0; x < cw; x++) {
        const int8_t *ip = in + ((row0 + y * sh) * in_cols + (col0 + x * sw)) * cin;
        int32_t *__restrict ap = acc + (y * cw + x) * toc;
        for (int ky = 0; ky < kh; ky++) {
          const int8_t *ir = ip + ky * rstride;
          const int16_t *wr = wt + ky * kwc * toc;
          for (int j = 0; j < kwc; j++) {
            const int32_t a = ir[j];
            const int16_t *__restrict wj = wr + j * toc;
            for (int o = 0; o < toc; o++) ap[o] += a * (int32_t)wj[o];
          }
        }
      }
    }
    return;
  }
conv_row:
  for (int y = 0; y < ch; y++) {
  conv_col:
    for (int x = 0; x < cw; x++) {
      const int8_t *ip = in + ((row0 + y * sh) * in_cols + (col0 + x * sw)) * cin;
      int32_t *ap = acc + (y * cw + x) * toc;
    conv_oc:
      for (int o = 0; o < toc; o++) {
        const int8_t *wp = w[o % CFG::pe_oc] + (o / CFG::pe_oc) * wstride;
        int32_t s = 0;
      conv_ky:
        for (int ky = 0; ky < kh; ky++) s += zsq_dot_i8(ip + ky * rstride, wp + ky * kwc, kwc);
        ap[o] += s;
      }
    }
  }
#endif
}

#endif /* ZSQ_CONV_H */
