/*
 * zsq_shim.c - the few TVM runtime symbols that TVM's compiled CPU operators (an object
 * from tvm.tirx.build, TVM 0.27, llvm) and the zynq-squeeze glue need, without any TVM
 * runtime. Single-threaded (the executor runs one step at a time), no heap.
 *
 *   TVMFFIErrorSetRaisedFromCStr(Parts) : keep the last error's text (zsq_shim_last_error)
 *   TVMFFIHandleInitOnce                : the glue's one-time init of each offloaded function
 *   TVMBackendAllocWorkspace / Free     : LIFO bump allocator over the executor's static
 *                                         pool (zsq_workspace_pool, sized from the TIR)
 *   TVMBackendParallelLaunch / Barrier  : run the parallel lambda as one task on this thread
 *   __TVMBackend*                       : the function-pointer slots the LLVM codegen calls
 *                                         through (weak in the object; TVM's module loader
 *                                         fills them, here the linker does)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tvm/ffi/c_api.h>

#include "zsq_plan.h"

static char zsq_shim_err[1024];

const char *zsq_shim_last_error(void) { return zsq_shim_err; }

void TVMFFIErrorSetRaisedFromCStr(const char *kind, const char *message) {
  snprintf(zsq_shim_err, sizeof zsq_shim_err, "%s: %s", kind ? kind : "Error",
           message ? message : "");
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t n) {
  size_t k = (size_t)snprintf(zsq_shim_err, sizeof zsq_shim_err, "%s: ", kind ? kind : "Error");
  for (int32_t i = 0; parts != NULL && i < n && k < sizeof zsq_shim_err; ++i)
    k += (size_t)snprintf(zsq_shim_err + k, sizeof zsq_shim_err - k, "%s", parts[i] ? parts[i] : "");
}

int TVMFFIHandleInitOnce(void **handle_addr, int (*init_func)(void **result)) {
  if (*handle_addr != NULL) return 0;
  void *h = NULL;
  if (init_func(&h) != 0) return -1; /* not cached: the next call tries again */
  *handle_addr = h;
  return 0;
}

/* ---- workspace: TIR frees its allocations in reverse order (scoped) ---- */
#define ZSQ_WS_DEPTH 64
static size_t zsq_ws_top;
static size_t zsq_ws_stack[ZSQ_WS_DEPTH];
static int zsq_ws_depth;

void zsq_shim_reset(void) {
  /* a step that failed may have left allocations behind */
  zsq_ws_top = 0;
  zsq_ws_depth = 0;
  zsq_shim_err[0] = '\0';
}

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  (void)device_type; (void)device_id; (void)dtype_code_hint; (void)dtype_bits_hint;
  uint64_t size = (nbytes + 63) & ~(uint64_t)63; /* keep every block 64-byte aligned */
  if (zsq_ws_depth == ZSQ_WS_DEPTH || nbytes > UINT64_MAX - 63 ||
      size > (uint64_t)(zsq_workspace_bytes - zsq_ws_top)) {
    snprintf(zsq_shim_err, sizeof zsq_shim_err,
             "MemoryError: workspace pool of %lu bytes exhausted (asked %llu at depth %d)",
             (unsigned long)zsq_workspace_bytes, (unsigned long long)nbytes, zsq_ws_depth);
    return NULL; /* the TIR checks for NULL and returns -1 */
  }
  zsq_ws_stack[zsq_ws_depth++] = zsq_ws_top;
  void *p = zsq_workspace_pool + zsq_ws_top;
  zsq_ws_top += (size_t)size;
  return p;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type; (void)device_id;
  if (zsq_ws_depth == 0 || (uint8_t *)ptr != zsq_workspace_pool + zsq_ws_stack[zsq_ws_depth - 1]) {
    snprintf(zsq_shim_err, sizeof zsq_shim_err, "InternalError: workspace freed out of order");
    return -1;
  }
  zsq_ws_top = zsq_ws_stack[--zsq_ws_depth];
  return 0;
}

typedef struct { void *sync_handle; int32_t num_task; } TVMParallelGroupEnv;
typedef int (*FTVMParallelLambda)(int task_id, TVMParallelGroupEnv *penv, void *cdata);

int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void *cdata, int num_task) {
  (void)num_task; /* the TIR splits its work by penv->num_task: one task does it all */
  TVMParallelGroupEnv env = {NULL, 1};
  return flambda(0, &env, cdata);
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv *penv) {
  (void)task_id; (void)penv;
  return 0;
}

void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = TVMBackendAllocWorkspace;
int (*__TVMBackendFreeWorkspace)(int, int, void *) = TVMBackendFreeWorkspace;
int (*__TVMBackendParallelLaunch)(FTVMParallelLambda, void *, int) = TVMBackendParallelLaunch;
int (*__TVMBackendParallelBarrier)(int, TVMParallelGroupEnv *) = TVMBackendParallelBarrier;
