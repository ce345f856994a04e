// CG_METHOD_FP64: the paper's float embedding (Section II-B), all ten limb
// products fused in one tiled FP64 kernel. Tiles of A and B are split into
// their 16-bit limbs as they enter shared memory; each thread keeps, for each
// of its 4 x 4 outputs, the four exact sums d_s of gemm_fp64.cuh.
#include "gemm.cuh"
#include "gemm_fp64.cuh"

namespace cg {
namespace {

constexpr unsigned kTile = 64, kSlice = 8;

__global__ void __launch_bounds__(256, 1)
    fp64_kernel(Product g, u64 p_begin, u64 p_end, bool accumulate, u64 y0, u64 z0) {
  // One double of padding per row: the column-wise stores spread over banks.
  __shared__ double as[4][kSlice][kTile + 1];
  __shared__ double bs[4][kSlice][kTile + 1];
  const u64 e = blockIdx.z + z0;
  const u64* a = g.a + e * g.sa;
  const u64* b = g.b + e * g.sb;
  const u64 i0 = (blockIdx.y + y0) * kTile, j0 = u64(blockIdx.x) * kTile;
  const unsigned tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  double acc[4][4][4] = {};  // [row][column][shift]
  for (u64 p0 = p_begin; p0 < p_end; p0 += kSlice) {
    for (unsigned r = 0; r < 2; r++) {
      unsigned row, kk;
      tile_slot(tid + 256 * r, kTile, kSlice, g.ta, row, kk);
      const u64 i = i0 + row, p = p0 + kk;
      const u64 v = i < g.m && p < p_end ? a_at(g, a, i, p) : 0;
      for (int l = 0; l < 4; l++) as[l][kk][row] = fp64_limb(v, l);
    }
    for (unsigned r = 0; r < 2; r++) {
      unsigned col, kk;
      tile_slot(tid + 256 * r, kTile, kSlice, !g.tb, col, kk);
      const u64 j = j0 + col, p = p0 + kk;
      const u64 v = j < g.n && p < p_end ? b_at(g, b, p, j) : 0;
      for (int l = 0; l < 4; l++) bs[l][kk][col] = fp64_limb(v, l);
    }
    __syncthreads();
    for (unsigned kk = 0; kk < kSlice; kk++) {
      double av[4][4], bv[4][4];  // [row or column][limb]
      for (int r = 0; r < 4; r++)
        for (int l = 0; l < 4; l++) av[r][l] = as[l][kk][ty + 16 * r];
      for (int c = 0; c < 4; c++)
        for (int l = 0; l < 4; l++) bv[c][l] = bs[l][kk][tx + 16 * c];
      for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 4; c++) {
          const double* x = av[r];
          const double* y = bv[c];
          double* d = acc[r][c];
          d[0] = fma(x[0], y[0], d[0]);
          d[1] = fma(x[0], y[1], fma(x[1], y[0], d[1]));
          d[2] = fma(x[0], y[2], fma(x[1], y[1], fma(x[2], y[0], d[2])));
          d[3] = fma(x[0], y[3], fma(x[1], y[2], fma(x[2], y[1], fma(x[3], y[0], d[3]))));
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
      const u64 v = fp64_fold(acc[r][cc]);
      c[i * g.n + j] = accumulate ? c[i * g.n + j] + v : v;
    }
  }
}

}  // namespace

void gemm_fp64(cg_ctx* ctx, const Product& g) {
  // Reductions longer than a chunk: each chunk's exact sums are folded into
  // the words, the later chunks adding to them.
  for (u64 p = 0; p < g.k; p += kFp64Chunk) {
    const u64 end = min_u64(g.k, p + kFp64Chunk);
    const bool accumulate = g.accumulate || p > 0;
    for_each_grid(ceil_div(g.n, kTile), ceil_div(g.m, kTile), g.batch, [&](dim3 grid, u64 y0, u64 z0) {
      fp64_kernel<<<grid, 256, 0, ctx->stream>>>(g, p, end, accumulate, y0, z0);
      check_launch("cg_matmul (fp64)");
    });
  }
}

}  // namespace cg
