// The tiny GPT trained by hand-derived backward + our AdamW equals the same model trained by LibTorch
// autograd + a LibTorch AdamW, step by step; the attention variant does not change the trajectory;
// LoRA keeps the base frozen and its adapters' gradients match LibTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "reference/adamw.hpp"
#include "reference/gpt.hpp"
#include "twins/gpt_twin.hpp"
#include "verify/problem.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {
namespace {

constexpr int kSteps = 50;

ref::GptConfig small_config() {
  // threads = 1: at these sizes the kernels' OpenMP fork/join would cost more than the work
  return {.vocab = 13, .context = 12, .width = 16, .heads = 2, .layers = 2, .ffn = 32, .threads = 1};
}

// lr 1e-2 moves the parameters well away from the initialisation within 50 steps; clip 0.5 is below
// the early gradient norms, so clipping is exercised; decay 0.1 on the matrices.
ref::AdamWConfig adam_config() { return {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1, .clip_norm = 0.5}; }

// Step `step`'s batch: B sequences following t' = (3 t + 1) mod V, one token in five replaced at random.
void batch_for(std::uint64_t step, arma::uword vocab, arma::uword batch, arma::uword n, ref::TokenIds& inputs,
               ref::TokenIds& targets) {
  Rng rng(1000 + step);
  const auto noise = rng.integers(batch * (n + 1), 0, 5);
  const auto random = rng.integers(batch * (n + 1), 0, static_cast<std::int64_t>(vocab));
  inputs.clear();
  targets.clear();
  for (arma::uword b = 0; b < batch; ++b) {
    std::vector<std::int64_t> seq(n + 1);
    seq[0] = random[b * (n + 1)];
    for (arma::uword i = 1; i <= n; ++i) {
      const std::size_t k = b * (n + 1) + i;
      seq[i] = noise[k] == 0 ? random[k] : (3 * seq[i - 1] + 1) % static_cast<std::int64_t>(vocab);
    }
    for (arma::uword i = 0; i < n; ++i) {
      inputs.push_back(seq[i]);
      targets.push_back(seq[i + 1]);
    }
  }
}

struct Agreement {
  double max_loss_rel = 0;    // max over steps of |L_ours - L_torch| / |L_torch|
  double max_param_rel = 0;   // max over steps of ||p_ours - p_torch|| / ||p_torch|| over the whole buffer
  double first_loss = 0, last_loss = 0;
};

// Our training and the twin's, in lockstep from the same initialisation and batches.
template <class T>
Agreement train_in_lockstep(const ref::GptConfig& cfg, int steps, std::uint64_t seed, arma::uword batch = 4,
                            arma::uword n = 12) {
  ref::Gpt<T> model(cfg, seed);
  ref::AdamW<T> opt(model.layout(), adam_config());
  ref::GptTensors<T> grads(model.layout());
  std::vector<at::Tensor> leaves = twin::gpt_leaves(model.params());
  twin::TorchAdamW topt{.cfg = adam_config()};
  Agreement a;
  ref::TokenIds inputs, targets;
  for (int s = 0; s < steps; ++s) {
    batch_for(static_cast<std::uint64_t>(s), cfg.vocab, batch, n, inputs, targets);
    ref::GptCache<T> cache;
    const double ours = model.forward(inputs, targets, batch, cache);
    model.backward(cache, grads);
    opt.step(model.params(), grads);

    std::vector<at::Tensor> views;
    for (const at::Tensor& l : leaves) views.push_back(l.t());
    at::Tensor loss = twin::gpt_loss(cfg, views, inputs, targets, static_cast<std::int64_t>(batch));
    loss.backward();
    twin::torch_adamw_step(topt, model.layout(), leaves);
    const double theirs = loss.item<double>();

    a.max_loss_rel = std::max(a.max_loss_rel, std::abs(ours - theirs) / std::abs(theirs));
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      const arma::Mat<T> t = twin::to_arma<T>(leaves[i]);
      diff += std::pow(static_cast<double>(arma::norm(model.params().mat(i) - t, "fro")), 2);
      norm += std::pow(static_cast<double>(arma::norm(t, "fro")), 2);
    }
    a.max_param_rel = std::max(a.max_param_rel, std::sqrt(diff / norm));
    if (s == 0) a.first_loss = ours;
    a.last_loss = ours;
  }
  return a;
}

