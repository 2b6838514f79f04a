/*
 * zsq_engine.cpp - top function of the zynq-squeeze int8 accelerator (Vitis HLS C++,
 * also compiled by g++ -O3 as the bit-exact C simulation).
 *
 * A layer-sequential engine: it walks a program of zsq_layer_t descriptors, and for each
 * layer walks its tiles (spatial tile x output-channel tile x input-channel step), moving
 * data between DDR (m_axi) and on-chip ping-pong buffers, running the MAC array
 * (zsq_conv.h), requantizing (zsq_requant.h), pooling (zsq_pool.h) and storing the
 * post-pool tile. FIRE layers keep the squeeze output tile (+1 pixel halo) on chip and
 * feed both expand convolutions from it. While executing, it accumulates the modeled
 * cycles exactly as zynq_squeeze.cycle_model does (see docs/ENGINE.md).
 */
#include "zsq_engine.h"

#include <string.h>

#include "zsq_conv.h"
#include "zsq_dma.h"
#include "zsq_engine_cfg.h"
#include "zsq_pool.h"
#include "zsq_requant.h"

typedef zsq_engine_cfg CFG;
static_assert(zsq_check_cfg<CFG>::ok, "engine configuration");

namespace {

inline int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int cdiv(int a, int b) { return (a + b - 1) / b; }
/* rows per weight bank of a toc-channel block */
inline int64_t wbank(int64_t toc) { return (toc + CFG::pe_oc - 1) / CFG::pe_oc; }

/* Geometry of tile t along one axis (rows: is_y, else columns). */
struct axis_t {
  int o0, no;   /* output (post-pool) range */
  int c0, nc;   /* conv output range feeding it */
  int i0, ni;   /* CONV: input buffer range (unclipped, zero padded) of conv slot 0 */
  int q0, nq;   /* FIRE: squeeze outputs computed (clipped to the plane); buffer starts at c0-1 */
  int qi0, nqi; /* FIRE: squeeze input buffer range for [q0, q0+nq) */
};

void axis_geom(const zsq_layer_t &L, bool is_y, int t, axis_t &a) {
  const int T = is_y ? L.th : L.tw;
  const int out_n = is_y ? L.out_h : L.out_w;
  const int conv_n = is_y ? L.conv_h : L.conv_w;
  a.o0 = t * T;
  a.no = zsq_imin(T, out_n - a.o0);
  if (L.pool_kind == ZSQ_POOL_NONE) {
    a.c0 = a.o0;
    a.nc = a.no;
  } else if (L.pool_global) {
    a.c0 = 0;
    a.nc = conv_n;
  } else {
    const int ps = is_y ? L.pool_sh : L.pool_sw;
    const int pk = is_y ? L.pool_kh : L.pool_kw;
    const int plo = is_y ? L.pool_pt : L.pool_pl;
    const int c0 = zsq_imax(0, a.o0 * ps - plo);
    const int c1 = zsq_imin(conv_n, (a.o0 + a.no - 1) * ps - plo + pk);
    a.c0 = c0;
    a.nc = c1 - c0;
  }
  const zsq_conv_desc_t &c = L.conv[0];
  const int k = is_y ? c.kh : c.kw, s = is_y ? c.sh : c.sw, plo = is_y ? c.pt : c.pl;
  a.i0 = a.c0 * s - plo;
  a.ni = (a.nc - 1) * s + k;
  a.q0 = zsq_imax(0, a.c0 - 1);
  a.nq = zsq_imin(conv_n, a.c0 + a.nc + 1) - a.q0;
  a.qi0 = a.q0 * s - plo;
  a.nqi = (a.nq - 1) * s + k;
}

/* ---------------------------------------------------------------- validation */

int check_conv(const zsq_conv_desc_t &c, int in_c, int in_h, int in_w, int *oh, int *ow) {
  if (c.oc < 1 || c.oc > 65536 || c.ic != in_c) return ZSQ_ERR_BAD_CONV;
  if (c.kh < 1 || c.kw < 1 || c.kh > 32 || c.kw > 32) return ZSQ_ERR_BAD_CONV;
  if (c.sh < 1 || c.sw < 1 || c.sh > 32 || c.sw > 32) return ZSQ_ERR_BAD_CONV;
  if (c.pt < 0 || c.pl < 0 || c.pb < 0 || c.pr < 0) return ZSQ_ERR_BAD_CONV;
  if (c.pt > 32 || c.pl > 32 || c.pb > 32 || c.pr > 32) return ZSQ_ERR_BAD_CONV;
  if ((c.relu != 0 && c.relu != 1) || c.w_off < 0 || c.p_off < 0) return ZSQ_ERR_BAD_CONV;
  const int nh = in_h + c.pt + c.pb - c.kh, nw = in_w + c.pl + c.pr - c.kw;
  if (nh < 0 || nw < 0) return ZSQ_ERR_BAD_CONV;
  *oh = nh / c.sh + 1;
  *ow = nw / c.sw + 1;
  return ZSQ_OK;
}

int pool_out(int n, int k, int s, int lo, int hi, int ceil_mode) {
  const int span = n + lo + hi - k;
  if (span < 0) return -1;
  int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= n + lo) out -= 1;
  return out;
}

