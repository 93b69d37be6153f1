#include "twins/twins.hpp"

#include "twins/masks.hpp"

#include <cmath>
#include <limits>

namespace ped::twin {

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) { return w.mm(x) + b; }

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps) {
  // LibTorch normalises the trailing dimension: tokens become rows.
  return at::layer_norm(x.t(), {x.size(0)}, gamma.reshape({-1}), beta.reshape({-1}), eps).t();
}

at::Tensor gelu(const at::Tensor& x, const std::string& approx) {
  return at::gelu(x, approx == "tanh" ? "tanh" : "none");
}

at::Tensor attention(const at::Tensor& x, const AttentionWeights& w, std::int64_t heads, bool causal) {
  const int64_t d = x.size(0), n = x.size(1), dh = d / heads;
  auto split = [&](const at::Tensor& m) { return m.reshape({heads, dh, n}).transpose(1, 2); };  // (H, N, dh)
  const at::Tensor q = split(linear(x, w.wq, w.bq));
  const at::Tensor k = split(linear(x, w.wk, w.bk));
  const at::Tensor v = split(linear(x, w.wv, w.bv));
  at::Tensor s = q.bmm(k.transpose(1, 2)) / std::sqrt(static_cast<double>(dh));  // (H, N, N)
  if (causal) s = s.masked_fill(visible_mask(Mask::causal(), n, n).logical_not(), -std::numeric_limits<double>::infinity());
  const at::Tensor o = at::softmax(s, -1).bmm(v);  // (H, N, dh)
  return linear(o.transpose(1, 2).reshape({d, n}), w.wo, w.bo);
}

at::Tensor feed_forward(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                        const at::Tensor& b2, const std::string& approx) {
  return linear(gelu(linear(x, w1, b1), approx), w2, b2);
}

at::Tensor ids_tensor(const std::vector<std::int64_t>& ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids.data(), ids.size()), at::kLong);
}

}  // namespace ped::twin
