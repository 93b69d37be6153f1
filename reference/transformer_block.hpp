// Pre-LN transformer block (GPT-2): x1 = x + attn(ln1(x)), y = x1 + mlp(ln2(x1)).
// D width, N tokens, H heads, F feed-forward width. x (D, N), y (D, N).
#pragma once

#include "reference/attention.hpp"
#include "reference/feed_forward.hpp"
#include "reference/layer_norm.hpp"

namespace ped::ref {

template <class T>
struct TransformerBlockParams {
  Col<T> ln1_gamma, ln1_beta;  // (D)
  AttentionParams<T> attn;
  Col<T> ln2_gamma, ln2_beta;  // (D)
  FeedForwardParams<T> mlp;
};

template <class T>
struct TransformerBlockConfig {
  AttentionConfig<T> attn;
  GeluApprox approx = GeluApprox::tanh;
  T eps = T(1e-5);
};

template <class T>
struct TransformerBlockCache {
  LayerNormCache<T> ln1;
  AttentionCache<T> attn;
  LayerNormCache<T> ln2;
  FeedForwardCache<T> mlp;
};

template <class T>
struct TransformerBlockGrads {
  Mat<T> dx;                     // (D, N)
  TransformerBlockParams<T> dp;  // same shapes as the parameters
};

template <class T>
Mat<T> transformer_block_forward(const Mat<T>& x, const TransformerBlockParams<T>& p,
                                 const TransformerBlockConfig<T>& cfg, TransformerBlockCache<T>& cache);

// backward: dx1 = dy + ln2'^T(mlp'^T(dy)), dx = dx1 + ln1'^T(attn'^T(dx1)), each ' the layer's own backward
template <class T>
TransformerBlockGrads<T> transformer_block_backward(const Mat<T>& dy, const TransformerBlockParams<T>& p,
                                                    const TransformerBlockCache<T>& cache);

}  // namespace ped::ref
