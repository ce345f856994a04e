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

// Columns (images x output pixels) that one product should cover at least,
// and the most scratch words (columns and output rows) a step of several
// images may take; a single image takes what it needs.
constexpr u64 kTargetColumns = 4096;
constexpr u64 kScratchWords = u64(1) << 22;

struct Geom {
  u64 n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  u64 oh, ow;
};

enum class Use { window, conv, pool };

std::string str(u64 v) { return std::to_string(v); }

// Validates the fields `use` reads and derives the output size. Fields are
// capped at 2^32 so that no index arithmetic below can overflow.
Geom geometry(const cg_conv2d* p, const char* fn, Use use) {
  std::string f(fn);
  if (!p) fail(CG_ENULL, f + ": geometry is NULL");
  auto field = [&](int64_t v, int64_t lo, const char* name) {
    const int64_t hi = int64_t(1) << 32;
    if (v < lo || v > hi)
      fail(CG_EINVAL, f + ": " + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                          std::to_string(v));
    return u64(v);
  };
  Geom g{};
  g.n = field(p->n, 1, "n");
  g.c = field(p->c, 1, "c");
  g.h = field(p->h, 1, "h");
  g.w = field(p->w, 1, "w");
  g.kh = field(p->kh, 1, "kh");
  g.kw = field(p->kw, 1, "kw");
  g.sh = field(p->sh, 1, "sh");
  g.sw = field(p->sw, 1, "sw");
  g.ph = field(p->ph, 0, "ph");
  g.pw = field(p->pw, 0, "pw");
  g.dh = field(p->dh, 1, "dh");
  g.dw = field(p->dw, 1, "dw");
  g.oc = g.c;
  g.groups = 1;
  if (use == Use::conv) {
    g.oc = field(p->oc, 1, "oc");
    g.groups = field(p->groups, 1, "groups");
    require(g.c % g.groups == 0 && g.oc % g.groups == 0,
            f + ": c " + str(g.c) + " and oc " + str(g.oc) + " must both be divisible by groups " + str(g.groups));
  } else if (use == Use::pool) {
    require(p->oc == p->c, f + ": pooling needs oc == c, got oc " + std::to_string(p->oc) + " and c " + str(g.c));
  }
  // Per axis: (size + 2 pad - dilation (window - 1) - 1) / stride + 1.
  auto out_size = [&](u64 size, u64 pad, u64 dil, u64 win, u64 stride, const char* axis) {
    u64 reach;
    if (__builtin_mul_overflow(dil, win - 1, &reach) || reach >= size + 2 * pad)
      fail(CG_EINVAL, f + ": the window (" + str(win) + " taps, dilation " + str(dil) + ") does not fit the " + axis +
                          " " + str(size) + " padded by " + str(pad) + " on each side");
    return (size + 2 * pad - reach - 1) / stride + 1;
  };
  g.oh = out_size(g.h, g.ph, g.dh, g.kh, g.sh, "height");
  g.ow = out_size(g.w, g.pw, g.dw, g.kw, g.sw, "width");
  return g;
}

using Shape = std::vector<std::pair<const char*, u64>>;

Shape image_shape(const Geom& g) { return {{"n", g.n}, {"c", g.c}, {"h", g.h}, {"w", g.w}}; }
Shape output_shape(const Geom& g) { return {{"n", g.n}, {"oc", g.oc}, {"oh", g.oh}, {"ow", g.ow}}; }
Shape pooled_shape(const Geom& g) { return {{"n", g.n}, {"c", g.c}, {"oh", g.oh}, {"ow", g.ow}}; }
Shape weight_shape(const Geom& g) { return {{"oc", g.oc}, {"c/groups", g.c / g.groups}, {"kh", g.kh}, {"kw", g.kw}}; }
Shape column_shape(const Geom& g) {
  return {{"n", g.n}, {"c", g.c}, {"kh", g.kh}, {"kw", g.kw}, {"oh", g.oh}, {"ow", g.ow}};
}

