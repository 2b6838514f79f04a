/*
 * zsq_model_api.c - the C API of zsq_model.h over the generated plan (zsq_model.c).
 *
 * Open reads and checks the model file (zsq_model_file.c), points the constants'
 * DLTensors into it and checks that every section the plan names is there with the
 * size it expects. Run copies the caller's inputs into their arena slots, calls the
 * plan's steps in order and copies the outputs out (the arena is 64-byte aligned, as
 * TVM's operators assume; the caller's buffers need not be). No allocation per run;
 * every failure is a negative code and a message in err. Open, run and close (and the
 * queries) take one process-wide lock: the model is a singleton over static buffers, so
 * calls from several threads take turns instead of racing on them.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zsq_model.h"
#include "zsq_model_file.h"
#include "zsq_plan.h"

/* Accelerator cycles the glue adds up over its runs (defined by the glue of a deployment
 * build; weak so that an executor without it links and reports -1). */
extern int64_t zsq_glue_cycles __attribute__((weak));

struct zsq_model {
  int is_open;
  zsq_mf_t file;
};

static struct zsq_model zsq_the_model;
/* The file an offloaded function fetched its program from: the glue keeps pointers into
 * it for the life of the process, so it is never freed and a later open must match it. */
static zsq_mf_t zsq_pinned;
static int zsq_blob_fetched;
/* Serializes every entry point that touches the model (not zsq_model_blob: the glue
 * calls it from inside a run, which holds the lock). */
static pthread_mutex_t zsq_api_lock = PTHREAD_MUTEX_INITIALIZER;

static int zsq_fail(int code, char *err, size_t errlen, const char *fmt, const char *a,
                    const char *b) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, fmt, a, b);
  return code;
}

static double zsq_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Point the constants into the file and check every section the plan uses. */
static int zsq_bind_sections(const zsq_mf_t *mf, const char *path, char *err, size_t errlen) {
  char msg[160];
  for (int i = 0; i < zsq_plan.n_consts; ++i) {
    const zsq_plan_const_t *c = &zsq_plan.consts[i];
    uint64_t bytes = 0;
    const void *data = zsq_mf_section(mf, c->section, &bytes);
    if (data == NULL)
      return zsq_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, "%s: no section '%s'", path, c->section);
    if (bytes != c->bytes) {
      snprintf(msg, sizeof msg, "section '%s' has %llu bytes, the executor expects %llu",
               c->section, (unsigned long long)bytes, (unsigned long long)c->bytes);
      return zsq_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, "%s: %s", path, msg);
    }
    c->tensor->data = (void *)data; /* read only: TVM's operators never write constants */
  }
  for (int i = 0; i < zsq_plan.n_blobs; ++i) {
    const zsq_plan_blob_t *b = &zsq_plan.blobs[i];
    uint64_t bytes = 0;
    if (zsq_mf_section(mf, b->section, &bytes) == NULL)
      return zsq_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, "%s: no section '%s'", path,
                      b->section);
    /* the glue checks this too, but only on its first call: a file it rejects there
     * would already be pinned (see zsq_model_close) */
    if (bytes != b->bytes) {
      snprintf(msg, sizeof msg, "section '%s' has %llu bytes, the executor expects %llu",
               b->section, (unsigned long long)bytes, (unsigned long long)b->bytes);
      return zsq_fail(ZSQ_MODEL_ERR_FORMAT, err, errlen, "%s: %s", path, msg);
    }
  }
  return ZSQ_MODEL_OK;
}

