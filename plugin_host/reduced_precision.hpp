// Calls of a plugin in a 16-bit dtype it declares (PED_DTYPE_BFLOAT16, PED_DTYPE_FLOAT16). The
// registry of attention implementations (variants/registry.hpp) holds float and double entries
// only, so these calls go around it: load_attention_plugin records one kernel per variant (layout)
// and declared 16-bit dtype, found here by the variant's registry name.
//
// Buffers are row-major like the registry's: q (B, H, Nq, d), k, v (B, H, Nk, d), out, dout, dq
// (B, H, Nq, d), dk, dv (B, H, Nk, d), held as float values, which the adapter converts to the dtype
// (exactly, for values the dtype represents) and back; lse (B, H, Nq) is the ABI's float64 lse.
// The checks are those of the float and double calls: the plugin's return code, and in the strided
// layout nothing written outside its outputs or into its inputs; outputs are filled with NaN first.
#pragma once

#include <functional>
#include <string>

#include "variants/attention.hpp"
#include "core/mask.hpp"

namespace ped::plugin {

enum class ReducedDtype { bfloat16, float16 };
const char* to_string(ReducedDtype dtype);  // "bfloat16", "float16"

struct ReducedPrecisionKernel {
  std::function<void(const AttentionShape&, const Mask&, double scale, const float* q, const float* k,
                     const float* v, float* out, double* lse, const AttentionOptions&)>
      forward;
  // Empty when the plugin has no backward. lse is the forward's.
  std::function<void(const AttentionShape&, const Mask&, double scale, const float* q, const float* k,
                     const float* v, const float* out, const double* lse, const float* dout, float* dq, float* dk,
                     float* dv, const AttentionOptions&)>
      backward;
};

// The kernel of the loaded plugin variant `variant` ("name" or "name[strided]") in `dtype`; nullptr
// when no loaded plugin variant of that name declares the dtype. The address stays valid.
const ReducedPrecisionKernel* find_reduced_precision_kernel(const std::string& variant, ReducedDtype dtype);

}  // namespace ped::plugin
