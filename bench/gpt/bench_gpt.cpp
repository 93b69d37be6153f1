// One training step of the tiny GPT (forward, backward, AdamW) by the hand-derived reference, split by
// layer, next to the same step by the LibTorch twin (autograd + its AdamW), in float.
//
// Sizes: "small" is the train command's default (D=64, H=4, F=256, L=2, T=64, V=76, B=16);
// "gpt2_width" has GPT-2 small's width, heads and feed-forward width (D=768, H=12, F=3072) with 2 layers,
// 64 tokens, a byte vocabulary (V=256) and B=2, to stay quick.
//
// Ours keeps one GptCache across steps, as a training loop does (the attention path's buffers and GELU's
// output are reused); LibTorch's autograd builds its graph afresh each step, as it always does.
//
// Counters are per step, in milliseconds: fwd_<layer> and bwd_<layer> for ours (the layer kinds of
// ped::ref::GptProfile), forward_ms / backward_ms / optimizer_ms for both. Threads: --threads=N
// (default 1, at most 1024, given once) for OpenBLAS, OpenMP and LibTorch alike, set before any run.
// Exit status 2 on a bad --threads or an argument Google Benchmark does not know.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/numbers.hpp"
#include "bench/allocator.hpp"
#include "bench/benchmark_flags.hpp"
#include "reference/adamw.hpp"
#include "reference/gpt.hpp"
#include "twins/gpt_twin.hpp"
#include "core/rng.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

using ped::ref::GptConfig;
using Clock = std::chrono::steady_clock;

int g_threads = 1;

struct Size {
  const char* name;
  GptConfig cfg;
  arma::uword batch, seq;
};

const Size& size_of(std::int64_t i) {
  static const Size sizes[] = {
      {"small", {.vocab = 76, .context = 64, .width = 64, .heads = 4, .layers = 2, .ffn = 256}, 16, 64},
      {"gpt2_width", {.vocab = 256, .context = 64, .width = 768, .heads = 12, .layers = 2, .ffn = 3072}, 2, 64},
  };
  return sizes[i];
}

void batch_of(const Size& s, ped::ref::TokenIds& inputs, ped::ref::TokenIds& targets) {
  ped::Rng rng(3);
  inputs = rng.integers(s.batch * s.seq, 0, static_cast<std::int64_t>(s.cfg.vocab));
  targets = rng.integers(s.batch * s.seq, 0, static_cast<std::int64_t>(s.cfg.vocab));
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void BM_gpt_step_reference(benchmark::State& state) {
  const Size& s = size_of(state.range(0));
  GptConfig cfg = s.cfg;
  cfg.threads = g_threads;
  ped::ref::Gpt<float> model(cfg, 1);
  ped::ref::AdamW<float> opt(model.layout(), {.lr = 1e-4});
  ped::ref::GptTensors<float> grads(model.layout());
  ped::ref::TokenIds inputs, targets;
  batch_of(s, inputs, targets);
  ped::ref::GptProfile profile;
  ped::ref::GptCache<float> cache;  // kept across steps, as a training loop keeps it: its buffers are reused
  cache.profile = &profile;
  double fwd = 0, bwd = 0, step = 0;
  for (auto _ : state) {
    auto t = Clock::now();
    benchmark::DoNotOptimize(model.forward(inputs, targets, s.batch, cache));
    fwd += since(t);
    t = Clock::now();
    model.backward(cache, grads);
    bwd += since(t);
    t = Clock::now();
    opt.step(model.params(), grads);
    step += since(t);
  }
  const double n = static_cast<double>(state.iterations()) / 1e3;  // per step, in ms
  for (std::size_t p = 0; p < ped::ref::GptProfile::parts; ++p) {
    state.counters[std::string("fwd_") + ped::ref::GptProfile::name(p)] = profile.forward[p] / n;
    state.counters[std::string("bwd_") + ped::ref::GptProfile::name(p)] = profile.backward[p] / n;
  }
  state.counters["forward_ms"] = fwd / n;
  state.counters["backward_ms"] = bwd / n;
  state.counters["optimizer_ms"] = step / n;
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(s.batch * s.seq) * state.iterations(),
                                                      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.name) + " reference");
}

