// Per-element index arithmetic of the strided copy and the axis sum, shared by
// the kernels and the host-side checks.
#pragma once

#include "common.cuh"

namespace cg {

constexpr int kMaxDims = 8;

// A strided copy after dropping unit dimensions and merging contiguous ones;
// the last dimension is the innermost.
struct StridedView {
  int ndim;
  u64 size[kMaxDims];
  i64 dst_stride[kMaxDims], src_stride[kMaxDims];
};

// Word offsets (relative to the views' origins) of element t in row-major
// order. I is uint32_t where every size and t fit in 31 bits.
template <class I>
CG_HD void strided_offsets(const StridedView& v, I t, i64& doff, i64& soff) {
  doff = 0;
  soff = 0;
  for (int d = v.ndim - 1; d >= 0; d--) {
    const I size = I(v.size[d]);
    const I idx = t % size;
    t /= size;
    doff += i64(idx) * v.dst_stride[d];
    soff += i64(idx) * v.src_stride[d];
  }
}

// The axis sum as units of work: unit u of outer * inner * splits adds the
// rows j in [c * chunk, (c + 1) * chunk) of output (o, i). Consecutive units
// take consecutive i, so a warp's reads are contiguous.
struct AxisSum {
  u64 outer, d, inner, splits, chunk;
};

CG_HD void axis_unit(const AxisSum& s, u64 u, u64& o, u64& i, u64& j0, u64& j1) {
  i = u % s.inner;
  const u64 rest = u / s.inner;
  const u64 c = rest % s.splits;
  o = rest / s.splits;
  j0 = c * s.chunk;
  j1 = min_u64(s.d, j0 + s.chunk);
}

}  // namespace cg