static int zsq_open_locked(const char *path, zsq_model_t **model, char *err, size_t errlen) {
  if (zsq_the_model.is_open)
    return zsq_fail(ZSQ_MODEL_ERR_BUSY, err, errlen, "%s: %s", path,
                    "a model is already open in this process");
  zsq_mf_t mf;
  int rc = zsq_mf_open(path, zsq_plan.model_id, &mf, err, errlen);
  if (rc != ZSQ_MODEL_OK) return rc;
  if (zsq_pinned.data != NULL) {
    /* the offloaded functions hold the first file's programs: only that file can serve */
    int same = mf.bytes == zsq_pinned.bytes && memcmp(mf.data, zsq_pinned.data, mf.bytes) == 0;
    zsq_mf_close(&mf);
    if (!same)
      return zsq_fail(ZSQ_MODEL_ERR_MISMATCH, err, errlen, "%s: %s", path,
                      "differs from the model file opened earlier in this process, whose "
                      "programs the offloaded functions keep");
    mf = zsq_pinned;
  }
  rc = zsq_bind_sections(&mf, path, err, errlen);
  if (rc != ZSQ_MODEL_OK) {
    if (mf.data != zsq_pinned.data) zsq_mf_close(&mf);
    return rc;
  }
  zsq_the_model.file = mf;
  zsq_the_model.is_open = 1;
  *model = &zsq_the_model;
  return ZSQ_MODEL_OK;
}

int zsq_model_open(const char *path, zsq_model_t **model, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (path == NULL || model == NULL)
    return zsq_fail(ZSQ_MODEL_ERR_ARG, err, errlen, "%s%s", "zsq_model_open: ",
                    "path and model must not be NULL");
  *model = NULL;
  pthread_mutex_lock(&zsq_api_lock);
  const int rc = zsq_open_locked(path, model, err, errlen);
  pthread_mutex_unlock(&zsq_api_lock);
  return rc;
}

static int zsq_valid(const zsq_model_t *model) {
  return model == &zsq_the_model && zsq_the_model.is_open;
}

/* zsq_valid under the lock (the plan itself is constant) */
static int zsq_valid_now(const zsq_model_t *model) {
  pthread_mutex_lock(&zsq_api_lock);
  const int ok = zsq_valid(model);
  pthread_mutex_unlock(&zsq_api_lock);
  return ok;
}

int zsq_model_num_inputs(const zsq_model_t *model) {
  return zsq_valid_now(model) ? zsq_plan.n_inputs : ZSQ_MODEL_ERR_ARG;
}

int zsq_model_num_outputs(const zsq_model_t *model) {
  return zsq_valid_now(model) ? zsq_plan.n_outputs : ZSQ_MODEL_ERR_ARG;
}

const zsq_model_io_t *zsq_model_input(const zsq_model_t *model, int index) {
  if (index < 0 || index >= zsq_plan.n_inputs || !zsq_valid_now(model)) return NULL;
  return &zsq_plan.inputs[index].io;
}

const zsq_model_io_t *zsq_model_output(const zsq_model_t *model, int index) {
  if (index < 0 || index >= zsq_plan.n_outputs || !zsq_valid_now(model)) return NULL;
  return &zsq_plan.outputs[index].io;
}

