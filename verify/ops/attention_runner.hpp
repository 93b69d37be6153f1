// One registered attention implementation run on verify's carrier layout, for the attention ops
// (sdpa, sdpa_large_scores: plain; sdpa_features: with AttentionFeatures). q is held as a
// column-major (d, B H Nq) matrix, whose memory is exactly the row-major [B, H, Nq, d] buffer the
// kernels take (k, v: (d, B H_kv Nk)); out likewise, lse (from the forward's row stats) as
// (1, B H Nq). With sinks, they are an input (1, H) and their gradient the last one returned; ALiBi
// slopes are an input (1, H) that is not differentiated. Inputs carry the features' per-head values,
// so that finite differences and the rounding of the inputs to float reach them.
#pragma once

#include <armadillo>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/mask.hpp"
#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "verify/problem.hpp"

namespace ped::verify {

struct AttentionRunner {
  const AttentionImpl* impl;
  AttentionShape shape;
  Mask mask;
  double scale;
  std::uint32_t bits = 0;  // the AttentionFeatures used (attention_feature_bit); 0: plain attention
  double softcap = 0;
  double dropout_p = 0;
  std::uint64_t dropout_seed = 0;
  std::vector<std::int64_t> seqlens_q, seqlens_k;
  std::size_t sinks_input = 0, alibi_input = 0;  // indices into the inputs (meaningful with the bit)

  template <class T>
  AttentionOptions options(const Mats<T>& in, std::vector<double>& sinks, std::vector<double>& slopes) const {
    AttentionOptions o;
    AttentionFeatures& f = o.features;
    if (bits & attention_feature_bit(AttentionFeature::sinks)) {
      sinks = arma::conv_to<std::vector<double>>::from(arma::vectorise(in[sinks_input]));
      f.sinks = sinks.data();
    }
    if (bits & attention_feature_bit(AttentionFeature::alibi)) {
      slopes = arma::conv_to<std::vector<double>>::from(arma::vectorise(in[alibi_input]));
      f.alibi_slopes = slopes.data();
    }
    if (bits & attention_feature_bit(AttentionFeature::softcap)) f.softcap = softcap;
    if (bits & attention_feature_bit(AttentionFeature::dropout)) {
      f.dropout_p = dropout_p;
      f.dropout_seed = dropout_seed;
    }
    if (bits & attention_feature_bit(AttentionFeature::variable_length)) {
      f.seqlens_q = seqlens_q.data();
      f.seqlens_k = seqlens_k.data();
    }
    return o;
  }

  template <class T>
  arma::Mat<T> forward_with_stats(const Mats<T>& in, std::vector<RowStats<T>>& stats) const {
    const auto rows_q = static_cast<arma::uword>(shape.batch * shape.heads * shape.seq_q);
    arma::Mat<T> out(static_cast<arma::uword>(shape.head_dim), rows_q);
    stats.resize(rows_q);
    std::vector<double> sinks, slopes;
    ped::run_forward<T>(*impl, shape, mask, static_cast<T>(scale), in[0].memptr(), in[1].memptr(), in[2].memptr(),
                        out.memptr(), stats.data(), options(in, sinks, slopes));
    return out;
  }

  template <class T>
  Mats<T> forward(const Mats<T>& in) const {
    std::vector<RowStats<T>> stats;
    arma::Mat<T> out = forward_with_stats(in, stats);
    arma::Mat<T> lse(1, out.n_cols);
    lse_from_stats<T>(static_cast<std::int64_t>(stats.size()), stats.data(), lse.memptr());
    return {out, lse};
  }

  template <class T>
  Mats<T> backward(const Mats<T>& in, const Mats<T>& dout) const {
    std::vector<RowStats<T>> stats;
    const arma::Mat<T> out = forward_with_stats(in, stats);
    arma::Mat<T> dq(arma::size(in[0])), dk(arma::size(in[1])), dv(arma::size(in[2]));
    std::vector<double> sinks, slopes, dsinks(static_cast<std::size_t>(shape.heads), 0.0);
    AttentionOptions o = options(in, sinks, slopes);
    if (bits & attention_feature_bit(AttentionFeature::sinks)) o.features.dsinks = dsinks.data();
    ped::run_backward<T>(*impl, shape, mask, static_cast<T>(scale), in[0].memptr(), in[1].memptr(), in[2].memptr(),
                         out.memptr(), stats.data(), dout[0].memptr(), dq.memptr(), dk.memptr(), dv.memptr(), o);
    Mats<T> grads = {dq, dk, dv};
    if (bits & attention_feature_bit(AttentionFeature::sinks)) {
      arma::Mat<T> ds(1, dsinks.size());
      for (std::size_t h = 0; h < dsinks.size(); ++h) ds(0, h) = static_cast<T>(dsinks[h]);
      grads.push_back(ds);
    }
    return grads;
  }
};

// p's forward and (where the implementation has one) backward run `ours`; its dtypes are those the
// implementation has, and its checks run in a child process when the implementation asks for it.
inline void set_implementation(Problem& p, const AttentionRunner& ours) {
  const AttentionImpl& impl = *ours.impl;
  p.forward = erase_forward([ours]<class T>(const Mats<T>& in) { return ours.forward(in); });
  if (impl.has_backward<float>() || impl.has_backward<double>()) {
    p.backward =
        erase_backward([ours]<class T>(const Mats<T>& in, const Mats<T>& dout) { return ours.backward(in, dout); });
  }
  if (!impl.supports<float>()) p.dtypes = {Dtype::f64};
  if (!impl.supports<double>()) p.dtypes = {Dtype::f32};
  p.isolate = impl.isolate;
}

// p's algorithmic reference (Reference::naive) runs `naive`.
inline void set_naive_reference(Problem& p, const AttentionRunner& naive) {
  p.naive_forward = erase_forward([naive]<class T>(const Mats<T>& in) { return naive.forward(in); });
  p.naive_backward =
      erase_backward([naive]<class T>(const Mats<T>& in, const Mats<T>& dout) { return naive.backward(in, dout); });
}

}  // namespace ped::verify
