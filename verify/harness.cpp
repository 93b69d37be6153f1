#include "verify/harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "verify/report.hpp"

namespace ped::verify {

std::size_t Verdict::failures() const {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [](const CheckRow& r) { return !r.passed; }));
}

bool Verdict::passed() const { return !rows.empty() && failures() == 0; }

std::string Verdict::failure_report(std::size_t max_rows) const {
  if (rows.empty()) return "no check ran\n";
  std::ostringstream os;
  std::size_t shown = 0, failed = 0;
  for (const CheckRow& r : rows) {
    if (r.passed) continue;
    ++failed;
    if (shown == max_rows) continue;
    ++shown;
    os << r.op << '/' << (r.variant.empty() ? "-" : r.variant) << ' ' << r.dtype << " [" << r.shape << "]"
       << (r.mask.empty() ? "" : " mask=" + r.mask) << " seed=" << r.seed << " vs " << r.reference << ": "
       << r.quantity << " norm_rel_err " << format_number(r.metrics.norm_rel_err) << " > tolerance "
       << format_number(r.tolerance) << " (max_abs_err " << format_number(r.metrics.max_abs_err) << ", max_rel_err "
       << format_number(r.metrics.max_rel_err) << ")";
    if (!r.metrics.problem.empty()) os << ": " << r.metrics.problem;
    os << "; " << r.detail << '\n';
  }
  if (failed > shown) os << "... and " << failed - shown << " more failed rows\n";
  if (failed > 0) os << failed << " of " << rows.size() << " checks failed\n";
  return os.str();
}

namespace {

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

bool has_dtype(const AttentionImpl& impl, Dtype dtype) {
  return dtype == Dtype::f32 ? impl.supports<float>() : impl.supports<double>();
}

// The sweep verify would run for variant `name` with these options; std::invalid_argument names
// what is wrong.
SweepConfig attention_sweep(const std::string& name, const AttentionImpl& impl, const AttentionCheckOptions& options) {
  const std::string fn = "check_attention(" + name + "): ";
  if (options.ops.empty()) throw std::invalid_argument(fn + "ops is empty, expected attention ops such as sdpa");
  SweepConfig config;
  // Each mask text is read as verify --masks reads it (verify/sweep.hpp: a family or a Mask::parse text).
  for (const std::string& m : options.masks) {
    try {
      config.masks.push_back(mask_choice(m));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fn + "masks: " + e.what());
    }
  }
  for (const std::string& op : options.ops) {
    const OpCase& c = find_op_case(op);
    if (c.masks == std::vector<std::string>{""} || !contains(c.variants, name)) {
      throw std::invalid_argument(fn + "op '" + op + "' does not run attention implementation '" + name +
                                  "' (its variants: " + joined(c.variants) + ")");
    }
    // An op that has none of the masks asked for is left out (sdpa_large_scores runs three mask families).
    if (config.masks.empty() ||
        std::any_of(config.masks.begin(), config.masks.end(), [&](const std::string& m) { return op_takes_mask(c, m); })) {
      config.ops.push_back(op);
    }
  }
  if (config.ops.empty()) {
    throw std::invalid_argument(fn + "no op of " + joined(options.ops) + " runs masks " + joined(options.masks));
  }
  config.dtypes.clear();
  for (Dtype dt : options.dtypes) {
    if (has_dtype(impl, dt)) config.dtypes.push_back(dt);
  }
  if (config.dtypes.empty()) {
    throw std::invalid_argument(fn + "the implementation has none of the dtypes asked for");
  }
  config.shapes = options.shapes;
  config.variants = {name};
  config.seeds = options.seeds;
  config.references = options.references;
  config.fd = options.fd;
  config.memory_budget_gib = options.memory_budget_gib;
  config.tolerance_scale = options.tolerance_scale;
  if (options.isolated_time_limit.count() <= 0) {
    throw std::invalid_argument("check_attention: isolated_time_limit = " +
                                std::to_string(options.isolated_time_limit.count()) + " ms, expected > 0");
  }
  config.isolated_time_limit = options.isolated_time_limit;
  return config;
}

Verdict finish(std::vector<CheckRow> rows, const std::string& csv_path) {
  Verdict v{std::move(rows)};
  if (!csv_path.empty()) write_csv_atomic(csv_path, v.rows);
  return v;
}

class AttentionCheckTest : public testing::Test {
 public:
  AttentionCheckTest(std::string name, AttentionCheckOptions options)
      : name_(std::move(name)), options_(std::move(options)) {}
  void TestBody() override {
    const Verdict v = check_attention(name_, options_);
    EXPECT_TRUE(v.passed()) << v.failure_report();
  }

 private:
  std::string name_;
  AttentionCheckOptions options_;
};

class FailingRegistration : public testing::Test {
 public:
  explicit FailingRegistration(std::string why) : why_(std::move(why)) {}
  void TestBody() override { FAIL() << why_; }

 private:
  std::string why_;
};

void register_failure(const std::string& suite, const std::string& why) {
  testing::RegisterTest(suite.c_str(), "registration", nullptr, nullptr, __FILE__, __LINE__,
                        [why]() -> testing::Test* { return new FailingRegistration(why); });
}

}  // namespace

