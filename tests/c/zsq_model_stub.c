/*
 * zsq_model_stub.c - a stand-in for a bundle's libzsq_model.so, implementing zsq_model.h
 * (python/zynq_squeeze/deployment/templates/) so the Python wrapper zsq_model.py can be tested
 * without a compiled model (tests/test_deploy_boot.py builds it with gcc -shared).
 *
 * The "model": input "x" of shape 1x2x3; outputs "y" = 2 * x (1x2x3) and "sum" = sum of x
 * (shape 1). The model file must exist and start with "ZSQM" (else ZSQ_MODEL_ERR_FILE /
 * ZSQ_MODEL_ERR_FORMAT). A NaN in x[0] makes the run fail with ZSQ_MODEL_ERR_STEP, as a
 * failing offloaded function would. Like the real library: one model open per process
 * (ZSQ_MODEL_ERR_BUSY), static buffers, nothing aborts. ZSQ_STUB_CLOSES in the
 * environment names a file that counts the zsq_model_close calls on real models.
 */
#include "zsq_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zsq_model {
  int open;
  int64_t runs;
};

static struct zsq_model g_model;
static const zsq_model_io_t g_in[1] = {{"x", 3, {1, 2, 3}, 6}};
static const zsq_model_io_t g_out[2] = {{"y", 3, {1, 2, 3}, 6}, {"sum", 1, {1}, 1}};

static int fail(char *err, size_t errlen, int code, const char *what, const char *detail) {
  if (err && errlen) snprintf(err, errlen, "%s: %s%s%s", zsq_model_strerror(code), what,
                              detail ? ": " : "", detail ? detail : "");
  return code;
}

const char *zsq_model_strerror(int code) {
  switch (code) {
    case ZSQ_MODEL_OK: return "ok";
    case ZSQ_MODEL_ERR_ARG: return "bad argument";
    case ZSQ_MODEL_ERR_FILE: return "cannot read the model file";
    case ZSQ_MODEL_ERR_FORMAT: return "not a model file";
    case ZSQ_MODEL_ERR_MISMATCH: return "model file of another executor";
    case ZSQ_MODEL_ERR_BUSY: return "a model is already open in this process";
    case ZSQ_MODEL_ERR_STEP: return "a step of the model failed";
    case ZSQ_MODEL_ERR_NOMEM: return "out of memory";
    default: return "unknown error";
  }
}

int zsq_model_open(const char *path, zsq_model_t **model, char *err, size_t errlen) {
  char magic[4];
  FILE *f;
  size_t n;
  if (!path || !model) return fail(err, errlen, ZSQ_MODEL_ERR_ARG, "null path or model", NULL);
  *model = NULL;
  if (g_model.open) return fail(err, errlen, ZSQ_MODEL_ERR_BUSY, path, NULL);
  f = fopen(path, "rb");
  if (!f) return fail(err, errlen, ZSQ_MODEL_ERR_FILE, path, strerror(errno));
  n = fread(magic, 1, sizeof magic, f);
  fclose(f);
  if (n != sizeof magic || memcmp(magic, "ZSQM", 4) != 0)
    return fail(err, errlen, ZSQ_MODEL_ERR_FORMAT, path, "bad magic");
  g_model.open = 1;
  g_model.runs = 0;
  *model = &g_model;
  return ZSQ_MODEL_OK;
}

int zsq_model_num_inputs(const zsq_model_t *model) { return model ? 1 : ZSQ_MODEL_ERR_ARG; }
int zsq_model_num_outputs(const zsq_model_t *model) { return model ? 2 : ZSQ_MODEL_ERR_ARG; }

const zsq_model_io_t *zsq_model_input(const zsq_model_t *model, int index) {
  return (model && index == 0) ? &g_in[0] : NULL;
}

const zsq_model_io_t *zsq_model_output(const zsq_model_t *model, int index) {
  return (model && index >= 0 && index < 2) ? &g_out[index] : NULL;
}

int zsq_model_run(zsq_model_t *model, const float *const *inputs, float *const *outputs,
                  zsq_model_stats_t *stats, char *err, size_t errlen) {
  const float *x;
  float s = 0.0f;
  int i;
  if (!model || !model->open) return fail(err, errlen, ZSQ_MODEL_ERR_ARG, "model not open", NULL);
  if (!inputs || !outputs || !inputs[0] || !outputs[0] || !outputs[1])
    return fail(err, errlen, ZSQ_MODEL_ERR_ARG, "null input or output buffer", NULL);
  x = inputs[0];
  if (x[0] != x[0]) return fail(err, errlen, ZSQ_MODEL_ERR_STEP, "step 1 (stub_double)", "NaN input");
  for (i = 0; i < 6; i++) {
    outputs[0][i] = 2.0f * x[i];
    s += x[i];
  }
  outputs[1][0] = s;
  model->runs++;
  if (stats) {
    stats->total_ms = 1.5;
    stats->accel_ms = 0.25;
    stats->accel_cycles = 1000 + model->runs;
  }
  return ZSQ_MODEL_OK;
}

void zsq_model_close(zsq_model_t *model) {
  const char *log = getenv("ZSQ_STUB_CLOSES");
  if (!model) return;
  if (log) {
    FILE *f = fopen(log, "a");
    if (f) {
      fputs("close\n", f);
      fclose(f);
    }
  }
  model->open = 0;
}
