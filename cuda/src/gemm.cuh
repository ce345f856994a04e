// Products over Z_2^64 on the device: the description of one (batched)
// product and the entry points of the four methods.
#pragma once

#include "internal.cuh"

namespace cg {

// A batched product on device pointers: entry e reads a + e * sa and
// b + e * sb and writes c + e * sc (a stride of 0 broadcasts). op(A) is m x k
// (stored k x m with ta), op(B) is k x n (stored n x k with tb), C is m x n.
struct Product {
  const u64* a;
  const u64* b;
  u64* c;
  u64 m, n, k;
  bool ta, tb, accumulate;
  u64 batch, sa, sb, sc;
};

CG_HD u64 a_at(const Product& g, const u64* a, u64 i, u64 p) { return g.ta ? a[p * g.m + i] : a[i * g.k + p]; }
CG_HD u64 b_at(const Product& g, const u64* b, u64 p, u64 j) { return g.tb ? b[j * g.k + p] : b[p * g.n + j]; }

// Each queues the product on the context's stream; batch, m, n and k >= 1.
void gemm_naive(cg_ctx* ctx, const Product& g);
void gemm_direct(cg_ctx* ctx, const Product& g);
void gemm_fp64(cg_ctx* ctx, const Product& g);
void gemm_int8(cg_ctx* ctx, const Product& g);

// Grids larger than the limits of gridDim.y and gridDim.z go as several
// launches; launch(grid, y0, z0) adds the offsets to blockIdx.y and .z.
constexpr u64 kGridYZ = 65535;
template <class F>
void for_each_grid(u64 gx, u64 gy, u64 gz, F&& launch) {
  for (u64 z0 = 0; z0 < gz; z0 += kGridYZ)
    for (u64 y0 = 0; y0 < gy; y0 += kGridYZ)
      launch(dim3(unsigned(gx), unsigned(min_u64(kGridYZ, gy - y0)), unsigned(min_u64(kGridYZ, gz - z0))), y0, z0);
}

}  // namespace cg
