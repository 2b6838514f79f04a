/*
 * zsq_dae.h - the decoupled engine's modules: what load, compute and store do for one
 * instruction (docs/ENGINE.md).
 *
 * Each *_exec function executes one instruction of its module on the module's registers
 * and buffers; the synthesized modules (zsq_dae_top.cpp) call them in a loop over their
 * command queue, the simulation driver calls them in dependency order. Every loop is
 * flattened, pipelined at II=1 and walks its buffers with incremental counters: no
 * division, modulo or runtime multiply inside a pipeline. Timing is charged (simulation
 * only) from the loops' executed trip counts and the AXI transfers they issue.
 */
#ifndef ZSQ_DAE_H
#define ZSQ_DAE_H

#include <ap_int.h>
#include <stdint.h>

#include "zsq_dae_cfg.h"
#include "zsq_isa.h"

typedef ap_uint<64> zsqd_word;

/* ---- timing (simulation only: never synthesized) ---------------------------------- */
#ifndef __SYNTHESIS__
struct zsqd_charge {
  int64_t cycles;    /* cycles of the current instruction */
  int64_t rd_bursts; /* AXI bursts / beats issued by the current instruction */
  int64_t rd_beats;
  int64_t wr_bursts;
  int64_t wr_beats;
  int64_t macs;      /* executed multiply-accumulates (pe_oc x 8 per CONV iteration) */
  /* the HP-port model, set by the driver before each instruction */
  int64_t rd_latency, wr_latency, outstanding, beat_x100;
};
extern thread_local zsqd_charge zsqd_now;
/* A pipelined loop that moves no DDR data: trip count x II (1) + depth. */
#define ZSQD_LOOP(trips, depth) (zsqd_now.cycles += ((trips) > 0 ? (int64_t)(trips) + (depth) : 0))
/* k pipelined loops, each one AXI burst region of n contiguous beats (16-beat AXI3 bursts,
 * up to `outstanding` in flight): the latency is paid once per region, the beats stream
 * at the DDR-shared beat rate, the loop consumes them at II=1. */
static inline void zsqd_charge_runs(int64_t k, int64_t n, int64_t depth, bool write) {
  if (k <= 0 || n <= 0) return;
  const zsqd_charge &c = zsqd_now;
  const int64_t lat = write ? c.wr_latency : c.rd_latency;
  const int64_t bursts = (n + 15) / 16;
  const int64_t beats = (n * c.beat_x100 + 99) / 100;
  const int64_t issue = bursts * ((lat + c.outstanding - 1) / c.outstanding);
  const int64_t axi = lat + (beats > issue ? beats : issue);
  const int64_t loop = n + depth;
  zsqd_now.cycles += k * (loop > axi ? loop : axi);
  if (write) { zsqd_now.wr_bursts += k * bursts; zsqd_now.wr_beats += k * n; }
  else { zsqd_now.rd_bursts += k * bursts; zsqd_now.rd_beats += k * n; }
}
#define ZSQD_RD_LOOPS(k, n, depth) zsqd_charge_runs((k), (n), (depth), false)
#define ZSQD_WR_LOOPS(k, n, depth) zsqd_charge_runs((k), (n), (depth), true)
#define ZSQD_MACS(n) (zsqd_now.macs += (n))
#else
#define ZSQD_LOOP(trips, depth)
#define ZSQD_RD_LOOPS(k, n, depth)
#define ZSQD_WR_LOOPS(k, n, depth)
#define ZSQD_MACS(n)
#endif

/* ---- registers ----------------------------------------------------------------------- */
/* SET: write the module's register (id & 63); true when `insn` was a SET. */
static inline bool zsqd_set_register(zsqd_word insn, int32_t regs[ZSQ_N_REGS]) {
#pragma HLS INLINE
  if (insn.range(3, 0) != ZSQ_OP_SET) return false;
  regs[(int)insn.range(21, 16)] = (int32_t)(uint32_t)insn.range(63, 32);
  ZSQD_LOOP(1, 0);
  return true;
}

/* Every register reads 0 until the program sets it, as in the simulation. */
static inline void zsqd_reset_registers(int32_t regs[ZSQ_N_REGS]) {
#pragma HLS INLINE
regs_reset:
  for (int r = 0; r < ZSQ_N_REGS; r++) {
#pragma HLS UNROLL
    regs[r] = 0;
  }
}

/* ---- words of 8 int8 ---------------------------------------------------------------- */
static inline ap_int<8> zsqd_byte(zsqd_word w, int i) {
#pragma HLS INLINE
  ap_int<8> b;
  b.range(7, 0) = w.range(8 * i + 7, 8 * i);
  return b;
}

/* Requantization (docs/ENGINE.md "Arithmetic"): a = (acc + bias) >> pre;
 * y = (a * mult + 2^(shift-1)) >> shift; ReLU; saturate. Params word: bias [31:0],
 * mult [53:32], shift [59:54], pre [63:60]. a fits 25 bits. WIDE (ZSQD_WIDE_RQ, QDQ
 * models): mult < 2^22, a x mult[21:5] (25 x 17 bits) on the lane's one DSP48E1 and
 * a x mult[4:0] in fabric, (hi << 5) + lo and the rounding add in 48-bit fabric adders
 * (|a * mult| + 2^46 < 2^47; the DSP48E1 cannot shift its product by 5 before its
 * post-adder, so neither sum is in its P); narrow:
 * mult < 2^15, 42 bits, one DSP48E1. With `add` (residual add, docs/ENGINE.md "Residual
 * add: scale alignment") the bypass byte bp, rescaled to the output scale by the same
 * rounding rule, (bp * bp_mult + 2^(bp_shift-1)) >> bp_shift, is added before ReLU and
 * saturation. */
template <bool WIDE>
static inline ap_int<8> zsqd_requant(ap_int<32> acc, zsqd_word param, bool relu, bool avg,
                                     ap_uint<22> avg_mult, ap_uint<6> avg_shift, bool add,
                                     ap_int<8> bp, ap_uint<22> bp_mult, ap_uint<6> bp_shift,
                                     ap_int<8> zp_out = 0, ap_int<8> bp_zp = 0, ap_int<25> avg_bias = 0) {
#pragma HLS INLINE
  /* zero points (docs/ENGINE.md "Arithmetic: zero points"): an average's window sum is
   * offset by -d * zp_in (RQ_AVG_BIAS), the bypass byte enters as b - bp_zp (9 bits), the
   * result is shifted by zp_out after ReLU (ReLU means y >= zp_out): 8-bit adds per lane */
  ap_int<32> bias = avg ? ap_int<32>(avg_bias) : ap_int<32>(param.range(31, 0));
  ap_uint<22> mult = avg ? avg_mult : ap_uint<22>(param.range(53, 32));
  ap_uint<6> shift = avg ? avg_shift : ap_uint<6>(param.range(59, 54));
  ap_uint<4> pre = avg ? ap_uint<4>(0) : ap_uint<4>(param.range(63, 60));
  ap_int<33> sum = ap_int<33>(acc) + bias;
  ap_int<25> a = ap_int<25>(sum >> pre);
  static const int W = WIDE ? 48 : 42; /* the rounding datapath's width (narrow: as before) */
  ap_int<W> y;
  if (WIDE) {
    /* the DSP48E1 takes 25 x 18 bits: mult's high 17 bits there, its low 5 in LUTs */
    ap_int<42> prod = a * ap_int<18>(ap_uint<17>(mult.range(21, 5)));
#pragma HLS BIND_OP variable = prod op = mul impl = dsp
    ap_int<30> prod_lo = a * ap_int<6>(ap_uint<5>(mult.range(4, 0)));
#pragma HLS BIND_OP variable = prod_lo op = mul impl = fabric
    ap_int<W> wide = (ap_int<W>(prod) << 5) + prod_lo;
    y = (wide + (ap_int<W>(1) << (shift - 1))) >> shift;
  } else {
    ap_int<42> prod = a * ap_int<17>(ap_uint<16>(mult.range(15, 0)));
#pragma HLS BIND_OP variable = prod op = mul impl = dsp
    y = (prod + (ap_int<W>(1) << (shift - 1))) >> shift;
  }
  /* the bypass term: an 9 x 22-bit product in LUTs (the lane's DSP48E1 is the conv term's;
   * |(bp - bp_zp) * bp_mult| < 2^30) */
  ap_int<9> bd = ap_int<9>(bp) - ap_int<9>(bp_zp);
  ap_int<32> bprod = bd * ap_int<23>(WIDE ? bp_mult : ap_uint<22>(bp_mult.range(15, 0)));
#pragma HLS BIND_OP variable = bprod op = mul impl = fabric
  ap_uint<6> bs = add ? bp_shift : ap_uint<6>(1); /* a register left 0 without an add */
  ap_int<W> bterm = (ap_int<W>(bprod) + (ap_int<W>(1) << (bs - 1))) >> bs;
  if (add) y += bterm;
  if (relu && y < 0) y = 0;
  /* the zero point is added to y clamped to [-256, 255] (10 bits), not to the W-bit y: a
   * 10-bit adder instead of a W-bit one (dae_resources ZERO_POINT_PER_LANE), the same
   * result (|zp_out| <= 128: y > 255 and y < -256 saturate either way) */
  if (y > 255) y = 255;
  if (y < -256) y = -256;
  ap_int<10> z = ap_int<10>(y) + zp_out; /* in [-384, 382] */
  if (z > 127) z = 127;
  if (z < -128) z = -128;
  return ap_int<8>(z);
}