int check_params(const zsq_conv_desc_t &c, const int32_t *params) {
chk_shift:
  for (int o = 0; o < c.oc; o++) {
#pragma HLS loop_tripcount min = 1 max = 1024
    const int32_t sh = params[c.p_off + 3 * o + 2];
    if (sh < 1 || sh > 62) return ZSQ_ERR_BAD_REQUANT;
  }
  return ZSQ_OK;
}

int check_layer(const zsq_layer_t &L, const int32_t *params) {
  if (L.magic != ZSQ_MAGIC || L.version != ZSQ_VERSION) return ZSQ_ERR_BAD_MAGIC;
  if (L.kind != ZSQ_KIND_CONV && L.kind != ZSQ_KIND_FIRE) return ZSQ_ERR_BAD_KIND;
  const int lim = 1 << 16;
  if (L.in_c < 1 || L.in_h < 1 || L.in_w < 1 || L.out_c < 1 || L.out_h < 1 || L.out_w < 1 ||
      L.conv_h < 1 || L.conv_w < 1 || L.in_off < 0 || L.out_off < 0)
    return ZSQ_ERR_BAD_SHAPE;
  if (L.in_c > lim || L.in_h > lim || L.in_w > lim || L.out_c > lim || L.out_h > lim ||
      L.out_w > lim || L.conv_h > lim || L.conv_w > lim)
    return ZSQ_ERR_BAD_SHAPE;
  if (L.toc < 1 || L.tic < 1 || L.th < 1 || L.tw < 1) return ZSQ_ERR_BAD_TILE;
  if (L.loop_order != ZSQ_ORDER_SPATIAL_OUTER && L.loop_order != ZSQ_ORDER_OC_OUTER)
    return ZSQ_ERR_BAD_TILE;
  if (L.double_buffer != 0 && L.double_buffer != 1) return ZSQ_ERR_BAD_TILE;
  int oh = 0, ow = 0, rc;
  if ((rc = check_conv(L.conv[0], L.in_c, L.in_h, L.in_w, &oh, &ow)) != ZSQ_OK) return rc;
  if (oh != L.conv_h || ow != L.conv_w) return ZSQ_ERR_BAD_SHAPE;
  if ((rc = check_params(L.conv[0], params)) != ZSQ_OK) return rc;
  const int S = L.conv[0].oc;
  if (L.kind == ZSQ_KIND_CONV) {
    if (L.out_c != S) return ZSQ_ERR_BAD_SHAPE;
  } else {
    const zsq_conv_desc_t &e1 = L.conv[1], &e3 = L.conv[2];
    int h1, w1, h3, w3;
    if ((rc = check_conv(e1, S, oh, ow, &h1, &w1)) != ZSQ_OK) return rc;
    if ((rc = check_conv(e3, S, oh, ow, &h3, &w3)) != ZSQ_OK) return rc;
    if (e1.kh != 1 || e1.kw != 1 || e1.sh != 1 || e1.sw != 1 || e1.pt || e1.pl || e1.pb || e1.pr)
      return ZSQ_ERR_BAD_CONV;
    if (e3.kh != 3 || e3.kw != 3 || e3.sh != 1 || e3.sw != 1 || e3.pt != 1 || e3.pl != 1 ||
        e3.pb != 1 || e3.pr != 1)
      return ZSQ_ERR_BAD_CONV;
    if (L.out_c != e1.oc + e3.oc) return ZSQ_ERR_BAD_SHAPE;
    if ((rc = check_params(e1, params)) != ZSQ_OK) return rc;
    if ((rc = check_params(e3, params)) != ZSQ_OK) return rc;
  }
  /* pool */
  if (L.pool_kind == ZSQ_POOL_NONE) {
    if (L.out_h != L.conv_h || L.out_w != L.conv_w) return ZSQ_ERR_BAD_SHAPE;
  } else if (L.pool_kind == ZSQ_POOL_MAX || L.pool_kind == ZSQ_POOL_AVG) {
    if (L.pool_global == 1) {
      if (L.out_h != 1 || L.out_w != 1) return ZSQ_ERR_BAD_SHAPE;
    } else if (L.pool_global == 0) {
      if (L.pool_kh < 1 || L.pool_kw < 1 || L.pool_sh < 1 || L.pool_sw < 1 || L.pool_kh > 64 ||
          L.pool_kw > 64 || L.pool_sh > 64 || L.pool_sw > 64)
        return ZSQ_ERR_BAD_POOL;
      if (L.pool_pt < 0 || L.pool_pb < 0 || L.pool_pl < 0 || L.pool_pr < 0 ||
          L.pool_pt >= L.pool_kh || L.pool_pb >= L.pool_kh || L.pool_pl >= L.pool_kw ||
          L.pool_pr >= L.pool_kw)
        return ZSQ_ERR_BAD_POOL;
      if ((L.pool_ceil != 0 && L.pool_ceil != 1) ||
          (L.pool_count_include_pad != 0 && L.pool_count_include_pad != 1))
        return ZSQ_ERR_BAD_POOL;
      const int ph = pool_out(L.conv_h, L.pool_kh, L.pool_sh, L.pool_pt, L.pool_pb, L.pool_ceil);
      const int pw = pool_out(L.conv_w, L.pool_kw, L.pool_sw, L.pool_pl, L.pool_pr, L.pool_ceil);
      if (ph < 1 || pw < 1) return ZSQ_ERR_BAD_POOL;
      if (ph != L.out_h || pw != L.out_w) return ZSQ_ERR_BAD_SHAPE;
    } else {
      return ZSQ_ERR_BAD_POOL;
    }
  } else {
    return ZSQ_ERR_BAD_POOL;
  }
  /* buffers: worst tile along each axis */
  int64_t mx_no[2] = {0, 0}, mx_nc[2] = {0, 0}, mx_ni[2] = {0, 0}, mx_nq[2] = {0, 0},
          mx_nqi[2] = {0, 0};
chk_axis:
  for (int ax = 0; ax < 2; ax++) {
    const int n_t = cdiv(ax == 0 ? L.out_h : L.out_w, ax == 0 ? L.th : L.tw);
  chk_tile:
    for (int t = 0; t < n_t; t++) {
#pragma HLS loop_tripcount min = 1 max = 256
      axis_t a;
      axis_geom(L, ax == 0, t, a);
      if (a.nc < 1) return ZSQ_ERR_BAD_POOL;
      mx_no[ax] = imax64(mx_no[ax], a.no);
      mx_nc[ax] = imax64(mx_nc[ax], a.nc);
      mx_ni[ax] = imax64(mx_ni[ax], a.ni);
      mx_nq[ax] = imax64(mx_nq[ax], a.nq);
      mx_nqi[ax] = imax64(mx_nqi[ax], a.nqi);
    }
  }
  const int64_t out_px = mx_no[0] * mx_no[1], conv_px = mx_nc[0] * mx_nc[1];
  const zsq_conv_desc_t &c0 = L.conv[0];
  const int64_t tic = zsq_imin(L.tic, L.in_c), K0 = (int64_t)c0.kh * c0.kw;
  if (L.kind == ZSQ_KIND_CONV) {
    const int64_t toc = zsq_imin(L.toc, L.out_c);
    if (toc > CFG::param_depth) return ZSQ_ERR_PARAM_BUF;
    if (mx_ni[0] * mx_ni[1] * tic > CFG::in_buf_bytes) return ZSQ_ERR_IN_BUF;
    if (wbank(toc) * K0 * tic > CFG::w_bank_bytes) return ZSQ_ERR_W_BUF;
    if (conv_px * toc > CFG::acc_words) return ZSQ_ERR_ACC_BUF;
    if (L.pool_kind != ZSQ_POOL_NONE && conv_px * toc > CFG::out_buf_bytes) return ZSQ_ERR_OUT_BUF;
    /* spatial_outer assembles the tile over all output channels before one store */
    const int64_t onc = L.loop_order == ZSQ_ORDER_SPATIAL_OUTER ? (int64_t)L.out_c : toc;
    if (out_px * onc > CFG::out_buf_bytes) return ZSQ_ERR_OUT_BUF;
  } else {
    const int64_t E1 = L.conv[1].oc, E3 = L.conv[2].oc;
    const int64_t toc_s = zsq_imin(L.toc, S), toc1 = zsq_imin(L.toc, (int)E1),
                  toc3 = zsq_imin(L.toc, (int)E3);
    const int64_t tocm = toc1 > toc3 ? toc1 : toc3;
    if (toc_s > CFG::param_depth || tocm > CFG::param_depth) return ZSQ_ERR_PARAM_BUF;
    if (mx_nqi[0] * mx_nqi[1] * tic > CFG::in_buf_bytes) return ZSQ_ERR_IN_BUF;
    if (wbank(toc_s) * K0 * tic > CFG::w_bank_bytes || wbank(toc1) * S > CFG::w_bank_bytes ||
        wbank(toc3) * 9 * S > CFG::w_bank_bytes)
      return ZSQ_ERR_W_BUF;
    if (mx_nq[0] * mx_nq[1] * toc_s > CFG::acc_words || conv_px * tocm > CFG::acc_words)
      return ZSQ_ERR_ACC_BUF;
    if ((mx_nc[0] + 2) * (mx_nc[1] + 2) * S > CFG::sq_buf_bytes) return ZSQ_ERR_SQ_BUF;
    if (L.pool_kind != ZSQ_POOL_NONE && conv_px * tocm > CFG::out_buf_bytes) return ZSQ_ERR_OUT_BUF;
    if (out_px * (E1 + E3) > CFG::out_buf_bytes) return ZSQ_ERR_OUT_BUF;
  }
  return ZSQ_OK;
}

