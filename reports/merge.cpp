#include "reports/merge.hpp"

#include "core/atomic_file.hpp"
#include "core/csv_reader.hpp"
#include "core/errors.hpp"
#include "core/numbers.hpp"
#include "core/schemas.hpp"
#include "core/shard.hpp"
#include "reports/csv_io.hpp"
#include "reports/gbench_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

namespace ped::reports {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// The first few items of a list, for messages: "3, 7, 9, ..." (at most `shown`).
std::string first_few(const std::vector<std::size_t>& items, std::size_t shown = 5) {
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < shown; ++i) text += concat(i == 0 ? "" : ", ", items[i]);
  if (items.size() > shown) text += ", ...";
  return text;
}

std::string read_file_text(const fs::path& file, const char* what) {
  std::string text = csv::read_text_file(file, what);
  if (text.empty()) throw_input_error(file.string(), ":1: empty file (expected ", what, ")");
  return text;
}

// What the shards of one kind (bench or verify) have in common, checked shard by shard.
struct ShardFacts {
  fs::path dir;
  fs::path file;  // the file whose manifest it is (bench.json, verify.shard.json)
  ShardManifest manifest;
};

std::string shard_name(const ShardFacts& s) { return concat("shard ", to_string(s.manifest.shard), " (", s.dir.string(), ")"); }

// The checks every kind shares: one revision, profile, settings, case list and shard count; each
// shard 0..N-1 exactly once; no case index twice. `shards` in the order given; on return they are
// ordered by shard index.
template <class Shard>
void check_common(std::vector<Shard>& shards, const char* kind) {
  const ShardFacts& first = shards.front().facts;
  for (const Shard& shard : shards) {
    const ShardFacts& s = shard.facts;
    const ShardManifest& a = first.manifest;
    const ShardManifest& b = s.manifest;
    if (a.git_rev != b.git_rev) {
      throw_input_error("shards of different revisions: ", first.dir.string(), " (rev ", a.git_rev, ") and ", s.dir.string(),
                        " (rev ", b.git_rev, ") in their ", kind, "; merge the shards of one revision");
    }
    if (a.profile != b.profile) {
      throw_input_error("shards of different profiles: ", first.dir.string(), " (profile ", a.profile, ") and ",
                        s.dir.string(), " (profile ", b.profile, ") in their ", kind);
    }
    if (a.settings != b.settings) {
      throw_input_error("shards of different settings: ", first.dir.string(), " (settings '", a.settings, "') and ",
                        s.dir.string(), " (settings '", b.settings, "') in their ", kind);
    }
    if (a.cases_total != b.cases_total || a.case_list_digest != b.case_list_digest) {
      throw_input_error("shards of different case lists: ", first.dir.string(), " (", a.cases_total, " cases, digest ",
                        a.case_list_digest, ") and ", s.dir.string(), " (", b.cases_total, " cases, digest ",
                        b.case_list_digest, ") in their ", kind);
    }
    if (a.shard.count != b.shard.count) {
      throw_input_error("shards of different case lists: ", first.dir.string(), " (shard ", to_string(a.shard), ") and ",
                        s.dir.string(), " (shard ", to_string(b.shard), ") cut the sweep into ", a.shard.count, " and ",
                        b.shard.count, " shards in their ", kind);
    }
  }
  std::stable_sort(shards.begin(), shards.end(),
                   [](const Shard& x, const Shard& y) { return x.facts.manifest.shard.index < y.facts.manifest.shard.index; });
  for (std::size_t i = 1; i < shards.size(); ++i) {
    if (shards[i].facts.manifest.shard == shards[i - 1].facts.manifest.shard) {
      throw_input_error("shard ", to_string(shards[i].facts.manifest.shard), " given twice (duplicated shard): ",
                        shards[i - 1].facts.dir.string(), " and ", shards[i].facts.dir.string(), " in their ", kind);
    }
  }
  const std::size_t count = first.manifest.shard.count;
  std::vector<std::size_t> missing;
  std::size_t next = 0;
  for (const Shard& shard : shards) {
    for (; next < shard.facts.manifest.shard.index; ++next) missing.push_back(next);
    next = shard.facts.manifest.shard.index + 1;
  }
  for (; next < count; ++next) missing.push_back(next);
  if (!missing.empty()) {
    std::string given;
    for (const Shard& shard : shards) given += concat(given.empty() ? "" : ", ", shard_name(shard.facts));
    throw_input_error("shard ", missing.front(), "/", count, " missing: the ", kind, " given are ", given,
                      missing.size() > 1 ? concat("; ", missing.size(), " shards missing in all (", first_few(missing), ")")
                                         : std::string());
  }
  std::map<std::size_t, const ShardFacts*> owner;
  for (const Shard& shard : shards) {
    for (std::size_t index : shard.facts.manifest.case_indices) {
      const auto [it, inserted] = owner.emplace(index, &shard.facts);
      if (!inserted) {
        throw_input_error("overlapping shards: case ", index, " is in ", shard_name(*it->second), " and in ",
                          shard_name(shard.facts), " (", kind, ")");
      }
    }
  }
}

