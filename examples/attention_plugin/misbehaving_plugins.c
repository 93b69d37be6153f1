/* Plugins that misbehave at the boundary, one per build (the harness must report each clearly,
 * with exit status 1 or 2, and go on with the rest of its run):
 *   PED_EXAMPLE_RETURNS_ERROR   "returns_error": forward fails with code 7 and a message
 *   PED_EXAMPLE_WRITES_NAN      "writes_nan": forward correct except one NaN in out
 *   PED_EXAMPLE_CRASHES         "crashes": forward writes through a null pointer when Nq > 8
 *   PED_EXAMPLE_HANGS           "hangs": forward never returns when Nq > 8 (waits for a signal)
 *   PED_EXAMPLE_ABI_VERSION_3   "abi_version_three": describes itself as ABI version 3
 *   PED_EXAMPLE_V1_WITH_FEATURES "v1_with_features": version 1, yet declares PED_FEATURE_SINKS
 *   PED_EXAMPLE_UNKNOWN_FEATURE "unknown_feature": version 2, declares the reserved
 *                               PED_FEATURE_ADDITIVE_BIAS next to PED_FEATURE_SINKS
 *   PED_EXAMPLE_NO_ENTRY_POINT  exports a misspelled entry point and no pedestrian_attention_plugin
 *   PED_EXAMPLE_BFLOAT16_ONLY   "bfloat16_only": declares bfloat16 alone, without float32 or float64
 *   PED_EXAMPLE_CHECKS_ARGS_V1  "checks_args_v1": a correct version-1 plugin whose calls fail unless
 *                               struct_size is version 1's
 *   PED_EXAMPLE_CHECKS_ARGS_V2  "checks_args_v2": a correct version-2 plugin declaring grouped-query
 *                               heads only, whose calls fail unless struct_size is version 2's and
 *                               every other version-2 field is neutral (NULL, 0)
 * The arithmetic, where there is any, is simple_attention_kernel.c's. */
#ifdef PED_EXAMPLE_HANGS
#define _POSIX_C_SOURCE 200112L /* pause() of <unistd.h>, under C99 without extensions */
#include <unistd.h>
#endif
#include <math.h>
#include <pedestrian/attention_plugin.h>
#include <stdio.h>

#include "simple_attention_kernel.h"

#define EXPORT __attribute__((visibility("default")))

#if defined(PED_EXAMPLE_RETURNS_ERROR)
#define NAME "returns_error"
static int forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  (void)args;
  snprintf(error, capacity, "returns_error: this kernel refuses every call (an example of a plugin error)");
  return 7;
}
#elif defined(PED_EXAMPLE_WRITES_NAN)
#define NAME "writes_nan"
static int forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  const int status = simple_attention_forward(args, error, capacity);
  if (status == 0) { /* element (0, 0, 0, 0) of out */
    char* first = (char*)args->out->data + args->out->byte_offset;
    if (args->out->dtype.bits == 64) {
      *(double*)first = NAN;
    } else {
      *(float*)first = NAN;
    }
  }
  return status;
}
#elif defined(PED_EXAMPLE_CRASHES)
#define NAME "crashes"
static int* volatile nowhere = NULL; /* volatile: the compiler cannot see that it is null */
static int forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  if (args->q->shape[2] > 8) *nowhere = 1; /* SIGSEGV */
  return simple_attention_forward(args, error, capacity);
}
#elif defined(PED_EXAMPLE_HANGS)
#define NAME "hangs"
static int forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  if (args->q->shape[2] > 8) {
    for (;;) pause(); /* until a signal ends the process */
  }
  return simple_attention_forward(args, error, capacity);
}
#elif defined(PED_EXAMPLE_CHECKS_ARGS_V1) || defined(PED_EXAMPLE_CHECKS_ARGS_V2)
#ifdef PED_EXAMPLE_CHECKS_ARGS_V1
#define NAME "checks_args_v1"
#define FORWARD_SIZE PED_ATTENTION_FORWARD_ARGS_V1_SIZE
#define BACKWARD_SIZE PED_ATTENTION_BACKWARD_ARGS_V1_SIZE
#define NEUTRAL(args) 1 /* a version-1 plugin must not look beyond struct_size */
#else
#define NAME "checks_args_v2"
#define FORWARD_SIZE PED_ATTENTION_FORWARD_ARGS_V2_SIZE
#define BACKWARD_SIZE PED_ATTENTION_BACKWARD_ARGS_V2_SIZE
#define NEUTRAL(args)                                                                                        \
  ((args)->alibi_slopes == NULL && (args)->softcap == 0.0 && (args)->dropout_p == 0.0 &&                      \
   (args)->dropout_seed == 0 && (args)->sinks == NULL && (args)->seqlens_q == NULL && (args)->seqlens_k == NULL)