TEST(GptTraining, DoubleMatchesLibtorchAutogradAndAdamWFor50Steps) {
  const Agreement a = train_in_lockstep<double>(small_config(), kSteps, 11);
  std::printf("double: loss %.4f -> %.4f, max per-step loss rel diff %.3g, max param rel diff %.3g\n", a.first_loss,
              a.last_loss, a.max_loss_rel, a.max_param_rel);
  EXPECT_LT(a.last_loss, a.first_loss - 0.5) << "the model did not learn: the comparison would be vacuous";
  // Both sides compute the same math in double with different summation orders: the loss agrees to
  // ~5e-16 at every step; Adam's m / sqrt(v) amplifies differences on near-zero gradients over the
  // steps, observed worst parameter difference ~3e-13 after 50 steps; 1e-10 leaves two to three orders
  // of margin and is still eight orders below a wrong derivative or optimizer formula.
  EXPECT_LT(a.max_loss_rel, 1e-10);
  EXPECT_LT(a.max_param_rel, 1e-10);
}

TEST(GptTraining, FloatMatchesLibtorchAutogradAndAdamWFor50Steps) {
  const Agreement a = train_in_lockstep<float>(small_config(), kSteps, 11);
  std::printf("float: loss %.4f -> %.4f, max per-step loss rel diff %.3g, max param rel diff %.3g\n", a.first_loss,
              a.last_loss, a.max_loss_rel, a.max_param_rel);
  // Two float computations differ by ~n eps(float) ~ 1e-6 relative per step; Adam's normalised update
  // amplifies differences on near-zero gradients (an update of size lr whatever the gradient's size)
  // and 50 steps compound them; observed worst ~3e-7 (loss) and ~1e-4 (parameters). 1e-3 bounds that with
  // margin while an error in a derivative or the optimizer shows at 1e-2 and more.
  EXPECT_LT(a.max_loss_rel, 1e-3);
  EXPECT_LT(a.max_param_rel, 1e-3);
}

// Our training with the attention path switched, in float: the trajectories agree to float rounding.
template <class T>
std::vector<double> our_trajectory(const ref::GptConfig& cfg, int steps, std::vector<T>* final_params) {
  ref::Gpt<T> model(cfg, 5);
  ref::AdamW<T> opt(model.layout(), adam_config());
  ref::GptTensors<T> grads(model.layout());
  std::vector<double> losses;
  ref::TokenIds inputs, targets;
  for (int s = 0; s < steps; ++s) {
    batch_for(static_cast<std::uint64_t>(s), cfg.vocab, 4, 12, inputs, targets);
    ref::GptCache<T> cache;
    losses.push_back(model.forward(inputs, targets, 4, cache));
    model.backward(cache, grads);
    opt.step(model.params(), grads);
  }
  *final_params = model.params().data();
  return losses;
}

// The registered implementations with a backward in float (training needs one; flash_decode has none).
std::vector<std::string> trainable_impl_names() {
  std::vector<std::string> names;
  for (const std::string& name : attention_impl_names()) {
    if (attention_impl(name).has_backward<float>()) names.push_back(name);
  }
  return names;
}

