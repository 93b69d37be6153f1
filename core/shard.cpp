#include "core/shard.hpp"

#include "core/csv_reader.hpp"
#include "core/errors.hpp"
#include "core/numbers.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <queue>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ped {

namespace {

std::optional<std::size_t> whole_number(const std::string& text, std::size_t hi) {
  return parse_integer_in<std::size_t>(text, 0, hi);
}

}  // namespace

ShardSpec parse_shard(const std::string& option, const std::string& text) {
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(concat(option, " '", printable(text), "': ", what));
  };
  const std::size_t slash = text.find('/');
  if (text.empty() || slash == std::string::npos) fail("expected I/N, shard I of N, with 0 <= I < N");
  const std::optional<std::size_t> count = whole_number(text.substr(slash + 1), kMaxShardCount);
  if (!count) fail(concat("shard count N must be a whole number in [1, ", kMaxShardCount, "]"));
  if (*count == 0) fail("shard count N = 0, expected at least 1");
  const std::optional<std::size_t> index = whole_number(text.substr(0, slash), kMaxShardCount);
  if (!index) fail("shard index I must be a whole number, expected 0 <= I < N");
  if (*index >= *count) fail(concat("shard index ", *index, " out of range, expected 0 <= I < N = ", *count));
  return {*index, *count};
}

std::string to_string(const ShardSpec& s) { return concat(s.index, "/", s.count); }

std::vector<std::size_t> assign_shards(std::span<const std::uint64_t> costs, std::size_t count) {
  if (count == 0) throw std::invalid_argument("assign_shards: shard count 0, expected at least 1");
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  // (total cost, shard): the smallest total first, the lowest index among equal totals. Totals
  // saturate rather than wrap (costs near 2^64 are nonsense, but must not reorder shards).
  using Load = std::pair<std::uint64_t, std::size_t>;
  std::priority_queue<Load, std::vector<Load>, std::greater<>> loads;
  for (std::size_t s = 0; s < count; ++s) loads.push({0, s});
  std::vector<std::size_t> shard(costs.size());
  for (std::size_t i : order) {
    auto [total, s] = loads.top();
    loads.pop();
    shard[i] = s;
    total = costs[i] > UINT64_MAX - total ? UINT64_MAX : total + costs[i];
    loads.push({total, s});
  }
  return shard;
}

std::vector<std::size_t> shard_cases(std::span<const std::uint64_t> costs, const ShardSpec& s) {
  const std::vector<std::size_t> shard = assign_shards(costs, s.count);
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < shard.size(); ++i) {
    if (shard[i] == s.index) mine.push_back(i);
  }
  return mine;
}

