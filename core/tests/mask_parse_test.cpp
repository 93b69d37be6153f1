// Mask::parse is the exact inverse of Mask::name(), and refuses every other text with a message
// naming Mask::parse, the text, the position and the accepted syntax.
#include "core/mask.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using ped::Mask;

// One mask of every kind the factories make, composite ones included, with parameters at their
// ends of range where the factories allow them.
std::vector<Mask> every_kind() {
  const Mask explicit_layout = Mask::explicit_blocks(8, 4, 2, 3, {1, 0, 1, 0, 0, 1});
  return {
      Mask::none(),
      Mask::causal(),
      Mask::sliding_window(3, 2),
      Mask::sliding_window(0, 0),
      Mask::causal_sliding_window(256),
      Mask::sliding_window(std::int64_t{1} << 40, std::int64_t{1} << 40),
      Mask::strided(3, true),
      Mask::strided(1, false),
      Mask::fixed(4, 1, true),
      Mask::fixed(4, 4, false),
      Mask::fixed(7, 0, true),
      Mask::global_tokens(2),
      Mask::longformer(2, 2, 1),
      Mask::bigbird(64, 1, 1, 1, 0x5eedULL),
      Mask::bigbird(4, 0, 0, 0, 0),
      Mask::bigbird(1, 2, 3, 1024, UINT64_MAX),
      explicit_layout,
      Mask::explicit_blocks(1, 1, 1, 1, {0}),
      Mask::causal() & Mask::strided(2, false),
      Mask::strided(5, true) | Mask::global_tokens(1),
      Mask::intersection({Mask::causal()}),
      Mask::union_of({Mask::none(), Mask::causal(), Mask::sliding_window(1, 2)}),
      Mask::intersection({Mask::union_of({Mask::causal(), explicit_layout}), Mask::fixed(3, 1, false),
                          Mask::intersection({Mask::bigbird(2, 1, 0, 2, 9), Mask::global_tokens(5)})}),
  };
}

TEST(MaskParse, RoundTripsEveryKind) {
  for (const Mask& m : every_kind()) {
    const std::string name = m.name();
    SCOPED_TRACE(name);
    const Mask parsed = Mask::parse(name);
    EXPECT_TRUE(parsed == m);
    EXPECT_EQ(parsed.name(), name);
    EXPECT_EQ(parsed.kind(), m.kind());
  }
}

TEST(MaskParse, CanonicalTextsReadBackUnchanged) {
  for (const char* text : {"none", "causal", "sliding_window(left=256,right=0)", "strided(stride=3,causal)",
                           "strided(stride=3)", "fixed(stride=4,summary=1,causal)", "global_tokens(count=2)",
                           "bigbird(block=64,window_radius=1,global_blocks=1,random_blocks=1,seed=24301)",
                           "explicit_blocks(block_q=2,block_k=2,rows=2,cols=2,visible=1001)",
                           "intersection(causal,strided(stride=2))", "union(strided(stride=5,causal),global_tokens(count=1))",
                           "union(intersection(causal,none),sliding_window(left=1,right=1))"}) {
    EXPECT_EQ(Mask::parse(text).name(), text);
  }
}

TEST(MaskParse, ParsedMaskBehavesAsTheFactoryOne) {
  // Equal masks see the same keys: a parse that lost a parameter would differ somewhere here.
  // visible() needs a shape the mask fits (validate): 20 x 24 for most, and an explicit layout's own
  // shape (16 x 12, 1 x 1) for the masks that hold one, alone or inside a combination.
  for (const Mask& m : every_kind()) {
    std::int64_t nq = 0, nk = 0;
    for (const auto& [q, k] : {std::pair<std::int64_t, std::int64_t>{20, 24}, {16, 12}, {1, 1}}) {
      try {
        m.validate("ParsedMaskBehavesAsTheFactoryOne", q, k);
        nq = q;
        nk = k;
        break;
      } catch (const std::invalid_argument&) {
      }
    }
    ASSERT_GT(nq, 0) << m.name() << " fits none of the test's shapes";
    const Mask parsed = Mask::parse(m.name());
    for (std::int64_t i = 0; i < nq; ++i) {
      for (std::int64_t j = 0; j < nk; ++j) ASSERT_EQ(parsed.visible(i, j, nq, nk), m.visible(i, j, nq, nk)) << m.name();
    }
  }
}

TEST(MaskParse, EqualityTellsMasksApart) {
  EXPECT_FALSE(Mask::none() == Mask::causal());
  EXPECT_FALSE(Mask::sliding_window(3, 2) == Mask::sliding_window(2, 3));
  EXPECT_FALSE(Mask::strided(3, true) == Mask::strided(3, false));
  EXPECT_FALSE(Mask::bigbird(4, 1, 1, 1, 1) == Mask::bigbird(4, 1, 1, 1, 2));
  EXPECT_FALSE(Mask::explicit_blocks(1, 1, 1, 2, {1, 0}) == Mask::explicit_blocks(1, 1, 1, 2, {0, 1}));
  EXPECT_FALSE((Mask::causal() & Mask::none()) == (Mask::none() & Mask::causal()));
  EXPECT_FALSE((Mask::causal() & Mask::none()) == (Mask::causal() | Mask::none()));
  // Any nonzero byte is a visible block: kept as 1, so the name and equality agree.
  EXPECT_TRUE(Mask::explicit_blocks(1, 1, 1, 2, {7, 0}) == Mask::explicit_blocks(1, 1, 1, 2, {1, 0}));
}

