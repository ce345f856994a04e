// Convolution and sum pooling over Z_2^64, NCHW. Convolutions gather windows
// into columns (im2col) for a few images at a time and hand the product to
// gemm; the backward passes are the adjoints: transposed products and col2im.
#include <algorithm>
#include <memory>
#include <string>

#include "internal.hpp"

namespace cg {
namespace {

// Columns (images x output pixels) that one product should cover at least,
// and the most scratch words the columns of a step may take beyond one image.
constexpr u64 kTargetColumns = 4096;
constexpr u64 kScratchWords = u64(1) << 22;

struct Geom {
  u64 n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  u64 oh, ow;
};

enum class Use { window, conv, pool };

std::string str(u64 v) { return std::to_string(v); }

// Validates the fields `use` reads and derives the output size.
Geom geometry(const cg_conv2d* p, const char* fn, Use use) {
  std::string f(fn);
  if (!p) fail(CG_ENULL, f + ": geometry is NULL");
  auto at_least = [&](int64_t v, int64_t lo, const char* name) {
    if (v < lo) fail(CG_EINVAL, f + ": " + name + " must be at least " + std::to_string(lo) + ", got " + std::to_string(v));
    return u64(v);
  };
  Geom g{};
  g.n = at_least(p->n, 1, "n");
  g.c = at_least(p->c, 1, "c");
  g.h = at_least(p->h, 1, "h");
  g.w = at_least(p->w, 1, "w");
  g.kh = at_least(p->kh, 1, "kh");
  g.kw = at_least(p->kw, 1, "kw");
  g.sh = at_least(p->sh, 1, "sh");
  g.sw = at_least(p->sw, 1, "sw");
  g.ph = at_least(p->ph, 0, "ph");
  g.pw = at_least(p->pw, 0, "pw");
  g.dh = at_least(p->dh, 1, "dh");
  g.dw = at_least(p->dw, 1, "dw");
  g.oc = g.c;
  g.groups = 1;
  if (use == Use::conv) {
    g.oc = at_least(p->oc, 1, "oc");
    g.groups = at_least(p->groups, 1, "groups");
    require(g.c % g.groups == 0 && g.oc % g.groups == 0, f + ": c " + str(g.c) + " and oc " + str(g.oc) +
                                                             " must both be divisible by groups " + str(g.groups));
  } else if (use == Use::pool) {
    require(p->oc == p->c, f + ": pooling needs oc == c, got oc " + std::to_string(p->oc) + " and c " + str(g.c));
  }
  // Output size per axis: (size + 2 pad - dilation (window - 1) - 1) / stride + 1.
  auto out_size = [&](u64 size, u64 pad, u64 dil, u64 win, u64 stride, const char* axis) {
    u64 padded, reach;
    if (__builtin_mul_overflow(pad, 2, &padded) || __builtin_add_overflow(padded, size, &padded) ||
        __builtin_mul_overflow(dil, win - 1, &reach) || reach >= padded)
      fail(CG_EINVAL, f + ": the window (" + str(win) + " taps, dilation " + str(dil) + ") does not fit the padded " +
                          axis + " of " + str(size) + " + 2 x " + str(pad));
    return (padded - reach - 1) / stride + 1;
  };
  g.oh = out_size(g.h, g.ph, g.dh, g.kh, g.sh, "height");
  g.ow = out_size(g.w, g.pw, g.dw, g.kw, g.sw, "width");
  return g;
}

std::string dims(std::initializer_list<std::pair<const char*, u64>> d) {
  std::string s = "[";
  for (const auto& [name, v] : d) s += (s.size() > 1 ? ", " : "") + std::string(name) + " " + str(v);
  return s + "]";
}

u64 words(std::initializer_list<std::pair<const char*, u64>> d, const char* fn) {
  u64 r = 1;
  for (const auto& e : d) r = mul_checked(r, e.second, fn);
  return r;
}

// A tensor argument: its handle, the words its shape needs and that shape.
struct Tensor {
  cg_buf handle;
  const char* name;
  std::initializer_list<std::pair<const char*, u64>> shape;
};

// Looks every handle up, refuses an output that is also an input, and checks
// that each buffer is large enough. Returns the words of each, in order.
template <size_t N>
std::array<u64*, N> tensors(cg_ctx* ctx, const char* fn, const Tensor (&t)[N]) {
  std::string f(fn);
  std::array<u64, N> need;
  for (size_t i = 0; i < N; i++) {
    need[i] = words(t[i].shape, fn);
    lookup(ctx, t[i].handle, (f + ": " + t[i].name).c_str());
  }
  for (size_t i = 1; i < N; i++)
    require(t[0].handle != t[i].handle,
            f + ": " + t[0].name + " must not be the same buffer as " + t[i].name);
  std::array<u64*, N> p;
  for (size_t i = 0; i < N; i++) {
    u64 have = lookup(ctx, t[i].handle, fn).words;
    if (have < need[i])
      fail(CG_EINVAL, f + ": " + t[i].name + " needs " + str(need[i]) + " words " + dims(t[i].shape) +
                          " but the buffer holds " + str(have));
    p[i] = words_of(ctx, t[i].handle, 0, need[i], fn);
  }
  return p;
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
  int64_t oy0 = int64_t(ki * g.dh) - int64_t(g.ph), ox0 = int64_t(kj * g.dw) - int64_t(g.pw);
  Range ys = inside(oy0, g.sh, g.h, g.oh), xs = inside(ox0, g.sw, g.w, g.ow);
  for (u64 oy = ys.lo; oy < ys.hi; oy++) {
    u64 o = oy * g.ow + xs.lo, i = u64(int64_t(oy * g.sh) + oy0) * g.w + u64(int64_t(xs.lo * g.sw) + ox0);
    for (u64 ox = xs.lo; ox < xs.hi; ox++, o++, i += g.sw) f(o, i);
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

// Rows [r0, r0 + rows) of each of `images` [*, ohw] blocks (block stride
// `stride` words) to or from a [rows, images * ohw] matrix: the layout the
// products use when a step covers several images.
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

Plan plan(const Geom& g) {
  Plan p;
  p.cg = g.c / g.groups;
  p.og = g.oc / g.groups;
  p.ckk = p.cg * g.kh * g.kw;
  p.ohw = g.oh * g.ow;
  u64 per_image = (p.ckk + p.og) * p.ohw;
  p.step = std::min({g.n, (kTargetColumns + p.ohw - 1) / p.ohw, std::max<u64>(1, kScratchWords / per_image)});
  p.cols.reset(new u64[p.ckk * p.step * p.ohw]);
  if (p.step > 1) p.rows.reset(new u64[p.og * p.step * p.ohw]);
  return p;
}

void sumpool_check(const Geom& g) {}

}  // namespace

void im2col(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_im2col";
  Geom g = geometry(gp, fn, Use::window);
  auto [o, x] = tensors(ctx, fn, {{out, "out", {{"n", g.n}, {"c*kh*kw", g.c * g.kh * g.kw}, {"oh*ow", g.oh * g.ow}}},
                                  {in, "in", {{"n", g.n}, {"c", g.c}, {"h", g.h}, {"w", g.w}}}});
  u64 rows = g.c * g.kh * g.kw, ohw = g.oh * g.ow;
  gather(ctx, g, x, g.n, 0, g.c, o, ohw, rows * ohw);
}

}  // namespace cg
