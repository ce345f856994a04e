// Convolution and sum pooling over Z_2^64, NCHW. Convolutions gather windows
// into columns (im2col) for a few images at a time and hand the product to
// gemm; the backward passes are the adjoints: transposed products and col2im.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "internal.hpp"

namespace cg {
namespace {

// Plan's target columns and scratch words (shared/conv_checks.inc).
constexpr u64 kTargetColumns = 4096;
constexpr u64 kScratchWords = u64(1) << 22;

struct Geom {
  u64 n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  u64 oh, ow;
};

#include "../shared/conv_checks.inc"

// The outputs o < count whose input o * stride + off lies in [0, size).
struct Range {
  u64 lo, hi;
};
Range inside(int64_t off, u64 stride, u64 size, u64 count) {
  int64_t s = int64_t(stride), lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = off >= int64_t(size) ? 0 : (int64_t(size) - 1 - off) / s + 1;
  hi = std::min(hi, int64_t(count));
  return {u64(std::min(lo, hi)), u64(hi)};
}

// Calls f(output index, input index) within one channel plane for every
// output pixel whose tap (ki, kj) reads inside the image (padding reads 0).
template <class F>
void taps(const Geom& g, u64 ki, u64 kj, F&& f) {
  // Output (oy, ox) reads input (oy * sh + y0, ox * sw + x0).
  int64_t y0 = int64_t(ki * g.dh) - int64_t(g.ph), x0 = int64_t(kj * g.dw) - int64_t(g.pw);
  Range ys = inside(y0, g.sh, g.h, g.oh), xs = inside(x0, g.sw, g.w, g.ow);
  u64 len = xs.hi - xs.lo;
  for (u64 oy = ys.lo; oy < ys.hi; oy++) {
    u64 o = oy * g.ow + xs.lo, i = u64(int64_t(oy * g.sh) + y0) * g.w + u64(int64_t(xs.lo * g.sw) + x0);
    // Unit stride, the common case, spelled out so that it vectorises.
    if (g.sw == 1)
      for (u64 t = 0; t < len; t++) f(o + t, i + t);
    else
      for (u64 t = 0; t < len; t++) f(o + t, i + t * g.sw);
  }
}

// Chunk size for per-plane work of `per_item` words each.
u64 grain(u64 per_item) { return std::max<u64>(1, kGrain / std::max<u64>(1, per_item)); }

// im2col for images [0, images) of x (each c*h*w words), channels [c0, c0 + cc):
// row r = (ci * kh + ki) * kw + kj of image e lands at cols + r * row_stride + e * image_stride.
void gather(cg_ctx* ctx, const Geom& g, const u64* x, u64 images, u64 c0, u64 cc, u64* cols, u64 row_stride,
            u64 image_stride) {
  u64 kk = g.kh * g.kw, rows = cc * kk, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(images * rows, grain(ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 e = t / rows, r = t % rows;
      const u64* src = x + (e * g.c + c0 + r / kk) * g.h * g.w;
      u64* dst = cols + r * row_stride + e * image_stride;
      std::fill(dst, dst + ohw, u64(0));
      taps(g, r % kk / g.kw, r % g.kw, [&](u64 o, u64 i) { dst[o] = src[i]; });
    }
  });
}

// col2im, the adjoint of gather with the same layout: each plane of x
// (channels [c0, c0 + cc)) is set to, or with accumulate increased by, the
// sum of the column entries that gather would read from it.
void scatter(cg_ctx* ctx, const Geom& g, const u64* cols, u64 images, u64 c0, u64 cc, u64* x, u64 row_stride,
             u64 image_stride, bool accumulate) {
  u64 kk = g.kh * g.kw, hw = g.h * g.w;
  ctx->pool.parallel_for(images * cc, grain(kk * g.oh * g.ow), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 e = t / cc, ci = t % cc;
      u64* dst = x + (e * g.c + c0 + ci) * hw;
      if (!accumulate) std::fill(dst, dst + hw, u64(0));
      for (u64 r = ci * kk; r < (ci + 1) * kk; r++) {
        const u64* src = cols + r * row_stride + e * image_stride;
        taps(g, r % kk / g.kw, r % g.kw, [&](u64 o, u64 i) { dst[i] += src[o]; });
      }
    }
  });
}

// The first `rows` rows of `images` [rows, ohw] blocks (`stride` words apart)
// to or from one [rows, images * ohw] matrix: the layout the products use
// when a step covers several images.
void pack_rows(cg_ctx* ctx, u64* mat, const u64* src, u64 images, u64 rows, u64 ohw, u64 stride) {
  ctx->pool.parallel_for(images * rows, grain(ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 e = t / rows, o = t % rows;
      std::copy(src + e * stride + o * ohw, src + e * stride + (o + 1) * ohw, mat + (o * images + e) * ohw);
    }
  });
}
void unpack_rows(cg_ctx* ctx, u64* dst, const u64* mat, u64 images, u64 rows, u64 ohw, u64 stride, bool accumulate) {
  ctx->pool.parallel_for(images * rows, grain(ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 e = t / rows, o = t % rows;
      const u64* s = mat + (o * images + e) * ohw;
      u64* d = dst + e * stride + o * ohw;
      for (u64 i = 0; i < ohw; i++) d[i] = accumulate ? d[i] + s[i] : s[i];
    }
  });
}

