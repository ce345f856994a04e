/**
 * The float64 twin of the backward passes: gradients of the plaintext layers
 * of plain.ts, for comparison with the private ones. Convolutions go through
 * im2col / col2im and row-sum kernels over contiguous memory.
 */
import { im2col, PlainTensor } from "./plain.ts";

/**
 * dst[dOff + t] += sum_q coef[q] * src[rows[q] + t] for t < len, q < cnt: a sum of
 * scaled contiguous rows, four rows per pass over dst.
 */
function addRows(
  dst: Float64Array,
  dOff: number,
  len: number,
  src: Float64Array,
  coef: Float64Array,
  rows: Int32Array,
  cnt: number,
): void {
  let q = 0;
  for (; q + 8 <= cnt; q += 8) {
    const a0 = coef[q], a1 = coef[q + 1], a2 = coef[q + 2], a3 = coef[q + 3];
    const a4 = coef[q + 4], a5 = coef[q + 5], a6 = coef[q + 6], a7 = coef[q + 7];
    const r0 = rows[q], r1 = rows[q + 1], r2 = rows[q + 2], r3 = rows[q + 3];
    const r4 = rows[q + 4], r5 = rows[q + 5], r6 = rows[q + 6], r7 = rows[q + 7];
    for (let t = 0; t < len; t++) {
      dst[dOff + t] += a0 * src[r0 + t] + a1 * src[r1 + t] + a2 * src[r2 + t] + a3 * src[r3 + t] +
        (a4 * src[r4 + t] + a5 * src[r5 + t] + a6 * src[r6 + t] + a7 * src[r7 + t]);
    }
  }
  for (; q + 4 <= cnt; q += 4) {
    const a0 = coef[q], a1 = coef[q + 1], a2 = coef[q + 2], a3 = coef[q + 3];
    const r0 = rows[q], r1 = rows[q + 1], r2 = rows[q + 2], r3 = rows[q + 3];
    for (let t = 0; t < len; t++) {
      dst[dOff + t] += a0 * src[r0 + t] + a1 * src[r1 + t] + a2 * src[r2 + t] + a3 * src[r3 + t];
    }
  }
  for (; q < cnt; q++) {
    const a = coef[q], r = rows[q];
    for (let t = 0; t < len; t++) dst[dOff + t] += a * src[r + t];
  }
}

/** d/dx of sum(dy * conv2d(x, w)), x of shape xShape: per image, dy^T . w into unfolded windows, then col2im. */
export function conv2dBackwardInput(
  dy: PlainTensor,
  w: PlainTensor,
  xShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const [n, c, h, wd] = xShape, [oc, , kh, kw] = w.shape, [, , oh, ow] = dy.shape;
  const dx = new Float64Array(n * c * h * wd);
  const pn = oh * ow, k = c * kh * kw, hw = h * wd;
  const col = new Float64Array(pn * k), coef = new Float64Array(oc), rows = new Int32Array(oc);
  const g = dy.data, wt = w.data;
  for (let b = 0; b < n; b++) {
    col.fill(0);
    const gb = b * oc * pn;
    for (let p = 0; p < pn; p++) {
      let cnt = 0;
      for (let o = 0; o < oc; o++) {
        const v = g[gb + o * pn + p];
        if (v !== 0) {
          coef[cnt] = v;
          rows[cnt++] = o * k;
        }
      }
      addRows(col, p * k, k, wt, coef, rows, cnt);
    }
    // col2im: scatter-add the window rows back onto the image, dropping padding.
    let q = 0;
    const xb = b * c * hw;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * stride - padding;
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * stride - padding;
        const j0 = Math.min(kw, Math.max(0, -x0)), j1 = Math.max(j0, Math.min(kw, wd - x0));
        for (let ci = 0; ci < c; ci++) {
          const cb = xb + ci * hw + x0;
          for (let i = 0; i < kh; i++) {
            const y = y0 + i;
            if (y >= 0 && y < h) {
              const rb = cb + y * wd;
              for (let j = j0; j < j1; j++) dx[rb + j] += col[q + j];
            }
            q += kw;
          }
        }
      }
    }
  }
  return new PlainTensor(xShape, dx);
}

/** d/dw of sum(dy * conv2d(x, w)), w of shape wShape: per image, dy . im2col(x) accumulated. */
export function conv2dBackwardWeight(
  x: PlainTensor,
  dy: PlainTensor,
  wShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const [n, c, h, wd] = x.shape, [oc, , kh, kw] = wShape, [, , oh, ow] = dy.shape;
  const dw = new Float64Array(oc * c * kh * kw);
  const pn = oh * ow, k = c * kh * kw;
  const col = new Float64Array(pn * k), coef = new Float64Array(pn), rows = new Int32Array(pn);
  const g = dy.data;
  for (let b = 0; b < n; b++) {
    im2col(x.data, b * c * h * wd, c, h, wd, kh, kw, stride, padding, oh, ow, col);
    for (let o = 0; o < oc; o++) {
      const gb = (b * oc + o) * pn;
      let cnt = 0;
      for (let p = 0; p < pn; p++) {
        const v = g[gb + p];
        if (v !== 0) {
          coef[cnt] = v;
          rows[cnt++] = p * k;
        }
      }
      addRows(dw, o * k, k, col, coef, rows, cnt);
    }
  }
  return new PlainTensor(wShape, dw);
}