/* ---- the MAC array ----------------------------------------------------------------- */
/* PE_OC dot products, row o of one 8-channel input word x[o] with weight word w[o], added
 * to the running sums. One DSP48E1 per product. A convolution gives every row the same
 * word (a broadcast); a depthwise convolution (CONV_DW) gives row o the word of its own
 * channel group (o / 8) and a weight word with channel o's tap in byte o % 8 and zeros
 * elsewhere, so the same DSPs compute PE_OC channels x one tap per cycle. */
// zsq: mac-array
template <class C>
static inline void zsqd_mac_array(const zsqd_word x[C::PE_OC], const zsqd_word w[C::PE_OC],
                                  ap_int<32> sum[C::PE_OC]) {
#pragma HLS INLINE
mac_oc:
  for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
    ap_int<32> dot = 0;
  mac_ic:
    for (int i = 0; i < C::PE_IC; i++) {
#pragma HLS UNROLL
      ap_int<16> p = zsqd_byte(x[o], i) * zsqd_byte(w[o], i);
#pragma HLS BIND_OP variable = p op = mul impl = dsp
      dot += p;
    }
    sum[o] += dot;
  }
}

/* ---- host fast paths (C simulation only) ------------------------------------------- */
/* The HLS loops below are what Vitis HLS synthesizes; executed on the host with ap_int
 * types they cost ~1000x what the arithmetic needs. A host build (no __SYNTHESIS__, no
 * -DZSQD_HLS_KERNEL) runs these instead: the same integers into the same buffer words,
 * with plain integers on the buffers' bytes. The cost calls (ZSQD_LOOP / _RD_LOOPS /
 * _WR_LOOPS / _MACS) stay outside the split, so the charged timing cannot differ.
 * tests/test_dae_fastpath.py checks both builds agree word for word and cycle for cycle. */
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL)
#include <string.h>
#include <vector>
#if defined(__AVX512F__) && !defined(ZSQD_SIM_PORTABLE)
#include <immintrin.h>
#define ZSQD_FAST_AVX512 1
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define ZSQD_FAST_VNNI 1
#endif
#endif

/* ap_uint<64> / ap_int<32> hold exactly a uint64_t / int32_t on the host (ap_private's
 * VAL): the fast paths address the buffers as those (may_alias: the objects are ap types). */
static_assert(sizeof(zsqd_word) == 8, "ap_uint<64> must be 8 bytes on the host");
static_assert(sizeof(ap_int<32>) == 4, "ap_int<32> must be 4 bytes on the host");
typedef uint64_t zsqd_u64 __attribute__((may_alias));
typedef int32_t zsqd_i32 __attribute__((may_alias));
typedef int8_t zsqd_i8 __attribute__((may_alias));

static inline zsqd_u64 *zsqd_raw(zsqd_word *p) { return reinterpret_cast<zsqd_u64 *>(p); }
static inline const zsqd_u64 *zsqd_raw(const zsqd_word *p) { return reinterpret_cast<const zsqd_u64 *>(p); }
static inline zsqd_i32 *zsqd_raw(ap_int<32> *p) { return reinterpret_cast<zsqd_i32 *>(p); }

/* ng words of one pixel into / out of K banks (group g: bank g % K, row row + g / K, as
 * the HLS counters walk them); bank by bank so the inner loops have no multiply. */
template <int K>
static inline void zsqd_fast_put_px(zsqd_u64 *bank0, int bank_rows, int row, const zsqd_u64 *src, int ng) {
  for (int b = 0; b < K && b < ng; b++) {
    zsqd_u64 *d = bank0 + b * bank_rows + row;
    for (int g = b, i = 0; g < ng; g += K, i++) d[i] = src[g];
  }
}
template <int K>
static inline void zsqd_fast_get_px(zsqd_u64 *dst, const zsqd_u64 *bank0, int bank_rows, int row, int ng) {
  for (int b = 0; b < K && b < ng; b++) {
    const zsqd_u64 *s = bank0 + b * bank_rows + row;
    for (int g = b, i = 0; g < ng; g += K, i++) dst[g] = s[i];
  }
}

/* One row of LOAD_INPUT: columns [vl, vr) from DDR (src = word of column vl, group g0),
 * the others the pad word (the input's zero point in every byte). */
template <class C, int ROWS = C::IN_ROWS>
static void zsqd_fast_load_row(zsqd_u64 *bank0, int drow, int pitch, int cols, int ng, int vl, int vr,
                               const zsqd_u64 *act, int src, int G, uint64_t pad = 0) {
  for (int c = 0; c < cols; c++, drow += pitch) {
    if (c >= vl && c < vr) {
      zsqd_fast_put_px<C::K>(bank0, ROWS, drow, act + src + (int64_t)(c - vl) * G, ng);
    } else {
      int b = 0, r = drow;
      for (int g = 0; g < ng; g++) {
        bank0[b * ROWS + r] = pad;
        if (++b == C::K) { b = 0; r++; }
      }
    }
  }
}

/* One row of STORE: cols pixels of ng words from out_buf banks to DDR (stride G). */
template <class C>
static void zsqd_fast_store_row(zsqd_u64 *act, int dst, int G, const zsqd_u64 *bank0, int srow, int pitch,
                                int cols, int ng) {
  for (int c = 0; c < cols; c++, dst += G, srow += pitch)
    zsqd_fast_get_px<C::K>(act + dst, bank0, C::OUT_ROWS, srow, ng);
}

/* CONV: acc[p * nog + og][o] (+)= sum over (ky, kx, g) of the 8-byte dot product of the
 * source word with w_buf[o][og * red + (ky * KW + kx) * ng + g]; p = r * cols + ox. As a
 * GEMM: acc[p][n] (n = og * PE_OC + o, contiguous per pixel) += X[p][:] . W[n][:] over
 * red words. Sums wrap at 32 bits like the ap_int<32> accumulators (modular arithmetic:
 * unsigned in C, wrapping vpdpbusd in SIMD). */
template <class C>
struct zsqd_fast_conv_args {
  int rows, cols, nog, KH, KW, SY, SX, scols, ng, spitch, sy0, sx0;
  bool first;
  const zsqd_u64 *src; /* bank 0 of in_buf[ih] or sq_buf */
  int src_rows;        /* rows per bank */
  const zsqd_u64 *w;   /* w_buf[wh][0] */
  zsqd_i32 *acc;       /* acc[0] */
};

/* Source offsets of the red words of one output pixel, relative to its first tap's row:
 * word j = (ky * KW + kx) * ng + g is in bank g % K at row (ky * scols + kx) * spitch + g / K.
 * One table per CONV makes the per-pixel im2col a branch-free indexed copy. */
template <class C>
static inline void zsqd_fast_taps(const zsqd_fast_conv_args<C> &a, int *off) {
  int j = 0;
  for (int ky = 0; ky < a.KH; ky++)
    for (int kx = 0; kx < a.KW; kx++)
      for (int g = 0; g < a.ng; g++, j++)
        off[j] = (g % C::K) * a.src_rows + (ky * a.scols + kx) * a.spitch + g / C::K;
}

#ifdef ZSQD_FAST_VNNI
/* PB (<= 4) pixels x (NF vectors of 16 + H8 ? 8 : 0) output channels. vpdpbusd multiplies
 * unsigned by signed bytes, so the activations enter as x + 128 (x ^ 0x80) and
 * corr = 128 * sum(w) is taken off again; exact modulo 2^32. xq: word j of pixel p at
 * xq[(4 * j + p) * 2 + half] (uint32 halves); wp: [2 * red][npad] int32 (4 bytes of
 * channel n). An 8-channel tail uses a 256-bit vector: no lanes wasted when
 * nog * PE_OC is an odd multiple of 8. */
template <int PB, int NF, bool H8>
static inline void zsqd_vnni_block(const uint32_t *xq, int red, const int32_t *wp, int npad, const int32_t *corr,
                                   zsqd_i32 *out, int N, bool first) {
  constexpr int NS = NF > 0 ? NF : 1;
  __m512i s[PB][NS];
  __m256i t[PB];
#pragma GCC unroll 4
  for (int p = 0; p < PB; p++) {
#pragma GCC unroll 4
    for (int v = 0; v < NS; v++) s[p][v] = _mm512_setzero_si512();
    t[p] = _mm256_setzero_si256();
  }
  const int32_t *wk = wp;
  for (int j = 0; j < red; j++, xq += 8) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++, wk += npad) {
      __m512i w[NS];
      __m256i w8 = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int v = 0; v < NF; v++) w[v] = _mm512_loadu_si512((const void *)(wk + 16 * v));
      if (H8) w8 = _mm256_loadu_si256((const __m256i *)(wk + 16 * NF));
