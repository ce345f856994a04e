// Elementwise ring operations with wraparound, and the broadcast of a scalar,
// a row or a column: out[i] = a[i] op b[(i / inner) % nb]. Same-shape,
// scalar and unary kernels move 16-byte pairs; the general broadcast moves
// words, with 32-bit index arithmetic where the sizes allow it.
#include <string>

#include "internal.cuh"

namespace cg {
namespace {

#include "../shared/elementwise_checks.inc"

constexpr unsigned kBlock = 256;

// Every element is read and written by one thread only, so out may alias an
// input. `pairs` says the pointers are 16-byte aligned: the body then moves
// pairs of words and thread 0 takes an odd last word.
template <class Op>
__global__ void binary_same(u64* out, const u64* a, const u64* b, u64 n, bool pairs) {
  if (pairs) {
    const u64 np = n / 2;
    auto* o2 = reinterpret_cast<ulonglong2*>(out);
    auto* a2 = reinterpret_cast<const ulonglong2*>(a);
    auto* b2 = reinterpret_cast<const ulonglong2*>(b);
    for (u64 i = thread_index(); i < np; i += thread_count()) {
      const ulonglong2 x = a2[i], y = b2[i];
      o2[i] = make_ulonglong2(Op::f(x.x, y.x), Op::f(x.y, y.y));
    }
    if ((n & 1) && thread_index() == 0) out[n - 1] = Op::f(a[n - 1], b[n - 1]);
  } else {
    for (u64 i = thread_index(); i < n; i += thread_count()) out[i] = Op::f(a[i], b[i]);
  }
}

// The scalar is s, or *sp where it is held in device memory.
template <class Op>
__global__ void scalar_kernel(u64* out, const u64* a, u64 s, const u64* sp, u64 n, bool pairs) {
  if (sp) s = *sp;
  if (pairs) {
    const u64 np = n / 2;
    auto* o2 = reinterpret_cast<ulonglong2*>(out);
    auto* a2 = reinterpret_cast<const ulonglong2*>(a);
    for (u64 i = thread_index(); i < np; i += thread_count()) {
      const ulonglong2 x = a2[i];
      o2[i] = make_ulonglong2(Op::f(x.x, s), Op::f(x.y, s));
    }
    if ((n & 1) && thread_index() == 0) out[n - 1] = Op::f(a[n - 1], s);
  } else {
    for (u64 i = thread_index(); i < n; i += thread_count()) out[i] = Op::f(a[i], s);
  }
}

template <class Op>
__global__ void unary_kernel(u64* out, const u64* a, u64 n, unsigned k, bool pairs) {
  if (pairs) {
    const u64 np = n / 2;
    auto* o2 = reinterpret_cast<ulonglong2*>(out);
    auto* a2 = reinterpret_cast<const ulonglong2*>(a);
    for (u64 i = thread_index(); i < np; i += thread_count()) {
      const ulonglong2 x = a2[i];
      o2[i] = make_ulonglong2(Op::f(x.x, k), Op::f(x.y, k));
    }
    if ((n & 1) && thread_index() == 0) out[n - 1] = Op::f(a[n - 1], k);
  } else {
    for (u64 i = thread_index(); i < n; i += thread_count()) out[i] = Op::f(a[i], k);
  }
}

// The local half of a replicated product (cryptgpu.h), fused: six words in,
// one out, per element.
struct RingProduct {
  static CG_HD u64 f(u64 x0, u64 x1, u64 y0, u64 y1, u64 r0, u64 r1) { return x0 * (y0 + y1) + x1 * y0 + (r0 - r1); }
};
struct BitsProduct {
  static CG_HD u64 f(u64 x0, u64 x1, u64 y0, u64 y1, u64 r0, u64 r1) { return (x0 & (y0 ^ y1)) ^ (x1 & y0) ^ r0 ^ r1; }
};

template <class Op>
__global__ void product_kernel(u64* out, const u64* x0, const u64* x1, const u64* y0, const u64* y1, const u64* r0,
                               const u64* r1, u64 n, bool pairs) {
  if (pairs) {
    const u64 np = n / 2;
    auto v = [](const u64* p, u64 i) { return reinterpret_cast<const ulonglong2*>(p)[i]; };
    for (u64 i = thread_index(); i < np; i += thread_count()) {
      const ulonglong2 a0 = v(x0, i), a1 = v(x1, i), b0 = v(y0, i), b1 = v(y1, i), s0 = v(r0, i), s1 = v(r1, i);
      reinterpret_cast<ulonglong2*>(out)[i] = make_ulonglong2(Op::f(a0.x, a1.x, b0.x, b1.x, s0.x, s1.x),
                                                              Op::f(a0.y, a1.y, b0.y, b1.y, s0.y, s1.y));
    }
    if ((n & 1) && thread_index() == 0) {
      const u64 i = n - 1;
      out[i] = Op::f(x0[i], x1[i], y0[i], y1[i], r0[i], r1[i]);
    }
  } else {
    for (u64 i = thread_index(); i < n; i += thread_count()) out[i] = Op::f(x0[i], x1[i], y0[i], y1[i], r0[i], r1[i]);
  }
}

// The general broadcast. I is uint32_t when n < 2^31, so that the index, its
// stride steps and the division stay in 32 bits.
template <class Op, class I>
__global__ void binary_bcast(u64* out, const u64* a, const u64* b, I n, I nb, I inner) {
  const I stride = I(gridDim.x) * blockDim.x;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = Op::f(a[i], b[(i / inner) % nb]);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class Op>
void binary_run(cg_ctx* ctx, u64* out, const u64* a, const u64* b, u64 n, u64 nb, u64 inner) {
  if (nb == 1) {
    scalar_kernel<Op><<<grid_for(ctx, n / 2 + 1, kBlock), kBlock, 0, ctx->stream>>>(out, a, 0, b, n,
                                                                                      aligned16(out) && aligned16(a));
  } else if (inner == 1 && nb == n) {
    const bool pairs = aligned16(out) && aligned16(a) && aligned16(b);
    binary_same<Op><<<grid_for(ctx, n / 2 + 1, kBlock), kBlock, 0, ctx->stream>>>(out, a, b, n, pairs);
  } else if (n < (u64(1) << 31)) {
    binary_bcast<Op, uint32_t><<<grid_for(ctx, n, kBlock), kBlock, 0, ctx->stream>>>(out, a, b, uint32_t(n), uint32_t(nb),
                                                                                     uint32_t(inner));
  } else {
    binary_bcast<Op, u64><<<grid_for(ctx, n, kBlock), kBlock, 0, ctx->stream>>>(out, a, b, n, nb, inner);
  }
  check_launch("cg_binary");
}

template <class Op>
void scalar_run(cg_ctx* ctx, u64* out, const u64* a, u64 s, u64 n) {
  scalar_kernel<Op><<<grid_for(ctx, n / 2 + 1, kBlock), kBlock, 0, ctx->stream>>>(out, a, s, nullptr, n,
                                                                                    aligned16(out) && aligned16(a));
  check_launch("cg_scalar");
}

template <class Op>
void unary_run(cg_ctx* ctx, u64* out, const u64* a, u64 n, unsigned k) {
  unary_kernel<Op><<<grid_for(ctx, n / 2 + 1, kBlock), kBlock, 0, ctx->stream>>>(out, a, n, k,
                                                                                   aligned16(out) && aligned16(a));
  check_launch("cg_unary");
}

}  // namespace

void replicated_product(cg_ctx* ctx, int32_t kind, cg_buf out, cg_buf x0, cg_buf x1, cg_buf y0, cg_buf y1,
                        cg_buf r0, cg_buf r1, u64 n) {
  const ProductWords w = product_words(ctx, kind, out, x0, x1, y0, y1, r0, r1, n);
  if (n == 0) return;
  bool pairs = aligned16(w.o);
  for (const u64* p : {w.a0, w.a1, w.b0, w.b1, w.s0, w.s1}) pairs = pairs && aligned16(p);
  const unsigned grid = grid_for(ctx, n / 2 + 1, kBlock);
  if (kind == CG_PRODUCT_RING)
    product_kernel<RingProduct><<<grid, kBlock, 0, ctx->stream>>>(w.o, w.a0, w.a1, w.b0, w.b1, w.s0, w.s1, n, pairs);
  else
    product_kernel<BitsProduct><<<grid, kBlock, 0, ctx->stream>>>(w.o, w.a0, w.a1, w.b0, w.b1, w.s0, w.s1, n, pairs);
  check_launch("cg_replicated_product");
}

void binary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, cg_buf b, u64 n, u64 nb, u64 inner) {
  const char* name = "cg_binary";
  Words w = binary_words(ctx, op, out, a, b, n, nb, inner);
  if (n == 0) return;
  // Where out is also a broadcast b, threads would overwrite b values that
  // others still read: the op reads a snapshot of b instead.
  const bool same_shape = nb == n && inner == 1;
  Scratch snapshot(ctx, out == b && !same_shape ? nb * 8 : 0, name);
  if (out == b && !same_shape) {
    check_cuda(cudaMemcpyAsync(snapshot.as<u64>(), w.y, nb * 8, cudaMemcpyDeviceToDevice, ctx->stream), name);
    w.y = snapshot.as<u64>();
  }
  with_binary_op(op, [&](auto o) { binary_run<decltype(o)>(ctx, w.o, w.x, w.y, n, nb, inner); });
}

void scalar(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 s, u64 n) {
  const Words w = scalar_words(ctx, op, out, a, n);
  if (n == 0) return;
  with_binary_op(op, [&](auto o) { scalar_run<decltype(o)>(ctx, w.o, w.x, s, n); });
}

void unary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, u64 n, uint32_t k) {
  const Words w = unary_words(ctx, op, out, a, n, k);
  if (n == 0) return;
  with_unary_op(op, [&](auto o) { unary_run<decltype(o)>(ctx, w.o, w.x, n, k); });
}

}  // namespace cg
