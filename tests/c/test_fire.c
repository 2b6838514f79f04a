/* test_fire.c - a tiny fire module with hand-computed outputs (csim backend). */
#include "zsq_test_util.h"

int main(void) {
  /* input 1 channel 3x3 = 1..9; squeeze 1x1 weight 1 (identity, relu);
     expand1 weight 2; expand3 ones (pad 1) -> 3x3 box sums of the input. */
  int8_t arena[64];
  int8_t w[1 + 1 + 9];
  int32_t p[9];
  zsq_layer_t L;
  zsq_rt_program_t prog;
  zsq_stats_t st;
  char err[256];
  int i, rc;
  const int box[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  memset(arena, 0, sizeof arena);
  for (i = 0; i < 9; i++) arena[i] = (int8_t)(i + 1);
  w[0] = 1;
  w[1] = 2;
  for (i = 0; i < 9; i++) w[2 + i] = 1;
  params_identity(p, 3, 0);
  layer_init(&L, ZSQ_KIND_FIRE, 1, 3, 3);
  conv_init(&L.conv[0], 1, 1, 1, 1, 0, 1, 0, 0);
  conv_init(&L.conv[1], 1, 1, 1, 1, 0, 1, 1, 3);
  conv_init(&L.conv[2], 1, 1, 3, 1, 1, 1, 2, 6);
  L.conv_h = 3; L.conv_w = 3;
  L.out_c = 2; L.out_h = 3; L.out_w = 3; L.out_off = 32;
  L.th = 2; L.tw = 2; /* 4 spatial tiles, halos inside and outside the image */
  prog.layers = &L; prog.n_layers = 1; prog.weights = w; prog.weights_bytes = sizeof w;
  prog.params = p; prog.params_words = 9; prog.arena_bytes = sizeof arena;
  rc = zsq_rt_run(&prog, arena, &st, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  CHECK(rc == 0);
  for (i = 0; i < 9; i++) {
    CHECK(arena[32 + 2 * i] == 2 * (i + 1)); /* channel 0: expand1 */
    CHECK(arena[32 + 2 * i + 1] == box[i]);  /* channel 1: expand3 */
  }
  CHECK(st.layer_cycles[0] > 0);
  if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
