// Matrix products over Z_2^64: argument checks, the choice of method, and the
// two integer kernels: the naive reference (one thread per output) and the
// tiled direct kernel. The FP64 and INT8 limb methods have their own files.
#include <string>

#include "gemm.cuh"

namespace cg {
namespace {

// ------------------------------------------------------------------ naive

__global__ void naive_kernel(Product g, u64 y0, u64 z0) {
  const u64 e = blockIdx.z + z0;
  const u64 i = (blockIdx.y + y0) * blockDim.y + threadIdx.y, j = u64(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.m || j >= g.n) return;
  const u64* a = g.a + e * g.sa;
  const u64* b = g.b + e * g.sb;
  u64 acc = 0;
  for (u64 p = 0; p < g.k; p++) acc += a_at(g, a, i, p) * b_at(g, b, p, j);
  u64* c = g.c + e * g.sc + i * g.n + j;
  *c = g.accumulate ? *c + acc : acc;
}

// ----------------------------------------------------------------- direct
//
// 64 x 64 output tiles, 256 threads with 4 x 4 outputs each (rows ty + 16 r,
// columns tx + 16 c), 16-deep slices of A and B through shared memory. A
// product mod 2^64 needs only lo(a) lo(b) in full and the low 32 bits of the
// cross terms: one wide and two 32-bit multiply-adds per step.

constexpr unsigned kDirectTile = 64, kDirectSlice = 16;

__global__ void __launch_bounds__(256) direct_kernel(Product g, u64 y0, u64 z0) {
  // One word of padding per row: the column-wise stores hit distinct banks.
  __shared__ u64 as[kDirectSlice][kDirectTile + 1];
  __shared__ u64 bs[kDirectSlice][kDirectTile + 1];
  const u64 e = blockIdx.z + z0;
  const u64* a = g.a + e * g.sa;
  const u64* b = g.b + e * g.sb;
  const u64 i0 = (blockIdx.y + y0) * kDirectTile, j0 = u64(blockIdx.x) * kDirectTile;
  const unsigned tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  u64 lo[4][4] = {};
  u32 cross[4][4] = {};
  for (u64 p0 = 0; p0 < g.k; p0 += kDirectSlice) {
    for (unsigned r = 0; r < 4; r++) {
      unsigned row, kk;
      tile_slot(tid + 256 * r, kDirectTile, kDirectSlice, g.ta, row, kk);
      const u64 i = i0 + row, p = p0 + kk;
      as[kk][row] = i < g.m && p < g.k ? a_at(g, a, i, p) : 0;
    }
    for (unsigned r = 0; r < 4; r++) {
      unsigned col, kk;
      tile_slot(tid + 256 * r, kDirectTile, kDirectSlice, !g.tb, col, kk);
      const u64 j = j0 + col, p = p0 + kk;
      bs[kk][col] = j < g.n && p < g.k ? b_at(g, b, p, j) : 0;
    }
    __syncthreads();
#pragma unroll 4
    for (unsigned kk = 0; kk < kDirectSlice; kk++) {
      u64 av[4], bv[4];
      for (int r = 0; r < 4; r++) av[r] = as[kk][ty + 16 * r];
      for (int c = 0; c < 4; c++) bv[c] = bs[kk][tx + 16 * c];
      for (int r = 0; r < 4; r++) {
        const u32 alo = u32(av[r]), ahi = u32(av[r] >> 32);
        for (int c = 0; c < 4; c++) {
          const u32 blo = u32(bv[c]), bhi = u32(bv[c] >> 32);
          lo[r][c] += u64(alo) * blo;
          cross[r][c] += ahi * blo + alo * bhi;
        }
      }
    }
    __syncthreads();
  }
  u64* c = g.c + e * g.sc;
  for (int r = 0; r < 4; r++) {
    const u64 i = i0 + ty + 16 * r;
    if (i >= g.m) continue;
    for (int cc = 0; cc < 4; cc++) {
      const u64 j = j0 + tx + 16 * cc;
      if (j >= g.n) continue;
      const u64 v = lo[r][cc] + (u64(cross[r][cc]) << 32);
      c[i * g.n + j] = g.accumulate ? c[i * g.n + j] + v : v;
    }
  }
}

// ------------------------------------------------------------ the choice
//
// CG_METHOD_AUTO estimates each exact method's time and takes the least. The
// model: a fixed cost per call (launches, and for INT8 splitting the operands
// into byte planes) plus the multiply-adds the kernel really performs (its
// tiles padded) at a sustained rate. The constants are first estimates for
// an H100 and are the place to tune from `bench ring --device cuda`.
struct Cost {
  double fixed_s;     // per call
  double macs_per_s;  // u64 multiply-adds per second on whole tiles
  double tile;        // output tile edge the kernel pads m and n to
  double slice;       // reduction slice the kernel pads k to
};
constexpr Cost kDirectCost{5e-6, 2.0e12, 64, 16};
constexpr Cost kFp64Cost{5e-6, 1.0e12, 64, 8};
constexpr Cost kInt8Cost{20e-6, 12.0e12, 128, 32};
constexpr double kSplitBytesPerS = 1.0e12;  // byte-plane split, read + write

double padded(double x, double to) { return double(round_up(u64(x), u64(to))); }

double estimate(const Cost& c, const Product& g, bool split) {
  double s = c.fixed_s +
             double(g.batch) * padded(double(g.m), c.tile) * padded(double(g.n), c.tile) * padded(double(g.k), c.slice) /
                 c.macs_per_s;
  if (split) {  // every distinct operand is read and written once as planes
    const double a_count = g.sa ? double(g.batch) : 1, b_count = g.sb ? double(g.batch) : 1;
    s += 16 * (a_count * double(g.m) + b_count * double(g.n)) * padded(double(g.k), c.slice) / kSplitBytesPerS;
  }
  return s;
}

int32_t auto_method(const cg_ctx* ctx, const Product& g) {
  if (ctx->forced_method != CG_METHOD_AUTO) return ctx->forced_method;
  int32_t best = CG_METHOD_DIRECT;
  double best_s = estimate(kDirectCost, g, false);
  if (double s = estimate(kFp64Cost, g, false); s < best_s) best = CG_METHOD_FP64, best_s = s;
  if (double s = estimate(kInt8Cost, g, true); s < best_s) best = CG_METHOD_INT8, best_s = s;
  return best;
}

void check_method(int32_t method, const char* fn) {
  if (method < CG_METHOD_AUTO || method > CG_METHOD_INT8)
    fail(CG_EINVAL, std::string(fn) + ": unknown method " + std::to_string(method));
}

void run(cg_ctx* ctx, const Product& g, int32_t method) {
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    // Outputs are contiguous (sc = m n): an empty sum is zero.
    if (!g.accumulate) fill_words(ctx, g.c, g.batch * g.m * g.n, 0, "cg_matmul");
    return;
  }
  if (method == CG_METHOD_AUTO) method = auto_method(ctx, g);
  switch (method) {
    case CG_METHOD_NAIVE: return gemm_naive(ctx, g);
    case CG_METHOD_FP64: return gemm_fp64(ctx, g);
    case CG_METHOD_INT8: return gemm_int8(ctx, g);
    default: return gemm_direct(ctx, g);
  }
}

}  // namespace

void gemm_naive(cg_ctx* ctx, const Product& g) {
  const dim3 block(16, 16);
  for_each_grid(ceil_div(g.n, 16), ceil_div(g.m, 16), g.batch, [&](dim3 grid, u64 y0, u64 z0) {
    naive_kernel<<<grid, block, 0, ctx->stream>>>(g, y0, z0);
    check_launch("cg_matmul (naive)");
  });
}

void gemm_direct(cg_ctx* ctx, const Product& g) {
  for_each_grid(ceil_div(g.n, kDirectTile), ceil_div(g.m, kDirectTile), g.batch, [&](dim3 grid, u64 y0, u64 z0) {
    direct_kernel<<<grid, 256, 0, ctx->stream>>>(g, y0, z0);
    check_launch("cg_matmul (direct)");
  });
}

#include "../shared/matmul_checks.inc"

}  // namespace cg
