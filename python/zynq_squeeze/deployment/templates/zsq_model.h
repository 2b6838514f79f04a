/*
 * zsq_model.h - run a zynq-squeeze model bundle: C99, no Python, no TVM runtime.
 *
 * A bundle (zynq-squeeze deploy) has one model file (model.zsqm: a header with magic,
 * version, size, model id and CRC-32, then named sections: metadata, the CPU operators'
 * constants, each offloaded function's instructions and weights) and an executable or
 * library compiled for exactly that model: the generated executor calls TVM's compiled
 * CPU operators and the offloaded functions in order over one static memory plan.
 *
 *   zsq_model_t *m;
 *   char err[256];
 *   if (zsq_model_open("model.zsqm", &m, err, sizeof err) != 0) { puts(err); return 1; }
 *   const float *in[1] = {image};  float *out[1] = {scores};
 *   zsq_model_run(m, in, out, &stats, err, sizeof err);
 *   zsq_model_close(m);
 *
 * Inputs and outputs are float32, C-contiguous, of the shapes zsq_model_input/_output
 * report. Buffers are static: one model open per process (a second open fails with
 * ZSQ_MODEL_ERR_BUSY, also when two threads open at once). The calls take one
 * process-wide lock, so runs from several threads take turns (a run is not reentrant:
 * do not call the API from inside it, e.g. from a signal handler). Nothing here aborts
 * or allocates per run: every failure is a negative code and a message in err.
 */
#ifndef ZSQ_MODEL_H
#define ZSQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZSQ_MODEL_OK 0
/* A failing step (a CPU operator, or an offloaded function with the accelerator runtime's
 * ZSQ_RT_ERR_* / engine code in its message) returns ZSQ_MODEL_ERR_STEP; err names it. */
#define ZSQ_MODEL_ERR_ARG -200      /* null pointer, bad index */
#define ZSQ_MODEL_ERR_FILE -201     /* cannot open / read the model file */
#define ZSQ_MODEL_ERR_FORMAT -202   /* bad magic, version, size, section table or CRC-32 */
#define ZSQ_MODEL_ERR_MISMATCH -203 /* the file was made for another executor (model id) */
#define ZSQ_MODEL_ERR_BUSY -204     /* a model is already open in this process */
#define ZSQ_MODEL_ERR_STEP -205     /* a CPU operator or offloaded function failed (err names it) */
#define ZSQ_MODEL_ERR_NOMEM -206    /* the file does not fit in memory */

#define ZSQ_MODEL_MAX_NDIM 6

typedef struct zsq_model zsq_model_t;

typedef struct zsq_model_io {
  const char *name;                    /* the model's input / output name */
  int ndim;
  int64_t shape[ZSQ_MODEL_MAX_NDIM];   /* float32, C-contiguous */
  int64_t elements;
} zsq_model_io_t;

typedef struct zsq_model_stats {
  double total_ms;       /* the whole run, wall clock */
  double accel_ms;       /* inside the offloaded functions (quantize, accelerator, dequantize) */
  int64_t accel_cycles;  /* accelerator cycles (PL clock), summed over offloaded calls */
} zsq_model_stats_t;

int zsq_model_open(const char *path, zsq_model_t **model, char *err, size_t errlen);
int zsq_model_num_inputs(const zsq_model_t *model);
int zsq_model_num_outputs(const zsq_model_t *model);
const zsq_model_io_t *zsq_model_input(const zsq_model_t *model, int index);   /* NULL if bad */
const zsq_model_io_t *zsq_model_output(const zsq_model_t *model, int index);
/* inputs[i] holds zsq_model_input(m, i)->elements floats; outputs likewise. stats may be NULL. */
int zsq_model_run(zsq_model_t *model, const float *const *inputs, float *const *outputs,
                  zsq_model_stats_t *stats, char *err, size_t errlen);
/* Close the model. The file's memory stays allocated until the process ends when an
 * offloaded function has fetched its program from it (the glue keeps those pointers):
 * opening the same model file again reuses it. NULL is fine. */
void zsq_model_close(zsq_model_t *model);
const char *zsq_model_strerror(int code);   /* never NULL */

/* The section `name` of the open model file and its size in *bytes (if bytes != NULL), or
 * NULL when no model is open or the file has no such section. The glue of the offloaded
 * functions fetches "<symbol>.insn" and "<symbol>.wgt" through it. */
const void *zsq_model_blob(const char *name, uint64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_MODEL_H */