Verdict check_attention(const std::string& name, const AttentionCheckOptions& options) {
  const AttentionImpl& impl = attention_impl(name);
  const SweepConfig config = attention_sweep(name, impl, options);
  std::vector<CheckRow> rows;
  try {
    rows = run_sweep(config);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("check_attention(" + name + "): " + e.what());
  }
  return finish(std::move(rows), options.csv_path);
}

Verdict check_attention(AttentionImpl impl, const AttentionCheckOptions& options) {
  const std::string name = impl.name;
  register_attention_impl(std::move(impl));
  return check_attention(name, options);
}

namespace {

// Whether the op runs the implementation on the mask at all: for an op with feature sets
// (sdpa_features), in at least one set (an implementation that declares no feature runs in none).
bool runs_some_case(const OpCase& c, CaseParams params) {
  if (!c.runs) return true;
  if (c.feature_sets.empty()) return c.runs(params);
  for (const std::string& set : c.feature_sets) {
    params.features = set;
    if (c.runs(params)) return true;
  }
  return false;
}

}  // namespace

std::size_t register_attention_tests(const std::string& suite, AttentionImpl impl, const AttentionCheckOptions& options) {
  const std::string name = impl.name;
  std::size_t count = 0;
  try {
    register_attention_impl(std::move(impl));
    const AttentionImpl& registered = attention_impl(name);
    attention_sweep(name, registered, options);  // the same refusals as check_attention, up front
    const bool fd_possible =
        registered.supports<double>() && (registered.has_backward<float>() || registered.has_backward<double>());
    for (const std::string& op : options.ops) {
      const OpCase& c = find_op_case(op);
      const std::vector<Dims>& shapes = options.shapes.empty() ? c.default_shapes : options.shapes;
      std::vector<std::string> masks;
      for (const std::string& m : options.masks) masks.push_back(mask_choice(m));
      for (const std::string& mask : options.masks.empty() ? c.masks : masks) {
        if (!op_takes_mask(c, mask)) continue;
        check_mask_fits(c, mask, shapes);
        if (!runs_some_case(c, CaseParams{shapes.front(), name, mask})) continue;
        for (Dtype dt : options.dtypes) {
          if (!has_dtype(registered, dt)) continue;
          for (Reference ref : options.references.empty() ? c.references : options.references) {
            if (std::find(c.references.begin(), c.references.end(), ref) == c.references.end()) continue;
            if (ref == Reference::finite_difference && !fd_possible) continue;
            AttentionCheckOptions one = options;
            one.ops = {op};
            one.masks = {mask};
            one.dtypes = {dt};
            one.references = {ref};
            one.csv_path.clear();  // every case would overwrite the same file; --gtest_output=xml reports them
            const std::string test = op + "_" + to_string(dt) + "_" + to_string(ref) + "_" + mask;
            testing::RegisterTest(suite.c_str(), test.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                                  [name, one]() -> testing::Test* { return new AttentionCheckTest(name, one); });
            ++count;
          }
        }
      }
    }
  } catch (const std::exception& e) {
    register_failure(suite, std::string("register_attention_tests: ") + e.what());
    return count + 1;
  }
  if (count == 0) {
    register_failure(suite, "register_attention_tests(" + name + "): the options leave no check to run");
    return 1;
  }
  return count;
}

Verdict gradcheck(const std::vector<LayerInput>& inputs, const LayerForward& forward, const LayerBackward& backward,
                  const GradcheckOptions& options) {
  const std::string fn = "gradcheck(" + options.name + "): ";
  if (inputs.empty()) throw std::invalid_argument(fn + "no inputs, expected at least one");
  if (!forward || !backward) throw std::invalid_argument(fn + "the forward or the backward callable is empty");
  if (options.tolerance && !(std::isfinite(*options.tolerance) && *options.tolerance > 0)) {
    throw std::invalid_argument(fn + "tolerance " + format_number(*options.tolerance) +
                                ", expected a positive finite number");
  }
  Problem p{.op = options.name, .seed = options.seed};
  std::string shape;
  for (const LayerInput& in : inputs) {
    if (in.name.empty()) throw std::invalid_argument(fn + "an input has no name");
    for (const Input& seen : p.inputs) {
      if (seen.name == in.name) throw std::invalid_argument(fn + "input name '" + in.name + "' is given twice");
    }
    p.inputs.push_back({in.name, in.value});
    shape += (shape.empty() ? "" : " ") + in.name + "=" + std::to_string(in.value.n_rows) + "x" +
             std::to_string(in.value.n_cols);
  }
  p.shape = shape;
  p.outputs = {"y"};
  p.dtypes = {Dtype::f64};
  p.forward = [forward](Dtype, const Tensors& in) -> Tensors { return {forward(in)}; };
  p.backward = [backward](Dtype, const Tensors& in, const Tensors& dout) -> Tensors { return backward(in, dout.at(0)); };
  if (options.tolerance) {
    p.tolerance_f64 = options.tolerance;
    p.tolerance_reason = options.tolerance_reason;
  }
  const FiniteDifferenceOptions fd = options.fd;
  return finish(check_problem(p, {Dtype::f64}, {Reference::finite_difference}, fd), options.csv_path);
}

}  // namespace ped::verify
