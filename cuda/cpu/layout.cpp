// Layout: the general strided copy (permute, slice, concat and pad are all
// instances of it) and the sum over one axis.
#include <algorithm>
#include <cstring>
#include <string>

#include "internal.hpp"

namespace cg {

namespace {

#include "../shared/layout_checks.inc"

}  // namespace

void copy_strided(cg_ctx* ctx, cg_buf dst, u64 dst_off, const i64* dst_strides, cg_buf src, u64 src_off,
                  const i64* src_strides, const u64* shape, uint32_t ndim) {
  const Strided a = strided_args(ctx, dst, dst_off, dst_strides, src, src_off, src_strides, shape, ndim);
  if (a.total == 0) return;
  // Merge a dimension into the next inner one where both views are contiguous
  // across the pair, so most copies end up as a few long rows.
  std::vector<Dim> merged;
  for (const Dim& x : a.dims) {
    if (!merged.empty()) {
      Dim& outer = merged.back();
      if (outer.dst_stride == i64(x.size) * x.dst_stride && outer.src_stride == i64(x.size) * x.src_stride) {
        outer = {outer.size * x.size, x.dst_stride, x.src_stride};
        continue;
      }
    }
    merged.push_back(x);
  }
  if (merged.empty()) merged.push_back({1, 1, 1});
  const Dim inner = merged.back();
  merged.pop_back();
  u64 rows = a.total / inner.size;
  u64* dbase = a.d->data + dst_off;
  const u64* sbase = a.s->data + src_off;
  ctx->pool.parallel_for(rows, std::max<u64>(1, kGrain / inner.size), [&](u64 lo, u64 hi) {
    for (u64 r = lo; r < hi; r++) {
      i64 doff = 0, soff = 0;
      u64 rest = r;
      for (size_t k = merged.size(); k-- > 0;) {
        u64 idx = rest % merged[k].size;
        rest /= merged[k].size;
        doff += i64(idx) * merged[k].dst_stride;
        soff += i64(idx) * merged[k].src_stride;
      }
      u64* dp = dbase + doff;
      const u64* sp = sbase + soff;
      if (inner.dst_stride == 1 && inner.src_stride == 1) {
        std::memcpy(dp, sp, inner.size * sizeof(u64));
      } else {
        for (u64 j = 0; j < inner.size; j++) dp[i64(j) * inner.dst_stride] = sp[i64(j) * inner.src_stride];
      }
    }
  });
}

void sum_axis(cg_ctx* ctx, cg_buf out, cg_buf in, u64 outer, u64 d, u64 inner) {
  const AxisWords w = sum_axis_args(ctx, out, in, outer, d, inner);
  u64* o = w.o;
  const u64* x = w.x;
  // Tasks are (outer row, block of the inner axis): each sums d rows of one
  // block into its own part of out, so tasks never share output words.
  const u64 block = 2048;
  u64 blocks = (inner + block - 1) / block;
  ctx->pool.parallel_for(outer * blocks, std::max<u64>(1, kGrain / (d * block + 1)), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 row = t / blocks, i0 = (t % blocks) * block, i1 = std::min(inner, i0 + block);
      u64* acc = o + row * inner;
      const u64* base = x + row * d * inner;
      for (u64 i = i0; i < i1; i++) acc[i] = 0;
      for (u64 j = 0; j < d; j++) {
        const u64* r = base + j * inner;
        for (u64 i = i0; i < i1; i++) acc[i] += r[i];
      }
    }
  });
}

}  // namespace cg