// Every case 0..total-1 in some shard (after check_common: no case twice, every index < total).
template <class Shard>
void check_coverage(const std::vector<Shard>& shards, const char* kind, const char* why) {
  const std::size_t total = shards.front().facts.manifest.cases_total;
  std::set<std::size_t> covered;
  for (const Shard& shard : shards) covered.insert(shard.facts.manifest.case_indices.begin(), shard.facts.manifest.case_indices.end());
  if (covered.size() == total) return;
  std::vector<std::size_t> missing;  // the first few
  for (std::size_t i = 0; i < total && missing.size() < 6; ++i) {
    if (!covered.contains(i)) missing.push_back(i);
  }
  throw_input_error("the shards' ", kind, " cover ", covered.size(), " of ", total, " cases: ", total - covered.size(),
                    " missing (case ", first_few(missing), "); ", why);
}

// The manifest of the complete sweep the shards make up.
ShardManifest complete_manifest(const ShardManifest& any, const std::string& host_kind) {
  ShardManifest m = any;
  m.host_kind = host_kind;
  m.shard = ShardSpec{0, 1};
  m.case_indices.resize(m.cases_total);
  std::iota(m.case_indices.begin(), m.case_indices.end(), std::size_t{0});
  return m;
}

// ---- bench ----

struct BenchShard {
  ShardFacts facts;
  std::string text;
  ordered_json document;
  GbenchRun run;
  std::vector<std::size_t> entry_case;  // the global case index of each entry of "benchmarks"
};

