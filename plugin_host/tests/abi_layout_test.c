/* The attention plugin ABI header compiles as plain C99, and the version-1 layout of its structs
 * is what it was when version 1 was published (LP64: 8-byte pointers and int64_t), with version 2's
 * fields after it. A field moved, resized or inserted breaks every plugin of that version, and
 * fails here. */
#include <pedestrian/attention_plugin.h>
#include <stddef.h>
#include <stdio.h>

static int failures = 0;

static void expect(const char* what, size_t actual, size_t expected) {
  if (actual != expected) {
    fprintf(stderr, "%s = %lu, expected %lu\n", what, (unsigned long)actual, (unsigned long)expected);
    ++failures;
  }
}

#define OFFSET(type, field, expected) expect("offsetof(" #type ", " #field ")", offsetof(type, field), expected)

int main(void) {
  if (sizeof(void*) != 8 || sizeof(int64_t) != 8) {
    fprintf(stderr, "not an LP64 platform: the expected offsets below do not apply\n");
    return 1;
  }
  expect("PED_ATTENTION_PLUGIN_ABI_VERSION", PED_ATTENTION_PLUGIN_ABI_VERSION, 2);
  OFFSET(PedAttentionMask, struct_size, 0);
  OFFSET(PedAttentionMask, kind, 4);
  OFFSET(PedAttentionMask, window_left, 8);
  OFFSET(PedAttentionMask, window_right, 16);
  OFFSET(PedAttentionMask, block_q, 24);
  OFFSET(PedAttentionMask, block_k, 32);
  OFFSET(PedAttentionMask, block_rows, 40);
  OFFSET(PedAttentionMask, block_cols, 48);
  OFFSET(PedAttentionMask, blocks, 56);
  OFFSET(PedAttentionMask, elements, 64);
  expect("sizeof(PedAttentionMask)", sizeof(PedAttentionMask), 72);
  OFFSET(PedAttentionForwardArgs, struct_size, 0);
  OFFSET(PedAttentionForwardArgs, threads, 4);
  OFFSET(PedAttentionForwardArgs, scale, 8);
  OFFSET(PedAttentionForwardArgs, q, 16);
  OFFSET(PedAttentionForwardArgs, k, 24);
  OFFSET(PedAttentionForwardArgs, v, 32);
  OFFSET(PedAttentionForwardArgs, mask, 40);
  OFFSET(PedAttentionForwardArgs, out, 48);
  OFFSET(PedAttentionForwardArgs, lse, 56);
  expect("PED_ATTENTION_FORWARD_ARGS_V1_SIZE", PED_ATTENTION_FORWARD_ARGS_V1_SIZE, 64);
  /* version 2 */
  OFFSET(PedAttentionForwardArgs, alibi_slopes, 64);
  OFFSET(PedAttentionForwardArgs, softcap, 72);
  OFFSET(PedAttentionForwardArgs, dropout_p, 80);
  OFFSET(PedAttentionForwardArgs, dropout_seed, 88);
  OFFSET(PedAttentionForwardArgs, sinks, 96);
  OFFSET(PedAttentionForwardArgs, seqlens_q, 104);
  OFFSET(PedAttentionForwardArgs, seqlens_k, 112);
  expect("PED_ATTENTION_FORWARD_ARGS_V2_SIZE", PED_ATTENTION_FORWARD_ARGS_V2_SIZE, 120);
  expect("sizeof(PedAttentionForwardArgs)", sizeof(PedAttentionForwardArgs), 120);
  OFFSET(PedAttentionBackwardArgs, struct_size, 0);
  OFFSET(PedAttentionBackwardArgs, threads, 4);
  OFFSET(PedAttentionBackwardArgs, scale, 8);
  OFFSET(PedAttentionBackwardArgs, q, 16);
  OFFSET(PedAttentionBackwardArgs, k, 24);
  OFFSET(PedAttentionBackwardArgs, v, 32);
  OFFSET(PedAttentionBackwardArgs, mask, 40);
  OFFSET(PedAttentionBackwardArgs, out, 48);
  OFFSET(PedAttentionBackwardArgs, lse, 56);
  OFFSET(PedAttentionBackwardArgs, dout, 64);
  OFFSET(PedAttentionBackwardArgs, dq, 72);
  OFFSET(PedAttentionBackwardArgs, dk, 80);
  OFFSET(PedAttentionBackwardArgs, dv, 88);
  expect("PED_ATTENTION_BACKWARD_ARGS_V1_SIZE", PED_ATTENTION_BACKWARD_ARGS_V1_SIZE, 96);
  /* version 2 */
  OFFSET(PedAttentionBackwardArgs, alibi_slopes, 96);
  OFFSET(PedAttentionBackwardArgs, softcap, 104);
  OFFSET(PedAttentionBackwardArgs, dropout_p, 112);
  OFFSET(PedAttentionBackwardArgs, dropout_seed, 120);
  OFFSET(PedAttentionBackwardArgs, sinks, 128);
  OFFSET(PedAttentionBackwardArgs, seqlens_q, 136);
  OFFSET(PedAttentionBackwardArgs, seqlens_k, 144);
  OFFSET(PedAttentionBackwardArgs, dsinks, 152);
  expect("PED_ATTENTION_BACKWARD_ARGS_V2_SIZE", PED_ATTENTION_BACKWARD_ARGS_V2_SIZE, 160);
  expect("sizeof(PedAttentionBackwardArgs)", sizeof(PedAttentionBackwardArgs), 160);
  OFFSET(PedAttentionPlugin, abi_version, 0);
  OFFSET(PedAttentionPlugin, struct_size, 4);
  OFFSET(PedAttentionPlugin, name, 8);
  OFFSET(PedAttentionPlugin, description, 16);
  OFFSET(PedAttentionPlugin, dtypes, 24);
  OFFSET(PedAttentionPlugin, mask_kinds, 28);
  OFFSET(PedAttentionPlugin, features, 32);
  OFFSET(PedAttentionPlugin, forward, 40);
  OFFSET(PedAttentionPlugin, backward, 48);
  expect("sizeof(PedAttentionPlugin)", sizeof(PedAttentionPlugin), 56);
  expect("PED_MASK_ELEMENTS", PED_MASK_ELEMENTS, 4);
  expect("PED_DTYPE_FLOAT64", PED_DTYPE_FLOAT64, 2);
  expect("PED_DTYPE_BFLOAT16", PED_DTYPE_BFLOAT16, 4);
  expect("PED_DTYPE_FLOAT16", PED_DTYPE_FLOAT16, 8);
  expect("PED_FEATURE_GROUPED_QUERY_HEADS", (size_t)PED_FEATURE_GROUPED_QUERY_HEADS, 1);
  expect("PED_FEATURE_ADDITIVE_BIAS", (size_t)PED_FEATURE_ADDITIVE_BIAS, 2);
  expect("PED_FEATURE_VARIABLE_LENGTH", (size_t)PED_FEATURE_VARIABLE_LENGTH, 4);
  expect("PED_FEATURE_DROPOUT", (size_t)PED_FEATURE_DROPOUT, 8);
  expect("PED_FEATURE_ALIBI", (size_t)PED_FEATURE_ALIBI, 16);
  expect("PED_FEATURE_SOFTCAP", (size_t)PED_FEATURE_SOFTCAP, 32);
  expect("PED_FEATURE_SINKS", (size_t)PED_FEATURE_SINKS, 64);
  if (failures == 0) printf("attention plugin ABI layout: version 1 as published, version 2 after it\n");
  return failures == 0 ? 0 : 1;
}
