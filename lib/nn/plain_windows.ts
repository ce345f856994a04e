/**
 * Float64 plaintext windowed kernels with full ONNX-style geometry, forward and backward: convolution with
 * per-axis stride / padding / dilation and groups, and average / max pooling with per-axis stride and padding.
 * The twins of the graph's conv and pool ops (lib/nn/graph_ops.ts). Separate from plain_ops.ts, which keeps
 * the other graph ops (layout, broadcasting, elementwise), because these share their own geometry: the
 * validated sizes of a window over an image and the im2col / col2im unfolding.
 *
 * Output sizes follow ONNX / PyTorch in floor mode:
 * out = floor((in + 2p - d(k - 1) - 1) / s) + 1. Shapes that do not fit throw a RangeError.
 */
import { PlainTensor } from "./plain.ts";

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const isCount = (v: number, min: number): boolean => Number.isInteger(v) && v >= min;

/** One spatial output size, floor mode; throws when the (dilated) kernel does not fit the padded input. */
function outSize(input: number, k: number, s: number, p: number, d: number, what: string): number {
  const span = d * (k - 1) + 1;
  if (input + 2 * p < span) {
    throw new RangeError(`${what}: kernel extent ${span} exceeds padded input ${input} + 2*${p}`);
  }
  return Math.floor((input + 2 * p - span) / s) + 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution

export interface ConvGeometry {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

interface ConvDims {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  cg: number;
  kh: number;
  kw: number;
  oh: number;
  ow: number;
}

/** Validates x [n, c, h, w], w [oc, c/groups, kh, kw] and the geometry; returns every size. */
function convDims(xShape: readonly number[], wShape: readonly number[], g: ConvGeometry, what: string): ConvDims {
  if (xShape.length !== 4) throw new RangeError(`${what}: x must be [n, c, h, w], got [${xShape}]`);
  if (wShape.length !== 4) throw new RangeError(`${what}: w must be [oc, c/groups, kh, kw], got [${wShape}]`);
  const [n, c, h, w] = xShape, [oc, cg, kh, kw] = wShape;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw], groups } = g;
  if (![sh, sw, dh, dw, kh, kw, groups].every((v) => isCount(v, 1)) || !isCount(ph, 0) || !isCount(pw, 0)) {
    throw new RangeError(
      `${what}: bad geometry stride [${g.stride}] padding [${g.padding}] dilation [${g.dilation}] groups ${groups}`,
    );
  }
  if (c % groups !== 0 || oc % groups !== 0) {
    throw new RangeError(`${what}: groups ${groups} must divide channels ${c} and output channels ${oc}`);
  }
  if (cg !== c / groups) throw new RangeError(`${what}: w has ${cg} input channels, expected ${c}/${groups}`);
  const oh = outSize(h, kh, sh, ph, dh, what), ow = outSize(w, kw, sw, pw, dw, what);
  return { n, c, h, w, oc, cg, kh, kw, oh, ow };
}

/**
 * Unfolds the dilated windows of cg channels of one image (starting at src[off]) into col,
 * row-major [oh * ow][cg * kh * kw], zeros where a tap falls on padding.
 */
function im2colFull(src: Float64Array, off: number, d: ConvDims, g: ConvGeometry, col: Float64Array): void {
  const { cg, h, w, kh, kw, oh, ow } = d;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] } = g;
  let q = 0;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ci = 0; ci < cg; ci++) {
        const cb = off + ci * h * w;
        for (let i = 0; i < kh; i++) {
          const y = oy * sh - ph + i * dh;
          const inRow = y >= 0 && y < h;
          for (let j = 0; j < kw; j++) {
            const x = ox * sw - pw + j * dw;
            col[q++] = inRow && x >= 0 && x < w ? src[cb + y * w + x] : 0;
          }
        }
      }
    }
  }
}

/** im2colFull's adjoint: adds each window entry of col back onto dst, dropping padding taps. */
function col2imFull(col: Float64Array, d: ConvDims, g: ConvGeometry, dst: Float64Array, off: number): void {
  const { cg, h, w, kh, kw, oh, ow } = d;
  const { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] } = g;
  let q = 0;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ci = 0; ci < cg; ci++) {
        const cb = off + ci * h * w;
        for (let i = 0; i < kh; i++) {
          const y = oy * sh - ph + i * dh;
          if (y < 0 || y >= h) {
            q += kw;
            continue;
          }
          for (let j = 0; j < kw; j++, q++) {
            const x = ox * sw - pw + j * dw;
            if (x >= 0 && x < w) dst[cb + y * w + x] += col[q];
          }
        }
      }
    }
  }
}

