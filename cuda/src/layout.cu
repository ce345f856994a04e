// Layout: the general strided copy (permute, slice, concat and pad are all
// instances of it) and the sum over one axis.
#include <string>
#include <vector>

#include "internal.cuh"
#include "layout.cuh"

namespace cg {
namespace {

constexpr unsigned kBlock = 256;

#include "../shared/layout_checks.inc"

template <class I>
__global__ void strided_kernel(u64* dst, const u64* src, StridedView v, I total) {
  const I stride = I(gridDim.x) * blockDim.x;
  for (I t = I(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    i64 doff, soff;
    strided_offsets(v, t, doff, soff);
    dst[doff] = src[soff];
  }
}

// One thread per unit: for wide inner axes, where a warp reads contiguous i.
__global__ void sum_columns(u64* out, const u64* in, AxisSum s, bool atomic) {
  const u64 units = s.outer * s.inner * s.splits;
  for (u64 u = thread_index(); u < units; u += thread_count()) {
    u64 o, i, j0, j1;
    axis_unit(s, u, o, i, j0, j1);
    u64 acc = 0;
    for (u64 j = j0; j < j1; j++) acc += in[(o * s.d + j) * s.inner + i];
    if (atomic)
      atomicAdd(reinterpret_cast<unsigned long long*>(out + o * s.inner + i), acc);
    else
      out[o * s.inner + i] = acc;
  }
}

// One warp per unit: for narrow inner axes, the lanes read along j.
__global__ void sum_rows(u64* out, const u64* in, AxisSum s, bool atomic) {
  const u64 units = s.outer * s.inner * s.splits;
  const unsigned lane = threadIdx.x % 32;
  const u64 warps = u64(gridDim.x) * (blockDim.x / 32);
  for (u64 u = u64(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; u < units; u += warps) {
    u64 o, i, j0, j1;
    axis_unit(s, u, o, i, j0, j1);
    u64 acc = 0;
    for (u64 j = j0 + lane; j < j1; j += 32) acc += in[(o * s.d + j) * s.inner + i];
    // Addition mod 2^64 is associative: any order gives the same word.
    for (int w = 16; w > 0; w /= 2) acc += __shfl_down_sync(0xffffffffu, acc, w);
    if (lane == 0) {
      if (atomic)
        atomicAdd(reinterpret_cast<unsigned long long*>(out + o * s.inner + i), acc);
      else
        out[o * s.inner + i] = acc;
    }
  }
}

}  // namespace

void copy_strided(cg_ctx* ctx, cg_buf dst, u64 dst_off, const i64* dst_strides, cg_buf src, u64 src_off,
                  const i64* src_strides, const u64* shape, uint32_t ndim) {
  const Strided a = strided_args(ctx, dst, dst_off, dst_strides, src, src_off, src_strides, shape, ndim);
  if (a.total == 0) return;
  // Merge a dimension into the next inner one where both views are contiguous
  // across the pair: fewer divisions per element.
  StridedView v{};
  for (const Dim& x : a.dims) {
    if (v.ndim > 0) {
      const int o = v.ndim - 1;
      if (v.dst_stride[o] == i64(x.size) * x.dst_stride && v.src_stride[o] == i64(x.size) * x.src_stride) {
        v.size[o] *= x.size;
        v.dst_stride[o] = x.dst_stride;
        v.src_stride[o] = x.src_stride;
        continue;
      }
    }
    v.size[v.ndim] = x.size;
    v.dst_stride[v.ndim] = x.dst_stride;
    v.src_stride[v.ndim] = x.src_stride;
    v.ndim++;
  }
  u64* dp = a.d->data + dst_off;
  const u64* sp = a.s->data + src_off;
  if (v.ndim == 1 && v.dst_stride[0] == 1 && v.src_stride[0] == 1) {
    check_cuda(cudaMemcpyAsync(dp, sp, a.total * 8, cudaMemcpyDeviceToDevice, ctx->stream), "cg_copy_strided");
    return;
  }
  if (a.total < (u64(1) << 31))
    strided_kernel<uint32_t><<<grid_for(ctx, a.total, kBlock), kBlock, 0, ctx->stream>>>(dp, sp, v, uint32_t(a.total));
  else
    strided_kernel<u64><<<grid_for(ctx, a.total, kBlock), kBlock, 0, ctx->stream>>>(dp, sp, v, a.total);
  check_launch("cg_copy_strided");
}

void sum_axis(cg_ctx* ctx, cg_buf out, cg_buf in, u64 outer, u64 d, u64 inner) {
  const AxisWords w = sum_axis_args(ctx, out, in, outer, d, inner);
  u64* o = w.o;
  const u64* x = w.x;
  const u64 n_out = w.n_out;
  if (n_out == 0) return;
  if (d == 0) return fill_words(ctx, o, n_out, 0, "cg_sum_axis");
  // Few outputs over a long axis: split the axis between units, which then
  // add into zeroed outputs atomically (exact: the sum is mod 2^64).
  const bool rows = inner < 32 && d >= 32;
  const u64 lanes = rows ? 32 : 1;
  const u64 want = u64(ctx->sm_count) * 2048 / lanes;  // units that fill the device
  const u64 splits = min_u64(max_u64(1, want / n_out), ceil_div(d, 64 * lanes));
  AxisSum s{outer, d, inner, max_u64(1, splits), 0};
  s.chunk = ceil_div(d, s.splits);
  s.splits = ceil_div(d, s.chunk);
  const bool atomic = s.splits > 1;
  if (atomic) fill_words(ctx, o, n_out, 0, "cg_sum_axis");
  const u64 units = n_out * s.splits;
  if (rows)
    sum_rows<<<grid_for(ctx, units * 32, kBlock), kBlock, 0, ctx->stream>>>(o, x, s, atomic);
  else
    sum_columns<<<grid_for(ctx, units, kBlock), kBlock, 0, ctx->stream>>>(o, x, s, atomic);
  check_launch("cg_sum_axis");
}

}  // namespace cg