/** a [n, k] . b [k, m]: each output row is the sum of b's rows scaled by a's nonzero entries. */
export function matmul(a: PlainTensor, b: PlainTensor): PlainTensor {
  const [n, k] = a.shape, [, m] = b.shape;
  const out = new Float64Array(n * m), ad = a.data;
  const coef = new Float64Array(k), rows = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    let cnt = 0;
    for (let l = 0; l < k; l++) {
      const v = ad[i * k + l];
      if (v !== 0) {
        coef[cnt] = v;
        rows[cnt++] = l * m;
      }
    }
    addRows(out, i * m, m, b.data, coef, rows, cnt);
  }
  return new PlainTensor([n, m], out);
}

export function transpose2d(a: PlainTensor): PlainTensor {
  const [r, c] = a.shape, out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a.data[i * c + j];
  return new PlainTensor([c, r], out);
}

/** Sums over every axis but `axis` (a bias gradient). */
export function sumExcept(t: PlainTensor, axis: number): PlainTensor {
  const d = t.shape[axis], inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(d);
  t.data.forEach((v, i) => out[Math.floor(i / inner) % d] += v);
  return new PlainTensor([d], out);
}

/** Average pooling's adjoint: each window entry gets dy / k^2 (padding entries are dropped). */
export function avgPoolBackward(
  dy: PlainTensor,
  xShape: readonly number[],
  k: number,
  stride: number,
  padding: number,
): PlainTensor {
  const [n, c, h, w] = xShape, [, , oh, ow] = dy.shape;
  const dx = new Float64Array(n * c * h * w), d = dy.data, kk = k * k;
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * stride - padding, i0 = Math.max(0, -y0), i1 = Math.min(k, h - y0);
      for (let ox = 0; ox < ow; ox++) {
        const g = d[(p * oh + oy) * ow + ox] / kk;
        const x0 = ox * stride - padding, j0 = Math.max(0, -x0), j1 = Math.min(k, w - x0);
        for (let i = i0; i < i1; i++) {
          const row = (p * h + y0 + i) * w + x0;
          for (let j = j0; j < j1; j++) dx[row + j] += g;
        }
      }
    }
  }
  return new PlainTensor(xShape, dx);
}

/** Max pooling that also returns, per output, the flat input index of its window's maximum. */
export function maxPoolWithArgmax(
  x: PlainTensor,
  k: number,
  stride: number,
  padding: number,
): { y: PlainTensor; argmax: Int32Array } {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * padding - k) / stride) + 1, ow = Math.floor((w + 2 * padding - k) / stride) + 1;
  const out = new Float64Array(n * c * oh * ow), argmax = new Int32Array(out.length);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let best = -Infinity, at = -1;
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const y = oy * stride - padding + i, xx = ox * stride - padding + j;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            const idx = (p * h + y) * w + xx;
            if (x.data[idx] > best) [best, at] = [x.data[idx], idx];
          }
        }
        const o = (p * oh + oy) * ow + ox;
        out[o] = best;
        argmax[o] = at;
      }
    }
  }
  return { y: new PlainTensor([n, c, oh, ow], out), argmax };
}

export function maxPoolBackward(dy: PlainTensor, argmax: Int32Array, xShape: readonly number[]): PlainTensor {
  const dx = new Float64Array(xShape.reduce((a, b) => a * b, 1));
  dy.data.forEach((g, o) => dx[argmax[o]] += g);
  return new PlainTensor(xShape, dx);
}

/** ReLU's adjoint with DReLU(x) = 1 for x >= 0, as the private 1 - msb(x). */
export const reluBackward = (dy: PlainTensor, x: PlainTensor): PlainTensor =>
  dy.map((g, i) => (x.data[i] >= 0 ? g : 0));

export function globalAvgPoolBackward(dy: PlainTensor, xShape: readonly number[]): PlainTensor {
  const hw = xShape[2] * xShape[3];
  const dx = new Float64Array(xShape.reduce((a, b) => a * b, 1));
  dx.forEach((_, i) => dx[i] = dy.data[Math.floor(i / hw)] / hw);
  return new PlainTensor(xShape, dx);
}

/** Gradients of y = scale[c] x + shift[c]: dx, dscale, dshift. */
export function channelAffineBackward(
  dy: PlainTensor,
  x: PlainTensor,
  scale: PlainTensor,
): { dx: PlainTensor; dscale: PlainTensor; dshift: PlainTensor } {
  const [, c, h, w] = x.shape, hw = h * w;
  const dscale = new Float64Array(c), dshift = new Float64Array(c);
  const dx = dy.map((g, i) => {
    const ch = Math.floor(i / hw) % c;
    dscale[ch] += g * x.data[i];
    dshift[ch] += g;
    return g * scale.data[ch];
  });
  return { dx, dscale: new PlainTensor([c], dscale), dshift: new PlainTensor([c], dshift) };
}
