/*
 * backends/csim.c - simulation backend: runs the program on the engine's top function
 * (src/zsq_engine.cpp compiled by the host compiler), on the caller's arena in place.
 */
#include "zsq_engine.h"
#include "zsq_runtime.h"

#include <string.h>

const char *zsq_rt_backend(void) { return "csim"; }

int zsq_rt_backend_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
                       size_t errlen) {
  static const int8_t empty_w[1] = {0};
  static const int32_t empty_p[1] = {0};
  static zsq_layer_t empty_l[1];
  (void)err;
  (void)errlen;
  if (p->n_layers == 0) {
    if (stats) memset(stats, 0, sizeof(*stats));
    return ZSQ_OK;
  }
  return zsq_engine(p->layers ? p->layers : empty_l, p->n_layers, arena,
                    p->weights ? p->weights : empty_w, p->params ? p->params : empty_p, stats);
}