std::string nested_unions(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += "union(";
  text += "causal";
  for (int i = 0; i < depth; ++i) text += ")";
  return text;
}

// The message of parse(text), which must throw std::invalid_argument.
std::string parse_error(const std::string& text) {
  try {
    const Mask m = Mask::parse(text);
    ADD_FAILURE() << "'" << text << "' parsed as " << m.name();
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

TEST(MaskParse, RefusesBadTextNamingItAndTheSyntax) {
  struct Case {
    std::string text;
    std::string says;  // part of the message
  };
  const std::vector<Case> cases = {
      {"", "empty text"},
      {"causl", "unknown mask kind 'causl'"},
      {"Causal", "expected a mask kind"},
      {"window:4", "unknown mask kind 'window'"},
      {"sliding_window_256", "unknown mask kind 'sliding_window_256'"},
      {"causal ", "trailing text"},
      {"causal,none", "trailing text"},
      {" causal", "expected a mask kind"},
      {"none()", "trailing text"},
      {"sliding_window", "expected '('"},
      {"sliding_window(left=3)", "expected ','"},
      {"sliding_window(right=0,left=3)", "expected 'left='"},
      {"sliding_window(left=-3,right=0)", "expected a decimal number"},
      {"sliding_window(left=+3,right=0)", "expected a decimal number"},
      {"sliding_window(left=03,right=0)", "leading zero"},
      {"sliding_window(left=3x,right=0)", "expected ','"},
      {"sliding_window(left=3,right=0", "expected ')'"},
      {"sliding_window(left=3,right=0))", "trailing text"},
      {"sliding_window(left=3, right=0)", "expected 'right='"},
      {"sliding_window(left=99999999999999999999,right=0)", "number out of range"},
      {"sliding_window(left=1099511627777,right=0)", "Mask::sliding_window: left = 1099511627777 is out of range"},
      {"strided(stride=0)", "Mask::strided: stride = 0 is out of range"},
      {"strided(stride=3,noncausal)", "expected ')'"},
      {"fixed(stride=4,summary=5)", "Mask::fixed: summary = 5 is out of range"},
      {"global_tokens(count=0)", "Mask::global_tokens: count = 0"},
      {"bigbird(block=4,window_radius=1,global_blocks=1,random_blocks=1,seed=18446744073709551616)",
       "number out of range"},
      {"bigbird(block=4,window_radius=1,global_blocks=1,random_blocks=1025,seed=1)", "random_blocks = 1025"},
      {"explicit_blocks(block_q=2,block_k=2,rows=2,cols=2,visible=101)", "visible has 3 digits"},
      {"explicit_blocks(block_q=2,block_k=2,rows=2,cols=2,visible=10102)", "at character 63: expected ')'"},
      {"explicit_blocks(block_q=2,block_k=2,rows=4294967296,cols=4294967296,visible=1)", "visible has 1 digits"},
      {"intersection()", "expected a mask kind"},
      {"union(causal,)", "expected a mask kind"},
      {"union(causal", "expected ')'"},
      {nested_unions(40), "nested deeper than 32"},
      {std::string("cau\nsal"), "unknown mask kind 'cau'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string message = parse_error(c.text);
    EXPECT_NE(message.find("Mask::parse: '"), std::string::npos) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
    EXPECT_NE(message.find("accepted syntax: none | causal | sliding_window(left=L,right=R)"), std::string::npos)
        << message;
  }
}

TEST(MaskParse, MessageGivesThePositionAndPrintableText) {
  EXPECT_NE(parse_error("sliding_window(left=3,right=x)").find("at character 29: expected a decimal number"), std::string::npos);
  EXPECT_NE(parse_error("causal\x01").find("'causal\\x01' at character 7:"), std::string::npos);
}

// A list of every kind's name, joined by commas, splits back into those names: commas inside a
// mask's parentheses stay with it. Empty items are kept for the caller to refuse; parentheses that
// do not balance are left for Mask::parse to refuse.
TEST(SplitMaskList, SplitsOnlyAtTheTopLevel) {
  std::vector<std::string> names;
  std::string list;
  for (const Mask& m : every_kind()) {
    names.push_back(m.name());
    if (!list.empty()) list += ',';
    list += m.name();
  }
  EXPECT_EQ(ped::split_mask_list(list), names);
  EXPECT_EQ(ped::split_mask_list("causal"), (std::vector<std::string>{"causal"}));
  EXPECT_EQ(ped::split_mask_list(""), (std::vector<std::string>{""}));
  EXPECT_EQ(ped::split_mask_list("causal,,none,"), (std::vector<std::string>{"causal", "", "none", ""}));
  EXPECT_EQ(ped::split_mask_list("union(causal,none"), (std::vector<std::string>{"union(causal,none"}));
  EXPECT_EQ(ped::split_mask_list("causal),none"), (std::vector<std::string>{"causal)", "none"}));
}

}  // namespace
