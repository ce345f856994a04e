// Per-element work of the convolution helpers (im2col, its adjoint col2im,
// sum pooling and its adjoint), shared by the kernels and the host-side
// checks. NCHW; output pixel (oy, ox) reads input (oy sh - ph + ki dh,
// ox sw - pw + kj dw) through tap (ki, kj); padding reads 0.
#pragma once

#include "common.cuh"

namespace cg {

struct Geom {
  u64 n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  u64 oh, ow;
};

// Column matrices for images [0, images) of x, channels [c0, c0 + cc): row
// r = (ci kh + ki) kw + kj of image e at cols + r row_stride + e image_stride.
struct Columns {
  u64 images, c0, cc, row_stride, image_stride;
};

// The input coordinate read by output coordinate o through tap k on one axis,
// or false where it falls in the padding.
CG_HD bool tap_source(u64 o, u64 k, u64 stride, u64 pad, u64 dil, u64 size, u64& i) {
  const u64 at = o * stride + k * dil;
  if (at < pad || at - pad >= size) return false;
  i = at - pad;
  return true;
}

// The output coordinate that reads input coordinate i through tap k, or
// false where none does.
CG_HD bool tap_target(u64 i, u64 k, u64 stride, u64 pad, u64 dil, u64 count, u64& o) {
  const u64 at = i + pad;
  if (at < k * dil) return false;
  const u64 t = at - k * dil;
  if (t % stride != 0 || t / stride >= count) return false;
  o = t / stride;
  return true;
}

// im2col: column entry (row r, image e, output pixel o).
CG_HD u64 im2col_value(const Geom& g, const Columns& cl, const u64* x, u64 r, u64 e, u64 o) {
  const u64 kk = g.kh * g.kw, ci = cl.c0 + r / kk, ki = r % kk / g.kw, kj = r % g.kw;
  u64 iy, ix;
  if (!tap_source(o / g.ow, ki, g.sh, g.ph, g.dh, g.h, iy) || !tap_source(o % g.ow, kj, g.sw, g.pw, g.dw, g.w, ix))
    return 0;
  return x[((e * g.c + ci) * g.h + iy) * g.w + ix];
}

// col2im: the sum of the column entries that im2col reads from input pixel
// (image e, channel c0 + ci, plane position p).
CG_HD u64 col2im_value(const Geom& g, const Columns& cl, const u64* cols, u64 e, u64 ci, u64 p) {
  const u64 iy = p / g.w, ix = p % g.w;
  u64 sum = 0;
  for (u64 ki = 0; ki < g.kh; ki++) {
    u64 oy;
    if (!tap_target(iy, ki, g.sh, g.ph, g.dh, g.oh, oy)) continue;
    for (u64 kj = 0; kj < g.kw; kj++) {
      u64 ox;
      if (!tap_target(ix, kj, g.sw, g.pw, g.dw, g.ow, ox)) continue;
      const u64 r = (ci * g.kh + ki) * g.kw + kj;
      sum += cols[r * cl.row_stride + e * cl.image_stride + oy * g.ow + ox];
    }
  }
  return sum;
}

// Sum pooling of one plane: output pixel o.
CG_HD u64 pool_value(const Geom& g, const u64* plane, u64 o) {
  const u64 oy = o / g.ow, ox = o % g.ow;
  u64 sum = 0;
  for (u64 ki = 0; ki < g.kh; ki++) {
    u64 iy;
    if (!tap_source(oy, ki, g.sh, g.ph, g.dh, g.h, iy)) continue;
    for (u64 kj = 0; kj < g.kw; kj++) {
      u64 ix;
      if (tap_source(ox, kj, g.sw, g.pw, g.dw, g.w, ix)) sum += plane[iy * g.w + ix];
    }
  }
  return sum;
}

// Its adjoint: input pixel p of one plane gathers dy over the windows that
// contain it.
CG_HD u64 unpool_value(const Geom& g, const u64* dy_plane, u64 p) {
  const u64 iy = p / g.w, ix = p % g.w;
  u64 sum = 0;
  for (u64 ki = 0; ki < g.kh; ki++) {
    u64 oy;
    if (!tap_target(iy, ki, g.sh, g.ph, g.dh, g.oh, oy)) continue;
    for (u64 kj = 0; kj < g.kw; kj++) {
      u64 ox;
      if (tap_target(ix, kj, g.sw, g.pw, g.dw, g.ow, ox)) sum += dy_plane[oy * g.ow + ox];
    }
  }
  return sum;
}

// The kernels' items. Column entries: the output pixel fastest, then rows
// before images where rows are the longer stride (the convolutions' layout),
// else images first (im2col's): writes are contiguous either way.
CG_HD void gather_item(const Geom& g, const Columns& cl, u64* cols, const u64* x, u64 t) {
  const u64 ohw = g.oh * g.ow, rows = cl.cc * g.kh * g.kw;
  const bool rows_outer = cl.row_stride >= cl.image_stride;
  const u64 o = t % ohw, rest = t / ohw;
  const u64 e = rows_outer ? rest % cl.images : rest / rows, r = rows_outer ? rest / cl.images : rest % rows;
  cols[r * cl.row_stride + e * cl.image_stride + o] = im2col_value(g, cl, x, r, e, o);
}

// Input pixels of channels [c0, c0 + cc) of the images.
CG_HD void scatter_item(const Geom& g, const Columns& cl, u64* x, const u64* cols, bool accumulate, u64 t) {
  const u64 hw = g.h * g.w;
  const u64 p = t % hw, rest = t / hw, ci = rest % cl.cc, e = rest / cl.cc;
  const u64 v = col2im_value(g, cl, cols, e, ci, p);
  u64* dst = x + (e * g.c + cl.c0 + ci) * hw + p;
  *dst = accumulate ? *dst + v : v;
}

// The first `rows` rows of `images` [rows, ohw] blocks (`stride` words apart)
// against one [rows, images * ohw] matrix, entry t of the matrix: the layout
// the products use when a step covers several images.
CG_HD u64 packed_row_source(u64 images, u64 ohw, u64 stride, u64 t) {
  const u64 i = t % ohw, rest = t / ohw, e = rest % images, o = rest / images;
  return e * stride + o * ohw + i;
}

}  // namespace cg