/* ---------------------------------------------------------------- execution */

struct tag_t {
  int v[5];
};
inline bool tag_eq(const tag_t &a, const tag_t &b) {
  return a.v[0] == b.v[0] && a.v[1] == b.v[1] && a.v[2] == b.v[2] && a.v[3] == b.v[3] &&
         a.v[4] == b.v[4];
}
inline tag_t mk_tag(int a, int b, int c, int d, int e) {
  tag_t t;
  t.v[0] = a; t.v[1] = b; t.v[2] = c; t.v[3] = d; t.v[4] = e;
  return t;
}

/* On-chip buffers (ping-pong where indexed [2]) and the running cycle model. */
struct engine_t {
  int8_t (*in_buf)[CFG::in_buf_bytes];
  int8_t (*w_buf)[CFG::pe_oc][CFG::w_bank_bytes];
  int32_t (*acc)[CFG::acc_words];
  int8_t *cv_buf;
  int8_t (*out_buf)[CFG::out_buf_bytes];
  int8_t *sq_buf;
  int32_t (*bias)[CFG::param_depth], (*mult)[CFG::param_depth];
  int8_t (*shift)[CFG::param_depth];
  tag_t in_tag, w_tag, p_tag;
  int in_half, w_half, out_half, acc_half, p_half;
  int db;
  /* cycle model: lockstep 3-stage item pipeline (compute k | requant+pool k-1 | store k-2) */
  int64_t total, bytes, macs;
  int64_t r1, s1, s2;             /* requant of item k-1, stores of items k-1 and k-2 */
  int pend;                       /* an item whose last compute step is not committed */
  int64_t pA, pC, pR, pS;         /* its compute stage (without the last step), last step, R, S */
};

