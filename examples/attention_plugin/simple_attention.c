/* The plugin around simple_attention_kernel.c: its description and the one exported entry point.
 * Built as libped_plugin_simple.so, it registers the variant "simple":
 *   verify --plugin libped_plugin_simple.so --ops sdpa --variants simple
 * The deliberately wrong builds of the kernel set PED_EXAMPLE_NAME to their own variant name. */
#include <pedestrian/attention_plugin.h>

#include "simple_attention_kernel.h"

#ifndef PED_EXAMPLE_NAME
#define PED_EXAMPLE_NAME "simple"
#endif

static const PedAttentionPlugin plugin = {
    PED_ATTENTION_PLUGIN_ABI_VERSION,
    sizeof(PedAttentionPlugin),
    PED_EXAMPLE_NAME,
    "one query row at a time, double accumulation, any strides, every mask kind, 16-bit dtypes too",
    PED_DTYPE_FLOAT32 | PED_DTYPE_FLOAT64 | PED_DTYPE_BFLOAT16 | PED_DTYPE_FLOAT16,
    (1u << PED_MASK_NONE) | (1u << PED_MASK_CAUSAL) | (1u << PED_MASK_SLIDING_WINDOW) |
        (1u << PED_MASK_EXPLICIT_BLOCKS) | (1u << PED_MASK_ELEMENTS),
    0, /* features: none beyond version 1 */
    simple_attention_forward,
    simple_attention_backward,
};

__attribute__((visibility("default"))) const PedAttentionPlugin* pedestrian_attention_plugin(uint32_t host_abi_version) {
  (void)host_abi_version; /* the harness refuses a version it does not speak */
  return &plugin;
}
