// Attention masks. Nq query tokens, Nk key tokens; query i sits at key-space position
// p = i + (Nk - Nq); key j in [0, Nk). See mask.hpp for the semantics of every kind.
#include "core/mask.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <sstream>
#include <utility>

#include "core/errors.hpp"
#include "core/integer_math.hpp"

namespace ped {

namespace {

using detail::ceil_div;
using detail::floor_div;
using detail::sat_add;
using detail::sat_mul;
using detail::sat_sub;

// Parameters above this are rejected: they exceed any sequence the kernels accept (Nq, Nk <= 2^31 - 1)
// by far, and keeping them below 2^40 keeps block arithmetic well inside int64.
constexpr std::int64_t kMaxParam = std::int64_t{1} << 40;

void require_range(const char* fn, const char* name, std::int64_t value, std::int64_t lo, std::int64_t hi) {
  if (value < lo || value > hi) throw_invalid(fn, name, " = ", value, " is out of range [", lo, ", ", hi, "]");
}

// Sorts, clips to [0, nk), drops empty and merges overlapping or adjacent intervals.
void normalize(std::vector<KeyInterval>& v, std::int64_t nk) {
  for (auto& iv : v) {
    iv.lo = std::max<std::int64_t>(iv.lo, 0);
    iv.hi = std::min<std::int64_t>(iv.hi, nk);
  }
  std::erase_if(v, [](const KeyInterval& iv) { return iv.lo >= iv.hi; });
  std::sort(v.begin(), v.end(), [](const KeyInterval& x, const KeyInterval& y) { return x.lo < y.lo; });
  std::size_t w = 0;
  for (std::size_t r = 0; r < v.size(); ++r) {
    if (w > 0 && v[r].lo <= v[w - 1].hi) {
      v[w - 1].hi = std::max(v[w - 1].hi, v[r].hi);
    } else {
      v[w++] = v[r];
    }
  }
  v.resize(w);
}

// out <- out intersected with other (both normalized).
void intersect_into(std::vector<KeyInterval>& out, const std::vector<KeyInterval>& other) {
  std::vector<KeyInterval> r;
  std::size_t a = 0, b = 0;
  while (a < out.size() && b < other.size()) {
    const std::int64_t lo = std::max(out[a].lo, other[b].lo);
    const std::int64_t hi = std::min(out[a].hi, other[b].hi);
    if (lo < hi) r.push_back({lo, hi});
    if (out[a].hi < other[b].hi) {
      ++a;
    } else {
      ++b;
    }
  }
  out = std::move(r);
}

// splitmix64: a well-mixed 64-bit hash, so random blocks are reproducible from the seed alone.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::int64_t bigbird_pick(std::uint64_t seed, std::int64_t qb, std::int64_t t, std::int64_t key_blocks) {
  const std::uint64_t h = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(qb) * 0x632BE59BD9B4E019ull +
                                                      static_cast<std::uint64_t>(t)));
  return static_cast<std::int64_t>(h % static_cast<std::uint64_t>(key_blocks));
}

}  // namespace

Mask Mask::none() { return Mask{}; }

Mask Mask::causal() {
  Mask m;
  m.kind_ = Kind::causal;
  return m;
}

Mask Mask::sliding_window(std::int64_t left, std::int64_t right) {
  constexpr const char* fn = "Mask::sliding_window";
  require_range(fn, "left", left, 0, kMaxParam);
  require_range(fn, "right", right, 0, kMaxParam);
  Mask m;
  m.kind_ = Kind::sliding_window;
  m.a_ = left;
  m.b_ = right;
  return m;
}

Mask Mask::causal_sliding_window(std::int64_t left) {
  require_range("Mask::causal_sliding_window", "left", left, 0, kMaxParam);
  return sliding_window(left, 0);
}

Mask Mask::strided(std::int64_t stride, bool causal) {
  require_range("Mask::strided", "stride", stride, 1, kMaxParam);
  Mask m;
  m.kind_ = Kind::strided;
  m.a_ = stride;
  m.causal_ = causal;
  return m;
}