inline void pipe_step(engine_t &e, int64_t A, int64_t R, int64_t S) {
  e.total += imax64(A, imax64(e.r1, e.s2));
  e.s2 = e.s1;
  e.r1 = R;
  e.s1 = S;
}

/* Begin an item: P = params load, L0 = its first loads. With double buffering L0 is
 * prefetched during the previous item's last compute step; `drain` inserts an empty
 * step (fire: the squeeze tile is complete in sq_buf before the expands read it). */
inline int64_t start_item(engine_t &e, int64_t P, int64_t L0, bool drain) {
  if (!e.db) return P + L0;
  int64_t A = P + L0;
  if (e.pend) {
    pipe_step(e, e.pA + imax64(e.pC, L0), e.pR, e.pS);
    e.pend = 0;
    A = P;
  }
  if (drain) pipe_step(e, 0, 0, 0);
  return A;
}

inline void end_item(engine_t &e, int64_t A, int64_t C_last, int64_t R, int64_t S) {
  if (e.db) {
    e.pend = 1;
    e.pA = A; e.pC = C_last; e.pR = R; e.pS = S;
  } else {
    e.total += A + C_last + R + S;
  }
}

inline void finish_layer(engine_t &e) {
  if (e.pend) {
    pipe_step(e, e.pA + e.pC, e.pR, e.pS);
    e.pend = 0;
  }
  if (e.db) {
    pipe_step(e, 0, 0, 0);
    pipe_step(e, 0, 0, 0);
  }
}

struct region_t {
  int cy0, ch, cx0, cw;   /* conv output region */
  int iy0, ny, ix0, nx;   /* DDR input buffer region (slot fed from DDR) */
  const int8_t *onchip;   /* on-chip input (fire expands) or nullptr */
  int on_cols, row0, col0;
};

/* One step's loads; returns their cycles and the halves holding the data. */
int64_t load_step(engine_t &e, const zsq_layer_t &L, int li, int slot, const int8_t *act,
                  const int8_t *weights, int oc_tile, int oc0, int toc_a, int ty, int tx, int j,
                  int tic, const region_t &r, int *in_h, int *w_h) {
  const zsq_conv_desc_t &c = L.conv[slot];
  const int K = c.kh * c.kw;
  const int ic0 = j * tic, tic_a = zsq_imin(tic, c.ic - ic0);
  int64_t cyc = 0;
  if (!r.onchip) {
    const tag_t t = mk_tag(li, slot, ty, tx, j);
    if (!tag_eq(t, e.in_tag)) {
      e.in_half ^= 1;
      cyc += zsq_load_input<CFG>(act + L.in_off, L.in_h, L.in_w, L.in_c, ic0, tic_a, r.iy0, r.ny,
                                 r.ix0, r.nx, e.in_buf[e.in_half], &e.bytes);
      e.in_tag = t;
    }
    *in_h = e.in_half;
  }
  const tag_t tw = mk_tag(li, slot, oc_tile, j, 0);
  if (!tag_eq(tw, e.w_tag)) {
    e.w_half ^= 1;
    const int64_t off = (int64_t)c.w_off + (int64_t)oc0 * K * c.ic + (int64_t)toc_a * K * ic0;
    cyc += zsq_load_weights<CFG>(weights + off, toc_a, K * tic_a, e.w_buf[e.w_half], &e.bytes);
    e.w_tag = tw;
  }
  *w_h = e.w_half;
  return cyc;
}