std::string entry_name(const ordered_json& entry) {
  for (const char* field : {"run_name", "name"}) {
    const auto it = entry.find(field);
    if (it != entry.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return {};
}

BenchShard read_bench_shard(const fs::path& dir) {
  BenchShard shard;
  shard.facts.dir = dir;
  shard.facts.file = dir / merge_bench_json;
  const std::string source = shard.facts.file.string();
  shard.text = read_file_text(shard.facts.file, "a bench shard's Google Benchmark JSON");
  try {
    shard.document = ordered_json::parse(shard.text);
  } catch (const ordered_json::exception& error) {
    throw_input_error(source, ": not valid JSON: ", printable(error.what()));
  }
  if (!shard.document.is_object() || !shard.document.contains("benchmarks") || !shard.document["benchmarks"].is_array()) {
    throw_input_error(source, ": not Google Benchmark JSON: no \"benchmarks\" array");
  }
  std::map<std::string, std::string> fields;
  if (const auto it = shard.document.find("context"); it != shard.document.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      if (value.is_string()) fields[key] = value.get<std::string>();
    }
  }
  shard.facts.manifest = manifest_from_fields(fields, source);
  const ShardManifest& m = shard.facts.manifest;
  if (m.tool != "bench") {
    throw_input_error(source, ": shard field tool '", m.tool, "': expected bench (the manifest of a bench run)");
  }
  shard.run = parse_gbench_json(shard.text, source);
  // family_index k (the shard's k-th registered benchmark) is case shard_cases[k].
  const ordered_json& benchmarks = shard.document["benchmarks"];
  std::vector<bool> has_entries(m.case_indices.size(), false);
  for (std::size_t i = 0; i < benchmarks.size(); ++i) {
    const ordered_json& entry = benchmarks[i];
    const auto it = entry.find("family_index");
    if (it == entry.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0) {
      throw_input_error(source, ": benchmarks[", i, "] (", printable(entry_name(entry)),
                        ") has no family_index (a whole number >= 0): not the output of a sharded bench run");
    }
    const auto family = static_cast<std::size_t>(it->get<std::int64_t>());
    if (family >= m.case_indices.size()) {
      throw_input_error(source, ": benchmarks[", i, "] (", printable(entry_name(entry)), ") has family_index ", family,
                        ", but the shard's manifest lists ", m.case_indices.size(),
                        " cases (shard_cases): a benchmark without a case, the outputs do not match the manifest");
    }
    has_entries[family] = true;
    shard.entry_case.push_back(m.case_indices[family]);
  }
  const auto ran = static_cast<std::size_t>(std::count(has_entries.begin(), has_entries.end(), true));
  if (ran != m.case_indices.size()) {
    std::vector<std::size_t> without;
    for (std::size_t k = 0; k < has_entries.size(); ++k) {
      if (!has_entries[k]) without.push_back(m.case_indices[k]);
    }
    throw_input_error(source, ": ran ", ran, " benchmarks, but the shard's manifest lists ", m.case_indices.size(),
                      " cases (shard_cases): no runs of case ", first_few(without),
                      " (a run with --benchmark_filter, or one cut short); the outputs do not match the manifest");
  }
  return shard;
}

void check_bench_shards(std::vector<BenchShard>& shards) {
  check_common(shards, merge_bench_json);
  // Timings of different kinds of machine are not one series.
  for (const BenchShard& shard : shards) {
    const BenchShard& first = shards.front();
    if (shard.facts.manifest.host_kind != first.facts.manifest.host_kind) {
      throw_input_error("timings from different kinds of machine: ", shard_name(first.facts), " ran on '",
                        first.facts.manifest.host_kind, "', ", shard_name(shard.facts), " on '",
                        shard.facts.manifest.host_kind,
                        "'; the report would fit one curve through both and read the machines' difference as "
                        "scaling: run every shard of a timing sweep on one kind of machine");
    }
  }
  // No benchmark in two shards, by name and by the key the CSVs hold.
  std::map<std::string, std::pair<const BenchShard*, std::size_t>> name_owner;
  std::map<BenchmarkKey, const BenchShard*> key_owner;
  for (const BenchShard& shard : shards) {
    const ordered_json& benchmarks = shard.document["benchmarks"];
    for (std::size_t i = 0; i < benchmarks.size(); ++i) {
      const std::string name = entry_name(benchmarks[i]);
      if (name.empty()) continue;
      const auto [it, inserted] = name_owner.emplace(name, std::pair{&shard, shard.entry_case[i]});
      if (!inserted && it->second.first != &shard) {
        throw_input_error("overlapping shards: benchmark '", printable(name), "' is in ", shard_name(it->second.first->facts),
                          " (case ", it->second.second, ") and in ", shard_name(shard.facts), " (case ",
                          shard.entry_case[i], ")");
      }
    }
    for (const MeasuredSample& sample : shard.run.samples) {
      const auto [it, inserted] = key_owner.emplace(sample.sample.key, &shard);
      if (!inserted && it->second != &shard) {
        throw_input_error("overlapping shards: benchmark ", benchmark_name(sample.sample.key), " is in ",
                          shard_name(it->second->facts), " and in ", shard_name(shard.facts));
      }
    }
  }
  check_coverage(shards, merge_bench_json,
                 "every shard must run all of its cases (no --benchmark_filter on a sharded run)");
}

void plan_bench(std::vector<BenchShard>& shards, MergePlan& plan) {
  const std::size_t count = shards.front().facts.manifest.shard.count;
  const ShardManifest complete = complete_manifest(shards.front().facts.manifest, shards.front().facts.manifest.host_kind);
  // The context: the lowest shard's, with the complete sweep's manifest and every host name.
  std::vector<std::string> hosts;
  for (const BenchShard& shard : shards) {
    if (std::find(hosts.begin(), hosts.end(), shard.run.context.host) == hosts.end()) hosts.push_back(shard.run.context.host);
  }
  std::string host_names;
  for (const std::string& host : hosts) host_names += (host_names.empty() ? "" : ",") + host;
  ordered_json context = ordered_json::object();
  if (const auto it = shards.front().document.find("context"); it != shards.front().document.end()) context = *it;
  context["host_name"] = host_names;
  for (const auto& [key, value] : manifest_fields(complete)) context[key] = value;
  context["shards"] = std::to_string(count);

  struct Entry {
    std::size_t global;
    const ordered_json* entry;
  };
  std::vector<Entry> entries;
  for (const BenchShard& shard : shards) {
    const ordered_json& benchmarks = shard.document["benchmarks"];
    for (std::size_t i = 0; i < benchmarks.size(); ++i) entries.push_back({shard.entry_case[i], &benchmarks[i]});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.global < b.global; });
  ordered_json merged = ordered_json::object();
  merged["context"] = context;
  merged["benchmarks"] = ordered_json::array();
  for (const Entry& e : entries) {
    ordered_json entry = *e.entry;
    entry["family_index"] = e.global;
    merged["benchmarks"].push_back(std::move(entry));
  }
  const fs::path json_file = plan.out_dir / merge_bench_json;
  plan.files.push_back({json_file, merged.dump(2) + "\n"});
  plan.summary.push_back(concat("wrote ", json_file.string(), " (", complete.cases_total, " cases, ", entries.size(),
                                " entries, from ", count, " shards)"));

  // The CSVs: convert's, per shard with its own context, then sorted by key as convert sorts them.
  TidyBenchmarks all;
  std::vector<std::string> errored;
  std::set<std::string> errored_seen;
  std::size_t other_runs = 0;
  for (const BenchShard& shard : shards) {
    for (const std::string& skipped : shard.run.skipped) {
      if (skipped.ends_with(": not an attention benchmark")) ++other_runs;
      else if (errored_seen.insert(skipped).second) errored.push_back(skipped);
    }
    if (shard.run.samples.empty()) continue;
    TidyBenchmarks tidy = tidy_benchmarks(shard.run.samples, shard.run.context);
    all.rows.insert(all.rows.end(), tidy.rows.begin(), tidy.rows.end());
    all.samples.insert(all.samples.end(), tidy.samples.begin(), tidy.samples.end());
    all.phases.insert(all.phases.end(), tidy.phases.begin(), tidy.phases.end());
  }
  for (const std::string& skipped : errored) plan.notes.push_back("skipped " + skipped);
  if (other_runs) plan.notes.push_back(concat("left out ", other_runs, " runs of non-attention benchmarks"));
  if (all.rows.empty()) {
    plan.notes.push_back(concat(merge_bench_csv, " not written: no attention benchmarks in the shards' ", merge_bench_json));
    return;
  }
  std::stable_sort(all.rows.begin(), all.rows.end(), [](const BenchmarkRow& a, const BenchmarkRow& b) { return a.key < b.key; });
  std::stable_sort(all.samples.begin(), all.samples.end(), [](const Sample& a, const Sample& b) {
    return std::tie(a.key, a.repetition) < std::tie(b.key, b.repetition);
  });
  std::stable_sort(all.phases.begin(), all.phases.end(), [](const PhaseRow& a, const PhaseRow& b) {
    return std::tie(a.key, a.phase) < std::tie(b.key, b.phase);
  });
  const fs::path csv = plan.out_dir / merge_bench_csv;
  plan.files.push_back({csv, format_benchmark_csv(all.rows)});
  plan.files.push_back({samples_path_for(csv), format_samples_csv(all.samples)});
  plan.files.push_back({phases_path_for(csv), format_phases_csv(all.phases)});
  plan.summary.push_back(concat("wrote ", csv.string(), " (", all.rows.size(), " benchmarks, from ", count, " shards)"));
  plan.summary.push_back(
      concat("wrote ", samples_path_for(csv).string(), " (", all.samples.size(), " samples, from ", count, " shards)"));
  plan.summary.push_back(
      concat("wrote ", phases_path_for(csv).string(), " (", all.phases.size(), " phase fractions, from ", count, " shards)"));
}

