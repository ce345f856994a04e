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
// Columns (images x output pixels) that one product should cover at least,
// and the most scratch words (columns and output rows) a step of several
// images may take; a single image takes what it needs.
constexpr u64 kTargetColumns = 32768;
constexpr u64 kScratchWords = u64(1) << 24;

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

// The device words of a tensor argument, once its buffer is known to hold its shape.
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

// How a convolution walks the batch: `step` images at a time, with scratch
// for their columns (per group) and for output-channel rows when step > 1.
struct Plan {
  u64 cg, og, ckk, ohw, step;
  u64 cols_words, rows_words;
};

Plan plan(const Geom& g, const char* fn) {
  Plan p;
  p.cg = g.c / g.groups;
  p.og = g.oc / g.groups;
  p.ckk = p.cg * g.kh * g.kw;  // the weight buffer holds this many words
  p.ohw = g.oh * g.ow;         // and y this many
  u64 per_image = mul_checked(p.ckk + p.og, p.ohw, fn);
  p.step = std::min({g.n, (kTargetColumns + p.ohw - 1) / p.ohw, std::max<u64>(1, kScratchWords / per_image)});
  p.cols_words = mul_checked(p.ckk, p.step * p.ohw, fn);
  p.rows_words = p.step > 1 ? p.og * p.step * p.ohw : 0;
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
  gather(ctx, g, x, Columns{g.n, 0, g.c, ohw, g.c * g.kh * g.kw * ohw}, o, fn);
}

void col2im(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* gp) {
  const char* fn = "cg_col2im";
  Geom g = geometry(gp, fn, Use::window);
  u64* x = tensor(ctx, out, fn, "out", image_shape(g));
  const u64* cols = tensor(ctx, in, fn, "in", column_shape(g));
  distinct(fn, out, "out", in, "in");
  u64 ohw = g.oh * g.ow;
  scatter(ctx, g, cols, Columns{g.n, 0, g.c, ohw, g.c * g.kh * g.kw * ohw}, x, false, fn);
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
  check_flags(flags, fn);
  Geom g = geometry(gp, fn, Use::conv);
  u64* dxp = tensor(ctx, dx, fn, "dx", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", output_shape(g));
  const u64* wp = tensor(ctx, w, fn, "weight", weight_shape(g));
  distinct(fn, dx, "dx", dy, "dy");
  distinct(fn, dx, "dx", w, "weight");
  bool accumulate = flags & CG_ACCUMULATE;
  Plan p = plan(g, fn);
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
  check_flags(flags, fn);
  Geom g = geometry(gp, fn, Use::conv);
  u64* dwp = tensor(ctx, dw, fn, "dweight", weight_shape(g));
  const u64* xp = tensor(ctx, x, fn, "x", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", output_shape(g));
  distinct(fn, dw, "dweight", x, "x");
  distinct(fn, dw, "dweight", dy, "dy");
  bool accumulate = flags & CG_ACCUMULATE;
  Plan p = plan(g, fn);
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
  Geom g = geometry(gp, fn, Use::pool);
  u64* yp = tensor(ctx, y, fn, "y", pooled_shape(g));
  const u64* xp = tensor(ctx, x, fn, "x", image_shape(g));
  distinct(fn, y, "y", x, "x");
  const u64 total = g.n * g.c * g.oh * g.ow;
  pool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(yp, xp, g);
  check_launch(fn);
}

void sumpool2d_backward(cg_ctx* ctx, cg_buf dx, cg_buf dy, const cg_conv2d* gp) {
  const char* fn = "cg_sumpool2d_backward";
  Geom g = geometry(gp, fn, Use::pool);
  u64* dxp = tensor(ctx, dx, fn, "dx", image_shape(g));
  const u64* dyp = tensor(ctx, dy, fn, "dy", pooled_shape(g));
  distinct(fn, dx, "dx", dy, "dy");
  const u64 total = g.n * g.c * g.h * g.w;
  unpool_kernel<<<grid_for(ctx, total, kBlock), kBlock, 0, ctx->stream>>>(dxp, dyp, g);
  check_launch(fn);
}

}  // namespace cg
