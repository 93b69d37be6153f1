// Multi-head self-attention in plain matrix math (the algorithmic reference of the paper).
// D model width, N tokens, H heads, dh = D / H head width, s = 1 / sqrt(dh) unless given.
// x (D, N). Head h owns rows h*dh .. (h+1)*dh - 1 of Q, K, V and O.
#pragma once

#include "reference/common.hpp"
#include "core/mask.hpp"

namespace ped::ref {

template <class T>
struct AttentionParams {
  Mat<T> wq, wk, wv, wo;  // (D, D)
  Col<T> bq, bk, bv, bo;  // (D)
};

template <class T>
struct AttentionConfig {
  arma::uword heads = 1;
  bool causal = true;  // key j visible to query i iff j <= i
  T scale = T(0);      // 0 means 1 / sqrt(dh)
};

template <class T>
struct AttentionCache {
  Mat<T> x;          // (D, N) input
  Mat<T> q, k, v;    // (D, N) projections
  arma::Cube<T> p;   // (N, N, H) probabilities; p(i, j, h) = weight of key j for query i in head h
  Mat<T> o;          // (D, N) concatenated head outputs, before the output projection
  arma::uword heads = 1;
  T scale = T(0);    // the scale actually used
};

template <class T>
struct AttentionGrads {
  Mat<T> dx;              // (D, N)
  AttentionParams<T> dp;  // same shapes as the parameters
};

// A mask as an additive (N, N) matrix: 0 where key j is visible to query i, -inf elsewhere.
template <class T>
Mat<T> additive_mask(const Mask& mask, arma::uword n);

// The per-head core on the columns [col0, col0 + N) of Q, K, V (D, *), heads on row blocks of dh:
// forward: S_h = s Q_h^T K_h + M, P_h = softmax_rows(S_h) into p.slice(slice0 + h), O_h = V_h P_h^T.
template <class T>
void attention_heads_forward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                             const Mat<T>& additive_mask, arma::uword col0, arma::Cube<T>& p, arma::uword slice0,
                             Mat<T>& o);
// backward: dV_h = dO_h P_h, dS_h = softmax_rows'(dO_h^T V_h), dQ_h = s K_h dS_h^T, dK_h = s Q_h dS_h,
// written into the same columns of dq, dk, dv (sized by the caller).
template <class T>
void attention_heads_backward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                              const arma::Cube<T>& p, arma::uword slice0, const Mat<T>& dout, arma::uword col0,
                              Mat<T>& dq, Mat<T>& dk, Mat<T>& dv);

// forward: Q = Wq x + bq, K = Wk x + bk, V = Wv x + bv; per head h:
//          S_h = s Q_h^T K_h (N, N) with masked entries -inf, P_h = softmax_rows(S_h), O_h = V_h P_h^T;
//          y = Wo O + bo
template <class T>
Mat<T> attention_forward(const Mat<T>& x, const AttentionParams<T>& p, const AttentionConfig<T>& cfg,
                         AttentionCache<T>& cache);

// backward: dWo = dy O^T, dbo = dy 1, dO = Wo^T dy; per head:
//           dV_h = dO_h P_h, dP_h = dO_h^T V_h, dS_h = P_h o (dP_h - rowsum(dP_h o P_h)),
//           dQ_h = s K_h dS_h^T, dK_h = s Q_h dS_h;
//           dW{q,k,v} = d{Q,K,V} x^T, db{q,k,v} = d{Q,K,V} 1, dx = Wq^T dQ + Wk^T dK + Wv^T dV
template <class T>
AttentionGrads<T> attention_backward(const Mat<T>& dy, const AttentionParams<T>& p, const AttentionCache<T>& cache);

}  // namespace ped::ref