// ---- verify ----

struct VerifyShard {
  ShardFacts facts;
  fs::path csv;
  std::string header;                            // the CSV's header line
  std::vector<std::vector<std::string>> lines;   // per case of the shard (in order), its data lines
  std::vector<std::string> keys;                 // per case, its schema::verify_case_key
  std::size_t failed = 0;                        // rows whose passed is false
};

VerifyShard read_verify_shard(const fs::path& dir) {
  VerifyShard shard;
  shard.facts.dir = dir;
  shard.csv = dir / merge_verify_csv;
  shard.facts.file = shard_manifest_path(shard.csv);
  const std::string source = shard.csv.string();
  shard.facts.manifest = read_manifest_json(shard.facts.file);
  const ShardManifest& m = shard.facts.manifest;
  if (m.tool != "verify") {
    throw_input_error(shard.facts.file.string(), ": shard field tool '", m.tool,
                      "': expected verify (the manifest of a verify run)");
  }
  const std::string text = read_file_text(shard.csv, "a verify shard's CSV");
  // The lines as the reader numbers them (1-based), without their line break.
  std::vector<std::string> lines;
  for (std::size_t begin = 0; begin < text.size();) {
    const std::size_t end = std::min(text.find('\n', begin), text.size());
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    begin = end + 1;
  }
  const auto is_data = [](const std::string& line) { return !line.empty() && line.front() != '#'; };
  const auto header = std::find_if(lines.begin(), lines.end(), is_data);
  if (header == lines.end()) throw_input_error(source, ":1: no header line (expected the columns of verify.csv)");
  shard.header = *header;
  // A shard of more shards than cases may hold no case: a header without rows.
  if (std::none_of(header + 1, lines.end(), is_data)) {
    if (!m.case_indices.empty()) {
      throw_input_error(source, ": holds no case, but its manifest ", shard.facts.file.string(), " lists ",
                        m.case_indices.size(), " (shard_cases): the outputs do not match the manifest");
    }
    return shard;
  }
  std::map<std::string, std::size_t> first_line_of;
  for (const VerifyRow& row : parse_verify_csv(text, shard.csv)) {
    const std::optional<std::uint64_t> seed = parse_integer_in<std::uint64_t>(row.seed, 0, UINT64_MAX);
    if (!seed) throw_input_error(source, ":", row.line, ": seed '", printable(row.seed), "' is not a whole number");
    std::string key = schema::verify_case_key(row.op, row.variant, row.shape, row.mask, *seed);
    if (row.line == 0 || row.line > lines.size()) {
      throw_input_error(source, ":", row.line, ": a row the line count of the file does not hold");
    }
    if (shard.keys.empty() || shard.keys.back() != key) {
      const auto [it, inserted] = first_line_of.emplace(key, row.line);
      if (!inserted) {
        throw_input_error(source, ":", row.line, ": the rows of case '", key, "' are not contiguous (it began on line ",
                          it->second, "): not one case after the other as verify writes them");
      }
      shard.keys.push_back(key);
      shard.lines.emplace_back();
    }
    shard.lines.back().push_back(lines[row.line - 1]);
    if (!row.passed) ++shard.failed;
  }
  if (shard.keys.size() != m.case_indices.size()) {
    throw_input_error(source, ": holds ", shard.keys.size(), " cases, but its manifest ", shard.facts.file.string(),
                      " lists ", m.case_indices.size(), " (shard_cases): the outputs do not match the manifest");
  }
  return shard;
}