Mask Mask::fixed(std::int64_t stride, std::int64_t summary, bool causal) {
  constexpr const char* fn = "Mask::fixed";
  require_range(fn, "stride", stride, 1, kMaxParam);
  require_range(fn, "summary", summary, 0, stride);
  Mask m;
  m.kind_ = Kind::fixed;
  m.a_ = stride;
  m.b_ = summary;
  m.causal_ = causal;
  return m;
}

Mask Mask::global_tokens(std::int64_t count) {
  require_range("Mask::global_tokens", "count", count, 1, kMaxParam);
  Mask m;
  m.kind_ = Kind::global_tokens;
  m.a_ = count;
  return m;
}

Mask Mask::longformer(std::int64_t left, std::int64_t right, std::int64_t global_count) {
  constexpr const char* fn = "Mask::longformer";
  require_range(fn, "left", left, 0, kMaxParam);
  require_range(fn, "right", right, 0, kMaxParam);
  require_range(fn, "global_count", global_count, 1, kMaxParam);
  return union_of({sliding_window(left, right), global_tokens(global_count)});
}

Mask Mask::bigbird(std::int64_t block, std::int64_t window_radius, std::int64_t global_blocks,
                   std::int64_t random_blocks, std::uint64_t seed) {
  constexpr const char* fn = "Mask::bigbird";
  require_range(fn, "block", block, 1, std::int64_t{1} << 20);
  require_range(fn, "window_radius", window_radius, 0, std::int64_t{1} << 20);
  require_range(fn, "global_blocks", global_blocks, 0, std::int64_t{1} << 20);
  require_range(fn, "random_blocks", random_blocks, 0, 1024);
  Mask m;
  m.kind_ = Kind::bigbird;
  m.a_ = block;
  m.b_ = window_radius;
  m.c_ = global_blocks;
  m.d_ = random_blocks;
  m.seed_ = seed;
  return m;
}

Mask Mask::explicit_blocks(std::int64_t block_q, std::int64_t block_k, std::int64_t rows, std::int64_t cols,
                           std::vector<std::uint8_t> visible_blocks) {
  constexpr const char* fn = "Mask::explicit_blocks";
  require_range(fn, "block_q", block_q, 1, kMaxParam);
  require_range(fn, "block_k", block_k, 1, kMaxParam);
  require_range(fn, "rows", rows, 1, std::int64_t{1} << 31);
  require_range(fn, "cols", cols, 1, std::int64_t{1} << 31);
  if (static_cast<std::int64_t>(visible_blocks.size()) != rows * cols) {
    throw_invalid(fn, "visible_blocks has ", visible_blocks.size(), " entries, expected rows * cols = ", rows, " * ",
                  cols, " = ", rows * cols);
  }
  for (std::uint8_t& v : visible_blocks) v = v != 0 ? 1 : 0;
  Mask m;
  m.kind_ = Kind::explicit_blocks;
  m.a_ = block_q;
  m.b_ = block_k;
  m.c_ = rows;
  m.d_ = cols;
  m.blocks_ = std::make_shared<const std::vector<std::uint8_t>>(std::move(visible_blocks));
  return m;
}

Mask Mask::intersection(std::initializer_list<Mask> masks) { return intersection(std::vector<Mask>(masks)); }
Mask Mask::intersection(std::vector<Mask> masks) {
  if (masks.empty()) throw_invalid("Mask::intersection", "needs at least one mask, got 0");
  Mask m;
  m.kind_ = Kind::intersection;
  m.children_ = std::make_shared<const std::vector<Mask>>(std::move(masks));
  return m;
}
Mask Mask::union_of(std::initializer_list<Mask> masks) { return union_of(std::vector<Mask>(masks)); }
Mask Mask::union_of(std::vector<Mask> masks) {
  if (masks.empty()) throw_invalid("Mask::union_of", "needs at least one mask, got 0");
  Mask m;
  m.kind_ = Kind::union_of;
  m.children_ = std::make_shared<const std::vector<Mask>>(std::move(masks));
  return m;
}