/* Accumulate conv `slot` for output channels [oc0, oc0+toc_a) over region r into the
 * next accumulator half. Returns the item's compute-stage cycles (without its last
 * compute step, which is returned in *C_last: the next item's loads overlap it). */
int64_t run_item(engine_t &e, const zsq_layer_t &L, int li, int slot, const int8_t *act,
                 const int8_t *weights, const int32_t *params, int oc_tile, int oc0, int toc_a,
                 int ty, int tx, const region_t &r, bool drain, int64_t *C_last) {
  const zsq_conv_desc_t &c = L.conv[slot];
  const int tic = r.onchip ? c.ic : zsq_imin(L.tic, c.ic);
  const int n_ic = cdiv(c.ic, tic);
  const int npx = r.ch * r.cw;
  int64_t P = 0;
  const tag_t tp = mk_tag(li, slot, oc_tile, 0, 0);
  if (!tag_eq(tp, e.p_tag)) {
    e.p_half ^= 1;
    P = zsq_load_params<CFG>(params + c.p_off + 3 * oc0, toc_a, e.bias[e.p_half],
                             e.mult[e.p_half], e.shift[e.p_half], &e.bytes);
    e.p_tag = tp;
  }
  e.acc_half ^= 1;
  int32_t *acc = e.acc[e.acc_half];
acc_zero:
  for (int i = 0; i < npx * toc_a; i++) {
#pragma HLS loop_tripcount min = 1 max = CFG::acc_words
#pragma HLS PIPELINE II = 1
    acc[i] = 0;
  }
  int in_h = 0, w_h = 0;
  const int64_t L0 =
      load_step(e, L, li, slot, act, weights, oc_tile, oc0, toc_a, ty, tx, 0, tic, r, &in_h, &w_h);
  int64_t A = start_item(e, P, L0, drain);
  int64_t C = 0;
ic_step:
  for (int j = 0; j < n_ic; j++) {
#pragma HLS loop_tripcount min = 1 max = 64
    const int tic_a = zsq_imin(tic, c.ic - j * tic);
    if (j > 0) {
      /* the loads of step j were prefetched into the other halves during step j-1 */
      const int64_t Ln = load_step(e, L, li, slot, act, weights, oc_tile, oc0, toc_a, ty, tx, j,
                                   tic, r, &in_h, &w_h);
      A += e.db ? imax64(C, Ln) : C + Ln;
    }
    if (r.onchip) {
      zsq_conv_tile<CFG>(r.onchip, r.on_cols, c.ic, e.w_buf[w_h], toc_a, c.kh, c.kw, c.sh, c.sw,
                         r.row0, r.col0, r.ch, r.cw, acc);
    } else {
      zsq_conv_tile<CFG>(e.in_buf[in_h], r.nx, tic_a, e.w_buf[w_h], toc_a, c.kh, c.kw, c.sh, c.sw,
                         0, 0, r.ch, r.cw, acc);
    }
    /* the MAC array reduces pe_ic consecutive bytes of a kernel row (kx and channels are
     * adjacent in HWC): ceil(kw * tic / pe_ic) groups per kernel row */
    C = (int64_t)npx * c.kh * cdiv(c.kw * tic_a, CFG::pe_ic) * cdiv(toc_a, CFG::pe_oc) +
        CFG::pipeline_depth;
    e.macs += (int64_t)npx * c.kh * c.kw * tic_a * toc_a;
  }
  *C_last = C;
  return A;
}

/* Requantize (+pool) the accumulator tile of `slot` into the output tile at channel
 * oc_base (stride out_nc), and store the output tile when `store` (all out_nc channels
 * at channel st_c0 of the tensor). Adds the item to the cycle model. */