void check_verify_shards(std::vector<VerifyShard>& shards) {
  check_common(shards, merge_verify_csv);
  for (const VerifyShard& shard : shards) {
    if (shard.header != shards.front().header) {
      throw_input_error("shards of different verify.csv columns: ", shards.front().csv.string(), " has header '",
                        printable(shards.front().header), "', ", shard.csv.string(), " has '", printable(shard.header), "'");
    }
  }
  std::map<std::string, std::pair<const VerifyShard*, std::size_t>> key_owner;
  for (const VerifyShard& shard : shards) {
    for (std::size_t k = 0; k < shard.keys.size(); ++k) {
      const std::size_t global = shard.facts.manifest.case_indices[k];
      const auto [it, inserted] = key_owner.emplace(shard.keys[k], std::pair{&shard, global});
      if (!inserted) {
        throw_input_error("overlapping shards: verify case '", shard.keys[k], "' is in ", shard_name(it->second.first->facts),
                          " (case ", it->second.second, ") and in ", shard_name(shard.facts), " (case ", global, ")");
      }
    }
  }
  check_coverage(shards, merge_verify_csv, "every shard must run all of its cases");
}

void plan_verify(const std::vector<VerifyShard>& shards, MergePlan& plan) {
  const ShardManifest& first = shards.front().facts.manifest;
  std::vector<std::string> kinds;
  for (const VerifyShard& shard : shards) {
    const std::string& kind = shard.facts.manifest.host_kind;
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  std::string host_kind;
  for (const std::string& kind : kinds) host_kind += (host_kind.empty() ? "" : "; ") + kind;
  const ShardManifest complete = complete_manifest(first, host_kind);
  std::vector<const std::vector<std::string>*> by_case(complete.cases_total, nullptr);
  for (const VerifyShard& shard : shards) {
    for (std::size_t k = 0; k < shard.lines.size(); ++k) by_case[shard.facts.manifest.case_indices[k]] = &shard.lines[k];
  }
  std::string csv = shards.front().header + "\n";
  std::size_t rows = 0;
  for (const std::vector<std::string>* lines : by_case) {
    for (const std::string& line : *lines) {
      csv += line;
      csv += '\n';
      ++rows;
    }
  }
  plan.verify_rows = rows;
  for (const VerifyShard& shard : shards) plan.verify_failed += shard.failed;
  const fs::path csv_file = plan.out_dir / merge_verify_csv;
  const fs::path manifest_file = shard_manifest_path(csv_file);
  plan.files.push_back({csv_file, csv});
  plan.files.push_back({manifest_file, manifest_json(complete)});
  plan.summary.push_back(concat("wrote ", csv_file.string(), " (", complete.cases_total, " cases, ", rows, " rows, from ",
                                first.shard.count, " shards)"));
  plan.summary.push_back(concat("wrote ", manifest_file.string(), " (", complete.cases_total, " cases, shard 0/1, from ",
                                first.shard.count, " shards)"));
}

bool same_directory(const fs::path& a, const fs::path& b) {
  std::error_code error;
  if (fs::equivalent(a, b, error)) return true;
  return fs::weakly_canonical(fs::absolute(a), error) == fs::weakly_canonical(fs::absolute(b), error);
}

}  // namespace

