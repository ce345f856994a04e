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

/**
 * Unfolds the receptive fields of one image (channels c, h x w, starting at
 * src[off]) into col, row-major [oh * ow][c * kh * kw]: row p = oy * ow + ox
 * holds the window of output (oy, ox), column (ci * kh + i) * kw + j, zeros
 * where the window covers padding. Shared by conv2d and its adjoints.
 */
export function im2col(
  src: Float64Array,
  off: number,
  c: number,
  h: number,
  w: number,
  kh: number,
  kw: number,
  stride: number,
  padding: number,
  oh: number,
  ow: number,
  col: Float64Array,
): void {
  const hw = h * w;
  let q = 0;
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * stride - padding;
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * stride - padding;
      const j0 = Math.min(kw, Math.max(0, -x0)), j1 = Math.max(j0, Math.min(kw, w - x0));
      for (let ci = 0; ci < c; ci++) {
        const cb = off + ci * hw + x0;
        for (let i = 0; i < kh; i++) {
          const y = y0 + i;
          if (y < 0 || y >= h) {
            for (let j = 0; j < kw; j++) col[q + j] = 0;
          } else {
            const rb = cb + y * w;
            let j = 0;
            for (; j < j0; j++) col[q + j] = 0;
            for (; j < j1; j++) col[q + j] = src[rb + j];
            for (; j < kw; j++) col[q + j] = 0;
          }
          q += kw;
        }
      }
    }
  }
}

/**
 * c[cOff + i * nb + j] += sum_l a[aOff + i * k + l] * b[j * k + l] for i < m, j < nb:
 * a . b^T with both operands read along contiguous rows, in 2 x 2 register blocks.
 */
function gemmNT(
  a: Float64Array,
  aOff: number,
  b: Float64Array,
  c: Float64Array,
  cOff: number,
  m: number,
  nb: number,
  k: number,
): void {
  let i = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = aOff + i * k, a1 = a0 + k, c0 = cOff + i * nb, c1 = c0 + nb;
    let j = 0;
    for (; j + 2 <= nb; j += 2) {
      const b0 = j * k, b1 = b0 + k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let l = 0; l < k; l++) {
        const u = a[a0 + l], v = a[a1 + l], p = b[b0 + l], q = b[b1 + l];
        s00 += u * p;
        s01 += u * q;
        s10 += v * p;
        s11 += v * q;
      }
      c[c0 + j] += s00;
      c[c0 + j + 1] += s01;
      c[c1 + j] += s10;
      c[c1 + j + 1] += s11;
    }
    if (j < nb) {
      const b0 = j * k;
      let s0 = 0, s1 = 0;
      for (let l = 0; l < k; l++) {
        const p = b[b0 + l];
        s0 += a[a0 + l] * p;
        s1 += a[a1 + l] * p;
      }
      c[c0 + j] += s0;
      c[c1 + j] += s1;
    }
  }
  if (i < m) {
    const a0 = aOff + i * k, c0 = cOff + i * nb;
    for (let j = 0; j < nb; j++) {
      const b0 = j * k;
      let s = 0;
      for (let l = 0; l < k; l++) s += a[a0 + l] * b[b0 + l];
      c[c0 + j] += s;
    }
  }
}

/**
 * x [n, c, h, w] * w [oc, c/groups, kh, kw] + bias [oc], cross-correlation as in PyTorch.
 * Per image and group: im2col, then weights [oc/groups, c/groups * kh * kw] times the
 * unfolded windows, written straight into the NCHW output.
 */
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
  const og = oc / groups, pn = oh * ow, k = cg * kh * kw;
  const col = new Float64Array(pn * k), xd = x.data, wd8 = w.data;
  for (let b = 0; b < n; b++) {
    if (bias) {
      for (let o = 0; o < oc; o++) out.fill(bias.data[o], (b * oc + o) * pn, (b * oc + o + 1) * pn);
    }
    for (let g = 0; g < groups; g++) {
      im2col(xd, (b * c + g * cg) * h * wd, cg, h, wd, kh, kw, stride, padding, oh, ow, col);
      gemmNT(wd8, g * og * k, col, out, (b * oc + g * og) * pn, og, pn, k);
    }
  }
  return new PlainTensor([n, oc, oh, ow], out);
}

/** x [n, in] . w^T (w [out, in]) + bias [out]. */
export function linear(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null): PlainTensor {
  const [n, k] = x.shape, [m] = w.shape;
  const out = new Float64Array(n * m);
  if (bias) { for (let b = 0; b < n; b++) out.set(bias.data.subarray(0, m), b * m); }
  gemmNT(x.data, 0, w.data, out, 0, n, m, k);
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

/** The index of each row's largest value (the first where values tie): predicted classes from logits [n, d]. */
export function argmaxRows(v: ArrayLike<number>, d: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < v.length / d; r++) {
    let best = 0;
    for (let j = 1; j < d; j++) if (v[r * d + j] > v[r * d + best]) best = j;
    out.push(best);
  }
  return out;
}