#pragma GCC unroll 4
      for (int p = 0; p < PB; p++) {
        const __m512i xb = _mm512_set1_epi32((int)xq[2 * p + h]);
#pragma GCC unroll 4
        for (int v = 0; v < NF; v++) s[p][v] = _mm512_dpbusd_epi32(s[p][v], xb, w[v]);
        if (H8) t[p] = _mm256_dpbusd_epi32(t[p], _mm512_castsi512_si256(xb), w8);
      }
    }
  }
  for (int v = 0; v < NF; v++) {
    const __m512i c = _mm512_loadu_si512((const void *)(corr + 16 * v));
    for (int p = 0; p < PB; p++) {
      zsqd_i32 *o = out + (int64_t)p * N + 16 * v;
      __m512i r = _mm512_sub_epi32(s[p][v], c);
      if (!first) r = _mm512_add_epi32(r, _mm512_loadu_si512((const void *)o));
      _mm512_storeu_si512((void *)o, r);
    }
  }
  if (H8) {
    const __m256i c = _mm256_loadu_si256((const __m256i *)(corr + 16 * NF));
    for (int p = 0; p < PB; p++) {
      zsqd_i32 *o = out + (int64_t)p * N + 16 * NF;
      __m256i r = _mm256_sub_epi32(t[p], c);
      if (!first) r = _mm256_add_epi32(r, _mm256_loadu_si256((const __m256i *)o));
      _mm256_storeu_si256((__m256i *)o, r);
    }
  }
}

template <int PB>
static inline void zsqd_vnni_pixels(const uint32_t *xq, int red, const int32_t *wp, int npad, const int32_t *corr,
                                    zsqd_i32 *out, int N, bool first) {
  for (int n0 = 0; n0 < N; n0 += 64) {
    const int left = N - n0 < 64 ? N - n0 : 64; /* a multiple of 8 */
    const int32_t *w = wp + n0;
    const int32_t *c = corr + n0;
    zsqd_i32 *o = out + n0;
    switch (left) {
      case 64: zsqd_vnni_block<PB, 4, false>(xq, red, w, npad, c, o, N, first); break;
      case 56: zsqd_vnni_block<PB, 3, true>(xq, red, w, npad, c, o, N, first); break;
      case 48: zsqd_vnni_block<PB, 3, false>(xq, red, w, npad, c, o, N, first); break;
      case 40: zsqd_vnni_block<PB, 2, true>(xq, red, w, npad, c, o, N, first); break;
      case 32: zsqd_vnni_block<PB, 2, false>(xq, red, w, npad, c, o, N, first); break;
      case 24: zsqd_vnni_block<PB, 1, true>(xq, red, w, npad, c, o, N, first); break;
      case 16: zsqd_vnni_block<PB, 1, false>(xq, red, w, npad, c, o, N, first); break;
      default: zsqd_vnni_block<PB, 0, true>(xq, red, w, npad, c, o, N, first); break;
    }
  }
}
#endif

template <class C>
static void zsqd_fast_conv(const zsqd_fast_conv_args<C> &a) {
  const int red = a.KH * a.KW * a.ng;
  const int N = a.nog * C::PE_OC;
  const int npx = a.rows * a.cols;
  /* source row of output pixel (r, ox): the HLS loop's q_px counter */
  auto q_of = [&](int r, int ox) { return ((a.sy0 + r * a.SY) * a.scols + a.sx0 + ox * a.SX) * a.spitch; };
#ifdef ZSQD_FAST_VNNI
  /* weights as [k][n] int32 (k: 4-byte half of word j; n padded to 16 lanes, zeros) and
   * their per-channel 128 * sum; read 8 words (a cache line) of a channel at a time */
  const int k4n = 2 * red;
  const int npad = (N + 15) & ~15;
  thread_local std::vector<int32_t> wpack, corr;
  thread_local std::vector<uint64_t> xq64;
  if (wpack.size() < (size_t)k4n * npad) wpack.resize((size_t)k4n * npad);
  if (corr.size() < (size_t)npad) corr.resize(npad);
  if (xq64.size() < (size_t)4 * red) xq64.resize((size_t)4 * red);
  int32_t *wp = wpack.data();
  for (int j0 = 0; j0 < red; j0 += 8) {
    const int j1 = red - j0 < 8 ? red : j0 + 8;
    for (int n = 0; n < npad; n++) {
      if (n >= N) {
        for (int j = j0; j < j1; j++) wp[(int64_t)(2 * j) * npad + n] = wp[(int64_t)(2 * j + 1) * npad + n] = 0;
        continue;
      }
      const int og = n / C::PE_OC, o = n % C::PE_OC;
      const zsqd_u64 *row = a.w + (int64_t)o * C::W_ROWS + og * red;
      for (int j = j0; j < j1; j++) {
        const uint64_t v = row[j];
        wp[(int64_t)(2 * j) * npad + n] = (int32_t)(uint32_t)v;
        wp[(int64_t)(2 * j + 1) * npad + n] = (int32_t)(uint32_t)(v >> 32);
      }
    }
  }
  const __m512i c128 = _mm512_set1_epi32((int)0x80808080u);
  for (int n0 = 0; n0 < npad; n0 += 16) {
    __m512i s = _mm512_setzero_si512();
    for (int k = 0; k < k4n; k++)
      s = _mm512_dpbusd_epi32(s, c128, _mm512_loadu_si512((const void *)(wp + (int64_t)k * npad + n0)));
    _mm512_storeu_si512((void *)(corr.data() + n0), s);
  }
  const uint64_t flip = 0x8080808080808080ull;
  const uint32_t *xq = reinterpret_cast<const uint32_t *>(xq64.data());
  thread_local std::vector<int> off;
  if (off.size() < (size_t)red) off.resize(red);
  zsqd_fast_taps<C>(a, off.data());
  int r = 0, ox = 0;
  for (int p0 = 0; p0 < npx; p0 += 4) {
    const int pb = npx - p0 < 4 ? npx - p0 : 4;
    for (int p = 0; p < pb; p++) {
      const zsqd_u64 *src = a.src + q_of(r, ox);
      uint64_t *x = xq64.data() + p;
      for (int j = 0; j < red; j++) x[4 * j] = src[off[j]] ^ flip;
      if (++ox == a.cols) { ox = 0; r++; }
    }
    zsqd_i32 *out = a.acc + (int64_t)p0 * N;
    switch (pb) {
      case 4: zsqd_vnni_pixels<4>(xq, red, wp, npad, corr.data(), out, N, a.first); break;
      case 3: zsqd_vnni_pixels<3>(xq, red, wp, npad, corr.data(), out, N, a.first); break;
      case 2: zsqd_vnni_pixels<2>(xq, red, wp, npad, corr.data(), out, N, a.first); break;
      default: zsqd_vnni_pixels<1>(xq, red, wp, npad, corr.data(), out, N, a.first); break;
    }
  }
#else
  /* portable: int8 dot products over contiguous bytes (the compiler vectorizes them) */
  thread_local std::vector<uint64_t> xcol;
  thread_local std::vector<int> off;
  if (xcol.size() < (size_t)red) xcol.resize(red);
  if (off.size() < (size_t)red) off.resize(red);
  zsqd_fast_taps<C>(a, off.data());
  const int nb = 8 * red;
  int r = 0, ox = 0;
  for (int p = 0; p < npx; p++) {
    const zsqd_u64 *src = a.src + q_of(r, ox);
    for (int j = 0; j < red; j++) xcol[j] = src[off[j]];
    if (++ox == a.cols) { ox = 0; r++; }
    const int8_t *x = reinterpret_cast<const int8_t *>(xcol.data());
    zsqd_i32 *out = a.acc + (int64_t)p * N;
    for (int og = 0; og < a.nog; og++)
      for (int o = 0; o < C::PE_OC; o++) {
        const zsqd_i8 *w = reinterpret_cast<const zsqd_i8 *>(a.w + (int64_t)o * C::W_ROWS + og * red);
        uint32_t dot = 0;
        for (int k = 0; k < nb; k++) dot += (uint32_t)((int32_t)x[k] * (int32_t)w[k]);
        const int n = og * C::PE_OC + o;
        out[n] = (int32_t)((a.first ? 0u : (uint32_t)out[n]) + dot);
      }
  }
#endif
}

/* --- depthwise convolution (issue 11 item 3) ---
 * CONV_DW: acc[p * nog + og][o] (+)= sum over (ky, kx) of the 8-byte dot product of the
 * source word in bank o / 8, row q(p) + og + (ky * scols + kx) * spitch, with
 * w_buf[o][og * KH * KW + ky * KW + kx] (the compiler packs channel o's tap in byte o % 8,
 * zeros elsewhere; the whole word enters the product, as in the MAC array). */
