/*
 * zsq_pool.h - max / average / global-average pooling of an int8 conv output tile,
 * applied on chip before write-back.
 *
 * cv  [cv_rows][cv_cols][toc]  requantized conv outputs; cv pixel (0,0) is conv (cy0, cx0)
 * out [ny][nx][out_stride]     pooled outputs at channels [out_c0, out_c0+toc) (oy0.., ox0..
 *                              in pooled coordinates)
 * Max pool: over the valid (non-pad) elements of the window.
 * Avg pool: s = sum of window values, d = valid count (or count of input + explicit
 * padding positions when count_include_pad; ceil-mode overhang never counts),
 * y = floor((2s + d) / (2d)) saturated to int8. Global: the window is the whole plane.
 */
#ifndef ZSQ_POOL_H
#define ZSQ_POOL_H

#include <stdint.h>

/* floor(n / d) for d > 0 and any sign of n */
static inline int32_t zsq_floor_div(int32_t n, int32_t d) {
#pragma HLS INLINE
  int32_t q = n / d;
  if ((n % d != 0) && (n < 0)) q -= 1;
  return q;
}

struct zsq_pool_geom {
  int kind;            /* ZSQ_POOL_MAX / ZSQ_POOL_AVG */
  int kh, kw, sh, sw;  /* window / stride (global: kh = conv_h, kw = conv_w, s = 1) */
  int pt, pl, pb, pr;  /* explicit pads */
  int cip;             /* count_include_pad */
  int conv_h, conv_w;  /* conv plane */
};

static inline int zsq_imax(int a, int b) { return a > b ? a : b; }
static inline int zsq_imin(int a, int b) { return a < b ? a : b; }

template <class CFG>
void zsq_pool_tile(const int8_t *cv, int cv_cols, int toc, int cy0, int cx0,
                   const zsq_pool_geom &g, int oy0, int ny, int ox0, int nx, int8_t *out,
                   int out_stride, int out_c0) {
pool_row:
  for (int py = 0; py < ny; py++) {
#pragma HLS loop_tripcount min = 1 max = 64
    const int wy = (oy0 + py) * g.sh - g.pt;
    const int y0 = zsq_imax(wy, 0), y1 = zsq_imin(wy + g.kh, g.conv_h);
    const int dy = g.cip ? zsq_imin(wy + g.kh, g.conv_h + g.pb) - zsq_imax(wy, -g.pt) : y1 - y0;
  pool_col:
    for (int px = 0; px < nx; px++) {
#pragma HLS loop_tripcount min = 1 max = 64
      const int wx = (ox0 + px) * g.sw - g.pl;
      const int x0 = zsq_imax(wx, 0), x1 = zsq_imin(wx + g.kw, g.conv_w);
      const int dx = g.cip ? zsq_imin(wx + g.kw, g.conv_w + g.pr) - zsq_imax(wx, -g.pl) : x1 - x0;
      int8_t *o = out + (py * nx + px) * out_stride + out_c0;
      if (g.kind == 1) { /* max */
      pool_max_init:
        for (int c = 0; c < toc; c++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
          o[c] = -128;
        }
      pool_max_wy:
        for (int y = y0; y < y1; y++) {
#pragma HLS loop_tripcount min = 1 max = 3
        pool_max_wx:
          for (int x = x0; x < x1; x++) {
#pragma HLS loop_tripcount min = 1 max = 3
            const int8_t *s = cv + ((y - cy0) * cv_cols + (x - cx0)) * toc;
          pool_max_c:
            for (int c = 0; c < toc; c++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
#pragma HLS PIPELINE II = 1
              o[c] = s[c] > o[c] ? s[c] : o[c];
            }
          }
        }
      } else { /* avg */
        const int32_t d = dy * dx;
      pool_avg_c:
        for (int c = 0; c < toc; c++) {
#pragma HLS loop_tripcount min = 1 max = CFG::param_depth
          int32_t sum = 0;
        pool_avg_wy:
          for (int y = y0; y < y1; y++) {
#pragma HLS loop_tripcount min = 1 max = 15
          pool_avg_wx:
            for (int x = x0; x < x1; x++) {
#pragma HLS loop_tripcount min = 1 max = 15
#pragma HLS PIPELINE II = 1
              sum += cv[((y - cy0) * cv_cols + (x - cx0)) * toc + c];
            }
          }
          int32_t q = zsq_floor_div(2 * sum + d, 2 * d);
          o[c] = (int8_t)(q > 127 ? 127 : (q < -128 ? -128 : q));
        }
      }
    }
  }
}

#endif /* ZSQ_POOL_H */
