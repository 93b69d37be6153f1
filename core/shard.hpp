// Sharded runs: one sweep (bench's benchmarks, verify's problems) cut into N disjoint parts that
// run on different machines or jobs and are merged back (report merge). The shared vocabulary:
//
//   - a shard spec "I/N" (--shard), I in [0, N);
//   - the assignment of a sweep's cases to shards, balanced by each case's estimated cost, the same
//     on every machine (integer costs, a fixed order of ties), so that every shard of one sweep
//     computes the same partition without talking to the others;
//   - the shard manifest: what a shard ran (its revision, profile, settings, host kind, the digest
//     of the whole sweep's case list and the indices of its own cases in it), which report merge
//     checks before it combines anything. bench writes it into its JSON context (one entry per
//     field, all strings), verify into a JSON file beside its CSV (shard_manifest_path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ped {

// The largest N of --shard I/N (a sweep has at most a few hundred thousand cases).
inline constexpr std::size_t kMaxShardCount = 100000;

struct ShardSpec {
  std::size_t index = 0;  // I, in [0, count)
  std::size_t count = 1;  // N, in [1, kMaxShardCount]
  bool operator==(const ShardSpec&) const = default;
};

// "I/N", decimal digits only. Throws std::invalid_argument naming `option` (e.g. "--shard"), the
// text and what was expected: "--shard '3/3': shard index 3 out of range, expected 0 <= I < N = 3".
ShardSpec parse_shard(const std::string& option, const std::string& text);
std::string to_string(const ShardSpec& s);  // "I/N"

// The shard of each case: longest processing time first (cases by cost, largest first, equal
// costs in list order; each to the shard whose total cost is the smallest so far, the lowest index
// among equals). Integer costs keep the sums exact, so every machine computes the same partition.
// Every shard gets at least one case when there are at least `count` cases. Throws
// std::invalid_argument naming the function for count = 0.
std::vector<std::size_t> assign_shards(std::span<const std::uint64_t> costs, std::size_t count);

// The indices (in list order) of the cases of shard `s` under assign_shards(costs, s.count).
std::vector<std::size_t> shard_cases(std::span<const std::uint64_t> costs, const ShardSpec& s);

// A digest of a sweep's case list: FNV-1a 64 over "key\tcost\n" of every case in order, as 16
// lowercase hex digits. Shards of one sweep share it; a shard of another selection, profile or cost
// model does not.
std::string case_list_digest(std::span<const std::string> keys, std::span<const std::uint64_t> costs);

// Keys of the manifest, the same in bench's JSON context and in verify's manifest file.
namespace shard_field {
inline constexpr const char* tool = "tool";                    // "bench" or "verify"
inline constexpr const char* git_rev = "git_rev";              // provenance.hpp: source_revision()
inline constexpr const char* profile = "profile";              // bench: quick|full; verify: "default" or "custom"
inline constexpr const char* settings = "settings";            // every other option that changes results, one line
inline constexpr const char* host_kind = "host_kind";          // provenance.hpp: host_kind()
inline constexpr const char* shard = "shard";                  // "I/N"
inline constexpr const char* cases_total = "cases_total";      // cases of the whole sweep
inline constexpr const char* case_list_digest = "case_list_digest";
inline constexpr const char* shard_cases = "shard_cases";      // this shard's case indices, comma-separated, run order
}  // namespace shard_field

struct ShardManifest {
  std::string tool;
  std::string git_rev;
  std::string profile;
  std::string settings;
  std::string host_kind;
  ShardSpec shard;
  std::size_t cases_total = 0;
  std::string case_list_digest;
  std::vector<std::size_t> case_indices;  // this shard's cases, as indices into the whole sweep's list, in run order
  bool operator==(const ShardManifest&) const = default;
};

// The manifest of shard `s` of a sweep whose cases have these keys and costs (in sweep order):
// shard, cases_total, case_list_digest and case_indices filled in; the caller sets the rest.
ShardManifest make_shard_manifest(std::span<const std::string> keys, std::span<const std::uint64_t> costs,
                                  const ShardSpec& s);

// The manifest as (key, value) strings, in shard_field order.
std::vector<std::pair<std::string, std::string>> manifest_fields(const ShardManifest& m);
// The manifest from such fields (other keys ignored). Throws ped::InputError naming `source` and the
// field when one is missing or malformed: a shard that is not I/N, cases_total not an integer,
// a digest that is not 16 hex digits, a case index not an integer below cases_total or given twice,
// a control character in a text field.
ShardManifest manifest_from_fields(const std::map<std::string, std::string>& fields, const std::string& source);

// verify's manifest beside its CSV: "x.csv" -> "x.shard.json", any other name gets ".shard.json" appended.
std::filesystem::path shard_manifest_path(const std::filesystem::path& csv);
// The manifest as one flat JSON object of strings.
std::string manifest_json(const ShardManifest& m);
// Throws ped::InputError naming `source` on text that is not a JSON object of strings, or as
// manifest_from_fields.
ShardManifest parse_manifest_json(const std::string& text, const std::string& source);
ShardManifest read_manifest_json(const std::filesystem::path& file);

// "--list-cases" output shared by bench and verify: a header line "shard\tcost\tcase", then one line
// per case in sweep order; then, as lines starting with '#', each shard's case count and total cost.
std::string list_cases_table(std::span<const std::string> keys, std::span<const std::uint64_t> costs,
                             std::size_t shard_count);

}  // namespace ped