template <class C>
static void zsqd_fast_dwconv(const zsqd_fast_conv_args<C> &a) {
  const int taps = a.KH * a.KW;
  int r = 0, ox = 0;
  for (int p = 0; p < a.rows * a.cols; p++) {
    const int q = ((a.sy0 + r * a.SY) * a.scols + a.sx0 + ox * a.SX) * a.spitch;
    if (++ox == a.cols) { ox = 0; r++; }
    zsqd_i32 *out = a.acc + (int64_t)p * a.nog * C::PE_OC;
    for (int og = 0; og < a.nog; og++)
      for (int o = 0; o < C::PE_OC; o++) {
        const zsqd_i8 *w = reinterpret_cast<const zsqd_i8 *>(a.w + (int64_t)o * C::W_ROWS + og * taps);
        const zsqd_u64 *src = a.src + (int64_t)(o / 8) * a.src_rows + q + og;
        uint32_t dot = 0;
        for (int ky = 0, t = 0; ky < a.KH; ky++)
          for (int kx = 0; kx < a.KW; kx++, t++) {
            const zsqd_i8 *x = reinterpret_cast<const zsqd_i8 *>(src + (ky * a.scols + kx) * a.spitch);
            for (int i = 0; i < 8; i++) dot += (uint32_t)((int32_t)x[i] * (int32_t)w[8 * t + i]);
          }
        const int n = og * C::PE_OC + o;
        out[n] = (int32_t)((a.first ? 0u : (uint32_t)out[n]) + dot);
      }
  }
}

/* REQUANT per lane, exactly zsqd_requant's ap_int arithmetic in int64: the pre-shifted sum
 * truncated to 25 bits, the rounding constant ap_int<W>(1) << (shift - 1) (W = 48 wide, 42
 * narrow: 0 when shift is 0 or > W, the sign bit when W) and arithmetic shifts; the narrow
 * lane reads mult's low 16 bits. */
struct zsqd_fast_rq_lane {
  int64_t bias, pre, mult, shift, rnd;
};
static inline zsqd_fast_rq_lane zsqd_fast_rq_param(uint64_t param, bool avg, int avg_mult, int avg_shift,
                                                   int64_t avg_bias, bool wide) {
  zsqd_fast_rq_lane l;
  l.bias = avg ? avg_bias : (int64_t)(int32_t)(uint32_t)param;
  l.mult = (avg ? (int64_t)avg_mult : (int64_t)((param >> 32) & 0x3FFFFF)) & (wide ? 0x3FFFFF : 0xFFFF);
  l.shift = avg ? avg_shift : (int64_t)((param >> 54) & 63);
  l.pre = avg ? 0 : (int64_t)((param >> 60) & 15);
  const int64_t s1 = l.shift - 1, top = wide ? 47 : 41;
  l.rnd = s1 < 0 || s1 > top ? 0 : s1 == top ? -((int64_t)1 << top) : (int64_t)1 << s1;
  return l;
}
static inline int8_t zsqd_fast_rq1(int32_t acc, const zsqd_fast_rq_lane &l, bool relu, int64_t bterm,
                                   int zp_out) {
  const int64_t t = ((int64_t)acc + l.bias) >> l.pre;
  const int64_t a = (int64_t)((uint64_t)t << 39) >> 39; /* ap_int<25> */
  int64_t y = ((a * l.mult + l.rnd) >> l.shift) + bterm;
  if (relu && y < 0) y = 0;
  y += zp_out;
  if (y > 127) y = 127;
  if (y < -128) y = -128;
  return (int8_t)y;
}

/* The residual add's bypass term of byte b (zsqd_requant): bp_rnd = 2^(bp_shift-1). */
static inline int64_t zsqd_fast_bterm(int8_t b, int bp_zp, int64_t bp_mult, int64_t bp_rnd, int bp_shift) {
  return (((int64_t)b - bp_zp) * bp_mult + bp_rnd) >> bp_shift;
}

template <class C>
static void zsqd_fast_requant(int rows, int cols, int nog, int dpitch, int drow0, int vy0, int vy1, int vx0,
                              int vx1, int avg_mult, int avg_shift, bool relu, bool avg,
                              const zsqd_u64 *pbuf /* p_buf[ph][0] */, const zsqd_i32 *acc,
                              zsqd_u64 *dst /* bank 0 */, int dst_rows,
                              const zsqd_u64 *bp /* bp_buf[bh][0], or null: no residual add */,
                              int bp_mult, int bp_shift, int zp_out, int bp_zp, int avg_bias) {
  /* lane parameters as [og][o], struct of arrays for the vector path */
  thread_local int64_t P[5][C::P_ROWS * C::PE_OC];
  for (int og = 0; og < nog; og++)
    for (int o = 0; o < C::PE_OC; o++) {
      const zsqd_fast_rq_lane l =
          zsqd_fast_rq_param(pbuf[o * C::P_ROWS + og], avg, avg_mult, avg_shift, avg_bias, C::WIDE_RQ);
      const int i = og * C::PE_OC + o;
      P[0][i] = l.bias; P[1][i] = l.pre; P[2][i] = l.mult; P[3][i] = l.shift; P[4][i] = l.rnd;
    }
  const int64_t bp_rnd = (int64_t)1 << (bp_shift > 0 ? bp_shift - 1 : 0);
#ifdef ZSQD_FAST_AVX512
  const __m512i lo = _mm512_set1_epi64(-128), hi = _mm512_set1_epi64(127);
  const __m512i zero = _mm512_setzero_si512(), zpv = _mm512_set1_epi64(zp_out);
  const __m512i bzv = _mm512_set1_epi64(bp_zp);
  const __m512i bmv = _mm512_set1_epi64(bp_mult), brv = _mm512_set1_epi64(bp_rnd);
  const __m128i bsv = _mm_cvtsi32_si128(bp_shift);
#endif
  int a_row = 0;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      const bool valid = r >= vy0 && r < vy1 && c >= vx0 && c < vx1;
      const int d_px = drow0 + (r * cols + c) * dpitch;
      for (int og = 0; og < nog; og++, a_row++) {
        const zsqd_i32 *av = acc + (int64_t)a_row * C::PE_OC;
        for (int j = 0; j < C::K; j++) {
          uint64_t wv = 0x0101010101010101ull * (uint8_t)zp_out; /* outside the window: zp */
          if (valid) {
            const int i = og * C::PE_OC + 8 * j;
#ifdef ZSQD_FAST_AVX512
            __m512i s = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(av + 8 * j)));
            s = _mm512_add_epi64(s, _mm512_loadu_si512((const void *)&P[0][i]));
            s = _mm512_srav_epi64(s, _mm512_loadu_si512((const void *)&P[1][i]));
            s = _mm512_srai_epi64(_mm512_slli_epi64(s, 39), 39);
            /* |a| < 2^24, mult < 2^22: the signed 32 x 32 -> 64 product is exact */
            s = _mm512_mul_epi32(s, _mm512_loadu_si512((const void *)&P[2][i]));
            s = _mm512_add_epi64(s, _mm512_loadu_si512((const void *)&P[4][i]));
            s = _mm512_srav_epi64(s, _mm512_loadu_si512((const void *)&P[3][i]));
            if (bp) { /* + (b * bp_mult + bp_rnd) >> bp_shift, 8 lanes of one bypass word */
              const uint64_t bw = bp[(int64_t)j * C::BP_ROWS + a_row];
              __m512i b = _mm512_sub_epi64(_mm512_cvtepi8_epi64(_mm_cvtsi64_si128((long long)bw)), bzv);
              b = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(b, bmv), brv), bsv);
              s = _mm512_add_epi64(s, b);
            }
            if (relu) s = _mm512_max_epi64(s, zero);
            s = _mm512_add_epi64(s, zpv);
            s = _mm512_min_epi64(_mm512_max_epi64(s, lo), hi);
            wv = (uint64_t)_mm_cvtsi128_si64(_mm512_cvtepi64_epi8(s));
#else
            const uint64_t bw = bp ? bp[(int64_t)j * C::BP_ROWS + a_row] : 0;
            wv = 0;
            for (int b = 0; b < 8; b++) {
              const zsqd_fast_rq_lane l = {P[0][i + b], P[1][i + b], P[2][i + b], P[3][i + b], P[4][i + b]};
              const int64_t bt = bp ? zsqd_fast_bterm((int8_t)(bw >> (8 * b)), bp_zp, bp_mult, bp_rnd, bp_shift) : 0;
              wv |= (uint64_t)(uint8_t)zsqd_fast_rq1(av[8 * j + b], l, relu, bt, zp_out) << (8 * b);
            }
#endif
          }
          dst[j * dst_rows + d_px + og] = wv;
        }
      }
    }
}

/* POOL: per output pixel and og, the max (into out_buf) or sum (into acc) of the window's
 * taps inside the source; the taps outside are skipped exactly as the HLS loop skips them. */
