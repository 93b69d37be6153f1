// Attention masks: which key j each query i may see, element by element and block by block.
//
// Nq query tokens, Nk key tokens; i in [0, Nq) a query, j in [0, Nk) a key.
// Positional masks place query i at key-space position p = i + (Nk - Nq) (bottom-right
// alignment, the FlashAttention >= 2.1 convention), so with Nq == Nk, p == i. With Nq > Nk,
// p is negative for the first Nq - Nk queries, and causal masks give those rows no visible key.
//
// A Mask is a small value: a kind tag plus integer parameters (and, for combinations and
// explicit layouts, shared immutable children). Kernels never call virtual functions on it:
// the block layout is computed once per call, and only partial blocks test elements.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ped {

// Classification of one (query block, key block) tile of the score matrix.
enum class BlockKind : std::uint8_t {
  empty = 0,    // no visible pair: the tile is never computed
  partial = 1,  // some visible pairs: scores need the element-wise mask
  full = 2,     // every pair visible: no element test
};

// Half-open interval [lo, hi) of key indices.
struct KeyInterval {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

// Block layout of a mask for Nq x Nk scores cut into block_q x block_k tiles (the last block row
// and column may be smaller). kinds is row-major (rows, cols). The CSR lists name, per block row,
// the non-empty block columns in increasing order (row_ptr (rows + 1), col_index (nnz)), and per
// block column the non-empty block rows in increasing order (col_ptr (cols + 1), row_index (nnz)).
struct BlockLayout {
  std::int64_t seq_q = 0, seq_k = 0;
  std::int64_t block_q = 0, block_k = 0;
  std::int64_t rows = 0, cols = 0;  // rows = ceil(Nq / block_q), cols = ceil(Nk / block_k)
  std::vector<BlockKind> kinds;     // (rows, cols)
  std::vector<std::int64_t> row_ptr, col_index;
  std::vector<std::int64_t> col_ptr, row_index;
  std::int64_t full_blocks = 0, partial_blocks = 0, empty_blocks = 0;
  std::int64_t visible_pairs = 0;  // exact number of visible (i, j) pairs

  BlockKind at(std::int64_t r, std::int64_t c) const { return kinds[static_cast<std::size_t>(r * cols + c)]; }
};

class Mask {
 public:
  enum class Kind : std::uint8_t {
    none,             // every key visible
    causal,           // j <= p
    sliding_window,   // p - left <= j <= p + right
    strided,          // Sparse Transformer strided: |p - j| < stride or (p - j) % stride == 0 [and j <= p]
    fixed,            // Sparse Transformer fixed: same stride-block, or j % stride >= stride - summary [and j <= p]
    global_tokens,    // Longformer global tokens: j < count, or 0 <= p < count
    bigbird,          // window of blocks + global blocks + seeded random blocks
    explicit_blocks,  // visible iff blocks[(i / block_q) * cols + j / block_k] != 0 (raw i, not p)
    intersection,     // visible iff every child says visible
    union_of,         // visible iff some child says visible
  };

  // Factories. Every parameter out of range throws std::invalid_argument naming the factory.
  static Mask none();
  static Mask causal();
  // Keys within [p - left, p + right]; left, right >= 0.
  static Mask sliding_window(std::int64_t left, std::int64_t right);
  // Keys within [p - left, p]: sliding_window(left, 0).
  static Mask causal_sliding_window(std::int64_t left);
  // Child et al. 2019 strided pattern with stride >= 1; causal restricts to j <= p.
  static Mask strided(std::int64_t stride, bool causal = true);
  // Child et al. 2019 fixed pattern: stride >= 1, 0 <= summary <= stride "summary" columns at the
  // end of each stride block; causal restricts to j <= p.
  static Mask fixed(std::int64_t stride, std::int64_t summary, bool causal = true);
  // The first count >= 1 key tokens are seen by every query, and queries at key-space
  // position p < count see every key (Longformer's symmetric global attention).
  static Mask global_tokens(std::int64_t count);
  // Longformer: sliding_window(left, right) | global_tokens(count).
  static Mask longformer(std::int64_t left, std::int64_t right, std::int64_t global_count);
  // BigBird (Zaheer et al. 2020) in blocks of `block` tokens (qb = floor(p / block), kb = j / block):
  // |qb - kb| <= window_radius, kb < global_blocks or 0 <= qb < global_blocks, or kb among
  // random_blocks picks for qb drawn from [0, ceil(Nk / block)) by a hash of (seed, qb, t).
  static Mask bigbird(std::int64_t block, std::int64_t window_radius, std::int64_t global_blocks,
                      std::int64_t random_blocks, std::uint64_t seed);
  // An explicit (rows, cols) layout of block_q x block_k blocks, row-major, nonzero = visible
  // (kept as 0 or 1). At call time rows must equal ceil(Nq / block_q) and cols ceil(Nk / block_k).
  // Its name lists the blocks: visible=<rows * cols digits 0 or 1, row-major>.
  static Mask explicit_blocks(std::int64_t block_q, std::int64_t block_k, std::int64_t rows, std::int64_t cols,
                              std::vector<std::uint8_t> visible_blocks);
  static Mask intersection(std::initializer_list<Mask> masks);
  static Mask intersection(std::vector<Mask> masks);
  static Mask union_of(std::initializer_list<Mask> masks);
  static Mask union_of(std::vector<Mask> masks);