class GptVariant : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GptVariant, SameTrajectoryAsReferenceAttention) {
  const auto& [variant, mask] = GetParam();
  ref::GptConfig cfg = small_config();
  cfg.mask = mask == "causal" ? Mask::causal() : Mask::causal_sliding_window(3);
  std::vector<float> p_ref, p_var;
  const std::vector<double> l_ref = our_trajectory<float>(cfg, kSteps, &p_ref);
  cfg.attention = ref::parse_gpt_attention(variant);
  const std::vector<double> l_var = our_trajectory<float>(cfg, kSteps, &p_var);
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) worst = std::max(worst, std::abs(l_var[s] - l_ref[s]) / std::abs(l_ref[s]));
  const arma::fvec a(p_ref), b(p_var);
  const double param_rel = arma::norm(b - a) / arma::norm(a);
  std::printf("%s/%s: max per-step loss rel diff %.3g, final param rel diff %.3g\n", variant.c_str(), mask.c_str(),
              worst, param_rel);
  // Same tolerance and reason as float vs LibTorch above: the kernels sum in other orders (flash with an
  // online softmax), a float rounding difference that Adam's normalised steps compound over 50 steps.
  EXPECT_LT(worst, 1e-3);
  EXPECT_LT(param_rel, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, GptVariant,
                         ::testing::Combine(::testing::ValuesIn(trainable_impl_names()),  // the built-ins
                                            ::testing::Values("causal", "causal_sliding_window")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

ref::GptConfig lora_config() {
  ref::GptConfig cfg = small_config();
  cfg.lora_rank = 4;
  cfg.lora_alpha = 8;
  cfg.lora_targets = ref::lora_q | ref::lora_k | ref::lora_v | ref::lora_o | ref::lora_mlp;
  return cfg;
}

TEST(GptLora, AdapterGradientsMatchLibtorch) {
  const ref::GptConfig cfg = lora_config();
  ref::Gpt<double> model(cfg, 3);
  // B starts at zero, which makes dA zero; give B values so that both adapters' gradients carry signal.
  Rng rng(4);
  for (std::size_t i = 0; i < model.layout().entries.size(); ++i) {
    const ref::GptEntry& e = model.layout().entries[i];
    if (e.name.ends_with("lora_b")) model.params().mat(i) = rng.normal(e.rows, e.cols, 0.1);
  }
  ref::TokenIds inputs, targets;
  batch_for(0, cfg.vocab, 3, 10, inputs, targets);
  ref::GptCache<double> cache;
  const double loss = model.forward(inputs, targets, 3, cache);
  ref::GptTensors<double> g(model.layout());
  model.backward(cache, g);

  std::vector<at::Tensor> leaves = twin::gpt_leaves(model.params());
  std::vector<at::Tensor> views;
  for (const at::Tensor& l : leaves) views.push_back(l.t());
  at::Tensor tl = twin::gpt_loss(cfg, views, inputs, targets, 3);
  tl.backward();
  // one scalar, a mean of log-softmax terms summed in another order: a few hundred ulps at most
  EXPECT_NEAR(loss, tl.item<double>(), 1e-13 * std::abs(loss));
  int adapters = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const ref::GptEntry& e = model.layout().entries[i];
    if (!e.trainable) {
      EXPECT_FALSE(leaves[i].grad().defined()) << e.name;
      EXPECT_EQ(arma::norm(g.mat(i), "inf"), 0.0) << e.name << ": a frozen entry got a gradient";
      continue;
    }
    ++adapters;
    const arma::mat theirs = twin::to_arma<double>(leaves[i].grad());
    const double rel = arma::norm(g.mat(i) - theirs) / std::max(arma::norm(theirs), 1e-300);
    EXPECT_GT(arma::norm(theirs), 0.0) << e.name;
    EXPECT_LT(rel, kTolDoubleLibtorch) << e.name;  // the double policy of verify/tolerance.hpp, reason there
  }
  EXPECT_EQ(adapters, 2 * 6 * static_cast<int>(cfg.layers));
}

TEST(GptLora, TrainingMatchesLibtorchAndLeavesTheBaseBitIdentical) {
  const ref::GptConfig cfg = lora_config();
  ref::Gpt<double> model(cfg, 3);
  const std::vector<double> before = model.params().data();
  const Agreement a = train_in_lockstep<double>(cfg, 20, 3);
  std::printf("lora double: loss %.4f -> %.4f, max loss rel diff %.3g, max param rel diff %.3g\n", a.first_loss,
              a.last_loss, a.max_loss_rel, a.max_param_rel);
  EXPECT_LT(a.max_loss_rel, 1e-10);  // as DoubleMatchesLibtorch...
  EXPECT_LT(a.max_param_rel, 1e-10);
  EXPECT_LT(a.last_loss, a.first_loss) << "the adapters did not learn";

  ref::AdamW<double> opt(model.layout(), adam_config());
  ref::GptTensors<double> g(model.layout());
  ref::TokenIds inputs, targets;
  for (int s = 0; s < 10; ++s) {
    batch_for(static_cast<std::uint64_t>(s), cfg.vocab, 4, 12, inputs, targets);
    ref::GptCache<double> cache;
    model.forward(inputs, targets, 4, cache);
    model.backward(cache, g);
    opt.step(model.params(), g);
  }
  bool adapters_moved = false;
  for (const ref::GptEntry& e : model.layout().entries) {
    const int cmp = std::memcmp(before.data() + e.offset, model.params().data().data() + e.offset, e.size() * sizeof(double));
    if (e.trainable) adapters_moved |= cmp != 0;
    else EXPECT_EQ(cmp, 0) << e.name << " is frozen but changed";
  }
  EXPECT_TRUE(adapters_moved);
}

template <class T>
void merge_round_trip(double logits_tol, double weight_ulps) {
  const ref::GptConfig cfg = lora_config();
  ref::Gpt<T> model(cfg, 8);
  Rng rng(9);
  for (std::size_t i = 0; i < model.layout().entries.size(); ++i) {
    const ref::GptEntry& e = model.layout().entries[i];
    if (e.name.ends_with("lora_b")) model.params().mat(i) = arma::conv_to<arma::Mat<T>>::from(rng.normal(e.rows, e.cols, 0.1));
  }
  ref::TokenIds inputs, targets;
  batch_for(0, cfg.vocab, 2, 12, inputs, targets);
  const std::vector<T> before = model.params().data();
  const arma::Mat<T> z_adapters = model.logits(inputs, 2);
  model.merge_lora();
  // the largest |s B A| entry added, the other magnitude the round trip's rounding scales with
  double max_sba = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    max_sba = std::max(max_sba, std::abs(static_cast<double>(model.params().data()[i]) - before[i]));
  }
  const arma::Mat<T> z_merged = model.logits(inputs, 2);
  EXPECT_LT(arma::norm(z_merged - z_adapters) / arma::norm(z_adapters), logits_tol);
  model.unmerge_lora();
  // W + sBA - sBA: each element off by at most a couple of ulps of max(|W|, |sBA|)
  const std::vector<T>& after = model.params().data();
  double worst_ulps = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const double scale = std::max<double>(std::abs(before[i]), max_sba);
    worst_ulps = std::max(worst_ulps, std::abs(static_cast<double>(after[i]) - before[i]) /
                                          (scale * std::numeric_limits<T>::epsilon()));
  }
  EXPECT_LE(worst_ulps, weight_ulps);
  EXPECT_LT(arma::norm(model.logits(inputs, 2) - z_adapters) / arma::norm(z_adapters), logits_tol);
}

TEST(GptLora, MergeAndUnmergeWithoutDrift) {
  // logits: the merged product W0 + sBA is summed in another order than W0 x + s B (A x), a rounding
  // difference of the forward: about 1e3 eps of each dtype relative (double 1e-12, float 1e-4, as
  // kTolFloatLibtorch); weights: the round trip rounds twice, at most 2 ulps of max(|W|, |sBA|)
  merge_round_trip<double>(1e-12, 2.0);
  merge_round_trip<float>(kTolFloatLibtorch, 2.0);
}

}  // namespace
}  // namespace ped::verify