// The scratch of a Plan: columns, and output-channel rows when step > 1.
struct Scratch {
  std::unique_ptr<u64[]> cols, rows;
  explicit Scratch(const Plan& p) : cols(new u64[p.cols_words]), rows(p.rows_words ? new u64[p.rows_words] : nullptr) {}
};

}  // namespace

void im2col(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_im2col";
  Args a = checked(ctx, fn, Use::window, gp, 0, {out, "out", column_shape}, {in, "in", image_shape});
  const Geom& g = a.g;
  u64 ohw = g.oh * g.ow;
  gather(ctx, g, a.first, g.n, 0, g.c, a.out, ohw, g.c * g.kh * g.kw * ohw);
}

void col2im(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_col2im";
  Args a = checked(ctx, fn, Use::window, gp, 0, {out, "out", image_shape}, {in, "in", column_shape});
  const Geom& g = a.g;
  u64 ohw = g.oh * g.ow;
  scatter(ctx, g, a.first, g.n, 0, g.c, a.out, ohw, g.c * g.kh * g.kw * ohw, false);
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
  Scratch scratch(p);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, ne, gi * p.cg, p.cg, scratch.cols.get(), cols, p.ohw);
      const u64* wg = wp + gi * p.og * p.ckk;
      u64* yg = yp + e0 * y_image + gi * p.og * p.ohw;
      if (ne == 1) {  // one image's output rows are already contiguous
        gemm(ctx, yg, wg, scratch.cols.get(), p.og, cols, p.ckk, false, false, accumulate, CG_METHOD_AUTO);
        continue;
      }
      gemm(ctx, scratch.rows.get(), wg, scratch.cols.get(), p.og, cols, p.ckk, false, false, false, CG_METHOD_AUTO);
      unpack_rows(ctx, yg, scratch.rows.get(), ne, p.og, p.ohw, y_image, accumulate);
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
  Scratch scratch(p);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, scratch.rows.get(), dyg, ne, p.og, p.ohw, y_image);
        dyg = scratch.rows.get();
      }
      // Columns = W^T . dy, then summed back onto the image planes.
      gemm(ctx, scratch.cols.get(), wp + gi * p.og * p.ckk, dyg, p.ckk, cols, p.og, true, false, false, CG_METHOD_AUTO);
      scatter(ctx, g, scratch.cols.get(), ne, gi * p.cg, p.cg, dxp + e0 * x_image, cols, p.ohw, accumulate);
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
  Scratch scratch(p);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, ne, gi * p.cg, p.cg, scratch.cols.get(), cols, p.ohw);
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, scratch.rows.get(), dyg, ne, p.og, p.ohw, y_image);
        dyg = scratch.rows.get();
      }
      // dW += dy . columns^T; the sum over this step's images is the product's k.
      gemm(ctx, dwp + gi * p.og * p.ckk, dyg, scratch.cols.get(), p.og, p.ckk, cols, false, true, accumulate || e0 > 0,
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
  u64 hw = g.h * g.w, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(g.n * g.c, grain(g.kh * g.kw * ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      const u64* src = xp + t * hw;
      u64* dst = yp + t * ohw;
      std::fill(dst, dst + ohw, u64(0));
      for (u64 ki = 0; ki < g.kh; ki++)
        for (u64 kj = 0; kj < g.kw; kj++) taps(g, ki, kj, [&](u64 o, u64 i) { dst[o] += src[i]; });
    }
  });
}

void sumpool2d_backward(cg_ctx* ctx, cg_buf dx, cg_buf dy, const cg_conv2d* gp) {
  const char* fn = "cg_sumpool2d_backward";
  Args a = checked(ctx, fn, Use::pool, gp, 0, {dx, "dx", image_shape}, {dy, "dy", pooled_shape});
  const Geom& g = a.g;
  u64* dxp = a.out;
  const u64* dyp = a.first;
  u64 hw = g.h * g.w, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(g.n * g.c, grain(g.kh * g.kw * ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      const u64* src = dyp + t * ohw;
      u64* dst = dxp + t * hw;
      std::fill(dst, dst + hw, u64(0));
      for (u64 ki = 0; ki < g.kh; ki++)
        for (u64 kj = 0; kj < g.kw; kj++) taps(g, ki, kj, [&](u64 o, u64 i) { dst[i] += src[o]; });
    }
  });
}

}  // namespace cg
