// Seeded random inputs. std::mt19937_64 with libstdc++'s distributions: the same seed gives the
// same values on every machine this project builds on. Copies of an Rng share one engine.
//
// Header-only, and the one header of core/ that needs Armadillo: its includers link it (through
// pedestrian::reference), so the core library itself does not.
#pragma once

#include <armadillo>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

namespace ped {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(std::make_shared<std::mt19937_64>(seed)) {}

  arma::mat normal(arma::uword rows, arma::uword cols, double stddev = 1.0) {
    std::normal_distribution<double> dist(0.0, stddev);
    arma::mat m(rows, cols);
    for (double& x : m) x = dist(*engine_);
    return m;
  }

  arma::mat uniform(arma::uword rows, arma::uword cols, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    arma::mat m(rows, cols);
    for (double& x : m) x = dist(*engine_);
    return m;
  }

  // n integers uniform in [lo, hi_exclusive).
  std::vector<std::int64_t> integers(std::size_t n, std::int64_t lo, std::int64_t hi_exclusive) {
    std::uniform_int_distribution<std::int64_t> dist(lo, hi_exclusive - 1);
    std::vector<std::int64_t> v(n);
    for (auto& x : v) x = dist(*engine_);
    return v;
  }

 private:
  std::shared_ptr<std::mt19937_64> engine_;
};

}  // namespace ped
