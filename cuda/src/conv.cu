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

}  // namespace

void im2col(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_im2col";
  Args a = checked(ctx, fn, Use::window, gp, 0, {out, "out", column_shape}, {in, "in", image_shape});
  const Geom& g = a.g;
  u64 ohw = g.oh * g.ow;
  gather(ctx, g, a.first, Columns{g.n, 0, g.c, ohw, g.c * g.kh * g.kw * ohw}, a.out, fn);
}

void col2im(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_col2im";
  Args a = checked(ctx, fn, Use::window, gp, 0, {out, "out", image_shape}, {in, "in", column_shape});
  const Geom& g = a.g;
  u64 ohw = g.oh * g.ow;
  scatter(ctx, g, a.first, Columns{g.n, 0, g.c, ohw, g.c * g.kh * g.kw * ohw}, a.out, false, fn);
}

void conv2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, cg_buf w, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_forward";
  Args a = checked(ctx, fn, Use::conv, gp, flags, {y, "y", output_shape}, {x, "x", image_shape},
                   {w, "weight", weight_shape});
  const Geom& g = a.g;
  u64* yp = a.out;
  const u64 *xp = a.first, *wp = a.second;
  bool accumulate = a.accumulate;
  Plan p = plan(g, fn, kTargetColumns, kScratchWords);
  Scratch cols(ctx, p.cols_words * 8, fn), rows(ctx, p.rows_words * 8, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), n_cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, Columns{ne, gi * p.cg, p.cg, n_cols, p.ohw}, cols.as<u64>(), fn);
      const u64* wg = wp + gi * p.og * p.ckk;
      u64* yg = yp + e0 * y_image + gi * p.og * p.ohw;
      if (ne == 1) {  // one image's output rows are already contiguous
        gemm(ctx, yg, wg, cols.as<u64>(), p.og, n_cols, p.ckk, false, false, accumulate, CG_METHOD_AUTO);
        continue;
      }
      gemm(ctx, rows.as<u64>(), wg, cols.as<u64>(), p.og, n_cols, p.ckk, false, false, false, CG_METHOD_AUTO);
      unpack_rows(ctx, yg, rows.as<u64>(), ne, p.og, p.ohw, y_image, accumulate, fn);
    }
  }
}

void conv2d_backward_input(cg_ctx* ctx, cg_buf dx, cg_buf dy, cg_buf w, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_backward_input";
  Args a = checked(ctx, fn, Use::conv, gp, flags, {dx, "dx", image_shape}, {dy, "dy", output_shape},
                   {w, "weight", weight_shape});
  const Geom& g = a.g;
  u64* dxp = a.out;
  const u64 *dyp = a.first, *wp = a.second;
  bool accumulate = a.accumulate;
  Plan p = plan(g, fn, kTargetColumns, kScratchWords);
  Scratch cols(ctx, p.cols_words * 8, fn), rows(ctx, p.rows_words * 8, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), n_cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, rows.as<u64>(), dyg, ne, p.og, p.ohw, y_image, fn);
        dyg = rows.as<u64>();
      }
      // Columns = W^T . dy, then summed back onto the image planes.
      gemm(ctx, cols.as<u64>(), wp + gi * p.og * p.ckk, dyg, p.ckk, n_cols, p.og, true, false, false, CG_METHOD_AUTO);
      scatter(ctx, g, cols.as<u64>(), Columns{ne, gi * p.cg, p.cg, n_cols, p.ohw}, dxp + e0 * x_image, accumulate, fn);
    }
  }
}

void conv2d_backward_weight(cg_ctx* ctx, cg_buf dw, cg_buf x, cg_buf dy, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_backward_weight";
  Args a = checked(ctx, fn, Use::conv, gp, flags, {dw, "dweight", weight_shape}, {x, "x", image_shape},
                   {dy, "dy", output_shape});
  const Geom& g = a.g;
  u64* dwp = a.out;
  const u64 *xp = a.first, *dyp = a.second;
  bool accumulate = a.accumulate;
  Plan p = plan(g, fn, kTargetColumns, kScratchWords);
  Scratch cols(ctx, p.cols_words * 8, fn), rows(ctx, p.rows_words * 8, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), n_cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, Columns{ne, gi * p.cg, p.cg, n_cols, p.ohw}, cols.as<u64>(), fn);
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, rows.as<u64>(), dyg, ne, p.og, p.ohw, y_image, fn);
        dyg = rows.as<u64>();
      }
      // dW += dy . columns^T; the sum over this step's images is the product's k.
      gemm(ctx, dwp + gi * p.og * p.ckk, dyg, cols.as<u64>(), p.og, p.ckk, n_cols, false, true, accumulate || e0 > 0,
           CG_METHOD_AUTO);
    }
  }
}

void sumpool2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, const cg_conv2d* gp) {
  const char* fn = "cg_sumpool2d_forward";
  Args a = checked(ctx, fn, Use::pool, gp, 0, {y, "y", pooled_shape}, {x, "x", image_shape});
  const Geom& g = a.g;
  u64* yp = a.out;
  const u64* xp = a.first;
  const u64 total = g.n * g.c * g.oh * g.ow;
  pool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(yp, xp, g);
  check_launch(fn);
}

void sumpool2d_backward(cg_ctx* ctx, cg_buf dx, cg_buf dy, const cg_conv2d* gp) {
  const char* fn = "cg_sumpool2d_backward";
  Args a = checked(ctx, fn, Use::pool, gp, 0, {dx, "dx", image_shape}, {dy, "dy", pooled_shape});
  const Geom& g = a.g;
  u64* dxp = a.out;
  const u64* dyp = a.first;
  const u64 total = g.n * g.c * g.h * g.w;
  unpool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(dxp, dyp, g);
  check_launch(fn);
}

}  // namespace cg