// The words of a tensor argument, once its buffer is known to hold its shape.
u64* tensor(cg_ctx* ctx, cg_buf handle, const char* fn, const char* name, const Shape& shape) {
  std::string what = std::string(fn) + ": " + name;
  u64 need = 1;
  std::string dims;
  for (const auto& [axis, size] : shape) {
    need = mul_checked(need, size, fn);
    dims += (dims.empty() ? "" : ", ") + std::string(axis) + " " + str(size);
  }
  u64 have = lookup(ctx, handle, what.c_str()).words;
  if (have < need)
    fail(CG_EINVAL, what + " needs " + str(need) + " words [" + dims + "] but the buffer holds " + str(have));
  return words_of(ctx, handle, 0, need, fn);
}

void distinct(const char* fn, cg_buf out, const char* out_name, cg_buf in, const char* in_name) {
  require(out != in, std::string(fn) + ": " + out_name + " must not be the same buffer as " + in_name);
}

void check_flags(uint32_t flags, const char* fn) {
  if (flags & ~uint32_t(CG_ACCUMULATE))
    fail(CG_EINVAL, std::string(fn) + ": unknown flag bits " + str(flags & ~uint32_t(CG_ACCUMULATE)) +
                        " (only CG_ACCUMULATE is allowed)");
}

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

// How a convolution walks the batch: `step` images at a time, with scratch
// for their columns (per group) and for output-channel rows when step > 1.
struct Plan {
  u64 cg, og, ckk, ohw, step;
  std::unique_ptr<u64[]> cols, rows;
};

Plan plan(const Geom& g, const char* fn) {
  Plan p;
  p.cg = g.c / g.groups;
  p.og = g.oc / g.groups;
  p.ckk = p.cg * g.kh * g.kw;  // the weight buffer holds this many words
  p.ohw = g.oh * g.ow;         // and y this many
  u64 per_image = mul_checked(p.ckk + p.og, p.ohw, fn);
  p.step = std::min({g.n, (kTargetColumns + p.ohw - 1) / p.ohw, std::max<u64>(1, kScratchWords / per_image)});
  p.cols.reset(new u64[mul_checked(p.ckk, p.step * p.ohw, fn)]);
  if (p.step > 1) p.rows.reset(new u64[p.og * p.step * p.ohw]);
  return p;
}

}  // namespace

void im2col(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_im2col";
  Geom g = geometry(gp, fn, Use::window);
  u64* o = tensor(ctx, out, fn, "out", column_shape(g));
  const u64* x = tensor(ctx, in, fn, "in", image_shape(g));
  distinct(fn, out, "out", in, "in");
  u64 ohw = g.oh * g.ow;
  gather(ctx, g, x, g.n, 0, g.c, o, ohw, g.c * g.kh * g.kw * ohw);
}

void col2im(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_col2im";
  Geom g = geometry(gp, fn, Use::window);
  u64* x = tensor(ctx, out, fn, "out", image_shape(g));
  const u64* cols = tensor(ctx, in, fn, "in", column_shape(g));
  distinct(fn, out, "out", in, "in");
  u64 ohw = g.oh * g.ow;
  scatter(ctx, g, cols, g.n, 0, g.c, x, ohw, g.c * g.kh * g.kw * ohw, false);
}

void conv2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, cg_buf w, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_forward";
  check_flags(flags, fn);
  Geom g = geometry(gp, fn, Use::conv);
  u64* yp = tensor(ctx, y, fn, "y", output_shape(g));
  const u64* xp = tensor(ctx, x, fn, "x", image_shape(g));
  const u64* wp = tensor(ctx, w, fn, "weight", weight_shape(g));
  distinct(fn, y, "y", x, "x");
  distinct(fn, y, "y", w, "weight");
  bool accumulate = flags & CG_ACCUMULATE;
  Plan p = plan(g, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, ne, gi * p.cg, p.cg, p.cols.get(), cols, p.ohw);
      const u64* wg = wp + gi * p.og * p.ckk;
      u64* yg = yp + e0 * y_image + gi * p.og * p.ohw;
      if (ne == 1) {  // one image's output rows are already contiguous
        gemm(ctx, yg, wg, p.cols.get(), p.og, cols, p.ckk, false, false, accumulate, CG_METHOD_AUTO);
        continue;
      }
      gemm(ctx, p.rows.get(), wg, p.cols.get(), p.og, cols, p.ckk, false, false, false, CG_METHOD_AUTO);
      unpack_rows(ctx, yg, p.rows.get(), ne, p.og, p.ohw, y_image, accumulate);
    }
  }
}

