// Elementwise ring operations with wraparound, and the broadcast of a scalar,
// a row or a column: out[i] = a[i] op b[(i / inner) % nb].
#include <algorithm>
#include <string>

#include "internal.hpp"

namespace cg {

namespace {

struct Add { static u64 f(u64 x, u64 y) { return x + y; } };
struct Sub { static u64 f(u64 x, u64 y) { return x - y; } };
struct RSub { static u64 f(u64 x, u64 y) { return y - x; } };
struct Mul { static u64 f(u64 x, u64 y) { return x * y; } };
struct Xor { static u64 f(u64 x, u64 y) { return x ^ y; } };
struct And { static u64 f(u64 x, u64 y) { return x & y; } };
struct Or { static u64 f(u64 x, u64 y) { return x | y; } };

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

template <class F>
void unary_run(cg_ctx* ctx, u64* out, const u64* a, u64 n, F f) {
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) out[i] = f(a[i]);
  });
}

struct Product {
  u64* o;
  const u64 *a0, *a1, *b0, *b1, *s0, *s1;
};

CG_CLONES void ring_product(const Product& p, u64 lo, u64 hi) {
  for (u64 i = lo; i < hi; i++) p.o[i] = p.a0[i] * (p.b0[i] + p.b1[i]) + p.a1[i] * p.b0[i] + (p.s0[i] - p.s1[i]);
}

CG_CLONES void bits_product(const Product& p, u64 lo, u64 hi) {
  for (u64 i = lo; i < hi; i++) p.o[i] = (p.a0[i] & (p.b0[i] ^ p.b1[i])) ^ (p.a1[i] & p.b0[i]) ^ p.s0[i] ^ p.s1[i];
}

}  // namespace

void binary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, cg_buf b, u64 n, u64 nb, u64 inner) {
  const char* name = "cg_binary";
  require(op >= CG_ADD && op <= CG_RSUB, std::string(name) + ": unknown operation " + std::to_string(op));
  require(nb >= 1 && inner >= 1, std::string(name) + ": broadcast sizes nb and inner must be at least 1");
  u64 period = mul_checked(nb, inner, name);
  require(n % period == 0, std::string(name) + ": broadcast of " + std::to_string(nb) + " x " +
                               std::to_string(inner) + " does not tile " + std::to_string(n) + " elements");
  u64* o = words_of(ctx, out, 0, n, "cg_binary (out)");
  const u64* x = cwords_of(ctx, a, 0, n, "cg_binary (a)");
  const u64* y = cwords_of(ctx, b, 0, n == 0 ? 0 : nb, "cg_binary (b)");
  switch (op) {
    case CG_ADD: return binary_run<Add>(ctx, o, x, y, n, nb, inner);
    case CG_SUB: return binary_run<Sub>(ctx, o, x, y, n, nb, inner);
    case CG_RSUB: return binary_run<RSub>(ctx, o, x, y, n, nb, inner);
    case CG_MUL: return binary_run<Mul>(ctx, o, x, y, n, nb, inner);
    case CG_XOR: return binary_run<Xor>(ctx, o, x, y, n, nb, inner);
    case CG_AND: return binary_run<And>(ctx, o, x, y, n, nb, inner);
    case CG_OR: return binary_run<Or>(ctx, o, x, y, n, nb, inner);
  }
}

void scalar(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 s, u64 n) {
  require(op >= CG_ADD && op <= CG_RSUB, "cg_scalar: unknown operation " + std::to_string(op));
  u64* o = words_of(ctx, out, 0, n, "cg_scalar (out)");
  const u64* x = cwords_of(ctx, a, 0, n, "cg_scalar (a)");
  switch (op) {
    case CG_ADD: return scalar_run<Add>(ctx, o, x, s, n);
    case CG_SUB: return scalar_run<Sub>(ctx, o, x, s, n);
    case CG_RSUB: return scalar_run<RSub>(ctx, o, x, s, n);
    case CG_MUL: return scalar_run<Mul>(ctx, o, x, s, n);
    case CG_XOR: return scalar_run<Xor>(ctx, o, x, s, n);
    case CG_AND: return scalar_run<And>(ctx, o, x, s, n);
    case CG_OR: return scalar_run<Or>(ctx, o, x, s, n);
  }
}

void unary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 n, uint32_t k) {
  require(op >= CG_NEG && op <= CG_BIT, "cg_unary: unknown operation " + std::to_string(op));
  require(k <= 63, "cg_unary: shift or bit index " + std::to_string(k) + " is outside [0, 63]");
  u64* o = words_of(ctx, out, 0, n, "cg_unary (out)");
  const u64* x = cwords_of(ctx, a, 0, n, "cg_unary (a)");
  switch (op) {
    case CG_NEG: return unary_run(ctx, o, x, n, [](u64 v) { return u64(0) - v; });
    case CG_NOT: return unary_run(ctx, o, x, n, [](u64 v) { return ~v; });
    case CG_SHL: return unary_run(ctx, o, x, n, [k](u64 v) { return v << k; });
    case CG_SHR: return unary_run(ctx, o, x, n, [k](u64 v) { return v >> k; });
    case CG_SAR: return unary_run(ctx, o, x, n, [k](u64 v) { return u64(i64(v) >> k); });
    case CG_BIT: return unary_run(ctx, o, x, n, [k](u64 v) { return (v >> k) & 1; });
  }
}

void replicated_product(cg_ctx* ctx, int32_t kind, cg_buf out, cg_buf x0, cg_buf x1, cg_buf y0, cg_buf y1,
                        cg_buf r0, cg_buf r1, u64 n) {
  require(kind == CG_PRODUCT_RING || kind == CG_PRODUCT_BITS,
          "cg_replicated_product: unknown kind " + std::to_string(kind));
  u64* o = words_of(ctx, out, 0, n, "cg_replicated_product (out)");
  const u64* a0 = cwords_of(ctx, x0, 0, n, "cg_replicated_product (x0)");
  const u64* a1 = cwords_of(ctx, x1, 0, n, "cg_replicated_product (x1)");
  const u64* b0 = cwords_of(ctx, y0, 0, n, "cg_replicated_product (y0)");
  const u64* b1 = cwords_of(ctx, y1, 0, n, "cg_replicated_product (y1)");
  const u64* s0 = cwords_of(ctx, r0, 0, n, "cg_replicated_product (r0)");
  const u64* s1 = cwords_of(ctx, r1, 0, n, "cg_replicated_product (r1)");
  const Product p{o, a0, a1, b0, b1, s0, s1};
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    kind == CG_PRODUCT_RING ? ring_product(p, lo, hi) : bits_product(p, lo, hi);
  });
}

}  // namespace cg
