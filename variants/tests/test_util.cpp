#include "variants/tests/test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <sstream>

namespace ped::test {

template <class T>
Problem<T> make_problem(const AttentionShape& s, std::uint64_t seed) {
  Problem<T> p{s, static_cast<T>(1.0 / std::sqrt(static_cast<double>(s.head_dim))), {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  auto fill = [&](std::vector<T>& x, std::int64_t heads, std::int64_t n) {
    x.resize(static_cast<std::size_t>(s.batch * heads * n * s.head_dim));
    for (T& e : x) e = static_cast<T>(u(rng));
  };
  fill(p.q, s.heads, s.seq_q);
  fill(p.k, s.kv_heads(), s.seq_k);
  fill(p.v, s.kv_heads(), s.seq_k);
  fill(p.dout, s.heads, s.seq_q);
  return p;
}

std::vector<const AttentionImpl*> builtin_impls() {
  std::vector<const AttentionImpl*> impls;
  for (const AttentionImpl* impl : attention_impls()) {
    if (impl->origin == "built-in") impls.push_back(impl);
  }
  return impls;
}

std::vector<AttentionOptions> tilings(const AttentionImpl& impl) {
  // (Thread counts give bitwise identical results, see edge_case_test.cpp; one thread keeps the many
  // tiny tiles cheap on a shared machine.)
  if (impl.name == "blocked") return {AttentionOptions{.threads = 2}, AttentionOptions{.threads = 1, .tile_q = 7}};
  if (impl.name == "flash") {
    return {AttentionOptions{.threads = 2}, AttentionOptions{.threads = 1, .tile_q = 16, .tile_k = 24},
            AttentionOptions{.threads = 1, .tile_q = 13, .tile_k = 7}};
  }
  if (impl.name == "sparse") {
    return {AttentionOptions{.threads = 2}, AttentionOptions{.threads = 1, .block_size = 16},
            AttentionOptions{.threads = 1, .block_size = 5}};
  }
  if (impl.name == "flash_decode") return {AttentionOptions{.threads = 2}, AttentionOptions{.threads = 1, .tile_k = 7}};
  return {AttentionOptions{.threads = 2}};
}

template <class T>
Result<T> run(const AttentionImpl& impl, const Problem<T>& p, const Mask& mask, const AttentionOptions& options) {
  const auto& s = p.shape;
  Result<T> r;
  r.out.assign(p.q.size(), T{-7});  // poison: every entry must be overwritten
  r.lse.assign(static_cast<std::size_t>(s.batch * s.heads * s.seq_q), T{-7});
  r.stats.assign(r.lse.size(), RowStats<T>{T{-7}, T{-7}});
  r.dq.assign(p.q.size(), T{-7});
  r.dk.assign(p.k.size(), T{-7});
  r.dv.assign(p.v.size(), T{-7});
  run_forward<T>(impl, s, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.stats.data(),
                       options);
  lse_from_stats<T>(static_cast<std::int64_t>(r.stats.size()), r.stats.data(), r.lse.data());
  if (!impl.has_backward<T>()) {  // a forward-only implementation: no gradients
    r.dq.clear();
    r.dk.clear();
    r.dv.clear();
    return r;
  }
  run_backward<T>(impl, s, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.stats.data(),
                        p.dout.data(), r.dq.data(), r.dk.data(), r.dv.data(), options);
  return r;
}

double fd_loss(const AttentionImpl& impl, const Problem<double>& p, const Mask& mask, const AttentionOptions& options) {
  std::vector<double> out(p.q.size());
  std::vector<RowStats<double>> stats(static_cast<std::size_t>(p.shape.batch * p.shape.heads * p.shape.seq_q));
  run_forward<double>(impl, p.shape, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(), stats.data(),
                      options);
  double l = 0;
  for (std::size_t e = 0; e < out.size(); ++e) l += p.dout[e] * out[e];
  return l;
}

std::vector<double> fd_gradient(const AttentionImpl& impl, const Problem<double>& p, std::vector<double>& x,
                                const Mask& mask, const AttentionOptions& options) {
  std::vector<double> fd(x.size());
  for (std::size_t e = 0; e < x.size(); ++e) {
    const double x0 = x[e];
    const double h = 1e-6 * std::max(1.0, std::abs(x0));
    x[e] = x0 + h;
    const double lp = fd_loss(impl, p, mask, options);
    x[e] = x0 - h;
    const double lm = fd_loss(impl, p, mask, options);
    x[e] = x0;
    fd[e] = (lp - lm) / (2 * h);
  }
  return fd;
}

template <class T>
double norm_rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    const bool ai = std::isinf(a[e]) && a[e] < 0, bi = std::isinf(b[e]) && b[e] < 0;
    if (ai && bi) continue;
    if (ai != bi) return std::numeric_limits<double>::infinity();
    const double diff = static_cast<double>(a[e]) - static_cast<double>(b[e]);
    num += diff * diff;
    den += static_cast<double>(b[e]) * static_cast<double>(b[e]);
  }
  if (std::isnan(num)) return std::numeric_limits<double>::infinity();
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

template <class T>
bool has_nan_or_inf(const std::vector<T>& a) {
  for (T x : a) {
    if (std::isnan(x) || (std::isinf(x) && x > 0)) return true;
  }
  return false;
}

std::vector<NamedMask> mask_catalogue(std::int64_t seq_q, std::int64_t seq_k) {
  // Explicit layout of 8 x 8 blocks, roughly half visible, from the seed.
  const std::int64_t rows = (seq_q + 7) / 8, cols = (seq_k + 7) / 8;
  std::vector<std::uint8_t> blocks(static_cast<std::size_t>(rows * cols));
  std::mt19937_64 rng(kSeed);
  for (auto& b : blocks) b = static_cast<std::uint8_t>(rng() % 2);
  return {
      {"none", Mask::none()},
      {"causal", Mask::causal()},
      {"sliding_window_5_3", Mask::sliding_window(5, 3)},
      {"causal_sliding_window_9", Mask::causal_sliding_window(9)},
      {"strided_6_causal", Mask::strided(6, true)},
      {"strided_5_bidirectional", Mask::strided(5, false)},
      {"fixed_8_2_causal", Mask::fixed(8, 2, true)},
      {"fixed_7_3_bidirectional", Mask::fixed(7, 3, false)},
      {"global_tokens_3", Mask::global_tokens(3)},
      {"longformer_4_4_2", Mask::longformer(4, 4, 2)},
      {"bigbird_8_1_1_2", Mask::bigbird(8, 1, 1, 2, kSeed)},
      {"explicit_8x8", Mask::explicit_blocks(8, 8, rows, cols, blocks)},
      {"causal_and_strided_4", Mask::causal() & Mask::strided(4, false)},
      {"window_2_or_global_1", Mask::sliding_window(2, 2) | Mask::global_tokens(1)},
      {"all_hidden", Mask::explicit_blocks(8, 8, rows, cols, std::vector<std::uint8_t>(blocks.size(), 0))},
  };
}

std::string shape_string(const AttentionShape& s) {
  std::ostringstream os;
  os << "B" << s.batch << "_H" << s.heads << "_Nq" << s.seq_q << "_Nk" << s.seq_k << "_d" << s.head_dim;
  return os.str();
}

#define PED_INSTANTIATE(T)                                                                            \
  template Problem<T> make_problem<T>(const AttentionShape&, std::uint64_t);                          \
  template Result<T> run<T>(const AttentionImpl&, const Problem<T>&, const Mask&, const AttentionOptions&);        \
  template double norm_rel_err<T>(const std::vector<T>&, const std::vector<T>&);                      \
  template bool has_nan_or_inf<T>(const std::vector<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

namespace {

std::map<std::string, std::map<std::string, double>>& worst_tables() {
  static std::map<std::string, std::map<std::string, double>> tables;
  return tables;
}

class WorstErrorReport : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& [title, table] : worst_tables()) {
      std::printf("%s:\n", title.c_str());
      for (const auto& [key, err] : table) std::printf("  %-58s %.3e\n", key.c_str(), err);
    }
  }
};
const auto* const kWorstErrorReport = ::testing::AddGlobalTestEnvironment(new WorstErrorReport);

}  // namespace

void note_worst(const std::string& title, const std::string& key, double err) {
  double& w = worst_tables()[title][key];
  w = std::max(w, err);
}

}  // namespace ped::test
