// Elementwise ring operations with wraparound, and the broadcast of a scalar,
// a row or a column: out[i] = a[i] op b[(i / inner) % nb].
#include <algorithm>
#include <string>

#include "internal.hpp"

namespace cg {

namespace {

#include "../shared/elementwise_checks.inc"

// One chunk [lo, hi) of a broadcast binary op. Runs of `inner` elements share
// one b value; within a run the loop is a plain vectorisable scalar op.
template <class Op>
CG_CLONES void binary_chunk(u64* out, const u64* a, const u64* b, u64 lo, u64 hi, u64 nb, u64 inner) {
  if (inner == 1 && nb >= hi) {  // same shape (or the chunk sees no wrap): b[i % nb] is b[i]
    for (u64 i = lo; i < hi; i++) out[i] = Op::f(a[i], b[i]);
    return;
  }
  u64 i = lo;
  while (i < hi) {
    u64 run_end = std::min(hi, (i / inner + 1) * inner);
    const u64 y = b[(i / inner) % nb];
    if (inner == 1) {  // a row broadcast: walk b alongside
      u64 j = i % nb, end = std::min(hi, i + (nb - j));
      for (; i < end; i++, j++) out[i] = Op::f(a[i], b[j]);
      continue;
    }
    for (; i < run_end; i++) out[i] = Op::f(a[i], y);
  }
}

template <class Op>
void binary_run(cg_ctx* ctx, u64* out, const u64* a, const u64* b, u64 n, u64 nb, u64 inner) {
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) { binary_chunk<Op>(out, a, b, lo, hi, nb, inner); });
}

template <class Op>
void scalar_run(cg_ctx* ctx, u64* out, const u64* a, u64 s, u64 n) {
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) out[i] = Op::f(a[i], s);
  });
}

template <class Op>
void unary_run(cg_ctx* ctx, u64* out, const u64* a, u64 n, unsigned k) {
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) out[i] = Op::f(a[i], k);
  });
}

CG_CLONES void ring_product(const ProductWords& p, u64 lo, u64 hi) {
  for (u64 i = lo; i < hi; i++) p.o[i] = p.a0[i] * (p.b0[i] + p.b1[i]) + p.a1[i] * p.b0[i] + (p.s0[i] - p.s1[i]);
}

CG_CLONES void bits_product(const ProductWords& p, u64 lo, u64 hi) {
  for (u64 i = lo; i < hi; i++) p.o[i] = (p.a0[i] & (p.b0[i] ^ p.b1[i])) ^ (p.a1[i] & p.b0[i]) ^ p.s0[i] ^ p.s1[i];
}

}  // namespace

void binary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, cg_buf b, u64 n, u64 nb, u64 inner) {
  const Words w = binary_words(ctx, op, out, a, b, n, nb, inner);
  with_binary_op(op, [&](auto o) { binary_run<decltype(o)>(ctx, w.o, w.x, w.y, n, nb, inner); });
}

void scalar(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 s, u64 n) {
  const Words w = scalar_words(ctx, op, out, a, n);
  with_binary_op(op, [&](auto o) { scalar_run<decltype(o)>(ctx, w.o, w.x, s, n); });
}

void unary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 n, uint32_t k) {
  const Words w = unary_words(ctx, op, out, a, n, k);
  with_unary_op(op, [&](auto o) { unary_run<decltype(o)>(ctx, w.o, w.x, n, k); });
}

void replicated_product(cg_ctx* ctx, int32_t kind, cg_buf out, cg_buf x0, cg_buf x1, cg_buf y0, cg_buf y1,
                        cg_buf r0, cg_buf r1, u64 n) {
  const ProductWords p = product_words(ctx, kind, out, x0, x1, y0, y1, r0, r1, n);
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    kind == CG_PRODUCT_RING ? ring_product(p, lo, hi) : bits_product(p, lo, hi);
  });
}

}  // namespace cg
