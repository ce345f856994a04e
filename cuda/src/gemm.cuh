// Products over Z_2^64 on the device: the entry points of the four methods.
#pragma once

#include "internal.cuh"
#include "product.cuh"

namespace cg {

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
