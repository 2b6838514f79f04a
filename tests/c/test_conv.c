/* test_conv.c - small convolutions with hand-computed outputs (csim backend). */
#include "zsq_test_util.h"

static void test_1x1(void) {
  /* 2x2 image, 2 in channels (HWC), 2 out channels */
  int8_t arena[64];
  const int8_t x[8] = {1, 2, 3, 4, -5, 6, 7, -8}; /* pixels (c0,c1): (1,2) (3,4) (-5,6) (7,-8) */
  const int8_t w[4] = {1, 1, 2, -1};             /* o0 = c0 + c1, o1 = 2*c0 - c1 */
  int32_t p[6];
  zsq_layer_t L;
  zsq_rt_program_t prog;
  zsq_stats_t st;
  char err[256];
  int rc;
  const int8_t expect[8] = {3 + 10, 0 + 10, 7 + 10, 2 + 10, 1 + 10, 0 + 10, -1 + 10, 22 + 10};
  memset(arena, 0, sizeof arena);
  memcpy(arena, x, 8);
  params_identity(p, 2, 10);
  layer_init(&L, ZSQ_KIND_CONV, 2, 2, 2);
  conv_init(&L.conv[0], 2, 2, 1, 1, 0, 0, 0, 0);
  L.out_c = 2; L.out_h = 2; L.out_w = 2; L.out_off = 32;
  L.conv_h = 2; L.conv_w = 2;
  prog.layers = &L; prog.n_layers = 1; prog.weights = w; prog.weights_bytes = 4;
  prog.params = p; prog.params_words = 6; prog.arena_bytes = sizeof arena;
  rc = zsq_rt_run(&prog, arena, &st, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  CHECK(rc == 0);
  /* o1 of pixel 0 = 2*1-2 = 0; pixel 1: 6-4 = 2; pixel 2: -10-6 = -16 -> -6 after bias,
     but no relu: -16 + 10 = -6 */
  CHECK(arena[32] == expect[0]);
  CHECK(arena[33] == 10);
  CHECK(arena[34] == 17);
  CHECK(arena[35] == 12);
  CHECK(arena[36] == 11);
  CHECK(arena[37] == -6);
  CHECK(arena[38] == 9);
  CHECK(arena[39] == 32);
  CHECK(st.n_layers == 1 && st.layer_cycles[0] > 0 && st.total_cycles == st.layer_cycles[0]);
  CHECK(st.layer_macs[0] == 16);
}

static void test_3x3_pad_pool(void) {
  /* 3x3 image of ones, 1 channel, 3x3 ones kernel pad 1 -> box counts; + maxpool 2x2 s2 ceil */
  int8_t arena[64];
  int8_t w[9];
  int32_t p[3];
  zsq_layer_t L;
  zsq_rt_program_t prog;
  char err[256];
  int i, rc;
  memset(arena, 0, sizeof arena);
  for (i = 0; i < 9; i++) { arena[i] = 1; w[i] = 1; }
  params_identity(p, 1, 0);
  layer_init(&L, ZSQ_KIND_CONV, 1, 3, 3);
  conv_init(&L.conv[0], 1, 1, 3, 1, 1, 1, 0, 0);
  L.conv_h = 3; L.conv_w = 3;
  L.pool_kind = ZSQ_POOL_MAX; L.pool_kh = L.pool_kw = 2; L.pool_sh = L.pool_sw = 2;
  L.pool_ceil = 1;
  L.out_c = 1; L.out_h = 2; L.out_w = 2; L.out_off = 16;
  L.th = 1; L.tw = 1; /* one pooled pixel per tile: recomputes border rows */
  prog.layers = &L; prog.n_layers = 1; prog.weights = w; prog.weights_bytes = 9;
  prog.params = p; prog.params_words = 3; prog.arena_bytes = sizeof arena;
  rc = zsq_rt_run(&prog, arena, NULL, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  CHECK(rc == 0);
  /* conv: [[4,6,4],[6,9,6],[4,6,4]]; pool windows {0,1}x{0,1}, {0,1}x{2}, ... */
  CHECK(arena[16] == 9);
  CHECK(arena[17] == 6);
  CHECK(arena[18] == 6);
  CHECK(arena[19] == 4);
}

static void test_avg_global(void) {
  /* 1x1 conv identity on a 2x3 plane of -1,-2,...: global avg = floor((2s+d)/(2d)) */
  int8_t arena[32];
  const int8_t w[1] = {1};
  int32_t p[3];
  zsq_layer_t L;
  zsq_rt_program_t prog;
  int i, rc;
  memset(arena, 0, sizeof arena);
  for (i = 0; i < 6; i++) arena[i] = (int8_t)(-1 - i); /* sum -21, d 6: -3.5 -> -3 */
  params_identity(p, 1, 0);
  layer_init(&L, ZSQ_KIND_CONV, 1, 2, 3);
  conv_init(&L.conv[0], 1, 1, 1, 1, 0, 0, 0, 0);
  L.conv_h = 2; L.conv_w = 3;
  L.pool_kind = ZSQ_POOL_AVG; L.pool_global = 1;
  L.out_c = 1; L.out_h = 1; L.out_w = 1; L.out_off = 16;
  prog.layers = &L; prog.n_layers = 1; prog.weights = w; prog.weights_bytes = 1;
  prog.params = p; prog.params_words = 3; prog.arena_bytes = sizeof arena;
  rc = zsq_rt_run(&prog, arena, NULL, NULL, 0);
  CHECK(rc == 0);
  CHECK(arena[16] == -3);
}

int main(void) {
  test_1x1();
  test_3x3_pad_pool();
  test_avg_global();
  if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
