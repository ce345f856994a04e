// Elementwise ring operations with wraparound, and the broadcast of a scalar,
// a row or a column: out[i] = a[i] op b[(i / inner) % nb]. Same-shape,
// scalar and unary kernels move 16-byte pairs; the general broadcast moves
// words, with 32-bit index arithmetic where the sizes allow it.
#include <string>

#include "internal.cuh"

namespace cg {
namespace {

struct Add { static CG_HD u64 f(u64 x, u64 y) { return x + y; } };
struct Sub { static CG_HD u64 f(u64 x, u64 y) { return x - y; } };
struct RSub { static CG_HD u64 f(u64 x, u64 y) { return y - x; } };
struct Mul { static CG_HD u64 f(u64 x, u64 y) { return x * y; } };
struct Xor { static CG_HD u64 f(u64 x, u64 y) { return x ^ y; } };
struct And { static CG_HD u64 f(u64 x, u64 y) { return x & y; } };
struct Or { static CG_HD u64 f(u64 x, u64 y) { return x | y; } };

struct Neg { static CG_HD u64 f(u64 v, unsigned) { return u64(0) - v; } };
struct Not { static CG_HD u64 f(u64 v, unsigned) { return ~v; } };
struct Shl { static CG_HD u64 f(u64 v, unsigned k) { return v << k; } };
struct Shr { static CG_HD u64 f(u64 v, unsigned k) { return v >> k; } };
struct Sar { static CG_HD u64 f(u64 v, unsigned k) { return u64(i64(v) >> k); } };
struct Bit { static CG_HD u64 f(u64 v, unsigned k) { return (v >> k) & 1; } };

constexpr unsigned kBlock = 256;

__device__ __forceinline__ u64 thread_index() { return u64(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 thread_count() { return u64(gridDim.x) * blockDim.x; }

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
  if (n == 0) return;
  // Where out is also a broadcast b, threads would overwrite b values that
  // others still read: the op reads a snapshot of b instead.
  const bool same_shape = nb == n && inner == 1;
  Scratch snapshot(ctx, out == b && !same_shape ? nb * 8 : 0, name);
  if (out == b && !same_shape) {
    check_cuda(cudaMemcpyAsync(snapshot.as<u64>(), y, nb * 8, cudaMemcpyDeviceToDevice, ctx->stream), name);
    y = snapshot.as<u64>();
  }
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
  if (n == 0) return;
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
  if (n == 0) return;
  switch (op) {
    case CG_NEG: return unary_run<Neg>(ctx, o, x, n, k);
    case CG_NOT: return unary_run<Not>(ctx, o, x, n, k);
    case CG_SHL: return unary_run<Shl>(ctx, o, x, n, k);
    case CG_SHR: return unary_run<Shr>(ctx, o, x, n, k);
    case CG_SAR: return unary_run<Sar>(ctx, o, x, n, k);
    case CG_BIT: return unary_run<Bit>(ctx, o, x, n, k);
  }
}

}  // namespace cg