void finish_item(engine_t &e, const zsq_layer_t &L, int slot, int toc_a, int oc_base, int out_nc,
                 bool store, int st_c0, const region_t &r, const axis_t &ay, const axis_t &ax,
                 int8_t *act, int64_t A, int64_t C_last) {
  const zsq_conv_desc_t &c = L.conv[slot];
  const int32_t *acc = e.acc[e.acc_half];
  const int32_t *bias = e.bias[e.p_half], *mult = e.mult[e.p_half];
  const int8_t *shift = e.shift[e.p_half];
  int64_t R = (int64_t)r.ch * r.cw * cdiv(toc_a, CFG::rq_lanes);
  int8_t *ob = e.out_buf[e.out_half];
  if (L.pool_kind == ZSQ_POOL_NONE) {
    zsq_requant_tile<CFG>(acc, r.ch, r.cw, toc_a, bias, mult, shift, c.relu, ob, r.cw, out_nc,
                          oc_base);
  } else {
    zsq_requant_tile<CFG>(acc, r.ch, r.cw, toc_a, bias, mult, shift, c.relu, e.cv_buf, r.cw,
                          toc_a, 0);
    zsq_pool_geom g;
    g.kind = L.pool_kind;
    g.conv_h = L.conv_h;
    g.conv_w = L.conv_w;
    g.cip = L.pool_count_include_pad;
    if (L.pool_global) {
      g.kh = L.conv_h; g.kw = L.conv_w; g.sh = 1; g.sw = 1;
      g.pt = 0; g.pl = 0; g.pb = 0; g.pr = 0;
    } else {
      g.kh = L.pool_kh; g.kw = L.pool_kw; g.sh = L.pool_sh; g.sw = L.pool_sw;
      g.pt = L.pool_pt; g.pl = L.pool_pl; g.pb = L.pool_pb; g.pr = L.pool_pr;
    }
    zsq_pool_tile<CFG>(e.cv_buf, r.cw, toc_a, r.cy0, r.cx0, g, ay.o0, ay.no, ax.o0, ax.no, ob,
                       out_nc, oc_base);
    /* pooling compares / adds pe_oc int8 channels per cycle */
    R += (int64_t)ay.no * ax.no * g.kh * g.kw * cdiv(toc_a, CFG::pe_oc);
  }
  int64_t S = 0;
  if (store) {
    S = zsq_store_tile<CFG>(ob, ay.no, ax.no, out_nc, act + L.out_off, L.out_w, L.out_c, st_c0,
                            ay.o0, ax.o0, &e.bytes);
    e.out_half ^= 1;
  }
  end_item(e, A, C_last, R, S);
}

void conv_item(engine_t &e, const zsq_layer_t &L, int li, int8_t *act, const int8_t *weights,
               const int32_t *params, int ty, int tx, int ot) {
  axis_t ay, ax;
  axis_geom(L, true, ty, ay);
  axis_geom(L, false, tx, ax);
  const int toc = zsq_imin(L.toc, L.out_c);
  const int oc0 = ot * toc, toc_a = zsq_imin(toc, L.out_c - oc0);
  region_t r;
  r.cy0 = ay.c0; r.ch = ay.nc; r.cx0 = ax.c0; r.cw = ax.nc;
  r.iy0 = ay.i0; r.ny = ay.ni; r.ix0 = ax.i0; r.nx = ax.ni;
  r.onchip = nullptr; r.on_cols = 0; r.row0 = 0; r.col0 = 0;
  int64_t C = 0;
  const int64_t A = run_item(e, L, li, 0, act, weights, params, ot, oc0, toc_a, ty, tx, r, false, &C);
  if (L.loop_order == ZSQ_ORDER_SPATIAL_OUTER) /* tile assembled over all channels */
    finish_item(e, L, 0, toc_a, oc0, L.out_c, oc0 + toc_a == L.out_c, 0, r, ay, ax, act, A, C);
  else
    finish_item(e, L, 0, toc_a, 0, toc_a, true, oc0, r, ay, ax, act, A, C);
}

void run_conv(engine_t &e, const zsq_layer_t &L, int li, int8_t *act, const int8_t *weights,
              const int32_t *params) {
  const int n_ty = cdiv(L.out_h, L.th), n_tx = cdiv(L.out_w, L.tw);
  const int n_ot = cdiv(L.out_c, zsq_imin(L.toc, L.out_c));
  if (L.loop_order == ZSQ_ORDER_SPATIAL_OUTER) {
  conv_ty:
    for (int ty = 0; ty < n_ty; ty++) {
#pragma HLS loop_tripcount min = 1 max = 64
    conv_tx:
      for (int tx = 0; tx < n_tx; tx++) {
#pragma HLS loop_tripcount min = 1 max = 64
      conv_oc_tile:
        for (int ot = 0; ot < n_ot; ot++) {
#pragma HLS loop_tripcount min = 1 max = 64
          conv_item(e, L, li, act, weights, params, ty, tx, ot);
        }
      }
    }
  } else {
  conv_oc_tile_o:
    for (int ot = 0; ot < n_ot; ot++) {
#pragma HLS loop_tripcount min = 1 max = 64
    conv_ty_o:
      for (int ty = 0; ty < n_ty; ty++) {
#pragma HLS loop_tripcount min = 1 max = 64
      conv_tx_o:
        for (int tx = 0; tx < n_tx; tx++) {
#pragma HLS loop_tripcount min = 1 max = 64
          conv_item(e, L, li, act, weights, params, ty, tx, ot);
        }
      }
    }
  }
}