  Kind kind() const { return kind_; }
  // The mask's one text form, e.g. "sliding_window(left=16,right=0)", in the grammar of syntax();
  // used on command lines, in CSV mask columns, benchmark names and test names.
  std::string name() const;

  // The exact inverse of name(): parse(m.name()) == m for every mask, and parse(s).name() == s for
  // every text it accepts (only the canonical form is accepted: no blanks, no signs, no leading
  // zeros, parameters in name()'s order). Anything else throws std::invalid_argument naming
  // Mask::parse, the text, the position of the first wrong character and the accepted syntax.
  static Mask parse(std::string_view text);
  // The grammar parse() accepts, one line.
  static const char* syntax();

  // Same kind, same parameters, same children in the same order (explicit layouts: the same
  // visible blocks). Two masks equal here have equal name()s, and conversely.
  friend bool operator==(const Mask& x, const Mask& y);

  // Throws std::invalid_argument naming `function` when the mask cannot apply to Nq x Nk
  // scores (an explicit layout of the wrong size).
  void validate(const char* function, std::int64_t seq_q, std::int64_t seq_k) const;

  // Is key j visible to query i? i in [0, Nq), j in [0, Nk).
  bool visible(std::int64_t i, std::int64_t j, std::int64_t seq_q, std::int64_t seq_k) const;

  // Appends to `out` (after clearing it) the visible keys of query i as sorted, disjoint,
  // non-adjacent intervals within [0, Nk).
  void row_intervals(std::int64_t i, std::int64_t seq_q, std::int64_t seq_k, std::vector<KeyInterval>& out) const;

  // Block layout for block_q x block_k tiles (computed from row_intervals, exact).
  BlockLayout block_layout(std::int64_t seq_q, std::int64_t seq_k, std::int64_t block_q, std::int64_t block_k) const;

  // For interval-shaped masks (none, causal, sliding_window) the visible keys of every row
  // form one interval [lo, hi); returns true and fills lo, hi. Kernels use this for a fast
  // element mask in partial tiles; other kinds return false.
  bool single_interval(std::int64_t i, std::int64_t seq_q, std::int64_t seq_k, std::int64_t& lo, std::int64_t& hi) const;

  // The factory parameters, for code that hands a mask on in another form (the attention plugin ABI).
  struct Window {
    std::int64_t left = 0, right = 0;
  };
  struct Blocks {
    std::int64_t block_q = 0, block_k = 0, rows = 0, cols = 0;
    const std::vector<std::uint8_t>* visible = nullptr;  // (rows, cols) row-major, nonzero = visible
  };
  Window window() const;            // sliding_window only; throws std::invalid_argument for another kind
  Blocks explicit_layout() const;   // explicit_blocks only; throws std::invalid_argument for another kind

 private:
  Kind kind_ = Kind::none;
  std::int64_t a_ = 0, b_ = 0, c_ = 0, d_ = 0;  // kind-specific parameters, see name()
  bool causal_ = false;
  std::uint64_t seed_ = 0;
  std::shared_ptr<const std::vector<std::uint8_t>> blocks_;  // explicit_blocks
  std::shared_ptr<const std::vector<Mask>> children_;         // intersection, union_of

  bool bigbird_random_hit(std::int64_t qb, std::int64_t kb, std::int64_t key_blocks) const;
};

// The items of a comma-separated list of masks in Mask::parse's text, as the command lines take
// them (bench --masks, verify --masks): a comma inside a mask's parentheses belongs to the mask, so
// "causal,union(causal,global_tokens(count=2))" has two items. Empty items are kept ("" has one,
// "causal," two) for the caller to refuse naming its option; an item is not parsed here.
std::vector<std::string> split_mask_list(std::string_view text);

inline Mask operator&(const Mask& x, const Mask& y) { return Mask::intersection({x, y}); }
inline Mask operator|(const Mask& x, const Mask& y) { return Mask::union_of({x, y}); }

}  // namespace ped
