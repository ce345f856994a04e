/**
 * The float64 twin of the backward passes: gradients of the plaintext layers
 * of plain.ts, for comparison with the private ones. Direct loops, not a hot path.
 */
import { PlainTensor } from "./plain.ts";

/** d/dx of sum(dy * conv2d(x, w)), x of shape xShape. */
export function conv2dBackwardInput(
  dy: PlainTensor,
  w: PlainTensor,
  xShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const [n, c, h, wd] = xShape, [oc, , kh, kw] = w.shape, [, , oh, ow] = dy.shape;
  const dx = new Float64Array(n * c * h * wd);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const g = dy.data[((b * oc + o) * oh + oy) * ow + ox];
          if (g === 0) continue;
          for (let ci = 0; ci < c; ci++) {
            for (let i = 0; i < kh; i++) {
              const iy = oy * stride - padding + i;
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = ox * stride - padding + j;
                if (ix >= 0 && ix < wd) {
                  dx[((b * c + ci) * h + iy) * wd + ix] += g * w.data[((o * c + ci) * kh + i) * kw + j];
                }
              }
            }
          }
        }
      }
    }
  }
  return new PlainTensor(xShape, dx);
}

/** d/dw of sum(dy * conv2d(x, w)), w of shape wShape. */
export function conv2dBackwardWeight(
  x: PlainTensor,
  dy: PlainTensor,
  wShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const [n, c, h, wd] = x.shape, [oc, , kh, kw] = wShape, [, , oh, ow] = dy.shape;
  const dw = new Float64Array(oc * c * kh * kw);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const g = dy.data[((b * oc + o) * oh + oy) * ow + ox];
          if (g === 0) continue;
          for (let ci = 0; ci < c; ci++) {
            for (let i = 0; i < kh; i++) {
              const iy = oy * stride - padding + i;
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = ox * stride - padding + j;
                if (ix >= 0 && ix < wd) {
                  dw[((o * c + ci) * kh + i) * kw + j] += g * x.data[((b * c + ci) * h + iy) * wd + ix];
                }
              }
            }
          }
        }
      }
    }
  }
  return new PlainTensor(wShape, dw);
}

/** a [n, k] . b [k, m]. */
export function matmul(a: PlainTensor, b: PlainTensor): PlainTensor {
  const [n, k] = a.shape, [, m] = b.shape;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let l = 0; l < k; l++) {
      const v = a.data[i * k + l];
      if (v === 0) continue;
      for (let j = 0; j < m; j++) out[i * m + j] += v * b.data[l * m + j];
    }
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
  const dx = new Float64Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const g = dy.data[(p * oh + oy) * ow + ox] / (k * k);
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const y = oy * stride - padding + i, xx = ox * stride - padding + j;
            if (y >= 0 && y < h && xx >= 0 && xx < w) dx[(p * h + y) * w + xx] += g;
          }
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
