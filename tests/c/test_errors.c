/* test_errors.c - bad programs return error codes, never abort. */
#include "zsq_test_util.h"

#include "zsq_config_select.h"

static zsq_layer_t L;
static int8_t arena[1 << 16];
static int8_t w[64];
static int32_t p[64];

static zsq_rt_program_t make(void) {
  zsq_rt_program_t prog;
  layer_init(&L, ZSQ_KIND_CONV, 4, 8, 8);
  conv_init(&L.conv[0], 4, 4, 1, 1, 0, 1, 0, 0);
  L.conv_h = 8; L.conv_w = 8;
  L.out_c = 4; L.out_h = 8; L.out_w = 8; L.out_off = 256;
  params_identity(p, 4, 0);
  prog.layers = &L; prog.n_layers = 1; prog.weights = w; prog.weights_bytes = sizeof w;
  prog.params = p; prog.params_words = 12; prog.arena_bytes = 512;
  return prog;
}

int main(void) {
  char err[256];
  zsq_rt_program_t prog = make();
  int rc = zsq_rt_run(&prog, arena, NULL, err, sizeof err);
  CHECK(rc == 0);

  /* a tile larger than the input buffer: a big image, one tile */
  prog = make();
  L.in_h = L.in_w = L.conv_h = L.conv_w = L.out_h = L.out_w = 120;
  L.in_c = L.conv[0].ic = 8;
  L.out_off = 8 * 120 * 120;
  prog.weights_bytes = 64;
  prog.arena_bytes = sizeof arena > (size_t)(12 * 120 * 120) ? sizeof arena : 0;
  L.th = L.tw = 120;
  L.tic = 8;
  L.toc = 1;
  if ((long)120 * 120 * 8 > ZSQ_IN_BUF_BYTES) {
    static int8_t big[12 * 120 * 120];
    prog.arena_bytes = sizeof big;
    rc = zsq_rt_run(&prog, big, NULL, err, sizeof err);
    CHECK(rc == ZSQ_ERR_IN_BUF || rc == ZSQ_ERR_ACC_BUF || rc == ZSQ_ERR_OUT_BUF);
    CHECK(strstr(err, "buffer") != NULL);
  }

  prog = make();
  L.magic = 0;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_ERR_BAD_MAGIC);

  prog = make();
  L.kind = 9;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_ERR_BAD_KIND);

  prog = make();
  prog.arena_bytes = 100;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARENA);

  prog = make();
  prog.weights_bytes = 3;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_BLOB);

  prog = make();
  p[2] = 0; /* shift 0 */
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_ERR_BAD_REQUANT);

  prog = make();
  L.th = 0;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_ERR_BAD_TILE);

  prog = make();
  L.conv_h = 7;
  CHECK(zsq_rt_run(&prog, arena, NULL, err, sizeof err) == ZSQ_ERR_BAD_SHAPE);

  CHECK(zsq_rt_run(NULL, arena, NULL, err, sizeof err) == ZSQ_RT_ERR_ARG);
  CHECK(strcmp(zsq_rt_strerror(12345), "unknown error") == 0);
  CHECK(strcmp(zsq_rt_backend(), "csim") == 0);
  if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
