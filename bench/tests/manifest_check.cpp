// bench_manifest_check BENCH_JSON LIST_CASES_TABLE SHARD: checks what report merge relies on in one
// shard's Google Benchmark JSON (test bench_shard_manifest in ../CMakeLists.txt):
//   - the context's entries read back by ped::manifest_from_fields: tool bench, the shard given, the
//     digest of the case list that `bench --list-cases` printed for the same options, the indices of
//     ped::shard_cases; git_rev, profile, settings and host_kind not empty;
//   - the file is JSON (no NaN), as report merge reads it;
//   - every run's family_index k is the k-th case of shard_cases: its name is that case's key (plus
//     Google Benchmark's suffixes), and every case of the shard has runs.
// Prints what differs and exits 1; exits 0 when all holds.
#include "core/shard.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "bench_manifest_check: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int check_files(char** argv);

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: bench_manifest_check BENCH_JSON LIST_CASES_TABLE I/N\n";
    return 2;
  }
  try {
    return check_files(argv);
  } catch (const std::exception& error) {
    std::cerr << "bench_manifest_check: " << error.what() << "\n";
    return 1;
  }
}

int check_files(char** argv) {
  // Strict JSON: a NaN (Google Benchmark's variation of a counter that is 0 in every repetition,
  // which bench's MemoryJsonReporter writes as 0) fails the check.
  const nlohmann::json json = nlohmann::json::parse(std::ifstream(argv[1]));
  std::map<std::string, std::string> fields;
  for (const auto& [key, value] : json.at("context").items()) {
    if (value.is_string()) fields[key] = value.get<std::string>();
  }
  const ped::ShardManifest m = ped::manifest_from_fields(fields, argv[1]);
  check(m.tool == "bench", "tool '" + m.tool + "'");
  check(ped::to_string(m.shard) == argv[3], "shard " + ped::to_string(m.shard) + ", expected " + argv[3]);
  for (const std::string& text : {m.git_rev, m.profile, m.settings, m.host_kind}) check(!text.empty(), "an empty field");

  // The --list-cases table: "shard\tcost\tcase" lines after the header, '#' lines at the end.
  std::vector<std::string> keys;
  std::vector<std::uint64_t> costs;
  std::ifstream table(argv[2]);
  std::string line;
  std::getline(table, line);
  check(line == "shard\tcost\tcase", "table header '" + line + "'");
  while (std::getline(table, line)) {
    if (line.starts_with("#")) continue;
    std::istringstream fields_of(line);
    std::string shard, cost, key;
    std::getline(fields_of, shard, '\t');
    std::getline(fields_of, cost, '\t');
    std::getline(fields_of, key);
    keys.push_back(key);
    costs.push_back(std::stoull(cost));
  }
  check(m.cases_total == keys.size(), "cases_total " + std::to_string(m.cases_total) + ", table " +
                                          std::to_string(keys.size()));
  check(m.case_list_digest == ped::case_list_digest(keys, costs), "case_list_digest differs from the table's");
  check(m.case_indices == ped::shard_cases(costs, m.shard), "shard_cases differ from ped::shard_cases");

  std::set<std::size_t> families;
  for (const nlohmann::json& run : json.at("benchmarks")) {
    const auto family = run.at("family_index").get<std::size_t>();
    const std::string name = run.at("run_name").get<std::string>();
    families.insert(family);
    if (family >= m.case_indices.size()) {
      check(false, "family_index " + std::to_string(family) + " of " + name + " past the shard's cases");
      continue;
    }
    const std::string& key = keys[m.case_indices[family]];
    check(name == key || name.starts_with(key + "/"), "family_index " + std::to_string(family) + ": run " + name +
                                                          ", expected case " + key);
  }
  check(families.size() == m.case_indices.size(), std::to_string(families.size()) + " families for " +
                                                      std::to_string(m.case_indices.size()) + " cases");
  if (failures == 0) std::printf("bench_manifest_check: %zu runs of %zu cases match\n", json.at("benchmarks").size(),
                                 m.case_indices.size());
  return failures == 0 ? 0 : 1;
}
