/* Version 1 of the attention plugin ABI header exactly as published (only this note added), kept to
 * build a version-1 plugin (libped_plugin_simple_v1.so) that proves a harness speaking version 2 still
 * loads and runs version-1 plugins unchanged. Plugins build against include/pedestrian/attention_plugin.h. */
/* The attention plugin ABI of pedestrian: how an attention kernel built outside this project is
 * loaded by `verify --plugin LIB.so` and `bench --plugin LIB.so` and checked or timed next to the
 * built-in kernels. Plain C (C99), tensors as DLPack DLTensors (<dlpack/dlpack.h>, Debian
 * libdlpack-dev), no C++ types, no allocation across the boundary.
 *
 * A plugin is a shared library exporting one function, PED_ATTENTION_PLUGIN_ENTRY:
 *
 *   const PedAttentionPlugin* pedestrian_attention_plugin(uint32_t host_abi_version);
 *
 * that returns a pointer to a description valid until the library is unloaded (a static). The
 * harness calls it once, after dlopen, with the ABI version it speaks, and refuses the plugin when
 * its abi_version is not one the harness speaks (this harness: 1 only).
 *
 * Math (B batch, H heads, Nq query tokens, Nk key tokens, d head dim, s scale), per (b, h):
 *   forward:  S = s Q K^T + M (Nq x Nk), M_ij = 0 where key j is visible to query i, -inf where not,
 *             P = softmax_rows(S), O = P V, lse_i = log sum_j exp(S_ij)
 *   backward: dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(dO o O)), dQ = s dS K, dK = s dS^T Q
 * A query row that sees no key has O_i = 0, lse_i = -inf and contributes no gradient (never NaN).
 *
 * Tensors (every DLTensor the harness passes; version 1):
 *   q (B, H, Nq, d), k and v (B, H, Nk, d), out (B, H, Nq, d), dout (B, H, Nq, d),
 *   dq (B, H, Nq, d), dk and dv (B, H, Nk, d): one dtype per call, among those the plugin declares:
 *   float32, float64 (kDLFloat, 32 or 64 bits), bfloat16 (kDLBfloat, 16 bits) or float16 (kDLFloat,
 *   16 bits, IEEE 754 binary16);
 *   lse (B, H, Nq): always float64 (kDLFloat, 64 bits), whatever the dtype of the others.
 *   device kDLCPU; lanes 1; `strides` always set, in elements, every one >= 1; `byte_offset` may be
 *   non-zero (the first element is at (char*)data + byte_offset). By default the harness passes
 *   compact row-major tensors; in its strided mode (`verify --plugin-layouts contiguous,strided`) it passes
 *   transposed and padded views with a non-zero byte_offset, so a kernel must honour shape, strides
 *   and byte_offset as given. Outputs are filled with NaN before each call: a kernel must write
 *   every element of out and lse (forward) and of dq, dk, dv (backward, overwriting, not adding).
 *   Inputs must not be written. Nothing outside a tensor's elements may be written.
 *
 * Masks (PedAttentionMask): query i sits at key position p = i + (Nk - Nq) (bottom-right
 * alignment, as FlashAttention >= 2.1):
 *   PED_MASK_NONE             every key visible
 *   PED_MASK_CAUSAL           j <= p
 *   PED_MASK_SLIDING_WINDOW   p - window_left <= j <= p + window_right
 *   PED_MASK_EXPLICIT_BLOCKS  visible iff blocks[(i / block_q) * block_cols + j / block_k] != 0
 *                             (raw i, not p), blocks of block_q x block_k elements, (block_rows x
 *                             block_cols) of them, row-major; the last row and column may be partial
 *   PED_MASK_ELEMENTS         visible iff elements[i * Nk + j] != 0 (Nq x Nk bytes, row-major): every
 *                             other pattern (strided, fixed, global tokens, BigBird, combinations)
 * The harness passes each mask in the most specific kind the plugin lists in mask_kinds (a causal
 * mask as PED_MASK_ELEMENTS when the plugin takes ELEMENTS but not CAUSAL) and does not run the
 * patterns the plugin cannot take.
 *
 * Errors: forward and backward return 0 on success; any other value is a failure, described in
 * `error` (up to error_capacity bytes including the terminating NUL; the harness passes at least
 * 256). The harness reports the code and the message, and counts the call as a failed check.
 * Threads: `threads` is the harness's thread count (0: the plugin's choice); results should not
 * depend on it. Calls come from one thread at a time.
 *
 * Reduced precision: a plugin that sets PED_DTYPE_BFLOAT16 or PED_DTYPE_FLOAT16 gets calls in that
 * dtype. The harness draws inputs in float64, rounds them to the dtype (round to nearest even),
 * computes a float64 truth from the rounded inputs, and requires per tensor (out, lse, dq, dk, dv)
 * that the plugin's normwise error against the truth be at most 2 x the error of LibTorch's
 * composed attention in the same dtype on the same inputs, plus a floor of eps of the dtype
 * (FlashAttention's test criterion); no finite differences below float32. A plugin declaring a
 * 16-bit dtype declares float32 or float64 too (the harness checks and benchmarks through them).
 *
 * Versioning: the version-1 layout of every struct below is frozen. A later version adds fields
 * at the end of PedAttentionPlugin, PedAttentionForwardArgs and PedAttentionBackwardArgs (their
 * struct_size tells who knows what), and new capability bits in `features`. The harness sets a
 * field beyond version 1 to anything but its neutral value only for a plugin whose `features`
 * advertise it, so a version-1 plugin keeps working unchanged:
 *   PED_FEATURE_GROUPED_QUERY_HEADS  k, v with H_kv < H heads (H % H_kv == 0)
 *   PED_FEATURE_ADDITIVE_BIAS        an additive bias tensor broadcast onto S
 *   PED_FEATURE_VARIABLE_LENGTH      per-sequence lengths (cumulative offsets) in a packed batch
 *   PED_FEATURE_DROPOUT              dropout on P with a probability and a seed
 * Version 1 defines none of those fields; the bits are reserved so that they keep their meaning.
 * Dtype bits are additive within a version, like `features`: PED_DTYPE_BFLOAT16 and
 * PED_DTYPE_FLOAT16 were added to version 1 without changing any struct or the version number. The
 * harness passes a dtype only to a plugin that declares it, so a plugin declaring float32/float64
 * alone is unaffected. A harness older than a dtype bit refuses a plugin that declares it (its load
 * error names the dtypes value), so it never hands such a plugin tensors it did not expect, and a
 * plugin never receives a dtype it did not declare.
 */
