/*
 * zsq_dma.h - AXI master transfers between DDR (the activation arena and the weight /
 * parameter blobs) and the on-chip tile buffers, with their modeled cycles.
 *
 * Every contiguous run in DDR is one AXI burst costing
 *     CFG::burst_overhead + ceil(bytes / CFG::axi_bytes)   cycles.
 * An HWC tile whose channel range is the whole tensor depth is one run per row (one run
 * in total when it also spans the full width); otherwise one run per pixel.
 */
#ifndef ZSQ_DMA_H
#define ZSQ_DMA_H

#include <stdint.h>
#include <string.h>

template <class CFG>
static inline int64_t zsq_burst_cycles(int64_t n_bursts, int64_t bytes_each) {
  return n_bursts * ((int64_t)CFG::burst_overhead + (bytes_each + CFG::axi_bytes - 1) / CFG::axi_bytes);
}

/* Cycles / bytes of a (rows x cols x nc) HWC sub-block of a (.. x width x depth) tensor. */
template <class CFG>
static inline int64_t zsq_hwc_cycles(int rows, int cols, int nc, int width, int depth,
                                     int64_t *bytes) {
  if (rows <= 0 || cols <= 0 || nc <= 0) return 0;
  *bytes += (int64_t)rows * cols * nc;
  if (nc == depth) {
    if (cols == width) return zsq_burst_cycles<CFG>(1, (int64_t)rows * cols * nc);
    return zsq_burst_cycles<CFG>(rows, (int64_t)cols * nc);
  }
  return zsq_burst_cycles<CFG>((int64_t)rows * cols, nc);
}

/* Load input rows [r0, r0+nr) x cols [c0, c0+nc) x channels [ch0, ch0+tic) of an HWC tensor
 * (h x w x depth at src) into dst[nr][nc][tic]; positions outside the tensor are zero. */
template <class CFG>
int64_t zsq_load_input(const int8_t *src, int h, int w, int depth, int ch0, int tic, int r0,
                       int nr, int c0, int nc, int8_t *dst, int64_t *bytes) {
  const int vr0 = r0 < 0 ? 0 : r0, vr1 = (r0 + nr) > h ? h : (r0 + nr);
  const int vc0 = c0 < 0 ? 0 : c0, vc1 = (c0 + nc) > w ? w : (c0 + nc);
  if (vr0 != r0 || vr1 != r0 + nr || vc0 != c0 || vc1 != c0 + nc || vr1 <= vr0 || vc1 <= vc0) {
  ld_zero:
    for (int i = 0; i < nr * nc * tic; i++) {
#pragma HLS loop_tripcount min = 1 max = CFG::in_buf_bytes
#pragma HLS PIPELINE II = 1
      dst[i] = 0;
    }
  }
  if (vr1 <= vr0 || vc1 <= vc0) return 0;
  const int ncols = vc1 - vc0;
ld_row:
  for (int y = vr0; y < vr1; y++) {
#pragma HLS loop_tripcount min = 1 max = 256
    int8_t *d = dst + ((y - r0) * nc + (vc0 - c0)) * tic;
    const int8_t *s = src + ((int64_t)y * w + vc0) * depth + ch0;
    if (tic == depth) {
      memcpy(d, s, (size_t)ncols * tic); /* one burst per row */
    } else {
    ld_px:
      for (int x = 0; x < ncols; x++) {
#pragma HLS loop_tripcount min = 1 max = 256
        memcpy(d + x * tic, s + (int64_t)x * depth, (size_t)tic);
      }
    }
  }
  return zsq_hwc_cycles<CFG>(vr1 - vr0, ncols, tic, w, depth, bytes);
}

/* Store src[nr][ncols][nch] to channels [ch0, ch0+nch) of rows r0.., cols c0.. of an HWC tensor. */
template <class CFG>
int64_t zsq_store_tile(const int8_t *src, int nr, int ncols, int nch, int8_t *dst, int w,
                       int depth, int ch0, int r0, int c0, int64_t *bytes) {
st_row:
  for (int y = 0; y < nr; y++) {
#pragma HLS loop_tripcount min = 1 max = 256
    int8_t *d = dst + ((int64_t)(r0 + y) * w + c0) * depth + ch0;
    const int8_t *s = src + y * ncols * nch;
    if (nch == depth) {
      memcpy(d, s, (size_t)ncols * nch);
    } else {
    st_px:
      for (int x = 0; x < ncols; x++) {
#pragma HLS loop_tripcount min = 1 max = 256
        memcpy(d + (int64_t)x * depth, s + x * nch, (size_t)nch);
      }
    }
  }
  return zsq_hwc_cycles<CFG>(nr, ncols, nch, w, depth, bytes);
}

/* Weight block [toc][row] (row = kh*kw*tic bytes, contiguous in DDR: one burst) into
 * the pe_oc weight banks: channel o goes to bank o % pe_oc, bytes [o/pe_oc*row, +row). */
template <class CFG>
int64_t zsq_load_weights(const int8_t *src, int toc, int row,
                         int8_t (*dst)[CFG::w_bank_bytes], int64_t *bytes) {
ld_w_oc:
  for (int o = 0; o < toc; o++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
    memcpy(dst[o % CFG::pe_oc] + (o / CFG::pe_oc) * row, src + (int64_t)o * row, (size_t)row);
  }
  const int64_t n = (int64_t)toc * row;
  *bytes += n;
  return zsq_burst_cycles<CFG>(1, n);
}

/* Parameters of channels [o0, o0+n): interleaved (bias, mult, shift) words, one burst. */
template <class CFG>
int64_t zsq_load_params(const int32_t *src, int n, int32_t *bias, int32_t *mult, int8_t *shift,
                        int64_t *bytes) {
ld_param:
  for (int o = 0; o < n; o++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
#pragma HLS PIPELINE II = 1
    bias[o] = src[3 * o];
    mult[o] = src[3 * o + 1];
    shift[o] = (int8_t)src[3 * o + 2]; /* validated to [1, 62]: 6 bits on chip */
  }
  *bytes += (int64_t)12 * n;
  return zsq_burst_cycles<CFG>(1, (int64_t)12 * n);
}

#endif /* ZSQ_DMA_H */
