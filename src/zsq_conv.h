/*
 * zsq_conv.h - the convolution tile kernel: accumulate one (output-channel tile x
 * input-channel tile) block of a convolution into the int32 accumulator tile.
 *
 * Buffers (all HWC, channels innermost):
 *   in   [in_rows][in_cols][cin]   input tile incl. zero padding (cin = channels of the tile)
 *   w    [toc][kh][kw][cin]        weight block, exactly as packed in the weight blob
 *   acc  [ch][cw][toc]             int32 accumulators of the conv output region
 * Output pixel (y, x) of the region reads the input window whose top-left is
 * (row0 + y*sh, col0 + x*sw) in buffer coordinates.
 *
 * Two bodies compute the same integers:
 *  - HLS (__SYNTHESIS__ or ZSQ_HLS_KERNEL): a PE_OC x PE_IC MAC array, fully unrolled,
 *    pipelined II=1 over (pixel, ky, kx, oc group, ic group): exactly the modeled
 *    compute cycles  px * kh * kw * ceil(cin/PE_IC) * ceil(toc/PE_OC).
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

template <class CFG>
void zsq_conv_tile(const int8_t *in, int in_cols, int cin, const int8_t *w, int toc, int kh,
                   int kw, int sh, int sw, int row0, int col0, int ch, int cw, int32_t *acc) {
#if ZSQ_USE_HLS_KERNEL
  const int n_og = (toc + CFG::pe_oc - 1) / CFG::pe_oc;
  const int n_ig = (cin + CFG::pe_ic - 1) / CFG::pe_ic;
conv_px:
  for (int p = 0; p < ch * cw; p++) {
#pragma HLS loop_tripcount min = 1 max = CFG::acc_words
    const int y = p / cw, x = p - (p / cw) * cw;
  conv_ky:
    for (int ky = 0; ky < kh; ky++) {
#pragma HLS loop_tripcount min = 1 max = 7
    conv_kx:
      for (int kx = 0; kx < kw; kx++) {
#pragma HLS loop_tripcount min = 1 max = 7
        const int8_t *ip = in + ((row0 + y * sh + ky) * in_cols + (col0 + x * sw + kx)) * cin;
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
                if (o < toc && i < cin)
                  s += (int32_t)ip[i] * (int32_t)w[((o * kh + ky) * kw + kx) * cin + i];
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
  }
#else
  const int kwc = kw * cin;
  const int wstride = kh * kwc;
  const int rstride = in_cols * cin;
  if (kwc < ZSQ_SIM_SHORT_DOT && toc >= 8) {
    /* short reductions (conv1's 3 channels, narrow squeeze outputs): vectorize over
     * output channels instead, with the weight block transposed to [ky][kx*cin][toc] */
    static int16_t wt[CFG::w_buf_bytes];
    for (int o = 0; o < toc; o++)
      for (int k = 0; k < wstride; k++) wt[k * toc + o] = w[o * wstride + k];
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
        const int8_t *wp = w + o * wstride;
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
