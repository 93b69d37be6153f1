// Fuzz target of the shard manifest reader (ped::parse_manifest_json, core/shard.hpp), which report
// merge reads every verify shard's manifest with (bench's sits in its JSON context and goes through
// manifest_from_fields, the same checks). A refusal is a ped::InputError whose message is one line
// starting with the input's name. An accepted manifest keeps the manifest's rules, written out here
// again: tool bench or verify; shard I/N with 0 <= I < N <= kMaxShardCount; a digest of 16 lowercase
// hex digits; every case index below cases_total and none twice; no control character in a text
// field. It reads back equal from its own JSON (manifest_json) and from its own fields.
#include "core/errors.hpp"
#include "core/shard.hpp"
#include "fuzz/fuzz_target.hpp"

#include <map>
#include <set>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view target = "shard_manifest";
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "verify.shard.json";
  ped::ShardManifest m;
  try {
    m = ped::parse_manifest_json(text, source);
  } catch (const ped::InputError& error) {
    ped::fuzz::check_error_message(target, error.what(), source);
    return 0;
  } catch (const std::exception& error) {
    ped::fuzz::fail(target, std::string("parse_manifest_json threw another type than ped::InputError: ") + error.what());
  }
  if (m.tool != "bench" && m.tool != "verify") ped::fuzz::fail(target, "accepted tool '" + m.tool + "'");
  for (const std::string* field : {&m.tool, &m.git_rev, &m.profile, &m.settings, &m.host_kind}) {
    if (ped::fuzz::has_control_character(*field)) ped::fuzz::fail(target, "accepted a control character in a text field");
  }
  if (m.shard.count < 1 || m.shard.count > ped::kMaxShardCount || m.shard.index >= m.shard.count) {
    ped::fuzz::fail(target, "accepted shard " + ped::to_string(m.shard));
  }
  if (m.case_list_digest.size() != 16) ped::fuzz::fail(target, "accepted a digest that is not 16 characters long");
  for (char c : m.case_list_digest) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      ped::fuzz::fail(target, "accepted a digest with a character that is not a lowercase hex digit");
    }
  }
  std::set<std::size_t> seen;
  for (std::size_t index : m.case_indices) {
    if (index >= m.cases_total) ped::fuzz::fail(target, "accepted a case index not below cases_total");
    if (!seen.insert(index).second) ped::fuzz::fail(target, "accepted a case index twice");
  }
  ped::ShardManifest again;
  try {
    again = ped::parse_manifest_json(ped::manifest_json(m), source);
  } catch (const std::exception& error) {
    ped::fuzz::fail(target, std::string("manifest_json of an accepted manifest does not read back: ") + error.what());
  }
  if (!(again == m)) ped::fuzz::fail(target, "manifest_json of an accepted manifest reads back different");
  std::map<std::string, std::string> fields;
  for (const auto& [key, value] : ped::manifest_fields(m)) fields[key] = value;
  if (!(ped::manifest_from_fields(fields, source) == m)) ped::fuzz::fail(target, "manifest_fields read back different");
  return 0;
}