std::string Mask::name() const {
  std::ostringstream os;
  switch (kind_) {
    case Kind::none: os << "none"; break;
    case Kind::causal: os << "causal"; break;
    case Kind::sliding_window: os << "sliding_window(left=" << a_ << ",right=" << b_ << ")"; break;
    case Kind::strided: os << "strided(stride=" << a_ << (causal_ ? ",causal" : "") << ")"; break;
    case Kind::fixed: os << "fixed(stride=" << a_ << ",summary=" << b_ << (causal_ ? ",causal" : "") << ")"; break;
    case Kind::global_tokens: os << "global_tokens(count=" << a_ << ")"; break;
    case Kind::bigbird:
      os << "bigbird(block=" << a_ << ",window_radius=" << b_ << ",global_blocks=" << c_ << ",random_blocks=" << d_
         << ",seed=" << seed_ << ")";
      break;
    case Kind::explicit_blocks:
      os << "explicit_blocks(block_q=" << a_ << ",block_k=" << b_ << ",rows=" << c_ << ",cols=" << d_ << ",visible=";
      for (std::uint8_t v : *blocks_) os << (v != 0 ? '1' : '0');
      os << ")";
      break;
    case Kind::intersection:
    case Kind::union_of: {
      os << (kind_ == Kind::intersection ? "intersection(" : "union(");
      bool first = true;
      for (const Mask& c : *children_) {
        os << (first ? "" : ",") << c.name();
        first = false;
      }
      os << ")";
      break;
    }
  }
  return os.str();
}

namespace {

constexpr const char* kSyntax =
    "none | causal | sliding_window(left=L,right=R) | strided(stride=S[,causal]) | "
    "fixed(stride=S,summary=C[,causal]) | global_tokens(count=C) | "
    "bigbird(block=B,window_radius=W,global_blocks=G,random_blocks=R,seed=SEED) | "
    "explicit_blocks(block_q=BQ,block_k=BK,rows=R,cols=C,visible=<R*C digits 0 or 1, row-major>) | "
    "intersection(MASK,...) | union(MASK,...); numbers in decimal without sign or leading zeros";

// Nesting deeper than this is refused: no mask of the project comes near it, and it bounds the
// recursion on hostile text.
constexpr int kMaxDepth = 32;

// Recursive descent over name()'s grammar, accepting only the canonical text.
class MaskParser {
 public:
  explicit MaskParser(std::string_view text) : text_(text) {}

