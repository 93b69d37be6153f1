// Masks: element semantics, row intervals and block layouts checked against element-wise visible().
// Nq query tokens, Nk key tokens; p = i + (Nk - Nq).
#include <gtest/gtest.h>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

struct Size {
  std::int64_t nq, nk;
};
const Size kSizes[] = {{1, 1}, {5, 9}, {17, 17}, {40, 23}, {33, 64}, {70, 70}};
const Size kBlocks[] = {{1, 1}, {4, 4}, {8, 3}, {16, 16}, {5, 64}, {64, 64}};

class MaskCatalogue : public ::testing::TestWithParam<int> {};

TEST_P(MaskCatalogue, RowIntervalsMatchVisible) {
  for (const Size s : kSizes) {
    const NamedMask nm = mask_catalogue(s.nq, s.nk)[static_cast<std::size_t>(GetParam())];
    SCOPED_TRACE(nm.mask.name() + " Nq=" + std::to_string(s.nq) + " Nk=" + std::to_string(s.nk));
    std::vector<KeyInterval> ivs;
    for (std::int64_t i = 0; i < s.nq; ++i) {
      nm.mask.row_intervals(i, s.nq, s.nk, ivs);
      std::vector<bool> in(static_cast<std::size_t>(s.nk), false);
      for (std::size_t e = 0; e < ivs.size(); ++e) {
        ASSERT_LT(ivs[e].lo, ivs[e].hi);
        ASSERT_GE(ivs[e].lo, 0);
        ASSERT_LE(ivs[e].hi, s.nk);
        if (e > 0) {
          ASSERT_GT(ivs[e].lo, ivs[e - 1].hi) << "intervals must be sorted, disjoint and non-adjacent";
        }
        for (std::int64_t j = ivs[e].lo; j < ivs[e].hi; ++j) in[j] = true;
      }
      for (std::int64_t j = 0; j < s.nk; ++j) ASSERT_EQ(in[j], nm.mask.visible(i, j, s.nq, s.nk)) << "i=" << i << " j=" << j;
      std::int64_t lo = 0, hi = 0;
      if (nm.mask.single_interval(i, s.nq, s.nk, lo, hi)) {
        for (std::int64_t j = 0; j < s.nk; ++j) ASSERT_EQ(j >= lo && j < hi, nm.mask.visible(i, j, s.nq, s.nk));
      }
    }
  }
}

