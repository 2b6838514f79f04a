/*
 * backends/csim.c - simulation backend: runs the program on the decoupled engine's C
 * simulation (zsqd_run, src/zsq_dae_sim.cpp: the HLS modules of src/zsq_dae.h compiled by
 * the host compiler against Xilinx's ap_types), on the caller's arena in place, timed with
 * the program's HP-port constants. zsq_rt_run_io checks its ranges like the board's and
 * runs in place all the same (nothing is copied: stats->copied_bytes is 0).
 */
#include "zsq_dae_sim.h"
#include "zsq_runtime.h"

#include <stdio.h>
#include <string.h>

const char *zsq_rt_backend(void) { return "csim"; }

const char *zsq_rt_backend_info(void) { return "csim: the engine's C simulation, in place"; }

void zsq_rt_release(void) {} /* the simulation keeps nothing between runs */

int zsq_rt_backend_run(const zsq_rt_program_t *p, uint64_t *arena, zsq_rt_stats_t *stats,
                       char *err, size_t errlen) {
  zsqd_timing_t t;
  zsqd_stats_t st;
  char msg[256];
  int rc;
  t.rd_latency = p->rd_latency;
  t.wr_latency = p->wr_latency;
  t.outstanding = p->outstanding;
  t.beat_x100 = p->beat_x100;
  memset(&st, 0, sizeof st);
  msg[0] = 0;
  rc = zsqd_run(p->insn, p->n_insn, p->wgt, p->wgt_words, arena, p->arena_words, &t, NULL, &st,
                msg, (int)sizeof msg);
  if (rc != 0) {
    /* the engine names the instruction; prefix the code's description like the runtime */
    if (err && errlen) snprintf(err, errlen, "%s: %s", zsq_rt_strerror(rc), msg);
    return rc;
  }
  if (stats) {
    stats->cycles = st.cycles;
    stats->load_busy = st.load_busy;
    stats->compute_busy = st.compute_busy;
    stats->store_busy = st.store_busy;
    stats->macs = st.macs;
    stats->rd_bytes = st.rd_bytes;
    stats->wr_bytes = st.wr_bytes;
    stats->copied_bytes = 0;
  }
  return ZSQ_RT_OK;
}

int zsq_rt_run_io(const zsq_rt_program_t *p, uint64_t *arena, const zsq_rt_range_t *in,
                  int n_in, const zsq_rt_range_t *out, int n_out, zsq_rt_stats_t *stats,
                  char *err, size_t errlen) {
  int rc = zsq_rt_check_io(p, arena, in, n_in, out, n_out, err, errlen);
  if (rc != ZSQ_RT_OK) return rc;
  return zsq_rt_backend_run(p, arena, stats, err, errlen);
}
