/**
 * Slow reference copies of the plaintext conv/linear/matmul kernels of
 * lib/nn/plain.ts and lib/nn/plain_grad.ts as they were before the im2col
 * rewrite (direct loops), kept only so the tests can compare against them.
 */
import { PlainTensor } from "../../lib/nn/plain.ts";

/** x [n, c, h, w] * w [oc, c/groups, kh, kw] + bias [oc], cross-correlation as in PyTorch. */
export function referenceConv2d(
  x: PlainTensor,
  w: PlainTensor,
  bias: PlainTensor | null,
  stride: number,
  padding: number,
  groups = 1,
): PlainTensor {
  const [n, c, h, wd] = x.shape, [oc, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * padding - kh) / stride) + 1, ow = Math.floor((wd + 2 * padding - kw) / stride) + 1;
  const out = new Float64Array(n * oc * oh * ow);
  const og = oc / groups;
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      const g = Math.floor(o / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = bias ? bias.data[o] : 0;
          for (let ci = 0; ci < cg; ci++) {
            const xc = ((b * c + g * cg + ci) * h) * wd, wc = ((o * cg + ci) * kh) * kw;
            for (let i = 0; i < kh; i++) {
              const iy = oy * stride - padding + i;
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = ox * stride - padding + j;
                if (ix >= 0 && ix < wd) s += x.data[xc + iy * wd + ix] * w.data[wc + i * kw + j];
              }
            }
          }
          out[((b * oc + o) * oh + oy) * ow + ox] = s;
        }
      }
    }
  }
  return new PlainTensor([n, oc, oh, ow], out);
}

/** x [n, in] . w^T (w [out, in]) + bias [out]. */
export function referenceLinear(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null): PlainTensor {
  const [n, k] = x.shape, [m] = w.shape;
  const out = new Float64Array(n * m);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < m; o++) {
      let s = bias ? bias.data[o] : 0;
      for (let i = 0; i < k; i++) s += x.data[b * k + i] * w.data[o * k + i];
      out[b * m + o] = s;
    }
  }
  return new PlainTensor([n, m], out);
}

/**
 * Every tap of a convolution with a nonzero output gradient: visit(g, xi, wi)
 * with g = dy at the output, xi and wi the flat indices of the input and the
 * weight it multiplies there.
 */
function forEachTap(
  xShape: readonly number[],
  wShape: readonly number[],
  dy: PlainTensor,
  stride: number,
  padding: number,
  visit: (g: number, xi: number, wi: number) => void,
): void {
  const [n, c, h, wd] = xShape, [oc, , kh, kw] = wShape, [, , oh, ow] = dy.shape;
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
                if (ix >= 0 && ix < wd) visit(g, ((b * c + ci) * h + iy) * wd + ix, ((o * c + ci) * kh + i) * kw + j);
              }
            }
          }
        }
      }
    }
  }
}

/** d/dx of sum(dy * conv2d(x, w)), x of shape xShape. */
export function referenceConv2dBackwardInput(
  dy: PlainTensor,
  w: PlainTensor,
  xShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const dx = new Float64Array(xShape.reduce((a, b) => a * b, 1));
  forEachTap(xShape, w.shape, dy, stride, padding, (g, xi, wi) => (dx[xi] += g * w.data[wi]));
  return new PlainTensor(xShape, dx);
}

/** d/dw of sum(dy * conv2d(x, w)), w of shape wShape. */
export function referenceConv2dBackwardWeight(
  x: PlainTensor,
  dy: PlainTensor,
  wShape: readonly number[],
  stride: number,
  padding: number,
): PlainTensor {
  const dw = new Float64Array(wShape.reduce((a, b) => a * b, 1));
  forEachTap(x.shape, wShape, dy, stride, padding, (g, xi, wi) => (dw[wi] += g * x.data[xi]));
  return new PlainTensor(wShape, dw);
}

/** a [n, k] . b [k, m]. */
export function referenceMatmul(a: PlainTensor, b: PlainTensor): PlainTensor {
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

/** Average pooling's adjoint: each window entry gets dy / k^2 (padding entries are dropped). */
export function referenceAvgPoolBackward(
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