/** x [n, c, h, w] * w [oc, c/groups, kh, kw] + bias [oc]: cross-correlation as ONNX Conv / PyTorch conv2d. */
export function conv2dFull(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null, g: ConvGeometry): PlainTensor {
  const d = convDims(x.shape, w.shape, g, "conv2dFull");
  const { n, c, h, oc, cg, oh, ow } = d;
  if (bias && (bias.shape.length !== 1 || bias.size !== oc)) {
    throw new RangeError(`conv2dFull: bias must be [${oc}], got [${bias.shape}]`);
  }
  const og = oc / g.groups, pn = oh * ow, k = cg * d.kh * d.kw;
  const out = new Float64Array(n * oc * pn), col = new Float64Array(pn * k), wt = w.data;
  for (let b = 0; b < n; b++) {
    for (let gr = 0; gr < g.groups; gr++) {
      im2colFull(x.data, (b * c + gr * cg) * h * d.w, d, g, col);
      for (let o = gr * og; o < (gr + 1) * og; o++) {
        const wb = o * k, ob = (b * oc + o) * pn, b0 = bias ? bias.data[o] : 0;
        for (let p = 0; p < pn; p++) {
          let s = 0;
          for (let l = 0, cb = p * k; l < k; l++) s += wt[wb + l] * col[cb + l];
          out[ob + p] = b0 + s;
        }
      }
    }
  }
  return new PlainTensor([n, oc, oh, ow], out);
}

function checkDy(dy: PlainTensor, want: readonly number[], what: string): void {
  if (dy.shape.length !== want.length || dy.shape.some((v, i) => v !== want[i])) {
    throw new RangeError(`${what}: dy must be [${want}], got [${dy.shape}]`);
  }
}

/** d/dx of sum(dy * conv2dFull(x, w)) for x of shape xShape: per image and group, dy^T . w, then col2im. */
export function conv2dFullBackwardInput(
  dy: PlainTensor,
  w: PlainTensor,
  xShape: readonly number[],
  g: ConvGeometry,
): PlainTensor {
  const d = convDims(xShape, w.shape, g, "conv2dFullBackwardInput");
  const { n, c, h, oc, cg, oh, ow } = d;
  checkDy(dy, [n, oc, oh, ow], "conv2dFullBackwardInput");
  const og = oc / g.groups, pn = oh * ow, k = cg * d.kh * d.kw;
  const dx = new Float64Array(numel(xShape)), col = new Float64Array(pn * k), wt = w.data, gd = dy.data;
  for (let b = 0; b < n; b++) {
    for (let gr = 0; gr < g.groups; gr++) {
      col.fill(0);
      for (let o = gr * og; o < (gr + 1) * og; o++) {
        const wb = o * k, gb = (b * oc + o) * pn;
        for (let p = 0; p < pn; p++) {
          const v = gd[gb + p];
          if (v === 0) continue;
          for (let l = 0, cb = p * k; l < k; l++) col[cb + l] += v * wt[wb + l];
        }
      }
      col2imFull(col, d, g, dx, (b * c + gr * cg) * h * d.w);
    }
  }
  return new PlainTensor([...xShape], dx);
}

/** d/dw of sum(dy * conv2dFull(x, w)) for w of shape wShape: dy . im2col(x), summed over the batch. */
export function conv2dFullBackwardWeight(
  x: PlainTensor,
  dy: PlainTensor,
  wShape: readonly number[],
  g: ConvGeometry,
): PlainTensor {
  const d = convDims(x.shape, wShape, g, "conv2dFullBackwardWeight");
  const { n, c, h, oc, cg, oh, ow } = d;
  checkDy(dy, [n, oc, oh, ow], "conv2dFullBackwardWeight");
  const og = oc / g.groups, pn = oh * ow, k = cg * d.kh * d.kw;
  const dw = new Float64Array(numel(wShape)), col = new Float64Array(pn * k), gd = dy.data;
  for (let b = 0; b < n; b++) {
    for (let gr = 0; gr < g.groups; gr++) {
      im2colFull(x.data, (b * c + gr * cg) * h * d.w, d, g, col);
      for (let o = gr * og; o < (gr + 1) * og; o++) {
        const wb = o * k, gb = (b * oc + o) * pn;
        for (let p = 0; p < pn; p++) {
          const v = gd[gb + p];
          if (v === 0) continue;
          for (let l = 0, cb = p * k; l < k; l++) dw[wb + l] += v * col[cb + l];
        }
      }
    }
  }
  return new PlainTensor([...wShape], dw);
}

// ---------------------------------------------------------------------------------------------------------------
// Pooling

export interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** Validates x [n, c, h, w] and the geometry (padding below the kernel, so no window is all padding). */
function poolDims(xShape: readonly number[], g: PoolGeometry, what: string) {
  if (xShape.length !== 4) throw new RangeError(`${what}: x must be [n, c, h, w], got [${xShape}]`);
  const [n, c, h, w] = xShape, { kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw] } = g;
  if (![kh, kw, sh, sw].every((v) => isCount(v, 1)) || !isCount(ph, 0) || !isCount(pw, 0) || ph >= kh || pw >= kw) {
    throw new RangeError(`${what}: bad geometry kernel [${g.kernel}] stride [${g.stride}] padding [${g.padding}]`);
  }
  return {
    n,
    c,
    h,
    w,
    kh,
    kw,
    sh,
    sw,
    ph,
    pw,
    oh: outSize(h, kh, sh, ph, 1, what),
    ow: outSize(w, kw, sw, pw, 1, what),
  };
}

/**
 * Average or max pooling over kh x kw windows. avg: countIncludePad true divides by kh*kw, false by the
 * number of window cells inside the input; max ignores padding. argmax (max only): the flat input index
 * of each output's maximum, the first one where values tie. Padding must be below the kernel on each axis
 * (as ONNX asks), so every window holds at least one input cell.
 */
export function pool2dFull(
  x: PlainTensor,
  g: PoolGeometry,
  op: "avg" | "max",
  countIncludePad = true,
): { y: PlainTensor; argmax: Int32Array | null } {
  const { n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow } = poolDims(x.shape, g, "pool2dFull");
  const out = new Float64Array(n * c * oh * ow), argmax = op === "max" ? new Int32Array(out.length) : null;
  const xd = x.data;
  let o = 0;
  for (let pl = 0; pl < n * c; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph, i0 = Math.max(0, y0), i1 = Math.min(h, y0 + kh);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = ox * sw - pw, j0 = Math.max(0, x0), j1 = Math.min(w, x0 + kw);
        if (argmax) {
          let best = -Infinity, at = -1;
          for (let y = i0; y < i1; y++) {
            for (let xx = j0; xx < j1; xx++) {
              const idx = (pl * h + y) * w + xx;
              if (at < 0 || xd[idx] > best) [best, at] = [xd[idx], idx];
            }
          }
          out[o] = best;
          argmax[o] = at;
        } else {
          let s = 0;
          for (let y = i0; y < i1; y++) for (let xx = j0; xx < j1; xx++) s += xd[(pl * h + y) * w + xx];
          out[o] = s / (countIncludePad ? kh * kw : (i1 - i0) * (j1 - j0));
        }
      }
    }
  }
  return { y: new PlainTensor([n, c, oh, ow], out), argmax };
}

/** Average pooling's adjoint: each in-input cell of a window gets dy divided as the forward pass divided. */
export function avgPool2dFullBackward(
  dy: PlainTensor,
  xShape: readonly number[],
  g: PoolGeometry,
  countIncludePad: boolean,
): PlainTensor {
  const { n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow } = poolDims(xShape, g, "avgPool2dFullBackward");
  checkDy(dy, [n, c, oh, ow], "avgPool2dFullBackward");
  const dx = new Float64Array(numel(xShape)), gd = dy.data;
  let o = 0;
  for (let pl = 0; pl < n * c; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph, i0 = Math.max(0, y0), i1 = Math.min(h, y0 + kh);
      for (let ox = 0; ox < ow; ox++, o++) {
        const x0 = ox * sw - pw, j0 = Math.max(0, x0), j1 = Math.min(w, x0 + kw);
        const v = gd[o] / (countIncludePad ? kh * kw : (i1 - i0) * (j1 - j0));
        for (let y = i0; y < i1; y++) for (let xx = j0; xx < j1; xx++) dx[(pl * h + y) * w + xx] += v;
      }
    }
  }
  return new PlainTensor([...xShape], dx);
}

/** Max pooling's adjoint: each output's gradient goes to the input cell that was its maximum. */
export function maxPool2dFullBackward(dy: PlainTensor, argmax: Int32Array, xShape: readonly number[]): PlainTensor {
  if (argmax.length !== dy.size) {
    throw new RangeError(`maxPool2dFullBackward: ${argmax.length} argmax entries for ${dy.size} gradients`);
  }
  const dx = new Float64Array(numel(xShape));
  for (let o = 0; o < dy.size; o++) {
    const at = argmax[o];
    if (at < 0 || at >= dx.length) throw new RangeError(`maxPool2dFullBackward: argmax ${at} outside [${xShape}]`);
    dx[at] += dy.data[o];
  }
  return new PlainTensor([...xShape], dx);
}
