/* test_io.c - zsq_rt_run_io on the csim backend: the same results and cycles as zsq_rt_run
 * (in place, nothing copied), the range checks the board backend relies on (a range outside
 * the arena, an input range missing a program input, an output no STORE writes: all
 * ZSQ_RT_ERR_ARG, before anything runs).
 * Usage: test_io <dir written by tests/test_ctest.py> */
#include "zsq_test_util.h"

#define MAX_CASES 4

int main(int argc, char **argv) {
  static test_case_t cases[MAX_CASES];
  char err[512];
  int n, i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  n = read_cases(argv[1], cases, MAX_CASES);
  if (n < 1) return 1;
  CHECK(strcmp(zsq_rt_backend(), "csim") == 0);
  for (i = 0; i < n; i++) {
    test_case_t *c = &cases[i];
    const zsq_rt_program_t p = case_program(c);
    zsq_rt_range_t in, out, r;
    zsq_rt_stats_t a, b;
    uint64_t *x = (uint64_t *)malloc((size_t)c->arena_words * 8);
    uint64_t *y = (uint64_t *)malloc((size_t)c->arena_words * 8);
    if (!x || !y) return 1;
    in.word = c->in_base, in.words = c->in_words;
    out.word = c->out_base, out.words = out_words(c);
    memcpy(x, c->arena_in, (size_t)c->arena_words * 8);
    memcpy(y, c->arena_in, (size_t)c->arena_words * 8);
    CHECK(zsq_rt_run(&p, x, &a, err, sizeof err) == ZSQ_RT_OK);
    b.copied_bytes = -5;
    CHECK(zsq_rt_run_io(&p, y, &in, 1, &out, 1, &b, err, sizeof err) == ZSQ_RT_OK);
    CHECK(memcmp(x, y, (size_t)c->arena_words * 8) == 0); /* in place, whole arena */
    CHECK(a.cycles == b.cycles && b.cycles == c->cycles && b.copied_bytes == 0);
    CHECK(count_mismatches(c, y) == 0);
    r = in, r.words -= 1;
    CHECK(zsq_rt_run_io(&p, y, &r, 1, &out, 1, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "not inside the input ranges") != NULL);
    CHECK(zsq_rt_run_io(&p, y, &in, 1, &in, 1, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(strstr(err, "not all inside tensors the program stores") != NULL);
    r.word = c->arena_words, r.words = 1;
    CHECK(zsq_rt_run_io(&p, y, &in, 1, &r, 1, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
    CHECK(zsq_rt_run_io(&p, y, &in, 1, &out, 1, NULL, NULL, 0) == ZSQ_RT_OK); /* err optional */
    printf("%s: run_io ok (%lld cycles)\n", c->name, (long long)b.cycles);
    free(x);
    free(y);
    free_case(c);
  }
  if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
  return g_failures ? 1 : 0;
}