template <class C>
static void zsqd_fast_pool(int rows, int cols, int nog, int KH, int KW, int SY, int SX, int y0, int x0,
                           int srows, int scols, int dpitch, int drow0, bool avg, const zsqd_u64 *cv,
                           int src_bank_rows /* cv_buf or in_buf (POOL_SRC_IN) */,
                           zsqd_u64 *out /* out_buf[oh][0] */, zsqd_i32 *acc) {
  int a_row = 0;
  for (int pr = 0; pr < rows; pr++)
    for (int pc = 0; pc < cols; pc++) {
      const int oy = y0 + pr * SY, ox = x0 + pc * SX;
      const int wy0 = oy < 0 ? -oy : 0, wy1 = srows - oy < KH ? srows - oy : KH;
      const int wx0 = ox < 0 ? -ox : 0, wx1 = scols - ox < KW ? scols - ox : KW;
      const int d_px = drow0 + (pr * cols + pc) * dpitch;
      for (int og = 0; og < nog; og++, a_row++) {
        for (int j = 0; j < C::K; j++) {
          const zsqd_u64 *bank = cv + (int64_t)j * src_bank_rows;
          if (avg) {
            int32_t sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int wy = wy0; wy < wy1; wy++)
              for (int wx = wx0; wx < wx1; wx++) {
                const uint64_t v = bank[((oy + wy) * scols + ox + wx) * nog + og];
                for (int b = 0; b < 8; b++) sum[b] += (int8_t)(v >> (8 * b));
              }
            for (int b = 0; b < 8; b++) acc[(int64_t)a_row * C::PE_OC + 8 * j + b] = sum[b];
          } else {
            int8_t m[8] = {-128, -128, -128, -128, -128, -128, -128, -128};
            for (int wy = wy0; wy < wy1; wy++)
              for (int wx = wx0; wx < wx1; wx++) {
                uint64_t v = bank[((oy + wy) * scols + ox + wx) * nog + og];
                int8_t t[8];
                memcpy(t, &v, 8);
                for (int b = 0; b < 8; b++) m[b] = t[b] > m[b] ? t[b] : m[b];
              }
            uint64_t wv;
            memcpy(&wv, m, 8);
            out[(int64_t)j * C::OUT_ROWS + d_px + og] = wv;
          }
        }
      }
    }
}
#endif /* host fast paths */

/* ---- load ---------------------------------------------------------------------------- */
/* Where the next word of an input tile goes: bank g % K, row drow + g / K of pixel row
 * drow (incremental: no division). The buffer is passed whole with the half as an index,
 * as compute reads it: `in_buf[half]` with a runtime half would hand an INLINE off callee
 * a slice across the completely partitioned dim 1, which is not one set of memories. */
template <class C, int ROWS>
struct zsqd_in_cursor {
  int drow, pitch, ng, g, bank, brow;
  zsqd_in_cursor(int d, int p, int n) : drow(d), pitch(p), ng(n), g(0), bank(0), brow(0) {}
  void put(zsqd_word buf[2][C::K][ROWS], int half, zsqd_word v) {
#pragma HLS INLINE
    buf[half][bank][drow + brow] = v;
    if (++bank == C::K) { bank = 0; brow++; }
    if (++g == ng) { g = 0; bank = 0; brow = 0; drow += pitch; }
  }
};

/* n pad words (padding outside the image: the input's zero point in every byte, LI_PAD):
 * an on-chip loop, no DDR access. The cursor is copied in and out: the loop carries it in
 * registers, not through the reference. */
template <class C>
void zsqd_zero_words(zsqd_word buf[2][C::K][C::IN_ROWS], int half, zsqd_in_cursor<C, C::IN_ROWS> &cur, int n,
                     zsqd_word pad) {
#pragma HLS INLINE off
  zsqd_in_cursor<C, C::IN_ROWS> c = cur;
li_zero:
  for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 0 max = 4096
#pragma HLS PIPELINE II = 1
    c.put(buf, half, pad);
  }
  cur = c;
}

/* n contiguous DDR words from `base`: its own burst region (an unconditional read at an
 * address linear in the loop counter), into in_buf (ROWS = IN_ROWS) or bp_buf (BP_ROWS). */
template <class C, int ROWS>
void zsqd_read_words(zsqd_word buf[2][C::K][ROWS], int half, zsqd_in_cursor<C, ROWS> &cur,
                     const zsqd_word *act_rd, int base, int n) {
#pragma HLS INLINE off
  zsqd_in_cursor<C, ROWS> c = cur;
li_burst:
  for (int j = 0; j < n; j++) {
#pragma HLS loop_tripcount min = 1 max = 4096
#pragma HLS PIPELINE II = 1
    c.put(buf, half, act_rd[base + j]);
  }
  cur = c;
}

template <class C>
void zsqd_load_exec(zsqd_word insn, int32_t regs[ZSQ_N_REGS], const zsqd_word *act_rd,
                    const zsqd_word *wgt, zsqd_word in_buf[2][C::K][C::IN_ROWS],
                    zsqd_word w_buf[2][C::PE_OC][C::W_ROWS], zsqd_word p_buf[2][C::PE_OC][C::P_ROWS],
                    zsqd_word bp_buf[2][C::K][C::BP_ROWS]) {
#pragma HLS INLINE off
  const int op = insn.range(3, 0);
  const int half = insn[8];
  if (zsqd_set_register(insn, regs)) return;
  /* --- residual add (issue 11 item 2): the bypass tile of an output tile, always inside
   * its tensor, into bp_buf[half] in out_buf's layout (word g of pixel p: bank g % K, row
   * p * pitch + g / K); per row one burst region when it spans every channel group, else
   * one per pixel, as STORE writes them. */
  if (C::RESIDUAL && op == ZSQ_OP_LOAD_BYPASS) {
    const int G = regs[ZSQ_LB_G];
    const int rows = regs[ZSQ_LB_ROWS], cols = regs[ZSQ_LB_COLS], ng = regs[ZSQ_LB_NG];
    const int pitch = regs[ZSQ_LB_PITCH];
    /* derived registers (isa.derived): the compiler's products, no runtime multiplier */
    const int row_step = regs[ZSQ_LB_ROW_STEP], row_trips = regs[ZSQ_LB_ROW_TRIPS];
    const int row_pitch = regs[ZSQ_LB_ROW_PITCH];
    int row_src = regs[ZSQ_LB_SRC0]; /* DDR word of (y0 + r, x0, g0) */
    int dst_row = 0;                 /* r * cols * pitch, incrementally */
    (void)pitch;
  lb_row:
    for (int r = 0; r < rows; r++) {
#pragma HLS loop_tripcount min = 1 max = 64
      const int src = row_src;
      row_src += row_step;
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
      zsqd_fast_load_row<C, C::BP_ROWS>(zsqd_raw(&bp_buf[half][0][0]), dst_row, pitch, cols, ng, 0, cols,
                                        zsqd_raw(act_rd), src, G);
#else
      zsqd_in_cursor<C, C::BP_ROWS> cur(dst_row, pitch, ng);
      if (ng == G) {
        zsqd_read_words<C, C::BP_ROWS>(bp_buf, half, cur, act_rd, src, row_trips);
      } else {
        int px = src;
      lb_px:
        for (int c = 0; c < cols; c++) {
#pragma HLS loop_tripcount min = 1 max = 256
          zsqd_read_words<C, C::BP_ROWS>(bp_buf, half, cur, act_rd, px, ng);
          px += G;
        }
      }
#endif
      if (ng == G) ZSQD_RD_LOOPS(1, row_trips, ZSQD_DEPTH_LOAD);
      else ZSQD_RD_LOOPS(cols, ng, ZSQD_DEPTH_LOAD);
      dst_row += row_pitch;
    }
    return;
  }
  if (op == ZSQ_OP_LOAD_INPUT) {
    const int H = regs[ZSQ_LI_H], W = regs[ZSQ_LI_W], G = regs[ZSQ_LI_G];
    const int y0 = regs[ZSQ_LI_Y0], x0 = regs[ZSQ_LI_X0];
    const int rows = regs[ZSQ_LI_ROWS], cols = regs[ZSQ_LI_COLS], ng = regs[ZSQ_LI_NG];
    const int pitch = regs[ZSQ_LI_PITCH];
    /* derived registers (isa.derived): the compiler's products, no runtime multiplier */
    const int row_step = regs[ZSQ_LI_ROW_STEP], row_trips = regs[ZSQ_LI_ROW_TRIPS];
    const int row_pitch = regs[ZSQ_LI_ROW_PITCH];
    const int left = regs[ZSQ_LI_LEFT], span = regs[ZSQ_LI_SPAN], right = regs[ZSQ_LI_RIGHT];
    int row_src = regs[ZSQ_LI_SRC0]; /* DDR word of (y0 + r, x0 + cl, g0) */
    /* zero points: the pad byte (the input tensor's zero point) in all 8 bytes (wiring) */
    const ap_uint<8> pad_byte = ap_uint<8>(regs[ZSQ_LI_PAD]);
    const zsqd_word pad = (pad_byte, pad_byte, pad_byte, pad_byte, pad_byte, pad_byte, pad_byte, pad_byte);
    /* valid column span of every row: [cl, cr) of the tile (as isa.derived clamps it) */
    int cl = x0 < 0 ? -x0 : 0;
    if (cl > cols) cl = cols;
    int cr = x0 + cols > W ? W - x0 : cols;
    if (cr < cl) cr = cl;
    int dst_row = 0; /* (r * cols + c) * pitch, incrementally */
  li_row:
    for (int r = 0; r < rows; r++) {
#pragma HLS loop_tripcount min = 1 max = 64
      const int y = y0 + r;
      const bool row_ok = y >= 0 && y < H && cl < cr;
      const int vl = row_ok ? cl : cols, vr = row_ok ? cr : cols;
      const int src = row_src; /* used only when the row is inside the image */
      row_src += row_step;
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
      zsqd_fast_load_row<C>(zsqd_raw(&in_buf[half][0][0]), dst_row, pitch, cols, ng, vl, vr, zsqd_raw(act_rd),
                            src, G, (uint64_t)pad.to_uint64());
#else
      /* zeros, then the valid span as its own burst region (an unconditional read at
       * `base + j`), then zeros: Vitis infers one burst per region */
      zsqd_in_cursor<C, C::IN_ROWS> cur(dst_row, pitch, ng);
      if (!row_ok) {
        zsqd_zero_words<C>(in_buf, half, cur, row_trips, pad);
      } else {
        zsqd_zero_words<C>(in_buf, half, cur, left, pad);
        if (ng == G) {
          zsqd_read_words<C, C::IN_ROWS>(in_buf, half, cur, act_rd, src, span);
        } else {
          int px = src;
        li_px:
          for (int c = cl; c < cr; c++) {
#pragma HLS loop_tripcount min = 1 max = 256
            zsqd_read_words<C, C::IN_ROWS>(in_buf, half, cur, act_rd, px, ng);
            px += G;
          }
        }
        zsqd_zero_words<C>(in_buf, half, cur, right, pad);
      }
#endif
      if (!row_ok) {
        ZSQD_LOOP(row_trips, ZSQD_DEPTH_LOAD);
      } else {
        ZSQD_LOOP(left, ZSQD_DEPTH_LOAD);
        if (ng == G) ZSQD_RD_LOOPS(1, span, ZSQD_DEPTH_LOAD);
        else ZSQD_RD_LOOPS(cr - cl, ng, ZSQD_DEPTH_LOAD);
        ZSQD_LOOP(right, ZSQD_DEPTH_LOAD);
      }
      dst_row += row_pitch;
    }
    return;
  }
  if (op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS) {
    const bool is_w = op == ZSQ_OP_LOAD_WEIGHT;
    const int addr = is_w ? regs[ZSQ_LW_ADDR] : regs[ZSQ_LP_ADDR];
    const int n = is_w ? regs[ZSQ_LW_WORDS] : regs[ZSQ_LP_CHANNELS];
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
    {
      zsqd_u64 *dst = is_w ? zsqd_raw(&w_buf[half][0][0]) : zsqd_raw(&p_buf[half][0][0]);
      const int bank_rows = is_w ? C::W_ROWS : C::P_ROWS;
      const zsqd_u64 *src = zsqd_raw(wgt) + addr;
      /* word i -> bank i % PE_OC, row i / PE_OC: transposed 32 rows at a time (cache-friendly) */
      const int full = n / C::PE_OC, rem = n % C::PE_OC;
      for (int r0 = 0; r0 < full; r0 += 32) {
        const int r1 = full - r0 < 32 ? full : r0 + 32;
        for (int o = 0; o < C::PE_OC; o++)
          for (int r = r0; r < r1; r++) dst[o * bank_rows + r] = src[r * C::PE_OC + o];
      }
      for (int o = 0; o < rem; o++) dst[o * bank_rows + full] = src[full * C::PE_OC + o];
    }
#else
    int o = 0, row = 0;
  lw_word:
    for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 12288
#pragma HLS PIPELINE II = 1
      zsqd_word v = wgt[addr + i];
      if (is_w) w_buf[half][o][row] = v;
      else p_buf[half][o][row] = v;
      if (++o == C::PE_OC) { o = 0; row++; }
    }
#endif
    ZSQD_RD_LOOPS(1, n, ZSQD_DEPTH_LOAD);
    return;
  }
}