static int zsq_run_locked(zsq_model_t *model, const float *const *inputs,
                          float *const *outputs, zsq_model_stats_t *stats, char *err,
                          size_t errlen) {
  char msg[64];
  if (!zsq_valid(model))
    return zsq_fail(ZSQ_MODEL_ERR_ARG, err, errlen, "%s%s", "zsq_model_run: ",
                    "the model is not open");
  for (int i = 0; i < zsq_plan.n_inputs; ++i)
    if (inputs == NULL || inputs[i] == NULL) {
      snprintf(msg, sizeof msg, "input %d is NULL", i);
      return zsq_fail(ZSQ_MODEL_ERR_ARG, err, errlen, "%s%s", "zsq_model_run: ", msg);
    }
  for (int i = 0; i < zsq_plan.n_outputs; ++i)
    if (outputs == NULL || outputs[i] == NULL) {
      snprintf(msg, sizeof msg, "output %d is NULL", i);
      return zsq_fail(ZSQ_MODEL_ERR_ARG, err, errlen, "%s%s", "zsq_model_run: ", msg);
    }
  const int64_t cycles0 = &zsq_glue_cycles != NULL ? zsq_glue_cycles : 0;
  const double t0 = zsq_now_ms();
  double accel = 0.0;
  for (int i = 0; i < zsq_plan.n_inputs; ++i)
    memcpy(zsq_plan.inputs[i].tensor->data, inputs[i],
           (size_t)zsq_plan.inputs[i].io.elements * sizeof(float));
  for (int s = 0; s < zsq_plan.n_steps; ++s) {
    const zsq_plan_step_t *st = &zsq_plan.steps[s];
    TVMFFIAny ret;
    memset(&ret, 0, sizeof ret); /* type_index 0: None */
    zsq_shim_reset();
    const double ta = st->offloaded ? zsq_now_ms() : 0.0;
    const int32_t rc = st->fn(NULL, st->args, st->nargs, &ret);
    if (st->offloaded) accel += zsq_now_ms() - ta;
    if (rc != 0) {
      const char *why = zsq_shim_last_error();
      if (err != NULL && errlen > 0)
        snprintf(err, errlen, "step %d of %d (%s%s) failed: %s", s + 1, zsq_plan.n_steps,
                 st->name, st->offloaded ? ", offloaded" : "",
                 why[0] ? why : "no message");
      return ZSQ_MODEL_ERR_STEP;
    }
  }
  for (int i = 0; i < zsq_plan.n_outputs; ++i)
    memcpy(outputs[i], zsq_plan.outputs[i].tensor->data,
           (size_t)zsq_plan.outputs[i].io.elements * sizeof(float));
  if (stats != NULL) {
    stats->total_ms = zsq_now_ms() - t0;
    stats->accel_ms = accel;
    stats->accel_cycles = &zsq_glue_cycles != NULL ? zsq_glue_cycles - cycles0 : -1;
  }
  return ZSQ_MODEL_OK;
}

int zsq_model_run(zsq_model_t *model, const float *const *inputs, float *const *outputs,
                  zsq_model_stats_t *stats, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) err[0] = '\0';
  pthread_mutex_lock(&zsq_api_lock);
  const int rc = zsq_run_locked(model, inputs, outputs, stats, err, errlen);
  pthread_mutex_unlock(&zsq_api_lock);
  return rc;
}

void zsq_model_close(zsq_model_t *model) {
  pthread_mutex_lock(&zsq_api_lock);
  if (zsq_valid(model)) {
    for (int i = 0; i < zsq_plan.n_consts; ++i) zsq_plan.consts[i].tensor->data = NULL;
    if (zsq_blob_fetched && zsq_pinned.data == NULL) zsq_pinned = zsq_the_model.file;
    if (zsq_the_model.file.data != zsq_pinned.data) zsq_mf_close(&zsq_the_model.file);
    memset(&zsq_the_model, 0, sizeof zsq_the_model);
  }
  pthread_mutex_unlock(&zsq_api_lock);
}

/* Called by the glue from inside zsq_model_run (which holds zsq_api_lock). */
const void *zsq_model_blob(const char *name, uint64_t *bytes) {
  if (!zsq_the_model.is_open) return NULL;
  const void *p = zsq_mf_section(&zsq_the_model.file, name, bytes);
  if (p != NULL) zsq_blob_fetched = 1;
  return p;
}

const char *zsq_model_strerror(int code) {
  switch (code) {
    case ZSQ_MODEL_OK: return "ok";
    case ZSQ_MODEL_ERR_ARG: return "invalid argument";
    case ZSQ_MODEL_ERR_FILE: return "cannot read the model file";
    case ZSQ_MODEL_ERR_FORMAT: return "malformed model file";
    case ZSQ_MODEL_ERR_MISMATCH: return "the model file belongs to another executor";
    case ZSQ_MODEL_ERR_BUSY: return "a model is already open";
    case ZSQ_MODEL_ERR_STEP: return "a step of the model failed";
    case ZSQ_MODEL_ERR_NOMEM: return "out of memory";
    default: return "unknown error";
  }
}
