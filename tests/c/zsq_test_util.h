/* zsq_test_util.h - helpers of the C tests: checks, instruction words, test-case files. */
#ifndef ZSQ_TEST_UTIL_H
#define ZSQ_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsq_isa.h"
#include "zsq_runtime.h"

static int g_failures = 0;

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                             \
    }                                                                           \
  } while (0)

/* One instruction word (docs/ENGINE.md "ISA"). */
static uint64_t insn_op(int op, int flags) { return (uint64_t)op | (uint64_t)flags; }
static uint64_t insn_set(int reg, int32_t value) {
  return (uint64_t)ZSQ_OP_SET | ((uint64_t)(reg & 0xFF) << 16) | ((uint64_t)(uint32_t)value << 32);
}

/* A program struct over caller arrays with the default timing constants. */
static zsq_rt_program_t program_of(const uint64_t *insn, int64_t n_insn, const uint64_t *wgt,
                                   int64_t wgt_words, int64_t arena_words) {
  zsq_rt_program_t p;
  memset(&p, 0, sizeof p);
  p.insn = insn;
  p.n_insn = n_insn;
  p.wgt = wgt;
  p.wgt_words = wgt_words;
  p.arena_words = arena_words;
  p.rd_latency = 40;
  p.wr_latency = 30;
  p.outstanding = 8;
  p.beat_x100 = 100;
  return p;
}

/* A whole file of 64-bit little-endian words (malloc'd, NULL on error). */
static uint64_t *read_words(const char *dir, const char *name, const char *ext, int64_t *n) {
  char path[1024];
  FILE *f;
  long bytes;
  uint64_t *buf;
  snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
  f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = (uint64_t *)malloc(bytes > 0 ? (size_t)bytes : 8);
  if (!buf || bytes % 8 || fread(buf, 1, (size_t)bytes, f) != (size_t)bytes) {
    fprintf(stderr, "cannot read %s\n", path);
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *n = bytes / 8;
  return buf;
}

/* One case written by tests/test_ctest.py: a DaeProgram, its input arena image, the
 * golden model's output (packed HWC words) and the cycles of the Python-driven run; the
 * input tensor's arena words [in_base, in_base + in_words) (-1 if the line has none). */
typedef struct {
  char name[64];
  int64_t arena_words, out_base, out_c, out_h, out_w;
  int64_t rd_latency, wr_latency, outstanding, beat_x100, cycles;
  int64_t in_base, in_words;
  uint64_t *insn, *wgt, *arena_in, *expected;
  int64_t n_insn, wgt_words, n_arena_in, n_expected;
} test_case_t;

/* Reads the cases listed in <dir>/cases.txt (at most max); returns how many, -1 on error. */
static int read_cases(const char *dir, test_case_t *cases, int max) {
  char path[1024], line[512];
  FILE *f;
  int n = 0;
  snprintf(path, sizeof path, "%s/cases.txt", dir);
  f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return -1;
  }
  while (n < max && fgets(line, sizeof line, f)) {
    test_case_t *c = &cases[n];
    long long v[12];
    int got;
    if (line[0] == '#' || line[0] == '\n') continue;
    v[10] = v[11] = -1;
    got = sscanf(line, "%63s %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
                 c->name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                 &v[10], &v[11]);
    if (got != 11 && got != 13) {
      fprintf(stderr, "bad line in %s: %s", path, line);
      fclose(f);
      return -1;
    }
    c->arena_words = v[0];
    c->out_base = v[1];
    c->out_c = v[2];
    c->out_h = v[3];
    c->out_w = v[4];
    c->rd_latency = v[5];
    c->wr_latency = v[6];
    c->outstanding = v[7];
    c->beat_x100 = v[8];
    c->cycles = v[9];
    c->in_base = v[10];
    c->in_words = v[11];
    c->insn = read_words(dir, c->name, "insn", &c->n_insn);
    c->wgt = read_words(dir, c->name, "wgt", &c->wgt_words);
    c->arena_in = read_words(dir, c->name, "arena", &c->n_arena_in);
    c->expected = read_words(dir, c->name, "expected", &c->n_expected);
    if (!c->insn || !c->wgt || !c->arena_in || !c->expected || c->n_arena_in != c->arena_words) {
      fprintf(stderr, "case %s: missing or inconsistent files\n", c->name);
      fclose(f);
      return -1;
    }
    n++;
  }
  fclose(f);
  return n;
}

static zsq_rt_program_t case_program(const test_case_t *c) {
  zsq_rt_program_t p = program_of(c->insn, c->n_insn, c->wgt, c->wgt_words, c->arena_words);
  p.rd_latency = c->rd_latency;
  p.wr_latency = c->wr_latency;
  p.outstanding = c->outstanding;
  p.beat_x100 = c->beat_x100;
  return p;
}

/* Bytes of the real channels of the output that differ from the expected tensor (the
 * padding channels of the last group may hold anything). */
static long count_mismatches(const test_case_t *c, const uint64_t *arena) {
  const int64_t groups = (c->out_c + 7) / 8;
  const unsigned char *got = (const unsigned char *)(arena + c->out_base);
  const unsigned char *want = (const unsigned char *)c->expected;
  long bad = 0;
  int64_t px, ch;
  for (px = 0; px < c->out_h * c->out_w; px++)
    for (ch = 0; ch < c->out_c; ch++)
      if (got[px * groups * 8 + ch] != want[px * groups * 8 + ch]) bad++;
  return bad;
}

/* Arena words of the output tensor (channels padded to groups of 8). */
static int64_t out_words(const test_case_t *c) { return c->out_h * c->out_w * ((c->out_c + 7) / 8); }

static void free_case(test_case_t *c) {
  free(c->insn);
  free(c->wgt);
  free(c->arena_in);
  free(c->expected);
}

#endif