#ifndef PEDESTRIAN_ATTENTION_PLUGIN_H
#define PEDESTRIAN_ATTENTION_PLUGIN_H

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PED_ATTENTION_PLUGIN_ABI_VERSION 1u
#define PED_ATTENTION_PLUGIN_ENTRY "pedestrian_attention_plugin"

/* Bits of PedAttentionPlugin.dtypes. */
#define PED_DTYPE_FLOAT32 (1u << 0)
#define PED_DTYPE_FLOAT64 (1u << 1)
#define PED_DTYPE_BFLOAT16 (1u << 2) /* kDLBfloat, 16 bits: 8 exponent bits, 7 fraction bits */
#define PED_DTYPE_FLOAT16 (1u << 3)  /* kDLFloat, 16 bits: IEEE 754 binary16 */

/* PedAttentionMask.kind, and (1u << kind) in PedAttentionPlugin.mask_kinds. */
typedef enum PedMaskKind {
  PED_MASK_NONE = 0,
  PED_MASK_CAUSAL = 1,
  PED_MASK_SLIDING_WINDOW = 2,
  PED_MASK_EXPLICIT_BLOCKS = 3,
  PED_MASK_ELEMENTS = 4
} PedMaskKind;

/* Bits of PedAttentionPlugin.features (see "Versioning" above). */
#define PED_FEATURE_GROUPED_QUERY_HEADS (1ull << 0)
#define PED_FEATURE_ADDITIVE_BIAS (1ull << 1)
#define PED_FEATURE_VARIABLE_LENGTH (1ull << 2)
#define PED_FEATURE_DROPOUT (1ull << 3)

