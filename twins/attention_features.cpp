#include "twins/attention_features.hpp"

#include <pedestrian/attention_dropout.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "twins/masks.hpp"

namespace ped::twin {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("twin::attention_with_features: " + what);
}

}  // namespace

at::Tensor alibi_bias(const std::vector<double>& slopes, std::int64_t seq_q, std::int64_t seq_k,
                      at::ScalarType dtype) {
  const auto heads = static_cast<std::int64_t>(slopes.size());
  std::vector<double> host(static_cast<std::size_t>(heads * seq_q * seq_k));
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t i = 0; i < seq_q; ++i) {
      const std::int64_t p = i + seq_k - seq_q;
      for (std::int64_t j = 0; j < seq_k; ++j) {
        host[static_cast<std::size_t>((h * seq_q + i) * seq_k + j)] =
            -slopes[static_cast<std::size_t>(h)] * static_cast<double>(std::llabs(p - j));
      }
    }
  }
  return at::from_blob(host.data(), {heads, seq_q, seq_k}, at::kDouble).to(dtype).clone();
}

at::Tensor dropout_scale_mask(std::uint64_t seed, std::int64_t b, std::int64_t heads, std::int64_t seq_q,
                              std::int64_t seq_k, double p, at::ScalarType dtype) {
  const double keep_scale = 1.0 / (1.0 - p);
  std::vector<double> host(static_cast<std::size_t>(heads * seq_q * seq_k));
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t i = 0; i < seq_q; ++i) {
      for (std::int64_t j = 0; j < seq_k; ++j) {
        host[static_cast<std::size_t>((h * seq_q + i) * seq_k + j)] =
            ped_dropout_keep(seed, b, h, i, j, p) ? keep_scale : 0.0;
      }
    }
  }
  return at::from_blob(host.data(), {heads, seq_q, seq_k}, at::kDouble).to(dtype).clone();
}

AttentionTwinResult attention_with_features(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const at::Tensor& sinks, const Mask& mask, double scale,
                                            const AttentionFeatureArgs& f) {
  require(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "q, k, v must be 4-d (B, H, N, d)");
  const std::int64_t batch = q.size(0), heads = q.size(1), nq = q.size(2), d = q.size(3);
  const std::int64_t hkv = k.size(1), nk = k.size(2);
  require(k.size(0) == batch && v.sizes() == k.sizes() && k.size(3) == d, "k and v must be (B, H_kv, Nk, d)");
  require(hkv >= 1 && heads % hkv == 0, "H_kv = " + std::to_string(hkv) + " must divide H = " + std::to_string(heads));
  require(f.alibi_slopes.empty() || static_cast<std::int64_t>(f.alibi_slopes.size()) == heads,
          "alibi_slopes must hold H values");
  require(!sinks.defined() || sinks.numel() == heads, "sinks must hold H values");
  require(f.seqlens_q.empty() || static_cast<std::int64_t>(f.seqlens_q.size()) == batch, "seqlens_q must hold B values");
  require(f.seqlens_k.empty() || static_cast<std::int64_t>(f.seqlens_k.size()) == batch, "seqlens_k must hold B values");
  require(f.softcap >= 0 && f.dropout_p >= 0 && f.dropout_p < 1, "softcap must be >= 0 and dropout_p in [0, 1)");
  const at::ScalarType dtype = q.scalar_type();
  const at::TensorOptions opts = q.options().requires_grad(false);
  const std::int64_t group = heads / hkv;
  const at::Tensor sink_col = sinks.defined() ? sinks.reshape({heads, 1, 1}) : at::Tensor();

  std::vector<at::Tensor> outs, lses;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t lq = f.seqlens_q.empty() ? nq : f.seqlens_q[static_cast<std::size_t>(b)];
    const std::int64_t lk = f.seqlens_k.empty() ? nk : f.seqlens_k[static_cast<std::size_t>(b)];
    require(lq >= 0 && lq <= nq && lk >= 0 && lk <= nk, "a sequence length is outside [0, N]");
    at::Tensor out_b, lse_b;  // (H, lq, d), (H, lq)
    if (lq > 0 && lk > 0) {
      const at::Tensor qb = q[b].narrow(1, 0, lq);                                      // (H, lq, d)
      const at::Tensor kb = k[b].narrow(1, 0, lk).repeat_interleave(group, 0);          // (H, lk, d)
      const at::Tensor vb = v[b].narrow(1, 0, lk).repeat_interleave(group, 0);
      at::Tensor s = at::matmul(qb, kb.transpose(-2, -1)) * scale;  // (H, lq, lk)
      if (f.softcap > 0) s = at::tanh(s / f.softcap) * f.softcap;
      if (!f.alibi_slopes.empty()) s = s + alibi_bias(f.alibi_slopes, lq, lk, dtype);
      const at::Tensor visible = visible_mask(mask, lq, lk);              // (lq, lk)
      s = s + additive_mask(mask, lq, lk, dtype);
      at::Tensor p;
      if (sink_col.defined()) {
        // The sink column keeps every row finite: a row without a visible key gets P_sink = 1.
        const at::Tensor logits = at::cat({s, sink_col.expand({heads, lq, 1})}, -1);
        lse_b = at::logsumexp(logits, -1);
        p = at::softmax(logits, -1).narrow(-1, 0, lk);
      } else {
        // A row without a visible key: scores made finite, P zeroed, lse -inf (LibTorch's softmax of
        // an all -inf row is NaN).
        const at::Tensor row_has_key = visible.any(-1, /*keepdim=*/true);  // (lq, 1)
        s = s.masked_fill(row_has_key.logical_not(), 0.0);
        p = at::softmax(s, -1) * row_has_key.to(dtype);
        lse_b = at::logsumexp(s, -1).masked_fill(row_has_key.squeeze(-1).logical_not(), -kInf);
      }
      if (f.dropout_p > 0) p = p * dropout_scale_mask(f.dropout_seed, b, heads, lq, lk, f.dropout_p, dtype);
      out_b = at::matmul(p, vb);
    } else {
      // No pair in this sequence: out 0; a query row (if any) sees no key, so its lse is the sink's.
      out_b = at::zeros({heads, lq, d}, opts);
      lse_b = sink_col.defined() ? sink_col.reshape({heads, 1}).expand({heads, lq}) * 1.0
                                 : at::full({heads, lq}, -kInf, opts);
    }
    if (lq < nq) {
      out_b = at::cat({out_b, at::zeros({heads, nq - lq, d}, opts)}, 1);
      lse_b = at::cat({lse_b, at::full({heads, nq - lq}, -kInf, opts)}, 1);
    }
    outs.push_back(out_b);
    lses.push_back(lse_b);
  }
  return {at::stack(outs), at::stack(lses)};
}

}  // namespace ped::twin
