/*
 * zsq_plan.h - what the generated zsq_model.c (deployment/executor.py) defines for the fixed
 * executor code (zsq_model_api.c) and the shim (zsq_shim.c). Internal to a bundle.
 *
 * A plan is the model's static memory plan and its steps in order: every tensor is a
 * static DLTensor (in the arena, an input/output slot of the arena, or a constant whose
 * data pointer is set at open into the model file's section); every step calls one
 * function with TVM's packed C ABI (a CPU operator compiled by TVM or an offloaded
 * function of the glue) on DLTensor* arguments.
 */
#ifndef ZSQ_PLAN_H
#define ZSQ_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <tvm/ffi/c_api.h>

#include "zsq_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t (*zsq_plan_fn_t)(void *self, const TVMFFIAny *args, int32_t nargs,
                                 TVMFFIAny *ret);

typedef struct zsq_plan_step {
  const char *name;        /* the callee's symbol (C function __tvm_ffi_<name>) */
  zsq_plan_fn_t fn;
  const TVMFFIAny *args;   /* DLTensor* arguments, inputs then outputs */
  int32_t nargs;
  int offloaded;           /* 1: an offloaded function (timed as accelerator time) */
} zsq_plan_step_t;

typedef struct zsq_plan_const {
  const char *section;     /* "const.<k>" in the model file */
  DLTensor *tensor;        /* its data pointer is set at open */
  uint64_t bytes;          /* the size the section must have */
} zsq_plan_const_t;

typedef struct zsq_plan_blob {
  const char *section;     /* "<symbol>.insn" / "<symbol>.wgt" in the model file */
  uint64_t bytes;          /* the size the glue requires of it */
} zsq_plan_blob_t;

typedef struct zsq_plan_io {
  zsq_model_io_t io;       /* name, shape, elements (float32) */
  DLTensor *tensor;        /* where the executor reads the input / writes the output */
} zsq_plan_io_t;

typedef struct zsq_plan {
  uint64_t model_id;
  const char *model_name;
  const zsq_plan_step_t *steps;
  int n_steps;
  const zsq_plan_const_t *consts;
  int n_consts;
  const zsq_plan_io_t *inputs;
  int n_inputs;
  const zsq_plan_io_t *outputs;
  int n_outputs;
  const zsq_plan_blob_t *blobs;  /* sections the offloaded functions fetch (name and size
                                  * checked at open) */
  int n_blobs;
} zsq_plan_t;

extern const zsq_plan_t zsq_plan;

/* The TVMBackendAllocWorkspace pool (sized by the generator from the lowered TIR). */
extern uint8_t zsq_workspace_pool[];
extern const size_t zsq_workspace_bytes;

/* zsq_shim.c */
const char *zsq_shim_last_error(void);
void zsq_shim_reset(void);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_PLAN_H */