/* ---- compute -------------------------------------------------------------------------- */
template <class C>
static inline zsqd_word zsqd_src_word(bool from_sq, int ih, int bank, int row,
                                      zsqd_word in_buf[2][C::K][C::IN_ROWS],
                                      zsqd_word sq_buf[C::K][C::SQ_ROWS]) {
#pragma HLS INLINE
  return from_sq ? sq_buf[bank][row] : in_buf[ih][bank][row];
}

/* standalone pool / concat (issue 11 item 4): the POOL source word, one read of bank j
 * of cv_buf or of in_buf[ih] (the half an index into the whole buffer, as CONV does) */
template <class C>
static inline zsqd_word zsqd_pool_src(bool src_in, int ih, int bank, int row,
                                      zsqd_word in_buf[2][C::K][C::IN_ROWS],
                                      zsqd_word cv_buf[C::K][C::CV_ROWS]) {
#pragma HLS INLINE
  return src_in ? in_buf[ih][bank][row] : cv_buf[bank][row];
}

template <class C>
void zsqd_compute_exec(zsqd_word insn, int32_t regs[ZSQ_N_REGS],
                       zsqd_word in_buf[2][C::K][C::IN_ROWS], zsqd_word w_buf[2][C::PE_OC][C::W_ROWS],
                       zsqd_word p_buf[2][C::PE_OC][C::P_ROWS], ap_int<32> acc[C::ACC_ROWS][C::PE_OC],
                       zsqd_word cv_buf[C::K][C::CV_ROWS], zsqd_word sq_buf[C::K][C::SQ_ROWS],
                       zsqd_word out_buf[2][C::K][C::OUT_ROWS], zsqd_word bp_buf[2][C::K][C::BP_ROWS]) {
#pragma HLS INLINE off
  const int op = insn.range(3, 0);
  if (zsqd_set_register(insn, regs)) return;
  if (op == ZSQ_OP_CONV) {
    const int rows = regs[ZSQ_CV_ROWS - 64], cols = regs[ZSQ_CV_COLS - 64], nog = regs[ZSQ_CV_OG - 64];
    const int KH = regs[ZSQ_CV_KH - 64], KW = regs[ZSQ_CV_KW - 64];
    const int SY = regs[ZSQ_CV_SY - 64], SX = regs[ZSQ_CV_SX - 64];
    const int scols = regs[ZSQ_CV_SRC_COLS - 64], ng = regs[ZSQ_CV_NG - 64];
    const int spitch = regs[ZSQ_CV_SRC_PITCH - 64];
    const int sy0 = regs[ZSQ_CV_SRC_Y0 - 64], sx0 = regs[ZSQ_CV_SRC_X0 - 64];
    const bool from_sq = insn[9], first = insn[10], dw = insn[12];
    const int ih = insn[8], wh = insn[11];
    /* strides and trip counts: derived registers (isa.derived), no runtime multiplier */
    const int kx_step = spitch;                          /* next kernel column */
    const int ky_step = regs[ZSQ_CV_KY_STEP - 64];       /* next kernel row, from the row end */
    const int ox_step = regs[ZSQ_CV_OX_STEP - 64];       /* next output column */
    const int oy_step = regs[ZSQ_CV_OY_STEP - 64];       /* next output row */
    const int red = regs[ZSQ_CV_RED - 64];               /* reduction length per (pixel, og) */
    const int trips = regs[ZSQ_CV_TRIPS - 64];
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
    (void)kx_step; (void)ky_step; (void)ox_step; (void)oy_step;
    {
      zsqd_fast_conv_args<C> fa;
      fa.rows = rows; fa.cols = cols; fa.nog = nog; fa.KH = KH; fa.KW = KW; fa.SY = SY; fa.SX = SX;
      fa.scols = scols; fa.ng = ng; fa.spitch = spitch; fa.sy0 = sy0; fa.sx0 = sx0; fa.first = first;
      fa.src = from_sq ? zsqd_raw(&sq_buf[0][0]) : zsqd_raw(&in_buf[ih][0][0]);
      fa.src_rows = from_sq ? C::SQ_ROWS : C::IN_ROWS;
      fa.w = zsqd_raw(&w_buf[wh][0][0]);
      fa.acc = zsqd_raw(&acc[0][0]);
      if (dw) zsqd_fast_dwconv<C>(fa);
      else zsqd_fast_conv<C>(fa);
    }
#else
    int g = 0, bank = 0, brow = 0, kx = 0, ky = 0, og = 0, ox = 0, r = 0;
    int q_row = regs[ZSQ_CV_Q0 - 64];         /* source row of the output row's first pixel */
    int q_px = q_row;                         /* ... of the current output pixel */
    int q_og = q_px;                          /* ... of the current oc group's first tap */
    int q = q_px;                             /* ... of the current kernel tap */
    /* a conv reads every oc group from the pixel's first row (all input groups); a
     * depthwise conv reads oc group og's own channels, one row further per group */
    const int og_step = dw ? 1 : 0;
    int w_row = 0, a_row = 0, k = 0;
    ap_int<32> sum[C::PE_OC];
#pragma HLS ARRAY_PARTITION variable = sum complete
  cv_mac:
    for (int it = 0; it < trips; it++) {
#pragma HLS loop_tripcount min = 1 max = 1000000
#pragma HLS PIPELINE II = 1
#pragma HLS DEPENDENCE variable = acc inter false
      if (k == 0) {
      cv_acc_load:
        for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
          sum[o] = first ? ap_int<32>(0) : acc[a_row][o];
        }
      }
      /* one read per source bank at one row: a conv takes bank `bank` (a mux over k
       * banks) for every MAC row, a depthwise conv gives MAC row o bank o / 8 */
      zsqd_word xb[C::K];
#pragma HLS ARRAY_PARTITION variable = xb complete
    cv_src_read:
      for (int j = 0; j < C::K; j++) {
#pragma HLS UNROLL
        xb[j] = zsqd_src_word<C>(from_sq, ih, j, q + brow, in_buf, sq_buf);
      }
      zsqd_word xsel = xb[0];
    cv_src_mux:
      for (int j = 1; j < C::K; j++) {
#pragma HLS UNROLL
        if (bank == j) xsel = xb[j];
      }
      zsqd_word x[C::PE_OC];
#pragma HLS ARRAY_PARTITION variable = x complete
    cv_x_route:
      for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
        x[o] = dw ? xb[o / 8] : xsel;
      }
      zsqd_word w[C::PE_OC];
#pragma HLS ARRAY_PARTITION variable = w complete
    cv_w_read:
      for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
        w[o] = w_buf[wh][o][w_row];
      }
      zsqd_mac_array<C>(x, w, sum);
      w_row++;
      if (++k == red) {
      cv_acc_store:
        for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
          acc[a_row][o] = sum[o];
        }
        k = 0;
        a_row++;
      }
      /* advance (g, kx, ky, og, ox, r) */
      if (++bank == C::K) { bank = 0; brow++; }
      if (++g == ng) {
        g = 0; bank = 0; brow = 0;
        if (++kx == KW) {
          kx = 0;
          if (++ky == KH) {
            ky = 0;
            q_og += og_step;
            q = q_og;
            if (++og == nog) {
              og = 0;
              w_row = 0;
              if (++ox == cols) {
                ox = 0;
                r++;
                q_row += oy_step;
                q_px = q_row;
              } else {
                q_px += ox_step;
              }
              q_og = q_px;
              q = q_px;
            }
          } else {
            q += ky_step + kx_step;
          }
        } else {
          q += kx_step;
        }
      }
    }
    (void)r;