std::string case_list_digest(std::span<const std::string> keys, std::span<const std::uint64_t> costs) {
  if (keys.size() != costs.size()) {
    throw std::invalid_argument(concat("case_list_digest: ", keys.size(), " keys but ", costs.size(), " costs"));
  }
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto add = [&h](std::string_view bytes) {
    for (char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ULL;
    }
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    add(keys[i]);
    add("\t");
    add(std::to_string(costs[i]));
    add("\n");
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

ShardManifest make_shard_manifest(std::span<const std::string> keys, std::span<const std::uint64_t> costs,
                                  const ShardSpec& s) {
  ShardManifest m;
  m.shard = s;
  m.cases_total = keys.size();
  m.case_list_digest = case_list_digest(keys, costs);
  m.case_indices = shard_cases(costs, s);
  return m;
}

std::vector<std::pair<std::string, std::string>> manifest_fields(const ShardManifest& m) {
  std::string indices;
  for (std::size_t i : m.case_indices) {
    if (!indices.empty()) indices += ',';
    indices += std::to_string(i);
  }
  return {{shard_field::tool, m.tool},
          {shard_field::git_rev, m.git_rev},
          {shard_field::profile, m.profile},
          {shard_field::settings, m.settings},
          {shard_field::host_kind, m.host_kind},
          {shard_field::shard, to_string(m.shard)},
          {shard_field::cases_total, std::to_string(m.cases_total)},
          {shard_field::case_list_digest, m.case_list_digest},
          {shard_field::shard_cases, indices}};
}

ShardManifest manifest_from_fields(const std::map<std::string, std::string>& fields, const std::string& source) {
  const auto field = [&](const char* name) -> const std::string& {
    const auto it = fields.find(name);
    if (it == fields.end()) {
      throw InputError(concat(source, ": no shard field '", name,
                              "': not the output of a bench or verify run of this version (run it again)"));
    }
    return it->second;
  };
  const auto bad = [&](const char* name, const std::string& what) {
    throw InputError(concat(source, ": shard field ", name, " '", printable(field(name)).substr(0, 80), "': ", what));
  };
  ShardManifest m;
  for (auto [name, target] : {std::pair{shard_field::tool, &m.tool}, {shard_field::git_rev, &m.git_rev},
                              {shard_field::profile, &m.profile}, {shard_field::settings, &m.settings},
                              {shard_field::host_kind, &m.host_kind}}) {
    *target = field(name);
    if (const std::string c = first_control_character(*target); !c.empty()) bad(name, "control character " + c);
  }
  if (m.tool != "bench" && m.tool != "verify") bad(shard_field::tool, "expected bench or verify");
  try {
    m.shard = parse_shard(shard_field::shard, field(shard_field::shard));
  } catch (const std::invalid_argument& e) {
    throw InputError(concat(source, ": shard field ", e.what()));
  }
  const std::optional<std::size_t> total = parse_integer_in<std::size_t>(field(shard_field::cases_total), 0, SIZE_MAX / 2);
  if (!total) bad(shard_field::cases_total, "expected a whole number");
  m.cases_total = *total;
  m.case_list_digest = field(shard_field::case_list_digest);
  if (m.case_list_digest.size() != 16 ||
      !std::all_of(m.case_list_digest.begin(), m.case_list_digest.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    bad(shard_field::case_list_digest, "expected 16 lowercase hex digits");
  }
  const std::string& indices = field(shard_field::shard_cases);
  std::set<std::size_t> seen;
  std::size_t begin = 0;
  while (!indices.empty() && begin <= indices.size()) {
    const std::size_t comma = std::min(indices.find(',', begin), indices.size());
    const std::string item = indices.substr(begin, comma - begin);
    begin = comma + 1;
    const std::optional<std::size_t> index =
        m.cases_total == 0 ? std::nullopt : parse_integer_in<std::size_t>(item, 0, m.cases_total - 1);
    if (!index) bad(shard_field::shard_cases, concat("case index '", printable(item), "' is not a whole number below cases_total = ", m.cases_total));
    if (!seen.insert(*index).second) bad(shard_field::shard_cases, concat("case index ", *index, " given twice"));
    m.case_indices.push_back(*index);
  }
  return m;
}

std::filesystem::path shard_manifest_path(const std::filesystem::path& csv) {
  std::filesystem::path p = csv;
  if (p.extension() == ".csv") p.replace_extension();
  p += ".shard.json";
  return p;
}

std::string manifest_json(const ShardManifest& m) {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& [key, value] : manifest_fields(m)) object[key] = value;
  return object.dump(2) + "\n";
}

ShardManifest parse_manifest_json(const std::string& text, const std::string& source) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // The library's message quotes the bytes it last read, control characters included.
    throw InputError(concat(source, ": not JSON (", printable(e.what()), ")"));
  }
  if (!document.is_object()) throw InputError(concat(source, ": expected a JSON object of strings"));
  std::map<std::string, std::string> fields;
  for (const auto& [key, value] : document.items()) {
    if (!value.is_string()) throw InputError(concat(source, ": field '", printable(key), "' is not a string"));
    fields[key] = value.get<std::string>();
  }
  return manifest_from_fields(fields, source);
}

ShardManifest read_manifest_json(const std::filesystem::path& file) {
  return parse_manifest_json(csv::read_text_file(file, "the shard manifest"), file.string());
}

std::string list_cases_table(std::span<const std::string> keys, std::span<const std::uint64_t> costs,
                             std::size_t shard_count) {
  const std::vector<std::size_t> shard = assign_shards(costs, shard_count);
  std::ostringstream os;
  os << "shard\tcost\tcase\n";
  std::vector<std::uint64_t> total(shard_count, 0);
  std::vector<std::size_t> cases(shard_count, 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    os << shard[i] << '\t' << costs[i] << '\t' << keys[i] << '\n';
    total[shard[i]] += costs[i];
    ++cases[shard[i]];
  }
  for (std::size_t s = 0; s < shard_count; ++s) {
    os << "# shard " << s << "/" << shard_count << ": " << cases[s] << " cases, cost " << total[s] << '\n';
  }
  return os.str();
}

}  // namespace ped
