// README.md's table of attention features x implementations says what the registry says: one
// column per built-in implementation, one row per AttentionFeature plus "backward", a check mark
// exactly where the implementation declares it (AttentionImpl::features, has_backward).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "variants/registry.hpp"
#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string cell;
  std::getline(in, cell, '|');  // before the first bar
  while (std::getline(in, cell, '|')) {
    const auto a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
    out.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
  }
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::string strip_ticks(std::string s) {
  if (s.size() >= 2 && s.front() == '`' && s.back() == '`') return s.substr(1, s.size() - 2);
  return s;
}

TEST(ReadmeTable, FeaturesTableMatchesTheRegistry) {
  std::ifstream readme(PED_README_PATH);
  ASSERT_TRUE(readme) << "cannot read " << PED_README_PATH;
  std::string line;
  std::vector<std::string> header;
  std::map<std::string, std::vector<std::string>> rows;
  while (std::getline(readme, line)) {
    if (header.empty()) {
      if (line.rfind("| feature |", 0) == 0) header = cells(line);
      continue;
    }
    if (line.empty() || line[0] != '|') break;
    const auto c = cells(line);
    if (!c.empty() && c[0].find("---") == std::string::npos) rows[strip_ticks(c[0])] = c;
  }
  ASSERT_FALSE(header.empty()) << "README.md has no table starting with '| feature |'";
  std::vector<std::string> names;
  for (std::size_t i = 1; i < header.size(); ++i) names.push_back(strip_ticks(header[i]));
  std::vector<std::string> builtins;
  for (const AttentionImpl* impl : builtin_impls()) builtins.push_back(impl->name);
  EXPECT_EQ(names, builtins) << "the table's columns must be the built-in implementations, in registration order";
  for (std::size_t f = 0; f <= kAttentionFeatureCount; ++f) {
    const bool is_backward = f == kAttentionFeatureCount;
    const std::string feature = is_backward ? "backward" : to_string(static_cast<AttentionFeature>(f));
    ASSERT_TRUE(rows.count(feature)) << "README.md's features table has no row " << feature;
    const auto& row = rows[feature];
    ASSERT_EQ(row.size(), header.size()) << "row " << feature;
    for (std::size_t c = 1; c < row.size(); ++c) {
      const AttentionImpl* impl = find_attention_impl(names[c - 1]);
      if (impl == nullptr) continue;  // reported above
      const bool declared = is_backward ? impl->has_backward<float>()
                                        : (impl->features & attention_feature_bit(static_cast<AttentionFeature>(f))) != 0;
      EXPECT_EQ(row[c].rfind("✓", 0) == 0, declared)
          << "README.md says '" << row[c] << "' for " << feature << " of " << impl->name;
    }
  }
}

}  // namespace
}  // namespace ped::test