#endif
    ZSQD_LOOP(trips, ZSQD_DEPTH_MAC);
    /* executed multiply-accumulates that carry data: a depthwise tap is one per row */
    ZSQD_MACS((int64_t)trips * C::PE_OC * (dw ? 1 : C::PE_IC));
    return;
  }
  if (op == ZSQ_OP_REQUANT) {
    const int rows = regs[ZSQ_RQ_ROWS - 64], cols = regs[ZSQ_RQ_COLS - 64], nog = regs[ZSQ_RQ_OG - 64];
    const int dpitch = regs[ZSQ_RQ_DST_PITCH - 64], drow0 = regs[ZSQ_RQ_DST_ROW0 - 64];
    const int vy0 = regs[ZSQ_RQ_VY0 - 64], vy1 = regs[ZSQ_RQ_VY1 - 64];
    const int vx0 = regs[ZSQ_RQ_VX0 - 64], vx1 = regs[ZSQ_RQ_VX1 - 64];
    const ap_uint<22> avg_mult = regs[ZSQ_RQ_AVG_MULT - 64];
    const ap_uint<6> avg_shift = regs[ZSQ_RQ_AVG_SHIFT - 64];
    const int ph = insn[8], oh = insn[13];
    const bool relu = insn[9], avg = insn[10];
    const int dst = insn.range(12, 11);
    /* residual add: bp_buf[bh] row a_row holds the bypass of acc row a_row; an engine
     * built without it (ZSQD_RESIDUAL 0) has no bypass datapath: constant false */
    const bool add = C::RESIDUAL && insn[14];
    const int bh = insn[15];
    const ap_uint<22> bp_mult = regs[ZSQ_RQ_BP_MULT - 64];
    const ap_uint<6> bp_shift = regs[ZSQ_RQ_BP_SHIFT - 64];
    const int trips = regs[ZSQ_RQ_TRIPS - 64]; /* rows * cols * nog (isa.derived) */
    /* zero points (0: the symmetric arithmetic); the validators bound them to 8 / 25 bits */
    const ap_int<8> zp_out = regs[ZSQ_RQ_ZP_OUT - 64], bp_zp = regs[ZSQ_RQ_BP_ZP - 64];
    const ap_int<25> avg_bias = regs[ZSQ_RQ_AVG_BIAS - 64];
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
    zsqd_u64 *dbank = dst == ZSQ_RQ_DST_OUT ? zsqd_raw(&out_buf[oh][0][0])
                      : dst == ZSQ_RQ_DST_CV ? zsqd_raw(&cv_buf[0][0]) : zsqd_raw(&sq_buf[0][0]);
    const int drows = dst == ZSQ_RQ_DST_OUT ? C::OUT_ROWS : dst == ZSQ_RQ_DST_CV ? C::CV_ROWS : C::SQ_ROWS;
    zsqd_fast_requant<C>(rows, cols, nog, dpitch, drow0, vy0, vy1, vx0, vx1, (int)avg_mult, (int)avg_shift, relu,
                         avg, zsqd_raw(&p_buf[ph][0][0]), zsqd_raw(&acc[0][0]), dbank, drows,
                         add ? zsqd_raw(&bp_buf[bh][0][0]) : (const zsqd_u64 *)0,
                         (int)(C::WIDE_RQ ? bp_mult : ap_uint<22>(bp_mult.range(15, 0))), (int)bp_shift,
                         (int)zp_out, (int)bp_zp, (int)avg_bias);
#else
    int og = 0, c = 0, r = 0, a_row = 0, d_px = drow0;
  rq_px:
    for (int it = 0; it < trips; it++) {
#pragma HLS loop_tripcount min = 1 max = 65536
#pragma HLS PIPELINE II = 1
      const bool valid = r >= vy0 && r < vy1 && c >= vx0 && c < vx1;
      zsqd_word outw[C::K];
#pragma HLS ARRAY_PARTITION variable = outw complete
      /* one read per bp_buf bank: the bypass words of this (pixel, og) */
      zsqd_word bpw[C::K];
#pragma HLS ARRAY_PARTITION variable = bpw complete
    rq_bp_read:
      for (int j = 0; j < C::K; j++) {
#pragma HLS UNROLL
        bpw[j] = add ? bp_buf[bh][j][a_row] : zsqd_word(0);
      }
    rq_lane:
      for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
        ap_int<8> y = zsqd_requant<C::WIDE_RQ>(acc[a_row][o], p_buf[ph][o][og], relu, avg, avg_mult, avg_shift, add,
                                   zsqd_byte(bpw[o / 8], o % 8), bp_mult, bp_shift, zp_out, bp_zp, avg_bias);
        /* outside the valid window (a fire's halo: expand3's padding) the zero point */
        outw[o / 8].range(8 * (o % 8) + 7, 8 * (o % 8)) = valid ? ap_uint<8>(y) : ap_uint<8>(zp_out);
      }
      const int drow = d_px + og;
    rq_word:
      for (int j = 0; j < C::K; j++) {
#pragma HLS UNROLL
        if (dst == ZSQ_RQ_DST_OUT) out_buf[oh][j][drow] = outw[j];
        else if (dst == ZSQ_RQ_DST_CV) cv_buf[j][drow] = outw[j];
        else sq_buf[j][drow] = outw[j];
      }
      a_row++;
      if (++og == nog) {
        og = 0;
        d_px += dpitch;
        if (++c == cols) { c = 0; r++; }
      }
    }