TEST_P(MaskCatalogue, BlockLayoutMatchesVisible) {
  for (const Size s : kSizes) {
    const NamedMask nm = mask_catalogue(s.nq, s.nk)[static_cast<std::size_t>(GetParam())];
    for (const Size b : kBlocks) {
      SCOPED_TRACE(nm.mask.name() + " Nq=" + std::to_string(s.nq) + " Nk=" + std::to_string(s.nk) +
                   " block=" + std::to_string(b.nq) + "x" + std::to_string(b.nk));
      const BlockLayout L = nm.mask.block_layout(s.nq, s.nk, b.nq, b.nk);
      ASSERT_EQ(L.rows, (s.nq + b.nq - 1) / b.nq);
      ASSERT_EQ(L.cols, (s.nk + b.nk - 1) / b.nk);
      std::int64_t pairs = 0, full = 0, partial = 0, empty = 0;
      for (std::int64_t r = 0; r < L.rows; ++r) {
        std::int64_t e = L.row_ptr[r];
        for (std::int64_t c = 0; c < L.cols; ++c) {
          std::int64_t vis = 0, area = 0;
          for (std::int64_t i = r * b.nq; i < std::min(s.nq, (r + 1) * b.nq); ++i) {
            for (std::int64_t j = c * b.nk; j < std::min(s.nk, (c + 1) * b.nk); ++j) {
              vis += nm.mask.visible(i, j, s.nq, s.nk) ? 1 : 0;
              ++area;
            }
          }
          pairs += vis;
          const BlockKind want = vis == 0 ? BlockKind::empty : (vis == area ? BlockKind::full : BlockKind::partial);
          ASSERT_EQ(static_cast<int>(L.at(r, c)), static_cast<int>(want)) << "block " << r << "," << c;
          (want == BlockKind::full ? full : want == BlockKind::partial ? partial : empty) += 1;
          if (want != BlockKind::empty) {  // CSR by rows lists exactly the non-empty blocks, in order
            ASSERT_LT(e, L.row_ptr[r + 1]);
            ASSERT_EQ(L.col_index[e], c);
            ++e;
          }
        }
        ASSERT_EQ(e, L.row_ptr[r + 1]);
      }
      EXPECT_EQ(L.visible_pairs, pairs);
      EXPECT_EQ(L.full_blocks, full);
      EXPECT_EQ(L.partial_blocks, partial);
      EXPECT_EQ(L.empty_blocks, empty);
      for (std::int64_t c = 0; c < L.cols; ++c) {  // CSR by columns: the transpose, rows increasing
        for (std::int64_t e = L.col_ptr[c]; e < L.col_ptr[c + 1]; ++e) {
          ASSERT_NE(static_cast<int>(L.at(L.row_index[e], c)), static_cast<int>(BlockKind::empty));
          if (e > L.col_ptr[c]) {
            ASSERT_LT(L.row_index[e - 1], L.row_index[e]);
          }
        }
      }
      ASSERT_EQ(L.col_ptr[L.cols], L.row_ptr[L.rows]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryKind, MaskCatalogue, ::testing::Range(0, static_cast<int>(mask_catalogue(8, 8).size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return mask_catalogue(8, 8)[static_cast<std::size_t>(info.param)].name;
                         });

TEST(MaskSemantics, CausalIsBottomRightAligned) {
  const Mask m = Mask::causal();
  for (std::int64_t nq : {1, 4, 9}) {
    for (std::int64_t nk : {1, 4, 9}) {
      for (std::int64_t i = 0; i < nq; ++i) {
        for (std::int64_t j = 0; j < nk; ++j) EXPECT_EQ(m.visible(i, j, nq, nk), j <= i + (nk - nq));
      }
    }
  }
  EXPECT_TRUE(m.visible(2, 2, 5, 5));
  EXPECT_FALSE(m.visible(2, 3, 5, 5));
  EXPECT_FALSE(m.visible(0, 0, 5, 3));  // Nq > Nk: the first Nq - Nk queries see nothing
  EXPECT_TRUE(m.visible(2, 0, 5, 3));
}

TEST(MaskSemantics, WindowsAndPatterns) {
  const std::int64_t n = 32;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      EXPECT_EQ(Mask::sliding_window(3, 1).visible(i, j, n, n), j >= i - 3 && j <= i + 1);
      EXPECT_EQ(Mask::causal_sliding_window(3).visible(i, j, n, n), j >= i - 3 && j <= i);
      EXPECT_EQ(Mask::strided(4, true).visible(i, j, n, n), j <= i && (i - j < 4 || (i - j) % 4 == 0));
      EXPECT_EQ(Mask::strided(4, false).visible(i, j, n, n), (i - j < 4 && j - i < 4) || (i - j) % 4 == 0);
      EXPECT_EQ(Mask::fixed(8, 2, true).visible(i, j, n, n), j <= i && (i / 8 == j / 8 || j % 8 >= 6));
      EXPECT_EQ(Mask::global_tokens(2).visible(i, j, n, n), j < 2 || i < 2);
      EXPECT_EQ((Mask::causal() & Mask::sliding_window(2, 2)).visible(i, j, n, n), j <= i && j >= i - 2);
      EXPECT_EQ((Mask::causal() | Mask::global_tokens(1)).visible(i, j, n, n), j <= i || j < 1 || i < 1);
    }
  }
}

TEST(MaskSemantics, BigBirdIsSeededAndContainsWindowAndGlobal) {
  const std::int64_t n = 96;
  const Mask a = Mask::bigbird(8, 1, 1, 2, 7), b = Mask::bigbird(8, 1, 1, 2, 7), c = Mask::bigbird(8, 1, 1, 2, 8);
  bool differs = false;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      EXPECT_EQ(a.visible(i, j, n, n), b.visible(i, j, n, n));
      differs = differs || a.visible(i, j, n, n) != c.visible(i, j, n, n);
      if (j < 8 || i < 8 || (i / 8 - j / 8 <= 1 && j / 8 - i / 8 <= 1)) {
        EXPECT_TRUE(a.visible(i, j, n, n));
      }
    }
  }
  EXPECT_TRUE(differs) << "another seed should move some random blocks";
  const BlockLayout L = a.block_layout(n, n, 8, 8);
  EXPECT_GT(L.empty_blocks, 0);
  EXPECT_EQ(L.partial_blocks, 0) << "BigBird is made of whole 8 x 8 blocks";
}

TEST(MaskSemantics, CausalLayoutSkipsUpperTriangle) {
  const BlockLayout L = Mask::causal().block_layout(256, 256, 64, 64);
  EXPECT_EQ(L.full_blocks, 6);
  EXPECT_EQ(L.partial_blocks, 4);
  EXPECT_EQ(L.empty_blocks, 6);
  EXPECT_EQ(L.visible_pairs, 256 * 257 / 2);
}

}  // namespace
}  // namespace ped::test
