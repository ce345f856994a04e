/**
 * The float64 plaintext twin of the private layers: small, direct CPU code
 * that computes in the clear what the parties compute on shares, for
 * accuracy comparisons and benchmarks. Not a hot path of the protocols.
 */

export class PlainTensor {
  constructor(readonly shape: readonly number[], readonly data: Float64Array) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new RangeError(`PlainTensor: ${data.length} values for shape [${shape}]`);
  }
  get size(): number {
    return this.data.length;
  }
  reshape(shape: readonly number[]): PlainTensor {
    return new PlainTensor(shape, this.data);
  }
  map(f: (v: number, i: number) => number): PlainTensor {
    return new PlainTensor(this.shape, this.data.map(f));
  }
}

/** x [n, c, h, w] * w [oc, c/groups, kh, kw] + bias [oc], cross-correlation as in PyTorch. */
export function conv2d(
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
export function linear(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null): PlainTensor {
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

export const relu = (x: PlainTensor): PlainTensor => x.map((v) => (v > 0 ? v : 0));

/** Pooling over k x k windows with a stride: "avg" counts padding as zeros, "max" ignores it. */
export function pool2d(x: PlainTensor, k: number, stride: number, padding: number, op: "avg" | "max"): PlainTensor {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * padding - k) / stride) + 1, ow = Math.floor((w + 2 * padding - k) / stride) + 1;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = op === "max" ? -Infinity : 0;
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const y = oy * stride - padding + i, xx = ox * stride - padding + j;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            const v = x.data[(p * h + y) * w + xx];
            s = op === "max" ? Math.max(s, v) : s + v;
          }
        }
        out[(p * oh + oy) * ow + ox] = op === "max" ? s : s / (k * k);
      }
    }
  }
  return new PlainTensor([n, c, oh, ow], out);
}

/** Mean over the spatial axes: [n, c, h, w] -> [n, c, 1, 1]. */
export function globalAvgPool(x: PlainTensor): PlainTensor {
  const [n, c, h, w] = x.shape, hw = h * w;
  const out = new Float64Array(n * c);
  for (let p = 0; p < n * c; p++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x.data[p * hw + i];
    out[p] = s / hw;
  }
  return new PlainTensor([n, c, 1, 1], out);
}

/** Per-channel affine map y = scale[c] x + shift[c] (batch normalization at inference). */
export function channelAffine(x: PlainTensor, scale: PlainTensor, shift: PlainTensor): PlainTensor {
  const [, c, h, w] = x.shape, hw = h * w;
  return x.map((v, i) => {
    const ch = Math.floor(i / hw) % c;
    return scale.data[ch] * v + shift.data[ch];
  });
}

export function add(a: PlainTensor, b: PlainTensor): PlainTensor {
  return a.map((v, i) => v + b.data[i]);
}

export function softmax(x: PlainTensor): PlainTensor {
  const d = x.shape[x.shape.length - 1], out = new Float64Array(x.size);
  for (let r = 0; r < x.size / d; r++) {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, x.data[r * d + j]);
    let s = 0;
    for (let j = 0; j < d; j++) s += out[r * d + j] = Math.exp(x.data[r * d + j] - m);
    for (let j = 0; j < d; j++) out[r * d + j] /= s;
  }
  return new PlainTensor(x.shape, out);
}