MergePlan plan_merge(const std::vector<fs::path>& shard_dirs, const fs::path& out_dir) {
  if (shard_dirs.empty()) throw_input_error("report merge: no shard directory given (expected at least one)");
  std::error_code error;
  if (fs::exists(out_dir, error) && !fs::is_directory(out_dir, error)) {
    throw_input_error("--out ", out_dir.string(), ": exists and is not a directory");
  }
  // Which outputs each directory holds; all must hold the same.
  const auto holds = [](const fs::path& dir) {
    std::error_code ignored;
    const bool bench = fs::exists(dir / merge_bench_json, ignored);
    const bool verify =
        fs::exists(dir / merge_verify_csv, ignored) || fs::exists(shard_manifest_path(dir / merge_verify_csv), ignored);
    return std::pair{bench, verify};
  };
  const auto describe = [](std::pair<bool, bool> h) {
    return h.first && h.second ? concat(merge_bench_json, " and ", merge_verify_csv)
           : h.first           ? concat(merge_bench_json, " only")
                               : concat(merge_verify_csv, " only");
  };
  for (const fs::path& dir : shard_dirs) {
    if (!fs::is_directory(dir, error)) throw_input_error(dir.string(), ": not a directory (expected a shard's output directory)");
    if (same_directory(dir, out_dir)) {
      throw_input_error("--out ", out_dir.string(), " is the shard directory ", dir.string(),
                        " (expected a directory of its own: merging in place would overwrite a shard's files)");
    }
    const auto h = holds(dir);
    if (!h.first && !h.second) {
      throw_input_error(dir.string(), ": holds neither ", merge_bench_json, " nor ", merge_verify_csv,
                        " (not a shard's output directory)");
    }
    if (h != holds(shard_dirs.front())) {
      throw_input_error("shard directories with different outputs: ", shard_dirs.front().string(), " holds ",
                        describe(holds(shard_dirs.front())), ", ", dir.string(), " holds ", describe(h));
    }
  }
  const auto [with_bench, with_verify] = holds(shard_dirs.front());
  MergePlan plan;
  plan.out_dir = out_dir;
  if (with_bench) {
    std::vector<BenchShard> shards;
    for (const fs::path& dir : shard_dirs) shards.push_back(read_bench_shard(dir));
    check_bench_shards(shards);
    plan_bench(shards, plan);
  }
  if (with_verify) {
    std::vector<VerifyShard> shards;
    for (const fs::path& dir : shard_dirs) shards.push_back(read_verify_shard(dir));
    check_verify_shards(shards);
    plan_verify(shards, plan);
  }
  return plan;
}

void write_merge(const MergePlan& plan) {
  fs::create_directories(plan.out_dir);
  StagedFiles staged;
  for (const MergedFile& file : plan.files) staged.add(file.file, file.contents);
  staged.commit();
}

}  // namespace ped::reports