void BM_gpt_step_libtorch(benchmark::State& state) {
  const Size& s = size_of(state.range(0));
  ped::ref::Gpt<float> model(s.cfg, 1);
  std::vector<at::Tensor> leaves = ped::twin::gpt_leaves(model.params());
  ped::twin::TorchAdamW opt{.cfg = {.lr = 1e-4}};
  ped::ref::TokenIds inputs, targets;
  batch_of(s, inputs, targets);
  double fwd = 0, bwd = 0, step = 0;
  for (auto _ : state) {
    auto t = Clock::now();
    std::vector<at::Tensor> views;
    for (const at::Tensor& l : leaves) views.push_back(l.t());
    at::Tensor loss = ped::twin::gpt_loss(s.cfg, views, inputs, targets, static_cast<std::int64_t>(s.batch));
    benchmark::DoNotOptimize(loss.item<float>());
    fwd += since(t);
    t = Clock::now();
    loss.backward();
    bwd += since(t);
    t = Clock::now();
    ped::twin::torch_adamw_step(opt, model.layout(), leaves);
    step += since(t);
  }
  const double n = static_cast<double>(state.iterations()) / 1e3;
  state.counters["forward_ms"] = fwd / n;
  state.counters["backward_ms"] = bwd / n;
  state.counters["optimizer_ms"] = step / n;
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(s.batch * s.seq) * state.iterations(),
                                                      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.name) + " libtorch");
}

BENCHMARK(BM_gpt_step_reference)->ArgName("size")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gpt_step_libtorch)->ArgName("size")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// --threads N or --threads=N, once: the whole text an integer in [1, 1024]. Returns false (after
// printing why) on a bad or repeated value; removes the option from the arguments.
bool take_threads(std::vector<char*>& args) {
  bool given = false;
  for (std::size_t i = 1; i < args.size();) {
    const std::string arg = args[i];
    std::string value;
    std::size_t used = 1;
    if (arg == "--threads") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "bench_gpt: --threads needs a value, an integer in [1, 1024]\n");
        return false;
      }
      value = args[i + 1];
      used = 2;
    } else if (arg.starts_with("--threads=")) {
      value = arg.substr(10);
    } else {
      ++i;
      continue;
    }
    if (given) {
      std::fprintf(stderr, "bench_gpt: --threads is given more than once\n");
      return false;
    }
    given = true;
    const std::optional<int> threads = ped::parse_integer_in(std::string_view(value), 1, 1024);
    if (!threads) {
      std::fprintf(stderr, "bench_gpt: --threads expects an integer in [1, 1024], got '%s'\n", value.c_str());
      return false;
    }
    g_threads = *threads;
    args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i + used));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // --threads is ours; the rest goes to Google Benchmark.
  std::vector<char*> rest(argv, argv + argc);
  if (!take_threads(rest)) return 2;
  ped::bench::AllocatorSetting allocator{};  // PED_BENCH_ALLOCATOR, as bench's (bench/allocator.hpp)
  try {
    allocator = ped::bench::allocator_from_environment("bench_gpt");
    ped::bench::apply_allocator(allocator);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  if (const std::string error = ped::bench::benchmark_flag_error(std::vector<std::string>(rest.begin() + 1, rest.end()),
                                                                 "bench_gpt");
      !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  openblas_set_num_threads(g_threads);
  at::set_num_threads(g_threads);
  int n = static_cast<int>(rest.size());
  rest.push_back(nullptr);
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
  benchmark::AddCustomContext("threads", std::to_string(g_threads));
  benchmark::AddCustomContext("allocator", ped::bench::to_string(allocator));
  benchmark::AddCustomContext("allocator_detail", ped::bench::describe(allocator));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
