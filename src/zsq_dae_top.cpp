/*
 * zsq_dae_top.cpp - the decoupled engine's top function (docs/ENGINE.md).
 *
 * zsqd_dataflow is what Vitis HLS synthesizes: fetch, load, compute, store and a cycle
 * timer as processes of one DATAFLOW region, joined by hls::stream command and token
 * queues; each ping-pong buffer half has one producer and one consumer (type=unsync: the
 * tokens order the accesses). zsq_dae, the top, runs that region under synthesis and, in
 * a C simulation, the simulation driver (zsq_dae_sim.cpp), which executes the same
 * per-instruction module functions in dependency order and charges their executed loops
 * and AXI transfers (sequential C execution of a DATAFLOW region with shared buffers would
 * not respect the tokens).
 */
#include <hls_stream.h>

#include "zsq_dae.h"

typedef zsqd_cfg C;

/* Instruction fetch: one word per cycle from gmem_insn, routed by opcode / register id. */
static void zsqd_fetch(const zsqd_word *insn, uint32_t n, hls::stream<zsqd_word> &load_q,
                       hls::stream<zsqd_word> &compute_q, hls::stream<zsqd_word> &store_q) {
fetch_word:
  for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 65536
#pragma HLS PIPELINE II = 1
    zsqd_word w = insn[i];
    const int op = w.range(3, 0);
    const int module = op == ZSQ_OP_SET ? (int)w.range(23, 22)
                       : (op == ZSQ_OP_LOAD_INPUT || op == ZSQ_OP_LOAD_WEIGHT || op == ZSQ_OP_LOAD_PARAMS ||
                          op == ZSQ_OP_LOAD_BYPASS) ? ZSQ_MODULE_LOAD
                       : op == ZSQ_OP_STORE ? ZSQ_MODULE_STORE
                       : op == ZSQ_OP_FINISH ? 3 : ZSQ_MODULE_COMPUTE;
    if (module == ZSQ_MODULE_LOAD || module == 3) load_q.write(w);
    if (module == ZSQ_MODULE_COMPUTE || module == 3) compute_q.write(w);
    if (module == ZSQ_MODULE_STORE || module == 3) store_q.write(w);
  }
}

static void zsqd_load(uint32_t n, hls::stream<zsqd_word> &q, hls::stream<bool> &l2c,
                      hls::stream<bool> &c2l, const zsqd_word *act_rd, const zsqd_word *wgt,
                      zsqd_word in_buf[2][C::K][C::IN_ROWS], zsqd_word w_buf[2][C::PE_OC][C::W_ROWS],
                      zsqd_word p_buf[2][C::PE_OC][C::P_ROWS], zsqd_word bp_buf[2][C::K][C::BP_ROWS]) {
  int32_t regs[ZSQ_N_REGS];
#pragma HLS ARRAY_PARTITION variable = regs complete
  zsqd_reset_registers(regs);
load_insn:
  for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 65536
    zsqd_word w = q.read();
    if (w.range(3, 0) == ZSQ_OP_FINISH) break;
    if (w[5]) c2l.read(); /* POP_NEXT */
    zsqd_load_exec<C>(w, regs, act_rd, wgt, in_buf, w_buf, p_buf, bp_buf);
    if (w[7]) l2c.write(true); /* PUSH_NEXT */
  }
}

static void zsqd_compute(uint32_t n, hls::stream<zsqd_word> &q, hls::stream<bool> &l2c,
                         hls::stream<bool> &c2l, hls::stream<bool> &c2s, hls::stream<bool> &s2c,
                         zsqd_word in_buf[2][C::K][C::IN_ROWS], zsqd_word w_buf[2][C::PE_OC][C::W_ROWS],
                         zsqd_word p_buf[2][C::PE_OC][C::P_ROWS], zsqd_word out_buf[2][C::K][C::OUT_ROWS],
                         zsqd_word bp_buf[2][C::K][C::BP_ROWS]) {
  int32_t regs[ZSQ_N_REGS];
#pragma HLS ARRAY_PARTITION variable = regs complete
  zsqd_reset_registers(regs);
  /* compute-private buffers: accumulators, pre-pool tile, fire squeeze tile */
  ap_int<32> acc[C::ACC_ROWS][C::PE_OC];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 2
  zsqd_word cv_buf[C::K][C::CV_ROWS];
#pragma HLS ARRAY_PARTITION variable = cv_buf complete dim = 1
  zsqd_word sq_buf[C::K][C::SQ_ROWS];
#pragma HLS ARRAY_PARTITION variable = sq_buf complete dim = 1
compute_insn:
  for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 65536
    zsqd_word w = q.read();
    if (w.range(3, 0) == ZSQ_OP_FINISH) break;
    if (w[4]) l2c.read(); /* POP_PREV */
    if (w[5]) s2c.read(); /* POP_NEXT */
    zsqd_compute_exec<C>(w, regs, in_buf, w_buf, p_buf, acc, cv_buf, sq_buf, out_buf, bp_buf);
    if (w[6]) c2l.write(true); /* PUSH_PREV */
    if (w[7]) c2s.write(true); /* PUSH_NEXT */
  }
}