  Mask parse_all() {
    if (text_.empty()) fail("empty text, expected a mask");
    Mask m = parse_mask(0);
    if (pos_ != text_.size()) fail("trailing text after the mask");
    return m;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;

  [[noreturn]] void fail_at(std::size_t at, std::string_view what) const {
    throw std::invalid_argument(concat("Mask::parse: '", printable(text_), "' at character ", at + 1, ": ", what,
                                       "; accepted syntax: ", kSyntax));
  }
  [[noreturn]] void fail(std::string_view what) const { fail_at(pos_, what); }

  bool accept(std::string_view token) {
    if (text_.substr(pos_).starts_with(token)) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  void expect(std::string_view token) {
    if (!accept(token)) fail(concat("expected '", token, "'"));
  }

  // A kind's name: a letter or '_', then letters, digits and '_' (digits only so that an unknown
  // name such as sliding_window_256 is quoted whole).
  std::string_view word() {
    const std::size_t start = pos_;
    const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
    while (pos_ < text_.size() && (letter(text_[pos_]) || (pos_ > start && text_[pos_] >= '0' && text_[pos_] <= '9'))) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  // A decimal number in [0, max]: digits only, no leading zero.
  std::uint64_t number(std::uint64_t max) {
    const std::size_t start = pos_;
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') fail("expected a decimal number");
    std::uint64_t value = 0;
    bool overflow = false;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (value > (max - digit) / 10) overflow = true;
      if (!overflow) value = value * 10 + digit;
      ++pos_;
    }
    if (text_[start] == '0' && pos_ - start > 1) fail_at(start, "leading zero in a number");
    if (overflow) fail_at(start, concat("number out of range [0, ", max, "]"));
    return value;
  }

  // ",key=" (or "key=" for the first parameter) followed by a number.
  std::int64_t param(std::string_view key, bool first) {
    if (!first) expect(",");
    expect(concat(key, "="));
    return static_cast<std::int64_t>(number(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
  }

  // Calls a factory; its range error becomes a parse error at `start`.
  template <class Make>
  Mask make(std::size_t start, Make&& factory) const {
    try {
      return factory();
    } catch (const std::invalid_argument& error) {
      fail_at(start, error.what());
    }
  }

  Mask parse_mask(int depth) {
    if (depth > kMaxDepth) fail(concat("masks nested deeper than ", kMaxDepth));
    const std::size_t start = pos_;
    const std::string_view kind = word();
    if (kind == "none") return Mask::none();
    if (kind == "causal") return Mask::causal();
    if (kind == "sliding_window") {
      expect("(");
      const std::int64_t left = param("left", true), right = param("right", false);
      expect(")");
      return make(start, [&] { return Mask::sliding_window(left, right); });
    }
    if (kind == "strided") {
      expect("(");
      const std::int64_t stride = param("stride", true);
      const bool causal = accept(",causal");
      expect(")");
      return make(start, [&] { return Mask::strided(stride, causal); });
    }
    if (kind == "fixed") {
      expect("(");
      const std::int64_t stride = param("stride", true), summary = param("summary", false);
      const bool causal = accept(",causal");
      expect(")");
      return make(start, [&] { return Mask::fixed(stride, summary, causal); });
    }
    if (kind == "global_tokens") {
      expect("(");
      const std::int64_t count = param("count", true);
      expect(")");
      return make(start, [&] { return Mask::global_tokens(count); });
    }
    if (kind == "bigbird") {
      expect("(");
      const std::int64_t block = param("block", true), radius = param("window_radius", false),
                         global = param("global_blocks", false), random = param("random_blocks", false);
      expect(",seed=");
      const std::uint64_t seed = number(std::numeric_limits<std::uint64_t>::max());
      expect(")");
      return make(start, [&] { return Mask::bigbird(block, radius, global, random, seed); });
    }
    if (kind == "explicit_blocks") {
      expect("(");
      const std::int64_t block_q = param("block_q", true), block_k = param("block_k", false),
                         rows = param("rows", false), cols = param("cols", false);
      expect(",visible=");
      const std::size_t bits_start = pos_;
      std::vector<std::uint8_t> visible;
      while (pos_ < text_.size() && (text_[pos_] == '0' || text_[pos_] == '1')) {
        visible.push_back(text_[pos_] == '1' ? 1 : 0);
        ++pos_;
      }
      if (static_cast<std::int64_t>(visible.size()) != detail::sat_mul(rows, cols)) {
        fail_at(bits_start, concat("visible has ", visible.size(), " digits, expected rows * cols = ", rows, " * ",
                                   cols));
      }
      expect(")");
      return make(start, [&] { return Mask::explicit_blocks(block_q, block_k, rows, cols, std::move(visible)); });
    }
    if (kind == "intersection" || kind == "union") {
      expect("(");
      std::vector<Mask> children;
      do {
        children.push_back(parse_mask(depth + 1));
      } while (accept(","));
      expect(")");
      return kind == "intersection" ? Mask::intersection(std::move(children)) : Mask::union_of(std::move(children));
    }
    fail_at(start, kind.empty() ? std::string("expected a mask kind") : concat("unknown mask kind '", kind, "'"));
  }
};

}  // namespace

Mask Mask::parse(std::string_view text) { return MaskParser(text).parse_all(); }

std::vector<std::string> split_mask_list(std::string_view text) {
  std::vector<std::string> items(1);
  int depth = 0;  // parentheses open at this character; unbalanced ones are left for Mask::parse
  for (char c : text) {
    if (c == ',' && depth <= 0) {
      items.emplace_back();
      continue;
    }
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    items.back().push_back(c);
  }
  return items;
}

const char* Mask::syntax() { return kSyntax; }

bool operator==(const Mask& x, const Mask& y) {
  if (x.kind_ != y.kind_ || x.a_ != y.a_ || x.b_ != y.b_ || x.c_ != y.c_ || x.d_ != y.d_ || x.causal_ != y.causal_ ||
      x.seed_ != y.seed_) {
    return false;
  }
  if ((x.blocks_ == nullptr) != (y.blocks_ == nullptr) || (x.children_ == nullptr) != (y.children_ == nullptr)) {
    return false;
  }
  if (x.blocks_ && *x.blocks_ != *y.blocks_) return false;
  if (x.children_ && *x.children_ != *y.children_) return false;
  return true;
}

Mask::Window Mask::window() const {
  if (kind_ != Kind::sliding_window) throw_invalid("Mask::window", "mask ", name(), " is not a sliding_window");
  return {.left = a_, .right = b_};
}

Mask::Blocks Mask::explicit_layout() const {
  if (kind_ != Kind::explicit_blocks) {
    throw_invalid("Mask::explicit_layout", "mask ", name(), " is not an explicit_blocks layout");
  }
  return {.block_q = a_, .block_k = b_, .rows = c_, .cols = d_, .visible = blocks_.get()};
}

void Mask::validate(const char* function, std::int64_t seq_q, std::int64_t seq_k) const {
  if (kind_ == Kind::explicit_blocks) {
    const std::int64_t rows = ceil_div(seq_q, a_), cols = ceil_div(seq_k, b_);
    if (rows != c_ || cols != d_) {
      throw_invalid(function, "explicit block layout is (", c_, " x ", d_, ") blocks of (", a_, " x ", b_,
                    "), but seq_q = ", seq_q, ", seq_k = ", seq_k, " need (", rows, " x ", cols, ") blocks");
    }
  }
  if (children_) {
    for (const Mask& c : *children_) c.validate(function, seq_q, seq_k);
  }
}

bool Mask::bigbird_random_hit(std::int64_t qb, std::int64_t kb, std::int64_t key_blocks) const {
  for (std::int64_t t = 0; t < d_; ++t) {
    if (bigbird_pick(seed_, qb, t, key_blocks) == kb) return true;
  }
  return false;
}

bool Mask::visible(std::int64_t i, std::int64_t j, std::int64_t seq_q, std::int64_t seq_k) const {
  const std::int64_t p = i + (seq_k - seq_q);
  switch (kind_) {
    case Kind::none: return true;
    case Kind::causal: return j <= p;
    case Kind::sliding_window: return j >= sat_sub(p, a_) && j <= sat_add(p, b_);
    case Kind::strided: {
      const std::int64_t delta = p - j;
      if (causal_ && delta < 0) return false;
      return (delta < a_ && delta > -a_) || delta % a_ == 0;
    }
    case Kind::fixed: {
      if (causal_ && j > p) return false;
      return floor_div(p, a_) == j / a_ || j % a_ >= a_ - b_;
    }
    case Kind::global_tokens: return j < a_ || (p >= 0 && p < a_);
    case Kind::bigbird: {
      const std::int64_t qb = floor_div(p, a_), kb = j / a_;
      if ((qb >= 0 && qb < c_) || kb < c_) return true;
      if (qb - kb <= b_ && kb - qb <= b_) return true;
      return bigbird_random_hit(qb, kb, ceil_div(seq_k, a_));
    }
    case Kind::explicit_blocks: return (*blocks_)[static_cast<std::size_t>((i / a_) * d_ + j / b_)] != 0;
    case Kind::intersection:
      for (const Mask& c : *children_) {
        if (!c.visible(i, j, seq_q, seq_k)) return false;
      }
      return true;
    case Kind::union_of:
      for (const Mask& c : *children_) {
        if (c.visible(i, j, seq_q, seq_k)) return true;
      }
      return false;
  }
  return false;
}

bool Mask::single_interval(std::int64_t i, std::int64_t seq_q, std::int64_t seq_k, std::int64_t& lo,
                           std::int64_t& hi) const {
  const std::int64_t p = i + (seq_k - seq_q);
  switch (kind_) {
    case Kind::none: lo = 0; hi = seq_k; return true;
    case Kind::causal: lo = 0; hi = std::clamp<std::int64_t>(p + 1, 0, seq_k); return true;
    case Kind::sliding_window:
      lo = std::clamp<std::int64_t>(sat_sub(p, a_), 0, seq_k);
      hi = std::clamp<std::int64_t>(sat_add(sat_add(p, b_), 1), 0, seq_k);
      if (hi < lo) hi = lo;
      return true;
    default: return false;
  }
}

void Mask::row_intervals(std::int64_t i, std::int64_t seq_q, std::int64_t seq_k, std::vector<KeyInterval>& out) const {
  out.clear();
  const std::int64_t p = i + (seq_k - seq_q);
  const std::int64_t nk = seq_k;
  switch (kind_) {
    case Kind::none:
    case Kind::causal:
    case Kind::sliding_window: {
      std::int64_t lo = 0, hi = 0;
      single_interval(i, seq_q, seq_k, lo, hi);
      if (lo < hi) out.push_back({lo, hi});
      return;
    }
    case Kind::strided: {
      const std::int64_t l = a_;
      // local part: |p - j| < l (and j <= p when causal)
      out.push_back({sat_add(sat_sub(p, l), 1), causal_ ? p + 1 : sat_add(p, l)});
      // strided part: j = p - k l, k >= 1 when causal, every integer k otherwise
      if (l > 1) {
        const std::int64_t first = ((p % l) + l) % l;  // smallest j >= 0 with j = p (mod l)
        const std::int64_t last = causal_ ? std::min(p, nk - 1) : nk - 1;
        for (std::int64_t j = first; j <= last; j += l) out.push_back({j, j + 1});
      } else if (!causal_) {
        out.push_back({0, nk});
      } else {
        out.push_back({0, p + 1});
      }
      normalize(out, nk);
      return;
    }
    case Kind::fixed: {
      const std::int64_t l = a_, c = b_;
      const std::int64_t own = floor_div(p, l);
      out.push_back({sat_mul(own, l), sat_add(sat_mul(own, l), l)});
      if (c > 0) {
        for (std::int64_t start = 0; start < nk; start = sat_add(start, l)) {
          out.push_back({start + l - c, sat_add(start, l)});
        }
      }
      if (causal_) {
        for (auto& iv : out) iv.hi = std::min(iv.hi, p + 1);
      }
      normalize(out, nk);
      return;
    }
    case Kind::global_tokens:
      if (p >= 0 && p < a_) {
        out.push_back({0, nk});
      } else {
        out.push_back({0, std::min(a_, nk)});
      }
      return;
    case Kind::bigbird: {
      const std::int64_t bs = a_, qb = floor_div(p, bs);
      if (qb >= 0 && qb < c_) {
        out.push_back({0, nk});
        return;
      }
      out.push_back({0, sat_mul(c_, bs)});
      out.push_back({sat_mul(qb - b_, bs), sat_mul(qb + b_ + 1, bs)});
      const std::int64_t key_blocks = ceil_div(nk, bs);
      for (std::int64_t t = 0; t < d_; ++t) {
        const std::int64_t kb = bigbird_pick(seed_, qb, t, key_blocks);
        out.push_back({kb * bs, kb * bs + bs});
      }
      normalize(out, nk);
      return;
    }
    case Kind::explicit_blocks: {
      const std::int64_t row = i / a_;
      for (std::int64_t col = 0; col < d_; ++col) {
        if ((*blocks_)[static_cast<std::size_t>(row * d_ + col)] != 0) out.push_back({col * b_, col * b_ + b_});
      }
      normalize(out, nk);
      return;
    }
    case Kind::intersection: {
      std::vector<KeyInterval> other;
      bool first = true;
      for (const Mask& c : *children_) {
        if (first) {
          c.row_intervals(i, seq_q, seq_k, out);
          first = false;
        } else {
          c.row_intervals(i, seq_q, seq_k, other);
          intersect_into(out, other);
        }
        if (out.empty()) return;
      }
      return;
    }
    case Kind::union_of: {
      std::vector<KeyInterval> other;
      for (const Mask& c : *children_) {
        c.row_intervals(i, seq_q, seq_k, other);
        out.insert(out.end(), other.begin(), other.end());
      }
      normalize(out, nk);
      return;
    }
  }
}

BlockLayout Mask::block_layout(std::int64_t seq_q, std::int64_t seq_k, std::int64_t block_q,
                               std::int64_t block_k) const {
  constexpr const char* fn = "Mask::block_layout";
  require_range(fn, "seq_q", seq_q, 1, std::numeric_limits<std::int32_t>::max());
  require_range(fn, "seq_k", seq_k, 1, std::numeric_limits<std::int32_t>::max());
  require_range(fn, "block_q", block_q, 1, std::numeric_limits<std::int32_t>::max());
  require_range(fn, "block_k", block_k, 1, std::numeric_limits<std::int32_t>::max());
  validate(fn, seq_q, seq_k);

  BlockLayout L;
  L.seq_q = seq_q;
  L.seq_k = seq_k;
  L.block_q = block_q;
  L.block_k = block_k;
  L.rows = ceil_div(seq_q, block_q);
  L.cols = ceil_div(seq_k, block_k);
  L.kinds.assign(static_cast<std::size_t>(L.rows * L.cols), BlockKind::empty);
  L.row_ptr.assign(static_cast<std::size_t>(L.rows + 1), 0);

  std::vector<std::int64_t> count(static_cast<std::size_t>(L.cols));  // visible pairs per block of this block row
  std::vector<KeyInterval> ivs;
  for (std::int64_t r = 0; r < L.rows; ++r) {
    std::fill(count.begin(), count.end(), 0);
    const std::int64_t i0 = r * block_q, i1 = std::min(seq_q, i0 + block_q);
    for (std::int64_t i = i0; i < i1; ++i) {
      row_intervals(i, seq_q, seq_k, ivs);
      for (const KeyInterval& iv : ivs) {
        const std::int64_t c0 = iv.lo / block_k, c1 = (iv.hi - 1) / block_k;
        if (c0 == c1) {
          count[c0] += iv.hi - iv.lo;
          continue;
        }
        count[c0] += (c0 + 1) * block_k - iv.lo;
        for (std::int64_t c = c0 + 1; c < c1; ++c) count[c] += block_k;
        count[c1] += iv.hi - c1 * block_k;
      }
    }
    for (std::int64_t c = 0; c < L.cols; ++c) {
      const std::int64_t j0 = c * block_k, j1 = std::min(seq_k, j0 + block_k);
      const std::int64_t area = (i1 - i0) * (j1 - j0);
      BlockKind k = BlockKind::partial;
      if (count[c] == 0) {
        k = BlockKind::empty;
        ++L.empty_blocks;
      } else if (count[c] == area) {
        k = BlockKind::full;
        ++L.full_blocks;
      } else {
        ++L.partial_blocks;
      }
      L.visible_pairs += count[c];
      L.kinds[static_cast<std::size_t>(r * L.cols + c)] = k;
      if (k != BlockKind::empty) L.col_index.push_back(c);
    }
    L.row_ptr[r + 1] = static_cast<std::int64_t>(L.col_index.size());
  }

  // Transpose the CSR: per block column, its non-empty block rows in increasing order.
  L.col_ptr.assign(static_cast<std::size_t>(L.cols + 1), 0);
  for (std::int64_t c : L.col_index) ++L.col_ptr[c + 1];
  for (std::int64_t c = 0; c < L.cols; ++c) L.col_ptr[c + 1] += L.col_ptr[c];
  L.row_index.assign(L.col_index.size(), 0);
  std::vector<std::int64_t> fill(L.col_ptr.begin(), L.col_ptr.end() - 1);
  for (std::int64_t r = 0; r < L.rows; ++r) {
    for (std::int64_t e = L.row_ptr[r]; e < L.row_ptr[r + 1]; ++e) L.row_index[fill[L.col_index[e]]++] = r;
  }
  return L;
}

}  // namespace ped
