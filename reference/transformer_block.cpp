#include "reference/transformer_block.hpp"

#include "reference/residual.hpp"

namespace ped::ref {

template <class T>
Mat<T> transformer_block_forward(const Mat<T>& x, const TransformerBlockParams<T>& p,
                                 const TransformerBlockConfig<T>& cfg, TransformerBlockCache<T>& cache) {
  const Mat<T> a = layer_norm_forward(x, p.ln1_gamma, p.ln1_beta, cfg.eps, cache.ln1);
  const Mat<T> x1 = residual_forward(x, attention_forward(a, p.attn, cfg.attn, cache.attn));
  const Mat<T> b = layer_norm_forward(x1, p.ln2_gamma, p.ln2_beta, cfg.eps, cache.ln2);
  return residual_forward(x1, feed_forward_forward(b, p.mlp, cfg.approx, cache.mlp));
}

template <class T>
TransformerBlockGrads<T> transformer_block_backward(const Mat<T>& dy, const TransformerBlockParams<T>& p,
                                                    const TransformerBlockCache<T>& cache) {
  TransformerBlockGrads<T> g;
  // forward: y = x1 + mlp(ln2(x1))
  ResidualGrads<T> r2 = residual_backward(dy);
  FeedForwardGrads<T> gm = feed_forward_backward(r2.dfx, p.mlp, cache.mlp);
  LayerNormGrads<T> g2 = layer_norm_backward(gm.dx, p.ln2_gamma, cache.ln2);
  const Mat<T> dx1 = r2.dx + g2.dx;
  // forward: x1 = x + attn(ln1(x))
  ResidualGrads<T> r1 = residual_backward(dx1);
  AttentionGrads<T> ga = attention_backward(r1.dfx, p.attn, cache.attn);
  LayerNormGrads<T> g1 = layer_norm_backward(ga.dx, p.ln1_gamma, cache.ln1);
  g.dx = r1.dx + g1.dx;
  g.dp.ln1_gamma = std::move(g1.dgamma);
  g.dp.ln1_beta = std::move(g1.dbeta);
  g.dp.attn = std::move(ga.dp);
  g.dp.ln2_gamma = std::move(g2.dgamma);
  g.dp.ln2_beta = std::move(g2.dbeta);
  g.dp.mlp = std::move(gm.dp);
  return g;
}

#define PED_INSTANTIATE(T)                                                                                     \
  template Mat<T> transformer_block_forward<T>(const Mat<T>&, const TransformerBlockParams<T>&,               \
                                               const TransformerBlockConfig<T>&, TransformerBlockCache<T>&);  \
  template TransformerBlockGrads<T> transformer_block_backward<T>(const Mat<T>&, const TransformerBlockParams<T>&, \
                                                                  const TransformerBlockCache<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
