// `report merge`: the outputs of the shards of one sweep (bench --shard I/N, verify --shard I/N,
// core/shard.hpp) -> one set of files, as one unsharded run would have written them.
//
// Each shard directory holds what a shard wrote under the names below: bench's Google Benchmark JSON
// (its context carries the shard manifest, one string entry per field of ped::manifest_fields),
// and/or verify's CSV with its manifest beside it (ped::shard_manifest_path). Every directory must
// hold the same kinds of output. Before anything is written, every shard is read and checked:
//
//   - each file readable and the output of a sharded run (a manifest of the right tool);
//   - one revision (git_rev), one profile, one settings line, one case list (cases_total,
//     case_list_digest) cut into one shard count N;
//   - bench only: one host kind (timings of different kinds of machine are not one series;
//     different host names of one kind are fine). verify's verdicts do not depend on the machine
//     the way timings do, so its shards may come from different host kinds;
//   - every shard 0..N-1 present exactly once;
//   - each shard's outputs match its manifest: bench, every entry's family_index names one of the
//     shard's cases and every case has entries; verify, the CSV holds as many cases (contiguous
//     rows of one schema::verify_case_key) as the manifest lists;
//   - no case in two shards (by index, by benchmark name or benchmark key, by verify case key);
//   - the shards together cover every case 0..cases_total-1.
// A failed check throws ped::InputError naming the shard directories and the values concerned.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace ped::reports {

// The files of a shard directory, as the sharded scripts name them; verify's manifest is
// ped::shard_manifest_path(merge_verify_csv) ("verify.shard.json").
inline constexpr const char* merge_bench_json = "bench.json";
inline constexpr const char* merge_verify_csv = "verify.csv";
// The benchmark CSV merge writes beside the merged JSON; its samples and phases companions are
// samples_path_for / phases_path_for of it (bench.samples.csv, bench.phases.csv).
inline constexpr const char* merge_bench_csv = "bench.csv";

struct MergedFile {
  std::filesystem::path file;  // in the output directory
  std::string contents;
};

// What merge writes, computed and checked in full before anything is written.
struct MergePlan {
  std::filesystem::path out_dir;
  std::vector<MergedFile> files;     // in the order written
  std::vector<std::string> summary;  // one line per file: "wrote FILE (cases, rows, shards)"
  std::vector<std::string> notes;    // bench runs the CSVs leave out (errors, non-attention runs), as convert tells them
  std::size_t verify_rows = 0;       // rows of the merged verify.csv
  std::size_t verify_failed = 0;     // of which passed is false (the command then exits 1)
};

// Reads and checks the shard directories (at least one) and computes the merged files:
//   bench.json         one Google Benchmark JSON: the context of the lowest shard with the manifest
//                      of the complete sweep (shard 0/1, shard_cases 0..T-1, the same digest,
//                      cases_total, git_rev, profile, settings, host_kind), host_name the distinct
//                      host names joined by ",", and "shards" = N (a string, as custom context
//                      entries are); benchmarks = every shard's entries ordered by global case index
//                      (a case's entries in their order), family_index renumbered to that index.
//   bench.csv, bench.samples.csv, bench.phases.csv
//                      what `report convert` writes, computed per shard with that shard's own context
//                      (host, date, git_rev and the in-run ceilings of each row stay its shard's), the
//                      rows of all shards sorted by key as convert sorts them. Not written when no
//                      shard ran an attention benchmark (a note says so).
//   verify.csv         every shard's data lines, as they were, in global case order under the shards'
//                      common header line.
//   verify.shard.json  the manifest of the complete sweep (shard 0/1, every index); host_kind the
//                      distinct host kinds of the shards joined by "; ".
// Also refuses an out_dir that is one of the shard directories, or exists and is not a directory.
// Throws ped::InputError; writes nothing.
MergePlan plan_merge(const std::vector<std::filesystem::path>& shard_dirs, const std::filesystem::path& out_dir);

// Creates plan.out_dir when missing and writes every file of the plan: all staged first, then
// renamed into place together (core/atomic_file.hpp StagedFiles).
void write_merge(const MergePlan& plan);

}  // namespace ped::reports
