/* The kernel of simple_attention.h. B batch, H heads, H_kv key/value heads, Nq query tokens, Nk key
 * tokens, d head dim, s scale; query i sits at key position p = i + Nk - Nq. Per (b, h), with
 * key/value head h / (H / H_kv):
 *   forward:  S_ij = s q_i . k_j (visible pairs only), m_i = max_j S_ij, l_i = sum_j exp(S_ij - m_i),
 *             lse_i = m_i + log l_i, out_i = sum_j exp(S_ij - m_i) v_j / l_i
 *   (P_ij = exp(S_ij - lse_i) recomputed in the backward)
 *   backward: D_i = dout_i . out_i (= rowsum(dP o P)_i), dP_ij = dout_i . v_j,
 *             dS_ij = P_ij (dP_ij - D_i), dq_i = s sum_j dS_ij k_j, dk_j = s sum_i dS_ij q_i,
 *             dv_j = sum_i P_ij dout_i
 * Built against version 2 of the ABI it also implements every feature of version 2 (the header's
 * math, in its order): soft-cap S_ij = c tanh(s q_i.k_j / c), ALiBi S_ij -= slope_h |p - j|, the
 * sink in m_i, l_i and lse_i, dropout on P after the row sums (ped_dropout_keep), per-sequence
 * lengths of the padded layout, grouped-query heads; in backward dS through the soft-cap, dsinks,
 * and dk, dv summed over the query heads of a group. It reads those fields only when struct_size
 * covers them, so the same code serves a version-1 description; built against the version-1 header
 * (abi_v1/) the feature code is left out.
 *
 * Every dtype of the ABI: float32, float64, and the 16-bit bfloat16 and float16, whose values are
 * read as doubles and written rounded to nearest even (the conversions below, by hand: C99 has no
 * 16-bit floating types). Arithmetic is in double whatever the dtype.
 *
 * Deliberately wrong builds (the examples that verify must catch) define one of:
 *   PED_EXAMPLE_BUG_NO_ROWSUM          D_i = 0: the backward forgets the rowsum(dO o O) term
 *   PED_EXAMPLE_BUG_CAUSAL_OFF_BY_ONE  causal keys j <= p + 1: each query also sees the next key
 *   PED_EXAMPLE_BUG_IGNORE_STRIDES     tensors read as compact row-major from data, ignoring
 *                                      strides and byte_offset
 *   PED_EXAMPLE_BUG_DSINKS_SIGN        dsinks with the wrong sign (+sum P_i,sink D_i): only the
 *                                      sinks' gradient is wrong
 *   PED_EXAMPLE_BUG_REDUCED_ACCUMULATION  in bfloat16 and float16, every sum (dot products, the
 *                                      softmax denominator, out, the gradients) rounded to the
 *                                      dtype after each addition: an error of order sqrt(n) eps over
 *                                      n terms, where LibTorch accumulates in float */
#include "simple_attention_kernel.h"

#include <math.h>
#include <pedestrian/attention_dropout.h> /* with the version-1 header too */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum Kind { KIND_FLOAT32, KIND_FLOAT64, KIND_BFLOAT16, KIND_FLOAT16 } Kind;

/* A tensor of the call: where element 0 is, its sizes and strides (in elements), its dtype. */
typedef struct View {
  char* first;
  int ndim;
  int64_t size[4];
  int64_t stride[4];
  Kind kind;
} View;

/* ---- bfloat16 (8 exponent bits, 7 fraction bits) and float16 (IEEE binary16: 5 exponent bits,
 * bias 15, 10 fraction bits, subnormals) ---------------------------------------------------------- */

/* x rounded to the nearest value with `fraction_bits` fraction bits, normal exponents from
 * `min_exponent` (below it the spacing of the subnormals), ties to even (nearbyint in the default
 * rounding mode); beyond max_finite an infinity. */
static double round_to_format(double x, int fraction_bits, int min_exponent, double max_finite) {
  int exponent;
  double ulp, r;
  if (x == 0.0 || isnan(x) || isinf(x)) return x;
  (void)frexp(x, &exponent); /* x = m 2^exponent, 0.5 <= |m| < 1 */
  exponent -= 1;
  if (exponent < min_exponent) exponent = min_exponent;
  ulp = ldexp(1.0, exponent - fraction_bits);
  r = nearbyint(x / ulp) * ulp;
  return fabs(r) > max_finite ? copysign(INFINITY, x) : r;
}