void run_fire(engine_t &e, const zsq_layer_t &L, int li, int8_t *act, const int8_t *weights,
              const int32_t *params) {
  const int n_ty = cdiv(L.out_h, L.th), n_tx = cdiv(L.out_w, L.tw);
  const int S = L.conv[0].oc, E1 = L.conv[1].oc, E3 = L.conv[2].oc;
  const int toc_s = zsq_imin(L.toc, S);
fire_ty:
  for (int ty = 0; ty < n_ty; ty++) {
#pragma HLS loop_tripcount min = 1 max = 64
  fire_tx:
    for (int tx = 0; tx < n_tx; tx++) {
#pragma HLS loop_tripcount min = 1 max = 64
      axis_t ay, ax;
      axis_geom(L, true, ty, ay);
      axis_geom(L, false, tx, ax);
      /* squeeze tile with a 1-pixel halo: rows [c0-1, c0+nc+1), zero outside the plane */
      const int sr0 = ay.c0 - 1, nsr = ay.nc + 2, sc0 = ax.c0 - 1, nsc = ax.nc + 2;
      if (ay.q0 != sr0 || ay.nq != nsr || ax.q0 != sc0 || ax.nq != nsc) {
      sq_zero:
        for (int i = 0; i < nsr * nsc * S; i++) {
#pragma HLS loop_tripcount min = 1 max = CFG::sq_buf_bytes
#pragma HLS PIPELINE II = 1
          e.sq_buf[i] = 0;
        }
      }
      region_t rs;
      rs.cy0 = ay.q0; rs.ch = ay.nq; rs.cx0 = ax.q0; rs.cw = ax.nq;
      rs.iy0 = ay.qi0; rs.ny = ay.nqi; rs.ix0 = ax.qi0; rs.nx = ax.nqi;
      rs.onchip = nullptr; rs.on_cols = 0; rs.row0 = 0; rs.col0 = 0;
    fire_sq_tile:
      for (int ot = 0; ot * toc_s < S; ot++) {
#pragma HLS loop_tripcount min = 1 max = 4
        const int oc0 = ot * toc_s, toc_a = zsq_imin(toc_s, S - oc0);
        int64_t C = 0;
        const int64_t A =
            run_item(e, L, li, 0, act, weights, params, ot, oc0, toc_a, ty, tx, rs, false, &C);
        zsq_requant_tile<CFG>(e.acc[e.acc_half], rs.ch, rs.cw, toc_a, e.bias[e.p_half],
                              e.mult[e.p_half], e.shift[e.p_half], L.conv[0].relu,
                              e.sq_buf + ((ay.q0 - sr0) * nsc + (ax.q0 - sc0)) * S, nsc, S, oc0);
        end_item(e, A, C, (int64_t)rs.ch * rs.cw * cdiv(toc_a, CFG::rq_lanes), 0);
      }
      region_t rx;
      rx.cy0 = ay.c0; rx.ch = ay.nc; rx.cx0 = ax.c0; rx.cw = ax.nc;
      rx.iy0 = 0; rx.ny = 0; rx.ix0 = 0; rx.nx = 0;
      rx.onchip = e.sq_buf; rx.on_cols = nsc;
    fire_expand:
      for (int slot = 1; slot <= 2; slot++) {
        const int E = slot == 1 ? E1 : E3;
        const int toc = zsq_imin(L.toc, E);
        rx.row0 = slot == 1 ? 1 : 0;
        rx.col0 = rx.row0;
      fire_ex_tile:
        for (int ot = 0; ot * toc < E; ot++) {
#pragma HLS loop_tripcount min = 1 max = 8
          const int oc0 = ot * toc, toc_a = zsq_imin(toc, E - oc0);
          int64_t C = 0;
          const int64_t A = run_item(e, L, li, slot, act, weights, params, ot, oc0, toc_a, ty, tx,
                                     rx, slot == 1 && ot == 0, &C);
          finish_item(e, L, slot, toc_a, (slot == 1 ? 0 : E1) + oc0, E1 + E3,
                      slot == 2 && oc0 + toc_a == E3, 0, rx, ay, ax, act, A, C);
        }
      }
    }
  }
}

}  // namespace

