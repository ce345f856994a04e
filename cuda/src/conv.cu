// Convolution and sum pooling over Z_2^64, NCHW. Convolutions gather windows
// into columns (im2col) for a group of images at a time and hand the product
// to gemm; the backward passes are the adjoints: transposed products and
// col2im. The layout and the checks follow the CPU build.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "conv.cuh"
#include "internal.cuh"

namespace cg {
namespace {

constexpr unsigned kBlock = 256;
// Plan's target columns and scratch words (shared/conv_checks.inc).
constexpr u64 kTargetColumns = 32768;
constexpr u64 kScratchWords = u64(1) << 24;

#include "../shared/conv_checks.inc"

// ---------------------------------------------------------------- kernels

__global__ void gather_kernel(u64* cols, const u64* x, Geom g, Columns cl) {
  const u64 total = cl.images * cl.cc * g.kh * g.kw * g.oh * g.ow;
  for (u64 t = thread_index(); t < total; t += thread_count()) gather_item(g, cl, cols, x, t);
}

__global__ void scatter_kernel(u64* x, const u64* cols, Geom g, Columns cl, bool accumulate) {
  const u64 total = cl.images * cl.cc * g.h * g.w;
  for (u64 t = thread_index(); t < total; t += thread_count()) scatter_item(g, cl, x, cols, accumulate, t);
}

__global__ void pool_kernel(u64* y, const u64* x, Geom g) {
  const u64 hw = g.h * g.w, ohw = g.oh * g.ow, total = g.n * g.c * ohw;
  for (u64 t = thread_index(); t < total; t += thread_count()) y[t] = pool_value(g, x + t / ohw * hw, t % ohw);
}

__global__ void unpool_kernel(u64* dx, const u64* dy, Geom g) {
  const u64 hw = g.h * g.w, ohw = g.oh * g.ow, total = g.n * g.c * hw;
  for (u64 t = thread_index(); t < total; t += thread_count()) dx[t] = unpool_value(g, dy + t / hw * ohw, t % hw);
}

__global__ void pack_kernel(u64* mat, const u64* src, u64 images, u64 rows, u64 ohw, u64 stride) {
  const u64 total = images * rows * ohw;
  for (u64 t = thread_index(); t < total; t += thread_count()) mat[t] = src[packed_row_source(images, ohw, stride, t)];
}

__global__ void unpack_kernel(u64* dst, const u64* mat, u64 images, u64 rows, u64 ohw, u64 stride, bool accumulate) {
  const u64 total = images * rows * ohw;
  for (u64 t = thread_index(); t < total; t += thread_count()) {
    u64* d = dst + packed_row_source(images, ohw, stride, t);
    *d = accumulate ? *d + mat[t] : mat[t];
  }
}

void gather(cg_ctx* ctx, const Geom& g, const u64* x, const Columns& cl, u64* cols, const char* fn) {
  const u64 total = cl.images * cl.cc * g.kh * g.kw * g.oh * g.ow;
  gather_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(cols, x, g, cl);
  check_launch(fn);
}

void scatter(cg_ctx* ctx, const Geom& g, const u64* cols, const Columns& cl, u64* x, bool accumulate, const char* fn) {
  const u64 total = cl.images * cl.cc * g.h * g.w;
  scatter_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(x, cols, g, cl, accumulate);
  check_launch(fn);
}

void pack_rows(cg_ctx* ctx, u64* mat, const u64* src, u64 images, u64 rows, u64 ohw, u64 stride, const char* fn) {
  pack_kernel<<<grid_for(ctx, images * rows * ohw, kBlock), kBlock, 0, ctx->stream>>>(mat, src, images, rows, ohw,
                                                                                       stride);
  check_launch(fn);
}

void unpack_rows(cg_ctx* ctx, u64* dst, const u64* mat, u64 images, u64 rows, u64 ohw, u64 stride, bool accumulate,
                 const char* fn) {
  unpack_kernel<<<grid_for(ctx, images * rows * ohw, kBlock), kBlock, 0, ctx->stream>>>(dst, mat, images, rows, ohw,
                                                                                         stride, accumulate);
  check_launch(fn);
}

// The scratch of a Plan in device memory: columns, and output-channel rows
// when step > 1.
struct ConvScratch {
  Scratch c, r;
  ConvScratch(cg_ctx* ctx, const Plan& p, const char* fn) : c(ctx, p.cols_words * 8, fn), r(ctx, p.rows_words * 8, fn) {}
  u64* cols() { return c.as<u64>(); }
  u64* rows() { return r.as<u64>(); }
};

void pool(cg_ctx* ctx, const Geom& g, u64* y, const u64* x, const char* fn) {
  const u64 total = g.n * g.c * g.oh * g.ow;
  pool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(y, x, g);
  check_launch(fn);
}

void unpool(cg_ctx* ctx, const Geom& g, u64* dx, const u64* dy, const char* fn) {
  const u64 total = g.n * g.c * g.h * g.w;
  unpool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(dx, dy, g);
  check_launch(fn);
}

}  // namespace

#include "../shared/conv_entries.inc"

}  // namespace cg
