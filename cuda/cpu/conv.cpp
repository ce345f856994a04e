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

// Column matrices for images [0, images) of x, channels [c0, c0 + cc): row
// r = (ci kh + ki) kw + kj of image e at cols + r row_stride + e image_stride.
struct Columns {
  u64 images, c0, cc, row_stride, image_stride;
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

// im2col for the images and channels of cl (each image c*h*w words of x).
void gather(cg_ctx* ctx, const Geom& g, const u64* x, const Columns& cl, u64* cols, const char*) {
  const u64 c0 = cl.c0, row_stride = cl.row_stride, image_stride = cl.image_stride;
  u64 kk = g.kh * g.kw, rows = cl.cc * kk, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(cl.images * rows, grain(ohw), [&](u64 lo, u64 hi) {
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
// (the channels of cl) is set to, or with accumulate increased by, the
// sum of the column entries that gather would read from it.
void scatter(cg_ctx* ctx, const Geom& g, const u64* cols, const Columns& cl, u64* x, bool accumulate, const char*) {
  const u64 c0 = cl.c0, cc = cl.cc, row_stride = cl.row_stride, image_stride = cl.image_stride;
  u64 kk = g.kh * g.kw, hw = g.h * g.w;
  ctx->pool.parallel_for(cl.images * cc, grain(kk * g.oh * g.ow), [&](u64 lo, u64 hi) {
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
void pack_rows(cg_ctx* ctx, u64* mat, const u64* src, u64 images, u64 rows, u64 ohw, u64 stride, const char*) {
  ctx->pool.parallel_for(images * rows, grain(ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      u64 e = t / rows, o = t % rows;
      std::copy(src + e * stride + o * ohw, src + e * stride + (o + 1) * ohw, mat + (o * images + e) * ohw);
    }
  });
}
void unpack_rows(cg_ctx* ctx, u64* dst, const u64* mat, u64 images, u64 rows, u64 ohw, u64 stride, bool accumulate,
                 const char*) {
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
struct ConvScratch {
  std::unique_ptr<u64[]> c, r;
  ConvScratch(cg_ctx*, const Plan& p, const char*)
      : c(new u64[p.cols_words]), r(p.rows_words ? new u64[p.rows_words] : nullptr) {}
  u64* cols() { return c.get(); }
  u64* rows() { return r.get(); }
};

void pool(cg_ctx* ctx, const Geom& g, u64* y, const u64* x, const char*) {
  u64 hw = g.h * g.w, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(g.n * g.c, grain(g.kh * g.kw * ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      const u64* src = x + t * hw;
      u64* dst = y + t * ohw;
      std::fill(dst, dst + ohw, u64(0));
      for (u64 ki = 0; ki < g.kh; ki++)
        for (u64 kj = 0; kj < g.kw; kj++) taps(g, ki, kj, [&](u64 o, u64 i) { dst[o] += src[i]; });
    }
  });
}

void unpool(cg_ctx* ctx, const Geom& g, u64* dx, const u64* dy, const char*) {
  u64 hw = g.h * g.w, ohw = g.oh * g.ow;
  ctx->pool.parallel_for(g.n * g.c, grain(g.kh * g.kw * ohw), [&](u64 lo, u64 hi) {
    for (u64 t = lo; t < hi; t++) {
      const u64* src = dy + t * ohw;
      u64* dst = dx + t * hw;
      std::fill(dst, dst + hw, u64(0));
      for (u64 ki = 0; ki < g.kh; ki++)
        for (u64 kj = 0; kj < g.kw; kj++) taps(g, ki, kj, [&](u64 o, u64 i) { dst[i] += src[o]; });
    }
  });
}

}  // namespace

#include "../shared/conv_entries.inc"

}  // namespace cg
