/*
 * zsq_engine.h - C/C++ declaration of the accelerator top function.
 *
 * zsq_engine executes a program of n_layers descriptors on the activation arena `act`,
 * reading packed int8 weights and int32 parameters; it returns ZSQ_OK (0) or a negative
 * ZSQ_ERR_* code (see zsq_types.h) and never aborts. All descriptors are validated
 * before any layer executes. `stats` (may be NULL) receives modeled cycles per layer.
 * The simulation build keeps its tile buffers in static storage: not reentrant.
 */
#ifndef ZSQ_ENGINE_H
#define ZSQ_ENGINE_H

#include "zsq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

int zsq_engine(const zsq_layer_t *prog, int n_layers, int8_t *act, const int8_t *weights,
               const int32_t *params, zsq_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif /* ZSQ_ENGINE_H */
