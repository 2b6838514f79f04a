/* overflow_probe.c - runs programs through both validators (zsq_rt_validate, and zsqd_run,
 * which checks each instruction before executing it); tests/test_robust_runtime.py builds
 * it with -fsanitize=signed-integer-overflow so that an overflow in a check aborts.
 *
 * Usage: overflow_probe <file>. The file holds records of 64-bit little-endian words:
 * n_insn, n_wgt, arena_words, then the instruction words, then the weight words. Prints
 * "<validate rc> <simulation rc>" per record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsq_dae_sim.h"
#include "zsq_runtime.h"

static int read_words(FILE *f, uint64_t *w, int64_t n) {
  return n >= 0 && fread(w, 8, (size_t)n, f) == (size_t)n;
}

int main(int argc, char **argv) {
  FILE *f;
  int64_t head[3];
  if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
    fprintf(stderr, "usage: %s <programs file>\n", argv[0]);
    return 2;
  }
  while (fread(head, 8, 3, f) == 3) {
    const int64_t n = head[0], nw = head[1], na = head[2];
    uint64_t *insn = (uint64_t *)malloc((size_t)(n > 0 ? n : 1) * 8);
    uint64_t *wgt = (uint64_t *)malloc((size_t)(nw > 0 ? nw : 1) * 8);
    uint64_t *arena = (uint64_t *)calloc((size_t)(na > 0 ? na : 1), 8);
    zsq_rt_program_t p;
    zsqd_timing_t t = {40, 30, 8, 100};
    char err[512];
    int rv, rs;
    if (!insn || !wgt || !arena || !read_words(f, insn, n) || !read_words(f, wgt, nw)) {
      fprintf(stderr, "bad record\n");
      return 2;
    }
    memset(&p, 0, sizeof p);
    p.insn = insn, p.n_insn = n, p.wgt = wgt, p.wgt_words = nw, p.arena_words = na;
    p.rd_latency = 40, p.wr_latency = 30, p.outstanding = 8, p.beat_x100 = 100;
    rv = zsq_rt_validate(&p, err, sizeof err);
    rs = zsqd_run(insn, n, wgt, nw, arena, na, &t, NULL, NULL, err, (int)sizeof err);
    printf("%d %d\n", rv, rs);
    free(insn);
    free(wgt);
    free(arena);
  }
  fclose(f);
  return 0;
}
