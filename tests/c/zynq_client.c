/* zynq_client.c - a board-side program for the simulated device in another process: runs
 * each test program twice through the zynq backend (zsq_rt_run_io with the input and output
 * ranges) on the devices named by the environment (ZSQ_UIO, ZSQ_UIO_IRQ, ZSQ_UDMABUF,
 * ZSQ_UDMABUF_DEV, ZSQ_SYSFS: see hls_runtime/tools/zsq_fake_device_main.c), checks the
 * output against the golden model and the cycles against Python's, and prints one line per
 * run. Built for the host and for the board (run under qemu-arm-static by
 * tests/test_zynq_driver.py). Exit status 0 if everything matched, else 1; with --expect-rc
 * N it instead expects the first run to fail with code N (and prints its message).
 * Usage: zynq_client <dir written by tests/test_ctest.py> [--expect-rc N] */
#include "zsq_test_util.h"

#define MAX_CASES 4

int main(int argc, char **argv) {
  static test_case_t cases[MAX_CASES];
  char err[512];
  int n, i, k, expect = 0, fails = 0;
  if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--expect-rc") == 0)) {
    fprintf(stderr, "usage: %s <dir> [--expect-rc N]\n", argv[0]);
    return 2;
  }
  err[0] = 0;
  if (argc == 4) expect = atoi(argv[3]);
  n = read_cases(argv[1], cases, MAX_CASES);
  if (n < 1) return 2;
  for (i = 0; i < n; i++) {
    test_case_t *c = &cases[i];
    const zsq_rt_program_t p = case_program(c);
    zsq_rt_range_t in, out;
    uint64_t *arena = (uint64_t *)malloc((size_t)c->arena_words * 8);
    if (!arena) return 2;
    in.word = c->in_base, in.words = c->in_words;
    out.word = c->out_base, out.words = out_words(c);
    for (k = 0; k < 2; k++) {
      zsq_rt_stats_t st;
      int rc;
      memcpy(arena, c->arena_in, (size_t)c->arena_words * 8);
      memset(&st, 0, sizeof st);
      rc = zsq_rt_run_io(&p, arena, &in, 1, &out, 1, &st, err, sizeof err);
      if (expect) {
        printf("%s: rc %d: %s\n", c->name, rc, err);
        free(arena);
        return rc == expect ? 0 : 1;
      }
      if (rc) {
        printf("%s run %d: FAIL rc %d: %s\n", c->name, k + 1, rc, err);
        fails++;
        continue;
      }
      printf("%s run %d: %s, %lld cycles (expected %lld), copied %lld bytes\n", c->name, k + 1,
             count_mismatches(c, arena) == 0 ? "exact" : "MISMATCH", (long long)st.cycles,
             (long long)c->cycles, (long long)st.copied_bytes);
      if (count_mismatches(c, arena) != 0 || st.cycles != c->cycles) fails++;
    }
    free(arena);
    free_case(c);
  }
  printf("%s\n", zsq_rt_backend_info());
  zsq_rt_release();
  return fails ? 1 : 0;
}