#endif
static int forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  if (args->struct_size != FORWARD_SIZE || !NEUTRAL(args)) {
    snprintf(error, capacity, NAME ": forward got struct_size %u, or a feature field it does not declare set",
             (unsigned)args->struct_size);
    return 3;
  }
  return simple_attention_forward(args, error, capacity);
}
static int backward(const PedAttentionBackwardArgs* args, char* error, size_t capacity) {
  if (args->struct_size != BACKWARD_SIZE || !NEUTRAL(args)) {
    snprintf(error, capacity, NAME ": backward got struct_size %u, or a feature field it does not declare set",
             (unsigned)args->struct_size);
    return 3;
  }
#ifdef PED_EXAMPLE_CHECKS_ARGS_V2
  if (args->dsinks != NULL) {
    snprintf(error, capacity, NAME ": backward got dsinks without declaring sinks");
    return 3;
  }
#endif
  return simple_attention_backward(args, error, capacity);
}
#define HAS_BACKWARD
#else
#define NAME "misbehaving"
#define forward simple_attention_forward
#endif
#ifndef HAS_BACKWARD
#define backward simple_attention_backward
#endif

#if defined(PED_EXAMPLE_ABI_VERSION_3)
#undef NAME
#define NAME "abi_version_three"
#define ABI_VERSION 3u
#define FEATURES 0
#elif defined(PED_EXAMPLE_V1_WITH_FEATURES)
#undef NAME
#define NAME "v1_with_features"
#define ABI_VERSION 1u
#define FEATURES PED_FEATURE_SINKS
#elif defined(PED_EXAMPLE_CHECKS_ARGS_V1)
#define ABI_VERSION 1u
#define FEATURES 0
#elif defined(PED_EXAMPLE_CHECKS_ARGS_V2)
#define ABI_VERSION 2u
#define FEATURES PED_FEATURE_GROUPED_QUERY_HEADS
#elif defined(PED_EXAMPLE_UNKNOWN_FEATURE)
#undef NAME
#define NAME "unknown_feature"
#define ABI_VERSION 2u
#define FEATURES (PED_FEATURE_SINKS | PED_FEATURE_ADDITIVE_BIAS)
#else
#define ABI_VERSION PED_ATTENTION_PLUGIN_ABI_VERSION
#define FEATURES 0
#endif

#ifdef PED_EXAMPLE_BFLOAT16_ONLY
#undef NAME
#define NAME "bfloat16_only"
#define DTYPES PED_DTYPE_BFLOAT16
#else
#define DTYPES (PED_DTYPE_FLOAT32 | PED_DTYPE_FLOAT64)
#endif

static const PedAttentionPlugin plugin = {
    ABI_VERSION,
    sizeof(PedAttentionPlugin),
    NAME,
    "an example of a misbehaving plugin",
    DTYPES,
    (1u << PED_MASK_NONE) | (1u << PED_MASK_CAUSAL),
    FEATURES,
    forward,
    backward,
};

#ifdef PED_EXAMPLE_NO_ENTRY_POINT
EXPORT const PedAttentionPlugin* pedestrian_attention_plugin_v1(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &plugin;
}
#else
EXPORT const PedAttentionPlugin* pedestrian_attention_plugin(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &plugin;
}
#endif
