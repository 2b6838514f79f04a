/* zsq_test_util.h - helpers of the C tests: descriptor construction and checks. */
#ifndef ZSQ_TEST_UTIL_H
#define ZSQ_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#include "zsq_runtime.h"

static int g_failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                      \
    }                                                                    \
  } while (0)

static void layer_init(zsq_layer_t *L, int kind, int c, int h, int w) {
  memset(L, 0, sizeof(*L));
  L->magic = ZSQ_MAGIC;
  L->version = ZSQ_VERSION;
  L->kind = kind;
  L->in_c = c;
  L->in_h = h;
  L->in_w = w;
  L->double_buffer = 1;
  L->toc = 64;
  L->tic = 64;
  L->th = 64;
  L->tw = 64;
}

static void conv_init(zsq_conv_desc_t *cv, int oc, int ic, int k, int stride, int pad, int relu,
                      int w_off, int p_off) {
  cv->oc = oc;
  cv->ic = ic;
  cv->kh = cv->kw = k;
  cv->sh = cv->sw = stride;
  cv->pt = cv->pl = cv->pb = cv->pr = pad;
  cv->relu = relu;
  cv->w_off = w_off;
  cv->p_off = p_off;
}

/* identity requant: mult 2^30, shift 30 */
static void params_identity(int32_t *p, int n, int32_t bias) {
  int o;
  for (o = 0; o < n; o++) {
    p[3 * o] = bias;
    p[3 * o + 1] = 1 << 30;
    p[3 * o + 2] = 30;
  }
}

#endif
