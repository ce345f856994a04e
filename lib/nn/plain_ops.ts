/**
 * Float64 plaintext kernels for the graph ops other than convolution and pooling, forward and backward:
 * transpose, pad, concat / split, numpy broadcasting, clip, softmax over any axis and a linear map over the
 * last axis of any rank. The twins of the graph layers; plain_windows.ts keeps the full-geometry convolution
 * and pooling, plain.ts the square-geometry kernels of the fixed architectures.
 * Shapes that do not fit throw a RangeError.
 */
import { PlainTensor } from "./plain.ts";

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const isCount = (v: number, min: number): boolean => Number.isInteger(v) && v >= min;

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function normAxis(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(`${what}: axis ${axis} out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------------------------------------------------------
// Layout: transpose, pad, concat

/** The permutation q with q[perm[i]] = i: transpose(transpose(x, perm), inversePerm(perm)) = x. */
export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length).fill(-1);
  perm.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= perm.length || inv[p] >= 0) {
      throw new RangeError(`inversePerm: [${perm}] is not a permutation of 0..${perm.length - 1}`);
    }
    inv[p] = i;
  });
  return inv;
}

/** Axis i of the output is axis perm[i] of x (ONNX Transpose). */
export function transpose(x: PlainTensor, perm: readonly number[]): PlainTensor {
  if (perm.length !== x.shape.length) throw new RangeError(`transpose: perm [${perm}] for rank ${x.shape.length}`);
  inversePerm(perm); // validates
  const r = perm.length, shape = perm.map((p) => x.shape[p]), xs = stridesOf(x.shape);
  const src = perm.map((p) => xs[p]); // input stride of each output axis
  const out = new Float64Array(x.size), idx = new Array<number>(r).fill(0);
  let at = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = x.data[at];
    for (let a = r - 1; a >= 0; a--) { // odometer over the output index, tracking the input offset
      if (++idx[a] < shape[a]) {
        at += src[a];
        break;
      }
      idx[a] = 0;
      at -= src[a] * (shape[a] - 1);
    }
  }
  return new PlainTensor(shape, out);
}

function checkPads(shape: readonly number[], pads: readonly (readonly [number, number])[], what: string): void {
  if (pads.length !== shape.length) throw new RangeError(`${what}: ${pads.length} pad pairs for rank ${shape.length}`);
  if (!pads.every(([a, b]) => isCount(a, 0) && isCount(b, 0))) {
    throw new RangeError(`${what}: pads must be non-negative integers`);
  }
}

/**
 * Copies the box of `inner` shape between `small` and `big` (row-major), the box starting at `start` in big:
 * toBig true writes small into big, false reads it out.
 */
function copyBox(
  small: Float64Array,
  inner: readonly number[],
  big: Float64Array,
  bigShape: readonly number[],
  start: readonly number[],
  toBig: boolean,
): void {
  const r = inner.length;
  if (small.length === 0) return;
  if (r === 0) {
    if (toBig) big[0] = small[0];
    else small[0] = big[0];
    return;
  }
  const bs = stridesOf(bigShape), row = inner[r - 1], rows = small.length / row;
  const idx = new Array<number>(r - 1).fill(0);
  for (let q = 0; q < rows; q++) {
    let off = start[r - 1];
    for (let a = 0; a < r - 1; a++) off += (idx[a] + start[a]) * bs[a];
    if (toBig) big.set(small.subarray(q * row, (q + 1) * row), off);
    else small.set(big.subarray(off, off + row), q * row);
    for (let a = r - 2; a >= 0; a--) {
      if (++idx[a] < inner[a]) break;
      idx[a] = 0;
    }
  }
}

/** Zero padding, pads[i] = [before, after] on axis i. */
export function pad(x: PlainTensor, pads: readonly (readonly [number, number])[]): PlainTensor {
  checkPads(x.shape, pads, "pad");
  const shape = x.shape.map((v, i) => v + pads[i][0] + pads[i][1]);
  const out = new Float64Array(numel(shape));
  copyBox(x.data, x.shape, out, shape, pads.map((p) => p[0]), true);
  return new PlainTensor(shape, out);
}

/** pad's adjoint: the slice of dy that pad's input occupied. */
export function unpad(dy: PlainTensor, pads: readonly (readonly [number, number])[]): PlainTensor {
  checkPads(dy.shape, pads, "unpad");
  const shape = dy.shape.map((v, i) => v - pads[i][0] - pads[i][1]);
  if (shape.some((v) => v < 0)) throw new RangeError(`unpad: pads larger than shape [${dy.shape}]`);
  const out = new Float64Array(numel(shape));
  copyBox(out, shape, dy.data, dy.shape, pads.map((p) => p[0]), false);
  return new PlainTensor(shape, out);
}

/** Joins tensors along `axis`; every other axis must agree. */
export function concat(xs: readonly PlainTensor[], axis: number): PlainTensor {
  if (xs.length === 0) throw new RangeError("concat: no inputs");
  const r = xs[0].shape.length, ax = normAxis(axis, r, "concat");
  for (const t of xs) {
    if (t.shape.length !== r || t.shape.some((v, i) => i !== ax && v !== xs[0].shape[i])) {
      throw new RangeError(`concat: [${t.shape}] does not match [${xs[0].shape}] off axis ${ax}`);
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((s, t) => s + t.shape[ax], 0);
  const outer = numel(shape.slice(0, ax)), inner = numel(shape.slice(ax + 1)), row = shape[ax] * inner;
  const out = new Float64Array(numel(shape));
  let at = 0;
  for (const t of xs) {
    const len = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * len, (o + 1) * len), o * row + at);
    at += len;
  }
  return new PlainTensor(shape, out);
}

/** concat's adjoint: cuts dy along `axis` into pieces of the given sizes. */
export function split(dy: PlainTensor, sizes: readonly number[], axis: number): PlainTensor[] {
  const r = dy.shape.length, ax = normAxis(axis, r, "split");
  if (!sizes.every((s) => isCount(s, 0)) || sizes.reduce((a, b) => a + b, 0) !== dy.shape[ax]) {
    throw new RangeError(`split: sizes [${sizes}] do not sum to ${dy.shape[ax]} on axis ${ax}`);
  }
  const outer = numel(dy.shape.slice(0, ax)), inner = numel(dy.shape.slice(ax + 1)), row = dy.shape[ax] * inner;
  let at = 0;
  return sizes.map((s) => {
    const shape = [...dy.shape];
    shape[ax] = s;
    const len = s * inner, out = new Float64Array(outer * len);
    for (let o = 0; o < outer; o++) out.set(dy.data.subarray(o * row + at, o * row + at + len), o * len);
    at += len;
    return new PlainTensor(shape, out);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Broadcasting

/**
 * For each flat index of `big`, the flat index of `small` it reads under right-aligned (numpy) broadcasting;
 * small's shape must broadcast to big's exactly (each axis equal or 1, rank not above big's).
 */
function broadcastIndex(big: readonly number[], small: readonly number[], what: string): Int32Array {
  const r = big.length, lead = r - small.length;
  const bad = lead < 0 || small.some((v, i) => v !== 1 && v !== big[lead + i]);
  if (bad) throw new RangeError(`${what}: [${small}] does not broadcast to [${big}]`);
  const ss = stridesOf(small), step = big.map((_, a) => (a < lead || small[a - lead] === 1 ? 0 : ss[a - lead]));
  const map = new Int32Array(numel(big)), idx = new Array<number>(r).fill(0);
  let at = 0;
  for (let i = 0; i < map.length; i++) {
    map[i] = at;
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a] < big[a]) {
        at += step[a];
        break;
      }
      idx[a] = 0;
      at -= step[a] * (big[a] - 1);
    }
  }
  return map;
}

/** a + b, b broadcast (numpy rules) to a's shape. */
export function broadcastAdd(a: PlainTensor, b: PlainTensor): PlainTensor {
  const m = broadcastIndex(a.shape, b.shape, "broadcastAdd");
  return a.map((v, i) => v + b.data[m[i]]);
}

/** a * b, b broadcast (numpy rules) to a's shape. */
export function broadcastMul(a: PlainTensor, b: PlainTensor): PlainTensor {
  const m = broadcastIndex(a.shape, b.shape, "broadcastMul");
  return a.map((v, i) => v * b.data[m[i]]);
}

/** Sums t over the axes that broadcasting `shape` to t's shape expanded: the gradient of a broadcast operand. */
export function reduceToShape(t: PlainTensor, shape: readonly number[]): PlainTensor {
  const m = broadcastIndex(t.shape, shape, "reduceToShape");
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < t.size; i++) out[m[i]] += t.data[i];
  return new PlainTensor([...shape], out);
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise and row-wise

export function clip(x: PlainTensor, min: number, max: number): PlainTensor {
  if (!(min <= max)) throw new RangeError(`clip: min ${min} above max ${max}`);
  return x.map((v) => (v < min ? min : v > max ? max : v));
}

/** clip's adjoint: passes dy where min < x < max, zero elsewhere. */
export function clipBackward(dy: PlainTensor, x: PlainTensor, min: number, max: number): PlainTensor {
  if (dy.size !== x.size) throw new RangeError(`clipBackward: dy [${dy.shape}] vs x [${x.shape}]`);
  return dy.map((g, i) => (x.data[i] > min && x.data[i] < max ? g : 0));
}

/** Softmax along `axis` (negative counts from the end), shifted by each line's maximum. */
export function softmaxAxis(x: PlainTensor, axis: number): PlainTensor {
  const ax = normAxis(axis, x.shape.length, "softmaxAxis");
  const d = x.shape[ax], inner = numel(x.shape.slice(ax + 1)), outer = numel(x.shape.slice(0, ax));
  const out = new Float64Array(x.size), xd = x.data;
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const base = o * d * inner + t;
      let m = -Infinity, s = 0;
      for (let j = 0; j < d; j++) m = Math.max(m, xd[base + j * inner]);
      for (let j = 0; j < d; j++) s += out[base + j * inner] = Math.exp(xd[base + j * inner] - m);
      for (let j = 0; j < d; j++) out[base + j * inner] /= s;
    }
  }
  return new PlainTensor(x.shape, out);
}

/** x [..., in] . w^T + bias over the last axis, any rank (w [out, in], bias [out]). */
export function linearLastAxis(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null): PlainTensor {
  const r = x.shape.length;
  if (r === 0 || w.shape.length !== 2 || w.shape[1] !== x.shape[r - 1]) {
    throw new RangeError(`linearLastAxis: x [${x.shape}] does not fit w [${w.shape}]`);
  }
  const [m, k] = w.shape;
  if (bias && (bias.shape.length !== 1 || bias.size !== m)) {
    throw new RangeError(`linearLastAxis: bias must be [${m}], got [${bias.shape}]`);
  }
  const rows = x.size / k, out = new Float64Array(rows * m), xd = x.data, wd = w.data;
  for (let i = 0; i < rows; i++) {
    for (let o = 0; o < m; o++) {
      let s = 0;
      for (let l = 0; l < k; l++) s += xd[i * k + l] * wd[o * k + l];
      out[i * m + o] = (bias ? bias.data[o] : 0) + s;
    }
  }
  return new PlainTensor([...x.shape.slice(0, r - 1), m], out);
}
