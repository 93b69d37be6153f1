/* Dropout on attention probabilities, as pedestrian draws it: a counter-based hash of
 * (seed, b, h, i, j), so that a backward regenerates its forward's mask without storing it, results
 * do not depend on the thread count or on the order in which tiles are visited, and a checker (the
 * LibTorch twin of verify, or an outside kernel through the plugin ABI) can rebuild the very same
 * mask. Plain C99, header-only, no dependencies: the one definition used by pedestrian's kernels,
 * its verification and plugins.
 *
 * b is the sequence (batch index), h the query head, i the query row and j the key column within
 * that sequence (with per-sequence lengths, positions inside the sequence, not the padded buffer).
 * P_ij is kept when ped_dropout_keep(...) is nonzero, and then scaled by 1 / (1 - p); it is dropped
 * (set to 0) otherwise. The drop probability is ceil(p 2^53) / 2^53, that is p up to 2^-53.
 *
 * The hash: splitmix64's finaliser (Steele, Lea, Flood 2014), applied to the seed, then to each of
 * b, h, i xored in, then to the row key plus j times the golden-ratio constant. Changing any of it
 * changes every dropout mask: it is part of the plugin ABI (version 2).
 */
#ifndef PEDESTRIAN_ATTENTION_DROPOUT_H
#define PEDESTRIAN_ATTENTION_DROPOUT_H

#include <math.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint64_t ped_dropout_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* The key of row i of head h of sequence b: computed once per row. */
static inline uint64_t ped_dropout_row_key(uint64_t seed, int64_t b, int64_t h, int64_t i) {
  uint64_t x = ped_dropout_mix64(seed + 0x9e3779b97f4a7c15ULL);
  x = ped_dropout_mix64(x ^ (uint64_t)b);
  x = ped_dropout_mix64(x ^ ((uint64_t)h + 0x632be59bd9b4e019ULL));
  return ped_dropout_mix64(x ^ ((uint64_t)i + 0x85157af5ULL));
}

/* The threshold for drop probability p in [0, 1): ceil(p 2^53). */
static inline uint64_t ped_dropout_threshold(double p) { return (uint64_t)ceil(p * 9007199254740992.0); }

/* Nonzero when P_ij is kept: the top 53 bits of the element's hash are >= the threshold. */
static inline int ped_dropout_keep_at(uint64_t row_key, int64_t j, uint64_t threshold) {
  return (ped_dropout_mix64(row_key + (uint64_t)j * 0x9e3779b97f4a7c15ULL) >> 11) >= threshold;
}

/* Nonzero when P_ij of (seed, b, h, i, j) is kept at drop probability p in [0, 1). */
static inline int ped_dropout_keep(uint64_t seed, int64_t b, int64_t h, int64_t i, int64_t j, double p) {
  return ped_dropout_keep_at(ped_dropout_row_key(seed, b, h, i), j, ped_dropout_threshold(p));
}

#ifdef __cplusplus
}
#endif

#endif /* PEDESTRIAN_ATTENTION_DROPOUT_H */