/* A mask: its kind and the parameters of that kind; unused fields are 0 or NULL. */
typedef struct PedAttentionMask {
  uint32_t struct_size;         /* sizeof(PedAttentionMask) as the harness knows it */
  uint32_t kind;                /* PedMaskKind */
  int64_t window_left;          /* SLIDING_WINDOW: >= 0 */
  int64_t window_right;         /* SLIDING_WINDOW: >= 0 */
  int64_t block_q, block_k;     /* EXPLICIT_BLOCKS: block sides, >= 1 */
  int64_t block_rows;           /* EXPLICIT_BLOCKS: ceil(Nq / block_q) */
  int64_t block_cols;           /* EXPLICIT_BLOCKS: ceil(Nk / block_k) */
  const uint8_t* blocks;        /* EXPLICIT_BLOCKS: block_rows x block_cols, row-major, nonzero = visible */
  const uint8_t* elements;      /* ELEMENTS: Nq x Nk, row-major, nonzero = visible */
} PedAttentionMask;

typedef struct PedAttentionForwardArgs {
  uint32_t struct_size;         /* sizeof(PedAttentionForwardArgs) as the harness knows it */
  int32_t threads;              /* 0: the plugin's choice */
  double scale;                 /* s, finite, typically 1 / sqrt(d) */
  const DLTensor* q;            /* (B, H, Nq, d) */
  const DLTensor* k;            /* (B, H, Nk, d) */
  const DLTensor* v;            /* (B, H, Nk, d) */
  const PedAttentionMask* mask;
  DLTensor* out;                /* (B, H, Nq, d), written */
  DLTensor* lse;                /* (B, H, Nq) float64, written */
} PedAttentionForwardArgs;

typedef struct PedAttentionBackwardArgs {
  uint32_t struct_size;         /* sizeof(PedAttentionBackwardArgs) as the harness knows it */
  int32_t threads;
  double scale;
  const DLTensor* q;
  const DLTensor* k;
  const DLTensor* v;
  const PedAttentionMask* mask;
  const DLTensor* out;          /* this plugin's forward result for the same inputs */
  const DLTensor* lse;          /* likewise, float64 */
  const DLTensor* dout;         /* (B, H, Nq, d) */
  DLTensor* dq;                 /* (B, H, Nq, d), written */
  DLTensor* dk;                 /* (B, H, Nk, d), written */
  DLTensor* dv;                 /* (B, H, Nk, d), written */
} PedAttentionBackwardArgs;

typedef int (*PedAttentionForwardFn)(const PedAttentionForwardArgs* args, char* error, size_t error_capacity);
typedef int (*PedAttentionBackwardFn)(const PedAttentionBackwardArgs* args, char* error, size_t error_capacity);

typedef struct PedAttentionPlugin {
  uint32_t abi_version;         /* PED_ATTENTION_PLUGIN_ABI_VERSION the plugin was built against */
  uint32_t struct_size;         /* sizeof(PedAttentionPlugin) as the plugin knows it */
  const char* name;             /* its variant name: [a-z][a-z0-9_]*, at most 48 characters, not
                                   a built-in's name, not starting with "libtorch" */
  const char* description;      /* one line for listings, or NULL */
  uint32_t dtypes;              /* PED_DTYPE_* bits, at least one */
  uint32_t mask_kinds;          /* (1u << PED_MASK_*) bits, at least one */
  uint64_t features;            /* PED_FEATURE_* bits; 0 in version 1 */
  PedAttentionForwardFn forward;    /* required */
  PedAttentionBackwardFn backward;  /* NULL: forward only (the harness then checks only the forward) */
} PedAttentionPlugin;

/* The entry point every plugin exports under the name PED_ATTENTION_PLUGIN_ENTRY. */
typedef const PedAttentionPlugin* (*PedAttentionPluginEntryFn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* PEDESTRIAN_ATTENTION_PLUGIN_H */