#endif
    ZSQD_LOOP(trips, ZSQD_DEPTH_RQ);
    return;
  }
  if (op == ZSQ_OP_POOL) {
    const int rows = regs[ZSQ_PL_ROWS - 64], cols = regs[ZSQ_PL_COLS - 64], nog = regs[ZSQ_PL_OG - 64];
    const int KH = regs[ZSQ_PL_KH - 64], KW = regs[ZSQ_PL_KW - 64];
    const int SY = regs[ZSQ_PL_SY - 64], SX = regs[ZSQ_PL_SX - 64];
    const int y0 = regs[ZSQ_PL_Y0 - 64], x0 = regs[ZSQ_PL_X0 - 64];
    const int srows = regs[ZSQ_PL_SRC_ROWS - 64], scols = regs[ZSQ_PL_SRC_COLS - 64];
    const int dpitch = regs[ZSQ_PL_DST_PITCH - 64], drow0 = regs[ZSQ_PL_DST_ROW0 - 64];
    const bool avg = insn[9];
    const int oh = insn[8];
    /* standalone pool / concat (issue 11 item 4): POOL_SRC_IN reads a tile LOAD_INPUT put
     * in in_buf[POOL_IN_HALF] (pitch = og: the same layout as cv_buf) */
    const bool src_in = insn[10];
    const int ih = insn[11];
    /* source rows of cv_buf: pixel (sy, sx) at (sy * scols + sx) * nog + og; strides and
     * trip counts are derived registers (isa.derived), no runtime multiplier */
    const int wx_step = nog, wy_step = regs[ZSQ_PL_WY_STEP - 64];
    const int px_step = regs[ZSQ_PL_PX_STEP - 64], py_step = regs[ZSQ_PL_PY_STEP - 64];
    const int win = regs[ZSQ_PL_WIN - 64];
    const int trips = regs[ZSQ_PL_TRIPS - 64];
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
    (void)wx_step; (void)wy_step; (void)px_step; (void)py_step;
    zsqd_fast_pool<C>(rows, cols, nog, KH, KW, SY, SX, y0, x0, srows, scols, dpitch, drow0, avg,
                      src_in ? zsqd_raw(&in_buf[ih][0][0]) : zsqd_raw(&cv_buf[0][0]),
                      src_in ? C::IN_ROWS : C::CV_ROWS, zsqd_raw(&out_buf[oh][0][0]),
                      zsqd_raw(&acc[0][0]));
#else
    int wx = 0, wy = 0, og = 0, pc = 0, pr = 0, k = 0;
    int sy = y0, sx = x0;                       /* source pixel of the current tap */
    int row_y = y0, px_x = x0;                  /* window origin */
    int s_row = regs[ZSQ_PL_S0 - 64];            /* cv row of the window origin, og 0 */
    int s_px = s_row, s = s_px;
    int d_px = drow0, a_row = 0;
    ap_int<32> red[C::PE_OC];
#pragma HLS ARRAY_PARTITION variable = red complete
  pl_win:
    for (int it = 0; it < trips; it++) {
#pragma HLS loop_tripcount min = 1 max = 200000
#pragma HLS PIPELINE II = 1
      if (k == 0) {
      pl_init:
        for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
          red[o] = avg ? 0 : -128;
        }
      }
      const bool inside = sy >= 0 && sy < srows && sx >= 0 && sx < scols;
      if (inside) {
        /* one read per cv_buf bank (its 8 lanes share the word), not 8 reads of one
         * address left for the tool to merge: one port per bank per iteration */
        zsqd_word cw[C::K];
#pragma HLS ARRAY_PARTITION variable = cw complete
      pl_read:
        for (int j = 0; j < C::K; j++) {
#pragma HLS UNROLL
          cw[j] = zsqd_pool_src<C>(src_in, ih, j, s + og, in_buf, cv_buf);
        }
      pl_lane:
        for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
          ap_int<8> v = zsqd_byte(cw[o / 8], o % 8);
          if (avg) red[o] += v;
          else if (v > red[o]) red[o] = v;
        }
      }
      if (++k == win) {
        k = 0;
        if (avg) {
        pl_acc_store:
          for (int o = 0; o < C::PE_OC; o++) {
#pragma HLS UNROLL
            acc[a_row][o] = red[o];
          }
        } else {
        pl_word:
          for (int j = 0; j < C::K; j++) {
#pragma HLS UNROLL
            zsqd_word wv = 0;
          pl_byte:
            for (int b = 0; b < 8; b++) {
#pragma HLS UNROLL
              wv.range(8 * b + 7, 8 * b) = red[8 * j + b].range(7, 0);
            }
            out_buf[oh][j][d_px + og] = wv;
          }
        }
        a_row++;
      }
      /* advance (wx, wy, og, pc, pr) */
      if (++wx == KW) {
        wx = 0;
        if (++wy == KH) {
          wy = 0;
          if (++og == nog) {
            og = 0;
            d_px += dpitch;
            if (++pc == cols) {
              pc = 0;
              pr++;
              row_y += SY;
              px_x = x0;
              s_row += py_step;
              s_px = s_row;
            } else {
              px_x += SX;
              s_px += px_step;
            }
          }
          sy = row_y;
          sx = px_x;
          s = s_px;
        } else {
          sy++;
          sx = px_x;
          s += wy_step + wx_step;
        }
      } else {
        sx++;
        s += wx_step;
      }
    }
#endif
    ZSQD_LOOP(trips, ZSQD_DEPTH_POOL);
    return;
  }
}

/* ---- store -------------------------------------------------------------------------- */
/* Where the next word of an output region comes from: bank g % K, row srow + g / K
 * (the buffer whole, the half an index: see zsqd_in_cursor). */
template <class C>
struct zsqd_out_cursor {
  int srow, pitch, ng, g, bank, brow;
  zsqd_out_cursor(int s, int p, int n) : srow(s), pitch(p), ng(n), g(0), bank(0), brow(0) {}
  zsqd_word get(zsqd_word buf[2][C::K][C::OUT_ROWS], int half) {
#pragma HLS INLINE
    zsqd_word v = buf[half][bank][srow + brow];
    if (++bank == C::K) { bank = 0; brow++; }
    if (++g == ng) { g = 0; bank = 0; brow = 0; srow += pitch; }
    return v;
  }
};

/* n contiguous DDR words at `base`: its own burst region (cursor copied in and out). */
template <class C>
void zsqd_write_words(zsqd_word buf[2][C::K][C::OUT_ROWS], int half, zsqd_out_cursor<C> &cur,
                      zsqd_word *act_wr, int base, int n) {
#pragma HLS INLINE off
  zsqd_out_cursor<C> c = cur;
st_burst:
  for (int j = 0; j < n; j++) {
#pragma HLS loop_tripcount min = 1 max = 4096
#pragma HLS PIPELINE II = 1
    act_wr[base + j] = c.get(buf, half);
  }
  cur = c;
}
template <class C>
void zsqd_store_exec(zsqd_word insn, int32_t regs[ZSQ_N_REGS], zsqd_word out_buf[2][C::K][C::OUT_ROWS],
                     zsqd_word *act_wr) {
#pragma HLS INLINE off
  const int op = insn.range(3, 0);
  if (zsqd_set_register(insn, regs)) return;
  if (op == ZSQ_OP_STORE) {
    const int base = regs[ZSQ_ST_BASE - 128], W = regs[ZSQ_ST_W - 128], G = regs[ZSQ_ST_G - 128];
    const int y0 = regs[ZSQ_ST_Y0 - 128], x0 = regs[ZSQ_ST_X0 - 128], g0 = regs[ZSQ_ST_G0 - 128];
    const int rows = regs[ZSQ_ST_ROWS - 128], cols = regs[ZSQ_ST_COLS - 128], ng = regs[ZSQ_ST_NG - 128];
    const int pitch = regs[ZSQ_ST_PITCH - 128], row0 = regs[ZSQ_ST_ROW0 - 128];
    /* derived registers (isa.derived): the compiler's products, no runtime multiplier */
    const int row_step = regs[ZSQ_ST_ROW_STEP - 128], row_trips = regs[ZSQ_ST_ROW_TRIPS - 128];
    const int row_pitch = regs[ZSQ_ST_ROW_PITCH - 128];
    int row_dst = regs[ZSQ_ST_DST0 - 128]; /* DDR word of (y0 + r, x0, g0) */
    (void)base; (void)y0; (void)x0; (void)g0;
    const int h = insn[8];
    int src_row = row0;
  st_row:
    for (int r = 0; r < rows; r++) {
#pragma HLS loop_tripcount min = 1 max = 64
      int dst = row_dst;
      row_dst += row_step;
#if !defined(__SYNTHESIS__) && !defined(ZSQD_HLS_KERNEL) /* host fast path */
      zsqd_fast_store_row<C>(zsqd_raw(act_wr), dst, G, zsqd_raw(&out_buf[h][0][0]), src_row, pitch, cols, ng);
#else
      /* one burst region per row when the tile spans every channel group (the row is
       * contiguous in DDR), else one per pixel: an unconditional write at `base + j` */
      zsqd_out_cursor<C> cur(src_row, pitch, ng);
      if (ng == G) {
        zsqd_write_words<C>(out_buf, h, cur, act_wr, dst, row_trips);
      } else {
        int px = dst;
      st_px:
        for (int c = 0; c < cols; c++) {
#pragma HLS loop_tripcount min = 1 max = 256
          zsqd_write_words<C>(out_buf, h, cur, act_wr, px, ng);
          px += G;
        }
      }
#endif
      if (ng == G) ZSQD_WR_LOOPS(1, row_trips, ZSQD_DEPTH_STORE);
      else ZSQD_WR_LOOPS(cols, ng, ZSQD_DEPTH_STORE);
      src_row += row_pitch;
    }
    return;
  }
}

#endif /* ZSQ_DAE_H */
