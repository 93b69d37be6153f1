#include "bench/plugin_trial.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "bench/harness.hpp"
#include "plugin_host/child_process.hpp"

namespace ped::bench {

std::map<std::string, std::string> trial_run_plugins(const BenchConfig& config) {
  std::map<std::string, std::string> failed;
  if (config.seq_lens.empty()) return failed;
  const std::int64_t n = *std::min_element(config.seq_lens.begin(), config.seq_lens.end());
  // Whole milliseconds, rounded up: a limit above zero never becomes zero, which would mean none.
  const std::chrono::milliseconds time_limit(static_cast<long long>(std::ceil(config.plugin_timeout * 1000)));
  const bool any_backward = std::any_of(config.passes.begin(), config.passes.end(),
                                        [](Pass p) { return p != Pass::forward; });
  for (const Contender& contender : config.contenders) {
    if (is_libtorch(contender) || !implementation_of(contender).isolate) continue;
    const AttentionImpl& impl = implementation_of(contender);
    for (std::int64_t d : config.head_dims) {
      for (const Mask& mask : config.masks) {
        if (!runs(contender, Pass::forward, mask)) continue;
        const AttentionShape shape{.batch = config.batch, .heads = config.heads, .seq_q = n, .seq_k = n, .head_dim = d};
        const bool backward = any_backward && runs(contender, Pass::backward, mask);
        for (bool with_backward : {false, true}) {
          if (with_backward && !backward) continue;
          const plugin::ChildOutcome outcome = plugin::run_in_child([&] {
            const float scale = 1.0f / std::sqrt(static_cast<float>(d));
            const AttentionOptions options{.threads = config.threads};
            const auto elements = static_cast<std::size_t>(shape.batch * shape.heads * n * d);
            std::vector<float> q(elements), k(elements), v(elements), out(elements), dout(elements), dq(elements),
                dk(elements), dv(elements);
            std::vector<RowStatistic<float>> lse(static_cast<std::size_t>(shape.batch * shape.heads * n));
            fill_uniform(q.data(), elements, 1);
            fill_uniform(k.data(), elements, 2);
            fill_uniform(v.data(), elements, 3);
            fill_uniform(dout.data(), elements, 4);
            run_forward<float>(impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), lse.data(), options);
            if (with_backward) {
              run_backward<float>(impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), lse.data(),
                                  dout.data(), dq.data(), dk.data(), dv.data(), options);
            }
            return std::string("ok");
          }, {.time_limit = time_limit});
          if (!outcome.completed) {
            failed[contender.name] = "plugin '" + contender.name + "' failed its trial run (" +
                                     (with_backward ? "forward and backward" : "forward") + ", mask " +
                                     mask.name() + ", B=" + std::to_string(shape.batch) +
                                     " H=" + std::to_string(shape.heads) + " N=" + std::to_string(n) +
                                     " d=" + std::to_string(d) + "): child process " + outcome.failure;
            break;
          }
        }
        if (failed.contains(contender.name)) break;
      }
      if (failed.contains(contender.name)) break;
    }
  }
  return failed;
}

}  // namespace ped::bench