void conv2d_backward_input(cg_ctx* ctx, cg_buf dx, cg_buf dy, cg_buf w, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_backward_input";
  check_flags(flags, fn);
  Geom g = geometry(gp, fn, Use::conv);
  u64* dxp = tensor(ctx, dx, fn, "dx", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", output_shape(g));
  const u64* wp = tensor(ctx, w, fn, "weight", weight_shape(g));
  distinct(fn, dx, "dx", dy, "dy");
  distinct(fn, dx, "dx", w, "weight");
  bool accumulate = flags & CG_ACCUMULATE;
  Plan p = plan(g, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, p.rows.get(), dyg, ne, p.og, p.ohw, y_image);
        dyg = p.rows.get();
      }
      // Columns = W^T . dy, then summed back onto the image planes.
      gemm(ctx, p.cols.get(), wp + gi * p.og * p.ckk, dyg, p.ckk, cols, p.og, true, false, false, CG_METHOD_AUTO);
      scatter(ctx, g, p.cols.get(), ne, gi * p.cg, p.cg, dxp + e0 * x_image, cols, p.ohw, accumulate);
    }
  }
}

void conv2d_backward_weight(cg_ctx* ctx, cg_buf dw, cg_buf x, cg_buf dy, const cg_conv2d* gp, uint32_t flags) {
  const char* fn = "cg_conv2d_backward_weight";
  check_flags(flags, fn);
  Geom g = geometry(gp, fn, Use::conv);
  u64* dwp = tensor(ctx, dw, fn, "dweight", weight_shape(g));
  const u64* xp = tensor(ctx, x, fn, "x", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", output_shape(g));
  distinct(fn, dw, "dweight", x, "x");
  distinct(fn, dw, "dweight", dy, "dy");
  bool accumulate = flags & CG_ACCUMULATE;
  Plan p = plan(g, fn);
  u64 x_image = g.c * g.h * g.w, y_image = g.oc * p.ohw;
  for (u64 e0 = 0; e0 < g.n; e0 += p.step) {
    u64 ne = std::min(p.step, g.n - e0), cols = ne * p.ohw;
    for (u64 gi = 0; gi < g.groups; gi++) {
      gather(ctx, g, xp + e0 * x_image, ne, gi * p.cg, p.cg, p.cols.get(), cols, p.ohw);
      const u64* dyg = dyp + e0 * y_image + gi * p.og * p.ohw;
      if (ne > 1) {
        pack_rows(ctx, p.rows.get(), dyg, ne, p.og, p.ohw, y_image);
        dyg = p.rows.get();
      }
      // dW += dy . columns^T; the sum over this step's images is the product's k.
      gemm(ctx, dwp + gi * p.og * p.ckk, dyg, p.cols.get(), p.og, p.ckk, cols, false, true, accumulate || e0 > 0,
           CG_METHOD_AUTO);
    }
  }
}

void sumpool2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, const cg_conv2d* gp) {
  const char* fn = "cg_sumpool2d_forward";
  Geom g = geometry(gp, fn, Use::pool);
  u64* yp = tensor(ctx, y, fn, "y", pooled_shape(g));
  const u64* xp = tensor(ctx, x, fn, "x", image_shape(g));
  distinct(fn, y, "y", x, "x");
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
  Geom g = geometry(gp, fn, Use::pool);
  u64* dxp = tensor(ctx, dx, fn, "dx", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", pooled_shape(g));
  distinct(fn, dx, "dx", dy, "dy");
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
