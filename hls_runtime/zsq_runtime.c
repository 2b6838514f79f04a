/*
 * zsq_runtime.c - backend-independent part of the zynq-squeeze runtime: program
 * validation against blob/arena sizes, error strings, and zsq_rt_run.
 */
#include "zsq_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    int n = snprintf(err, errlen, "%s: ", zsq_rt_strerror(code));
    if (n < 0) n = 0;
    if ((size_t)n < errlen) {
      va_start(ap, fmt);
      vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

const char *zsq_rt_strerror(int code) {
  switch (code) {
    case ZSQ_OK: return "ok";
    case ZSQ_ERR_BAD_ARG: return "bad engine argument";
    case ZSQ_ERR_BAD_MAGIC: return "bad descriptor magic or version";
    case ZSQ_ERR_BAD_KIND: return "unknown layer kind";
    case ZSQ_ERR_BAD_SHAPE: return "inconsistent layer shape";
    case ZSQ_ERR_BAD_CONV: return "unsupported convolution geometry";
    case ZSQ_ERR_BAD_POOL: return "unsupported pooling geometry";
    case ZSQ_ERR_BAD_TILE: return "bad tile schedule";
    case ZSQ_ERR_IN_BUF: return "tile overflows the input buffer";
    case ZSQ_ERR_W_BUF: return "tile overflows the weight buffer";
    case ZSQ_ERR_ACC_BUF: return "tile overflows the accumulator buffer";
    case ZSQ_ERR_OUT_BUF: return "tile overflows the output buffer";
    case ZSQ_ERR_SQ_BUF: return "tile overflows the squeeze buffer";
    case ZSQ_ERR_PARAM_BUF: return "tile overflows the parameter buffer";
    case ZSQ_ERR_BAD_REQUANT: return "requantization shift outside [1, 62]";
    case ZSQ_RT_ERR_ARG: return "bad runtime argument";
    case ZSQ_RT_ERR_ARENA: return "tensor outside the activation arena";
    case ZSQ_RT_ERR_BLOB: return "weights or params outside their blob";
    case ZSQ_RT_ERR_DEVICE: return "accelerator device unavailable";
    case ZSQ_RT_ERR_NOMEM: return "DMA buffer too small";
    case ZSQ_RT_ERR_TIMEOUT: return "accelerator timeout";
    default: return "unknown error";
  }
}

int zsq_rt_validate(const zsq_rt_program_t *p, char *err, size_t errlen) {
  int32_t i, s;
  if (err && errlen) err[0] = 0;
  if (!p) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null program");
  if (p->n_layers < 0 || p->n_layers > ZSQ_MAX_LAYERS)
    return fail(err, errlen, ZSQ_RT_ERR_ARG, "n_layers %d outside [0, %d]", (int)p->n_layers,
                ZSQ_MAX_LAYERS);
  if (p->n_layers > 0 && (!p->layers || !p->weights || !p->params))
    return fail(err, errlen, ZSQ_RT_ERR_ARG, "null descriptor, weight or param pointer");
  for (i = 0; i < p->n_layers; i++) {
    const zsq_layer_t *L = &p->layers[i];
    int64_t in_end, out_end;
    int n_slots;
    if (L->magic != ZSQ_MAGIC || L->version != ZSQ_VERSION)
      return fail(err, errlen, ZSQ_ERR_BAD_MAGIC, "layer %d", (int)i);
    if (L->kind != ZSQ_KIND_CONV && L->kind != ZSQ_KIND_FIRE)
      return fail(err, errlen, ZSQ_ERR_BAD_KIND, "layer %d kind %d", (int)i, (int)L->kind);
    if (L->in_c < 1 || L->in_h < 1 || L->in_w < 1 || L->out_c < 1 || L->out_h < 1 ||
        L->out_w < 1 || L->in_off < 0 || L->out_off < 0)
      return fail(err, errlen, ZSQ_ERR_BAD_SHAPE, "layer %d", (int)i);
    in_end = (int64_t)L->in_off + (int64_t)L->in_c * L->in_h * L->in_w;
    out_end = (int64_t)L->out_off + (int64_t)L->out_c * L->out_h * L->out_w;
    if (in_end > (int64_t)p->arena_bytes || out_end > (int64_t)p->arena_bytes)
      return fail(err, errlen, ZSQ_RT_ERR_ARENA, "layer %d needs %lld bytes, arena has %llu",
                  (int)i, (long long)(in_end > out_end ? in_end : out_end),
                  (unsigned long long)p->arena_bytes);
    n_slots = L->kind == ZSQ_KIND_FIRE ? 3 : 1;
    for (s = 0; s < n_slots; s++) {
      const zsq_conv_desc_t *c = &L->conv[s];
      int64_t w_end, p_end;
      if (c->oc < 1 || c->ic < 1 || c->kh < 1 || c->kw < 1 || c->w_off < 0 || c->p_off < 0)
        return fail(err, errlen, ZSQ_ERR_BAD_CONV, "layer %d conv %d", (int)i, (int)s);
      w_end = (int64_t)c->w_off + (int64_t)c->oc * c->ic * c->kh * c->kw;
      p_end = (int64_t)c->p_off + 3 * (int64_t)c->oc;
      if (w_end > (int64_t)p->weights_bytes || p_end > (int64_t)p->params_words)
        return fail(err, errlen, ZSQ_RT_ERR_BLOB, "layer %d conv %d", (int)i, (int)s);
    }
  }
  return ZSQ_OK;
}

int zsq_rt_run(const zsq_rt_program_t *p, int8_t *arena, zsq_stats_t *stats, char *err,
               size_t errlen) {
  int rc = zsq_rt_validate(p, err, errlen);
  if (rc != ZSQ_OK) return rc;
  if (!arena && p->n_layers > 0) return fail(err, errlen, ZSQ_RT_ERR_ARG, "null arena");
  rc = zsq_rt_backend_run(p, arena, stats, err, errlen);
  if (rc != ZSQ_OK && err && errlen && err[0] == 0)
    fail(err, errlen, rc, "%s backend", zsq_rt_backend());
  return rc;
}