extern "C" int zsq_engine(const zsq_layer_t *prog, int n_layers, int8_t *act,
                          const int8_t *weights, const int32_t *params, zsq_stats_t *stats) {
#pragma HLS INTERFACE m_axi port = prog offset = slave bundle = gmem_ctl depth = 64
#pragma HLS INTERFACE m_axi port = params offset = slave bundle = gmem_ctl depth = 8192
#pragma HLS INTERFACE m_axi port = stats offset = slave bundle = gmem_ctl depth = 1
#pragma HLS INTERFACE m_axi port = act offset = slave bundle = gmem_act depth = 1048576 max_read_burst_length = 256 max_write_burst_length = 256
#pragma HLS INTERFACE m_axi port = weights offset = slave bundle = gmem_w depth = 1048576 max_read_burst_length = 256
#pragma HLS INTERFACE s_axilite port = prog
#pragma HLS INTERFACE s_axilite port = n_layers
#pragma HLS INTERFACE s_axilite port = act
#pragma HLS INTERFACE s_axilite port = weights
#pragma HLS INTERFACE s_axilite port = params
#pragma HLS INTERFACE s_axilite port = stats
#pragma HLS INTERFACE s_axilite port = return
  /* on-chip buffers (docs/ENGINE.md lists them for the BRAM model) */
  alignas(64) static int8_t in_buf[2][CFG::in_buf_bytes];
#pragma HLS ARRAY_RESHAPE variable = in_buf cyclic factor = ZSQ_PE_IC dim = 2
  alignas(64) static int8_t w_buf[2][CFG::pe_oc][CFG::w_bank_bytes];
#pragma HLS ARRAY_PARTITION variable = w_buf complete dim = 2
#pragma HLS ARRAY_RESHAPE variable = w_buf cyclic factor = ZSQ_PE_IC dim = 3
  alignas(64) static int32_t acc[2][CFG::acc_words];
#pragma HLS ARRAY_PARTITION variable = acc cyclic factor = ZSQ_PE_OC dim = 2
  alignas(64) static int8_t cv_buf[CFG::out_buf_bytes];
#pragma HLS ARRAY_PARTITION variable = cv_buf cyclic factor = ZSQ_PE_OC
  alignas(64) static int8_t out_buf[2][CFG::out_buf_bytes];
#pragma HLS ARRAY_PARTITION variable = out_buf cyclic factor = ZSQ_PE_OC dim = 2
  alignas(64) static int8_t sq_buf[CFG::sq_buf_bytes];
#pragma HLS ARRAY_RESHAPE variable = sq_buf cyclic factor = ZSQ_PE_IC
  static int32_t bias[2][CFG::param_depth], mult[2][CFG::param_depth];
  static int8_t shift[2][CFG::param_depth];
#pragma HLS ARRAY_PARTITION variable = bias cyclic factor = ZSQ_RQ_LANES dim = 2
#pragma HLS ARRAY_PARTITION variable = mult cyclic factor = ZSQ_RQ_LANES dim = 2
#pragma HLS ARRAY_PARTITION variable = shift cyclic factor = ZSQ_RQ_LANES dim = 2

  if (!prog || !act || !weights || !params || n_layers < 0 || n_layers > ZSQ_MAX_LAYERS)
    return ZSQ_ERR_BAD_ARG;
  /* validate the whole program before touching the arena */
validate:
  for (int li = 0; li < n_layers; li++) {
#pragma HLS loop_tripcount min = 1 max = 32
    const int rc = check_layer(prog[li], params);
    if (rc != ZSQ_OK) return rc;
  }
  engine_t e;
  e.in_buf = in_buf; e.w_buf = w_buf; e.acc = acc; e.cv_buf = cv_buf; e.out_buf = out_buf;
  e.sq_buf = sq_buf; e.bias = bias; e.mult = mult; e.shift = shift;
  e.in_tag = mk_tag(-1, -1, -1, -1, -1);
  e.w_tag = e.in_tag;
  e.p_tag = e.in_tag;
  e.in_half = 1; e.w_half = 1; e.out_half = 0; e.acc_half = 1; e.p_half = 1;
  int64_t total = 0;
  if (stats) {
    memset(stats, 0, sizeof(*stats));
    stats->n_layers = n_layers;
  }
layer:
  for (int li = 0; li < n_layers; li++) {
#pragma HLS loop_tripcount min = 1 max = 32
    const zsq_layer_t L = prog[li];
    e.db = L.double_buffer;
    e.total = CFG::layer_overhead;
    e.r1 = 0; e.s1 = 0; e.s2 = 0; e.pend = 0;
    e.pA = 0; e.pC = 0; e.pR = 0; e.pS = 0;
    e.bytes = 0;
    e.macs = 0;
    if (L.kind == ZSQ_KIND_CONV)
      run_conv(e, L, li, act, weights, params);
    else
      run_fire(e, L, li, act, weights, params);
    finish_layer(e);
    total += e.total;
    if (stats) {
      stats->layer_cycles[li] = e.total;
      stats->layer_ddr_bytes[li] = e.bytes;
      stats->layer_macs[li] = e.macs;
    }
  }
  if (stats) stats->total_cycles = total;
  return ZSQ_OK;
}
