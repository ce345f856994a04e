// Definitions shared by host and device code. The per-element functions of
// the kernels live in the *.cuh headers as CG_HD functions, so that they can
// also be compiled for the host and checked against the CPU build's
// semantics without a GPU.
#pragma once

#include <stdint.h>

#ifdef __CUDACC__
#define CG_HD __host__ __device__ __forceinline__
#else
#define CG_HD inline
#endif

namespace cg {

using u64 = uint64_t;
using i64 = int64_t;
using u32 = uint32_t;

CG_HD u64 ceil_div(u64 x, u64 y) { return (x + y - 1) / y; }
CG_HD u64 round_up(u64 x, u64 to) { return ceil_div(x, to) * to; }
CG_HD u64 min_u64(u64 a, u64 b) { return a < b ? a : b; }
CG_HD u64 max_u64(u64 a, u64 b) { return a > b ? a : b; }
CG_HD u64 low_mask(unsigned len) { return len >= 64 ? ~u64(0) : (u64(1) << len) - 1; }

}  // namespace cg