static void zsqd_store(uint32_t n, hls::stream<zsqd_word> &q, hls::stream<bool> &c2s,
                       hls::stream<bool> &s2c, hls::stream<bool> &done,
                       zsqd_word out_buf[2][C::K][C::OUT_ROWS], zsqd_word *act_wr) {
  int32_t regs[ZSQ_N_REGS];
#pragma HLS ARRAY_PARTITION variable = regs complete
  zsqd_reset_registers(regs);
store_insn:
  for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount min = 1 max = 65536
    zsqd_word w = q.read();
    if (w.range(3, 0) == ZSQ_OP_FINISH) break;
    if (w[4]) c2s.read(); /* POP_PREV */
    zsqd_store_exec<C>(w, regs, out_buf, act_wr);
    if (w[6]) s2c.write(true); /* PUSH_PREV */
  }
  done.write(true);
}

/* The hardware cycle counter: counts every clock until store signals done. */
static void zsqd_timer(hls::stream<bool> &done, uint64_t *cycles) {
  uint64_t count = 0;
  bool fin = false;
timer_tick:
  for (uint32_t i = 0; i < 0xFFFFFFFFu; i++) {
#pragma HLS loop_tripcount min = 1 max = 10000000
#pragma HLS PIPELINE II = 1
    count++;
    if (done.read_nb(fin)) break;
  }
  *cycles = count;
}

void zsqd_dataflow(const zsqd_word *insn, uint32_t insn_count, const zsqd_word *wgt,
                   const zsqd_word *act_rd, zsqd_word *act_wr, uint64_t *cycles) {
#pragma HLS DATAFLOW
  hls::stream<zsqd_word> load_q, compute_q, store_q;
#pragma HLS STREAM variable = load_q depth = 512
#pragma HLS STREAM variable = compute_q depth = 512
#pragma HLS STREAM variable = store_q depth = 512
  hls::stream<bool> l2c, c2l, c2s, s2c, done;
#pragma HLS STREAM variable = l2c depth = 8
#pragma HLS STREAM variable = c2l depth = 8
#pragma HLS STREAM variable = c2s depth = 8
#pragma HLS STREAM variable = s2c depth = 8
  zsqd_word in_buf[2][C::K][C::IN_ROWS];
#pragma HLS ARRAY_PARTITION variable = in_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = in_buf complete dim = 2
#pragma HLS STREAM variable = in_buf type = unsync
  zsqd_word w_buf[2][C::PE_OC][C::W_ROWS];
#pragma HLS ARRAY_PARTITION variable = w_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = w_buf complete dim = 2
#pragma HLS STREAM variable = w_buf type = unsync
  zsqd_word p_buf[2][C::PE_OC][C::P_ROWS];
#pragma HLS ARRAY_PARTITION variable = p_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = p_buf complete dim = 2
#pragma HLS BIND_STORAGE variable = p_buf type = ram_2p impl = lutram
#pragma HLS STREAM variable = p_buf type = unsync
  zsqd_word out_buf[2][C::K][C::OUT_ROWS];
#pragma HLS ARRAY_PARTITION variable = out_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = out_buf complete dim = 2
#pragma HLS STREAM variable = out_buf type = unsync
  /* residual add: bypass tiles, load -> compute (one half per producer/consumer pair) */
  zsqd_word bp_buf[2][C::K][C::BP_ROWS];
#pragma HLS ARRAY_PARTITION variable = bp_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = bp_buf complete dim = 2
#pragma HLS STREAM variable = bp_buf type = unsync
  zsqd_fetch(insn, insn_count, load_q, compute_q, store_q);
  zsqd_load(insn_count, load_q, l2c, c2l, act_rd, wgt, in_buf, w_buf, p_buf, bp_buf);
  zsqd_compute(insn_count, compute_q, l2c, c2l, c2s, s2c, in_buf, w_buf, p_buf, out_buf, bp_buf);
  zsqd_store(insn_count, store_q, c2s, s2c, done, out_buf, act_wr);
  zsqd_timer(done, cycles);
}

#ifndef __SYNTHESIS__
int zsqd_sim_top(const zsqd_word *insn, uint32_t insn_count, const zsqd_word *wgt,
                 const zsqd_word *act_rd, zsqd_word *act_wr, uint64_t *cycles);
#endif

extern "C" void zsq_dae(const zsqd_word *insn, uint32_t insn_count, const zsqd_word *wgt,
                        const zsqd_word *act_rd, zsqd_word *act_wr, uint64_t *cycles) {
#pragma HLS INTERFACE m_axi port = insn offset = slave bundle = gmem_insn depth = 65536
#pragma HLS INTERFACE m_axi port = wgt offset = slave bundle = gmem_wgt depth = 1048576
#pragma HLS INTERFACE m_axi port = act_rd offset = slave bundle = gmem_rd depth = 1048576
#pragma HLS INTERFACE m_axi port = act_wr offset = slave bundle = gmem_wr depth = 1048576
#pragma HLS INTERFACE s_axilite port = insn_count
#pragma HLS INTERFACE s_axilite port = cycles
#pragma HLS INTERFACE s_axilite port = return
#ifdef __SYNTHESIS__
  zsqd_dataflow(insn, insn_count, wgt, act_rd, act_wr, cycles);
#else
  zsqd_sim_top(insn, insn_count, wgt, act_rd, act_wr, cycles);
#endif
}