#define BFLOAT16_MAX 3.3895313892515355e38 /* (2 - 2^-7) 2^127 */
#define FLOAT16_MAX 65504.0

static uint16_t to_bfloat16(double x) {
  const float f = (float)round_to_format(x, 7, -126, BFLOAT16_MAX); /* exact: a bfloat16 is a float */
  uint32_t bits;
  if (isnan(x)) return 0x7fc0u;
  memcpy(&bits, &f, sizeof bits);
  return (uint16_t)(bits >> 16);
}

static double from_bfloat16(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t to_float16(double x) {
  const double r = round_to_format(x, 10, -14, FLOAT16_MAX);
  const uint16_t sign = signbit(r) ? 0x8000u : 0u;
  const double a = fabs(r);
  int exponent;
  if (isnan(x)) return 0x7e00u;
  if (isinf(a)) return (uint16_t)(sign | 0x7c00u);
  if (a < ldexp(1.0, -14)) return (uint16_t)(sign | (uint16_t)(a * 16777216.0)); /* a multiple of 2^-24 */
  (void)frexp(a, &exponent); /* a = m 2^exponent, 0.5 <= m < 1: the biased exponent is exponent - 1 + 15 */
  return (uint16_t)(sign | (uint16_t)((exponent + 14) << 10) | (uint16_t)(ldexp(a, 11 - exponent) - 1024.0));
}

static double from_float16(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const double fraction = (double)(h & 0x3ffu);
  const double magnitude = exponent == 0    ? ldexp(fraction, -24)
                           : exponent == 31 ? (fraction == 0.0 ? INFINITY : NAN)
                                            : ldexp(1024.0 + fraction, exponent - 25);
  return (h & 0x8000u) ? -magnitude : magnitude;
}

#ifdef PED_EXAMPLE_BUG_REDUCED_ACCUMULATION
/* x as the view's dtype stores it. */
static double stored(const struct View* v, double x) {
  switch (v->kind) {
    case KIND_FLOAT32: return (float)x;
    case KIND_BFLOAT16: return from_bfloat16(to_bfloat16(x));
    case KIND_FLOAT16: return from_float16(to_float16(x));
    default: return x;
  }
}

#endif

/* A running sum: exact in double, or (the deliberately wrong build) rounded to a 16-bit dtype
 * after every addition. */
static double sum_step(const struct View* like, double x) {
#ifdef PED_EXAMPLE_BUG_REDUCED_ACCUMULATION
  if (like->kind == KIND_BFLOAT16 || like->kind == KIND_FLOAT16) return stored(like, x);
#else
  (void)like;
#endif
  return x;
}

static int fail(char* error, size_t capacity, const char* message, const char* what) {
  snprintf(error, capacity, "simple_attention: %s%s%s", what, *what ? " " : "", message);
  return 1;
}

static int view_of(const DLTensor* t, int ndim, int must_be_double, const char* what, View* v, char* error,
                   size_t capacity) {
  int k;
  if (t == NULL) return fail(error, capacity, "is NULL", what);
  if (t->device.device_type != kDLCPU) return fail(error, capacity, "is not on the CPU", what);
  if (t->ndim != ndim) return fail(error, capacity, "has the wrong number of dimensions", what);
  if (t->dtype.lanes != 1) return fail(error, capacity, "has lanes != 1", what);
  if (t->dtype.code == kDLFloat && t->dtype.bits == 32) v->kind = KIND_FLOAT32;
  else if (t->dtype.code == kDLFloat && t->dtype.bits == 64) v->kind = KIND_FLOAT64;
  else if (t->dtype.code == kDLBfloat && t->dtype.bits == 16) v->kind = KIND_BFLOAT16;
  else if (t->dtype.code == kDLFloat && t->dtype.bits == 16) v->kind = KIND_FLOAT16;
  else return fail(error, capacity, "is not float32, float64, bfloat16 or float16", what);
  if (must_be_double && v->kind != KIND_FLOAT64) return fail(error, capacity, "is not float64", what);
  v->ndim = ndim;
  for (k = 0; k < ndim; ++k) v->size[k] = t->shape[k];
#ifdef PED_EXAMPLE_BUG_IGNORE_STRIDES
  v->first = (char*)t->data;
  v->stride[ndim - 1] = 1;
  for (k = ndim - 1; k > 0; --k) v->stride[k - 1] = v->stride[k] * v->size[k];
#else
  v->first = (char*)t->data + t->byte_offset;
  if (t->strides != NULL) {
    for (k = 0; k < ndim; ++k) v->stride[k] = t->strides[k];
  } else { /* DLPack: NULL strides mean compact row-major */
    v->stride[ndim - 1] = 1;
    for (k = ndim - 1; k > 0; --k) v->stride[k - 1] = v->stride[k] * v->size[k];
  }
#endif
  return 0;
}

static int64_t offset(const View* v, int64_t a, int64_t b, int64_t c, int64_t e) {
  int64_t o = a * v->stride[0] + b * v->stride[1] + c * v->stride[2];
  if (v->ndim == 4) o += e * v->stride[3];
  return o;
}

static double get(const View* v, int64_t a, int64_t b, int64_t c, int64_t e) {
  const int64_t o = offset(v, a, b, c, e);
  switch (v->kind) {
    case KIND_FLOAT64: return ((const double*)v->first)[o];
    case KIND_FLOAT32: return (double)((const float*)v->first)[o];
    case KIND_BFLOAT16: return from_bfloat16(((const uint16_t*)v->first)[o]);
    default: return from_float16(((const uint16_t*)v->first)[o]);
  }
}

static void set(const View* v, int64_t a, int64_t b, int64_t c, int64_t e, double x) {
  const int64_t o = offset(v, a, b, c, e);
  switch (v->kind) {
    case KIND_FLOAT64: ((double*)v->first)[o] = x; break;
    case KIND_FLOAT32: ((float*)v->first)[o] = (float)x; break;
    case KIND_BFLOAT16: ((uint16_t*)v->first)[o] = to_bfloat16(x); break;
    default: ((uint16_t*)v->first)[o] = to_float16(x); break;
  }
}

static int visible(const PedAttentionMask* m, int64_t i, int64_t j, int64_t nq, int64_t nk) {
  const int64_t p = i + nk - nq;
  switch (m->kind) {
    case PED_MASK_NONE:
      return 1;
    case PED_MASK_CAUSAL:
#ifdef PED_EXAMPLE_BUG_CAUSAL_OFF_BY_ONE
      return j <= p + 1;
#else
      return j <= p;
#endif
    case PED_MASK_SLIDING_WINDOW:
      return j >= p - m->window_left && j <= p + m->window_right;
    case PED_MASK_EXPLICIT_BLOCKS:
      return m->blocks[(i / m->block_q) * m->block_cols + j / m->block_k] != 0;
    case PED_MASK_ELEMENTS:
      return m->elements[i * nk + j] != 0;
    default:
      return 0;
  }
}

/* The first `dims` sizes of a and b agree. */
static int same_sizes(const View* a, const View* b, int dims, const char* what, char* error, size_t capacity) {
  int k;
  for (k = 0; k < dims; ++k) {
    if (a->size[k] != b->size[k]) return fail(error, capacity, "has sizes that do not match q/k", what);
  }
  return 0;
}

/* ---- version 2's features ------------------------------------------------------------------- */

/* A 1-D tensor of the call: float64 (slopes, sinks, dsinks) or int64 (lengths). */
typedef struct Vector {
  char* first;
  int64_t size;
  int64_t stride;
} Vector;

/* The features of one call, neutral when absent. */
typedef struct Features {
  double softcap, dropout_p;
  uint64_t dropout_seed;
  Vector slopes, sinks, seqlens_q, seqlens_k, dsinks; /* first == NULL: absent */
} Features;

static double vector_double(const Vector* v, int64_t i) { return ((const double*)v->first)[i * v->stride]; }
static int64_t vector_int(const Vector* v, int64_t i) { return ((const int64_t*)v->first)[i * v->stride]; }

#if PED_ATTENTION_PLUGIN_ABI_VERSION >= 2
/* t (NULL allowed) as a vector of `size` elements of dtype (code, 64 bits). */
static int vector_of(const DLTensor* t, uint8_t code, int64_t size, const char* what, Vector* v, char* error,
                     size_t capacity) {
  v->first = NULL;
  if (t == NULL) return 0;
  if (t->device.device_type != kDLCPU) return fail(error, capacity, "is not on the CPU", what);
  if (t->ndim != 1 || t->shape[0] != size) return fail(error, capacity, "is not a 1-D tensor of B or H elements", what);
  if (t->dtype.code != code || t->dtype.bits != 64 || t->dtype.lanes != 1) {
    return fail(error, capacity, code == kDLInt ? "is not int64" : "is not float64", what);
  }
  v->first = (char*)t->data + t->byte_offset;
  v->size = size;
  v->stride = t->strides != NULL ? t->strides[0] : 1;
  return 0;
}

/* The version-2 fields of a call (both argument structs name them alike). */
#define READ_FEATURES(args, v2_size, f, B, H, nq, nk)                                                              \
  (args->struct_size >= v2_size                                                                                  \
       ? read_features(args->alibi_slopes, args->softcap, args->dropout_p, args->dropout_seed, args->sinks,      \
                       args->seqlens_q, args->seqlens_k, B, H, nq, nk, f, error, capacity)                       \
       : 0)

static int read_features(const DLTensor* slopes, double softcap, double dropout_p, uint64_t seed,
                         const DLTensor* sinks, const DLTensor* seqlens_q, const DLTensor* seqlens_k, int64_t B,
                         int64_t H, int64_t nq, int64_t nk, Features* f, char* error, size_t capacity) {
  int64_t b;
  if (!(softcap >= 0.0) || isinf(softcap)) return fail(error, capacity, "is not 0 or a finite c > 0", "softcap");
  if (!(dropout_p >= 0.0 && dropout_p < 1.0)) return fail(error, capacity, "is not in [0, 1)", "dropout_p");
  f->softcap = softcap;
  f->dropout_p = dropout_p;
  f->dropout_seed = seed;
  if (vector_of(slopes, kDLFloat, H, "alibi_slopes", &f->slopes, error, capacity) ||
      vector_of(sinks, kDLFloat, H, "sinks", &f->sinks, error, capacity) ||
      vector_of(seqlens_q, kDLInt, B, "seqlens_q", &f->seqlens_q, error, capacity) ||
      vector_of(seqlens_k, kDLInt, B, "seqlens_k", &f->seqlens_k, error, capacity)) {
    return 1;
  }
  for (b = 0; b < B; ++b) {
    if (f->seqlens_q.first != NULL && (vector_int(&f->seqlens_q, b) < 0 || vector_int(&f->seqlens_q, b) > nq)) {
      return fail(error, capacity, "holds a length outside [0, Nq]", "seqlens_q");
    }
    if (f->seqlens_k.first != NULL && (vector_int(&f->seqlens_k, b) < 0 || vector_int(&f->seqlens_k, b) > nk)) {
      return fail(error, capacity, "holds a length outside [0, Nk]", "seqlens_k");
    }
  }
  return 0;
}
#endif

static void no_features(Features* f) {
  memset(f, 0, sizeof *f);
  f->slopes.first = f->sinks.first = f->seqlens_q.first = f->seqlens_k.first = f->dsinks.first = NULL;
}

static int64_t length_q(const Features* f, int64_t b, int64_t nq) {
  return f->seqlens_q.first != NULL ? vector_int(&f->seqlens_q, b) : nq;
}
static int64_t length_k(const Features* f, int64_t b, int64_t nk) {
  return f->seqlens_k.first != NULL ? vector_int(&f->seqlens_k, b) : nk;
}

/* Whether key j of sequence b is visible to its query i, the sequence holding lq queries and lk
 * keys (ELEMENTS: sequence b's Nq x Nk block when the call has lengths). */
static int visible_in(const PedAttentionMask* m, const Features* f, int64_t b, int64_t i, int64_t j, int64_t lq,
                      int64_t lk, int64_t nq, int64_t nk) {
  if (m->kind == PED_MASK_ELEMENTS && (f->seqlens_q.first != NULL || f->seqlens_k.first != NULL)) {
    return m->elements[(b * nq + i) * nk + j] != 0;
  }
  return visible(m, i, j, lq, lk);
}

/* S_ij of head h before the mask: soft-cap, then ALiBi. *tanh_out gets t = tanh(s q.k / c) (0
 * without soft-cap) for the backward. */
static double score(const Features* f, double scale, double dot, int64_t h, int64_t p, int64_t j, double* tanh_out) {
  double s = scale * dot;
  *tanh_out = 0.0;
  if (f->softcap > 0.0) {
    *tanh_out = tanh(s / f->softcap);
    s = f->softcap * *tanh_out;
  }
  if (f->slopes.first != NULL) s -= vector_double(&f->slopes, h) * (double)(p >= j ? p - j : j - p);
  return s;
}

int simple_attention_forward(const PedAttentionForwardArgs* args, char* error, size_t capacity) {
  View q, k, v, out, lse;
  Features f;
  int64_t b, h, i, j, c, B, H, Hkv, nq, nk, d;
  double* scores;
  if (view_of(args->q, 4, 0, "q", &q, error, capacity) || view_of(args->k, 4, 0, "k", &k, error, capacity) ||
      view_of(args->v, 4, 0, "v", &v, error, capacity) || view_of(args->out, 4, 0, "out", &out, error, capacity) ||
      view_of(args->lse, 3, 1, "lse", &lse, error, capacity)) {
    return 1;
  }
  if (same_sizes(&k, &v, 4, "v", error, capacity) || same_sizes(&q, &out, 4, "out", error, capacity) ||
      same_sizes(&q, &k, 1, "k", error, capacity) || same_sizes(&q, &lse, 3, "lse", error, capacity)) {
    return 1;
  }
  B = q.size[0], H = q.size[1], nq = q.size[2], d = q.size[3], Hkv = k.size[1], nk = k.size[2];
  if (k.size[3] != d) return fail(error, capacity, "head dim differs from q's", "k");
  if (Hkv < 1 || H % Hkv != 0) return fail(error, capacity, "heads do not divide q's heads", "k");
  no_features(&f);
#if PED_ATTENTION_PLUGIN_ABI_VERSION >= 2
  if (READ_FEATURES(args, PED_ATTENTION_FORWARD_ARGS_V2_SIZE, &f, B, H, nq, nk)) return 1;
#endif
  scores = (double*)malloc((size_t)(nk > 0 ? nk : 1) * sizeof(double));
  if (scores == NULL) return fail(error, capacity, "out of memory for the scores", "");
  for (b = 0; b < B; ++b) {
    const int64_t lq = length_q(&f, b, nq), lk = length_k(&f, b, nk);
    for (h = 0; h < H; ++h) {
      const int64_t hk = h / (H / Hkv);
      const double sink = f.sinks.first != NULL ? vector_double(&f.sinks, h) : -INFINITY;
      for (i = 0; i < nq; ++i) {
        const int64_t p = i + lk - lq;
        const double keep_scale = 1.0 / (1.0 - f.dropout_p);
        const uint64_t row_key = ped_dropout_row_key(f.dropout_seed, b, h, i);
        const uint64_t threshold = ped_dropout_threshold(f.dropout_p);
        double max = sink, sum = 0.0, l, t;
        if (i >= lq) { /* padding: out 0, lse -inf */
          for (c = 0; c < d; ++c) set(&out, b, h, i, c, 0.0);
          set(&lse, b, h, i, 0, -INFINITY);
          continue;
        }
        for (j = 0; j < lk; ++j) {
          double dot = 0.0;
          if (!visible_in(args->mask, &f, b, i, j, lq, lk, nq, nk)) {
            scores[j] = -INFINITY;
            continue;
          }
          for (c = 0; c < d; ++c) dot = sum_step(&q, dot + get(&q, b, h, i, c) * get(&k, b, hk, j, c));
          scores[j] = score(&f, args->scale, dot, h, p, j, &t);
          if (scores[j] > max) max = scores[j];
        }
        if (max == -INFINITY) { /* no visible key and no sink: out 0, lse -inf */
          for (c = 0; c < d; ++c) set(&out, b, h, i, c, 0.0);
          set(&lse, b, h, i, 0, -INFINITY);
          continue;
        }
        if (f.sinks.first != NULL) sum = exp(sink - max); /* the sink joins the denominator */
        for (j = 0; j < lk; ++j) {
          scores[j] = scores[j] == -INFINITY ? 0.0 : exp(scores[j] - max);
          sum = sum_step(&q, sum + scores[j]);
        }
        l = max + log(sum);
        set(&lse, b, h, i, 0, l);
        /* Dropout after the row sums: kept probabilities scaled by 1 / (1 - p), lse unchanged. */
        if (f.dropout_p > 0.0) {
          for (j = 0; j < lk; ++j) scores[j] = ped_dropout_keep_at(row_key, j, threshold) ? scores[j] * keep_scale : 0.0;
        }
        /* out_i = sum_j exp(S_ij - max) v_j / sum, normalised by the sum itself and not through
         * exp(S_ij - lse_i): at scores of 1e4, log(sum) can be below half an ulp of lse and vanish
         * from it, leaving out unnormalised by up to that much and the backward's D_i = dout_i . out_i
         * inconsistent with P (the large-score checks of verify catch it). */
        for (c = 0; c < d; ++c) {
          double acc = 0.0;
          for (j = 0; j < lk; ++j) acc = sum_step(&q, acc + scores[j] * get(&v, b, hk, j, c));
          set(&out, b, h, i, c, acc / sum);
        }
      }
    }
  }
  free(scores);
  return 0;
}

int simple_attention_backward(const PedAttentionBackwardArgs* args, char* error, size_t capacity) {
  View q, k, v, out, lse, dout, dq, dk, dv;
  Features f;
  int64_t b, h, hk, i, j, c, B, H, Hkv, group, nq, nk, d;
  double *gq, *gk, *gv, *gsinks;
  if (view_of(args->q, 4, 0, "q", &q, error, capacity) || view_of(args->k, 4, 0, "k", &k, error, capacity) ||
      view_of(args->v, 4, 0, "v", &v, error, capacity) || view_of(args->out, 4, 0, "out", &out, error, capacity) ||
      view_of(args->lse, 3, 1, "lse", &lse, error, capacity) ||
      view_of(args->dout, 4, 0, "dout", &dout, error, capacity) ||
      view_of(args->dq, 4, 0, "dq", &dq, error, capacity) || view_of(args->dk, 4, 0, "dk", &dk, error, capacity) ||
      view_of(args->dv, 4, 0, "dv", &dv, error, capacity)) {
    return 1;
  }
  if (same_sizes(&k, &v, 4, "v", error, capacity) || same_sizes(&q, &out, 4, "out", error, capacity) ||
      same_sizes(&q, &dout, 4, "dout", error, capacity) || same_sizes(&q, &dq, 4, "dq", error, capacity) ||
      same_sizes(&k, &dk, 4, "dk", error, capacity) || same_sizes(&k, &dv, 4, "dv", error, capacity) ||
      same_sizes(&q, &k, 1, "k", error, capacity) || same_sizes(&q, &lse, 3, "lse", error, capacity)) {
    return 1;
  }
  B = q.size[0], H = q.size[1], nq = q.size[2], d = q.size[3], Hkv = k.size[1], nk = k.size[2];
  if (k.size[3] != d) return fail(error, capacity, "head dim differs from q's", "k");
  if (Hkv < 1 || H % Hkv != 0) return fail(error, capacity, "heads do not divide q's heads", "k");
  group = H / Hkv;
  no_features(&f);
#if PED_ATTENTION_PLUGIN_ABI_VERSION >= 2
  if (READ_FEATURES(args, PED_ATTENTION_BACKWARD_ARGS_V2_SIZE, &f, B, H, nq, nk)) return 1;
  if (args->struct_size >= PED_ATTENTION_BACKWARD_ARGS_V2_SIZE && f.sinks.first != NULL) {
    if (args->dsinks == NULL) return fail(error, capacity, "is NULL while sinks is set", "dsinks");
    if (vector_of(args->dsinks, kDLFloat, H, "dsinks", &f.dsinks, error, capacity)) return 1;
  }
#endif
  /* Gradients accumulated in double: dq (Nq, d) of one (b, h), dk and dv (Nk, d) of one (b, h_kv)
   * over the query heads of its group, dsinks (H) over (b, i). */
  gq = (double*)malloc((size_t)(nq * d) * sizeof(double));
  gk = (double*)malloc((size_t)(nk * d) * sizeof(double));
  gv = (double*)malloc((size_t)(nk * d) * sizeof(double));
  gsinks = (double*)calloc((size_t)H, sizeof(double));
  if (gq == NULL || gk == NULL || gv == NULL || gsinks == NULL) {
    free(gq), free(gk), free(gv), free(gsinks);
    return fail(error, capacity, "out of memory for the gradients", "");
  }
  for (b = 0; b < B; ++b) {
    const int64_t lq = length_q(&f, b, nq), lk = length_k(&f, b, nk);
    for (hk = 0; hk < Hkv; ++hk) {
      memset(gk, 0, (size_t)(nk * d) * sizeof(double));
      memset(gv, 0, (size_t)(nk * d) * sizeof(double));
      for (h = hk * group; h < (hk + 1) * group; ++h) {
        const double sink = f.sinks.first != NULL ? vector_double(&f.sinks, h) : -INFINITY;
        const double keep_scale = 1.0 / (1.0 - f.dropout_p);
        const uint64_t threshold = ped_dropout_threshold(f.dropout_p);
        memset(gq, 0, (size_t)(nq * d) * sizeof(double));
        for (i = 0; i < lq; ++i) {
          const int64_t p = i + lk - lq;
          const uint64_t row_key = ped_dropout_row_key(f.dropout_seed, b, h, i);
          const double l = get(&lse, b, h, i, 0);
          double rowsum = 0.0;
          if (l == -INFINITY) continue; /* no visible key: no gradient */
#ifndef PED_EXAMPLE_BUG_NO_ROWSUM
          for (c = 0; c < d; ++c) rowsum = sum_step(&q, rowsum + get(&dout, b, h, i, c) * get(&out, b, h, i, c));
#endif
#ifdef PED_EXAMPLE_BUG_DSINKS_SIGN
          if (f.sinks.first != NULL) gsinks[h] += exp(sink - l) * rowsum;
#else
          if (f.sinks.first != NULL) gsinks[h] -= exp(sink - l) * rowsum; /* -P_i,sink D_i */
#endif
          for (j = 0; j < lk; ++j) {
            double dot = 0.0, t, pij, zs, dp = 0.0, ds;
            if (!visible_in(args->mask, &f, b, i, j, lq, lk, nq, nk)) continue;
            for (c = 0; c < d; ++c) dot = sum_step(&q, dot + get(&q, b, h, i, c) * get(&k, b, hk, j, c));
            pij = exp(score(&f, args->scale, dot, h, p, j, &t) - l);
            /* zs = Z_ij / (1 - p): the dropout factor of P_ij in out (1 without dropout) */
            zs = f.dropout_p > 0.0 ? (ped_dropout_keep_at(row_key, j, threshold) ? keep_scale : 0.0) : 1.0;
            for (c = 0; c < d; ++c) {
              dp = sum_step(&q, dp + get(&dout, b, h, i, c) * get(&v, b, hk, j, c));
              gv[j * d + c] = sum_step(&q, gv[j * d + c] + pij * zs * get(&dout, b, h, i, c));
            }
            ds = pij * (dp * zs - rowsum);
            if (f.softcap > 0.0) ds *= 1.0 - t * t; /* through S = c tanh(s q.k / c) */
            for (c = 0; c < d; ++c) {
              gq[i * d + c] = sum_step(&q, gq[i * d + c] + args->scale * ds * get(&k, b, hk, j, c));
              gk[j * d + c] = sum_step(&q, gk[j * d + c] + args->scale * ds * get(&q, b, h, i, c));
            }
          }
        }
        for (i = 0; i < nq; ++i) { /* padding rows (i >= lq) stay 0 */
          for (c = 0; c < d; ++c) set(&dq, b, h, i, c, gq[i * d + c]);
        }
      }
      for (j = 0; j < nk; ++j) {
        for (c = 0; c < d; ++c) {
          set(&dk, b, hk, j, c, gk[j * d + c]);
          set(&dv, b, hk, j, c, gv[j * d + c]);
        }
      }
    }
  }
  if (f.dsinks.first != NULL) {
    for (h = 0; h < H; ++h) ((double*)f.dsinks.first)[h * f.dsinks.stride] = gsinks[h];
  }
  free(gq);
  free(gk);
  free(gv);
  free(gsinks);
  return 0;
}
