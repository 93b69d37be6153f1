/* The plugin around simple_attention_kernel.c: its description and the one exported entry point.
 * Built as libped_plugin_simple.so, it registers the variant "simple", a version-2 plugin that
 * declares every feature of version 2:
 *   verify --plugin libped_plugin_simple.so --ops sdpa --variants simple
 * To a harness that speaks only version 1 it describes itself as version 1 without features (the
 * kernel then reads only the version-1 fields). Built against the version-1 header (abi_v1/, the
 * target ped_plugin_simple_v1) it is a version-1 plugin. The deliberately wrong builds of the
 * kernel set PED_EXAMPLE_NAME to their own variant name. */
#include <pedestrian/attention_plugin.h>

#include "simple_attention_kernel.h"

#ifndef PED_EXAMPLE_NAME
#define PED_EXAMPLE_NAME "simple"
#endif

#define DESCRIPTION "one query row at a time, double accumulation, any strides, every mask kind, 16-bit dtypes too"
#define DTYPES (PED_DTYPE_FLOAT32 | PED_DTYPE_FLOAT64 | PED_DTYPE_BFLOAT16 | PED_DTYPE_FLOAT16)
#define MASK_KINDS                                                                                           \
  ((1u << PED_MASK_NONE) | (1u << PED_MASK_CAUSAL) | (1u << PED_MASK_SLIDING_WINDOW) |                       \
   (1u << PED_MASK_EXPLICIT_BLOCKS) | (1u << PED_MASK_ELEMENTS))

/* As a version-1 plugin: no features. */
static const PedAttentionPlugin plugin_v1 = {
    1u,
    sizeof(PedAttentionPlugin),
    PED_EXAMPLE_NAME,
    DESCRIPTION,
    DTYPES,
    MASK_KINDS,
    0, /* features: none in version 1 */
    simple_attention_forward,
    simple_attention_backward,
};

#if PED_ATTENTION_PLUGIN_ABI_VERSION >= 2
static const PedAttentionPlugin plugin = {
    PED_ATTENTION_PLUGIN_ABI_VERSION,
    sizeof(PedAttentionPlugin),
    PED_EXAMPLE_NAME,
    DESCRIPTION "; grouped-query heads, ALiBi, soft-cap, lengths, dropout, sinks",
    DTYPES,
    MASK_KINDS,
    PED_FEATURE_GROUPED_QUERY_HEADS | PED_FEATURE_VARIABLE_LENGTH | PED_FEATURE_DROPOUT | PED_FEATURE_ALIBI |
        PED_FEATURE_SOFTCAP | PED_FEATURE_SINKS,
    simple_attention_forward,
    simple_attention_backward,
};
#endif

__attribute__((visibility("default"))) const PedAttentionPlugin* pedestrian_attention_plugin(uint32_t host_abi_version) {
#if PED_ATTENTION_PLUGIN_ABI_VERSION >= 2
  if (host_abi_version >= 2) return &plugin;
#endif
  (void)host_abi_version;
  return &plugin_v1;
}
