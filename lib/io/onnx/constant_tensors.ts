/**
 * Constant folding over flat row-major tensors of any element type: the layout ops (Gather, Concat, Transpose,
 * Slice) and numpy broadcasting, applied to constants while importing. Integer tensors here may hold the
 * symbolic batch among their entries (shapes taken with Shape), which is why the element type is generic.
 */
import { size } from "./values.ts";

function strides(dims: number[]): number[] {
  const s = new Array<number>(dims.length);
  for (let i = dims.length - 1, acc = 1; i >= 0; i--) (s[i] = acc), (acc *= dims[i]);
  return s;
}

interface Elems<T> {
  dims: number[];
  data: ArrayLike<T>;
}

export function gatherElems<T>(
  x: Elems<T>,
  axis: number,
  indices: number[],
  indexDims: number[],
): { dims: number[]; data: T[] } {
  const outer = size(x.dims.slice(0, axis)), n = x.dims[axis], inner = size(x.dims.slice(axis + 1));
  const data: T[] = [];
  for (let o = 0; o < outer; o++) {
    for (const raw of indices) {
      const i = raw < 0 ? raw + n : raw;
      for (let k = 0; k < inner; k++) data.push(x.data[(o * n + i) * inner + k]);
    }
  }
  return { dims: [...x.dims.slice(0, axis), ...indexDims, ...x.dims.slice(axis + 1)], data };
}

export function concatElems<T>(parts: Elems<T>[], axis: number): { dims: number[]; data: T[] } {
  const outer = size(parts[0].dims.slice(0, axis));
  const data: T[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = size(p.dims.slice(axis));
      for (let k = 0; k < chunk; k++) data.push(p.data[o * chunk + k]);
    }
  }
  const dims = [...parts[0].dims];
  dims[axis] = parts.reduce((a, p) => a + p.dims[axis], 0);
  return { dims, data };
}

export function transposeElems<T>(x: Elems<T>, perm: number[]): { dims: number[]; data: T[] } {
  const dims = perm.map((p) => x.dims[p]);
  const inStrides = strides(x.dims);
  const data: T[] = new Array(size(dims));
  const index = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < data.length; flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) src += index[a] * inStrides[perm[a]];
    data[flat] = x.data[src];
    for (let a = dims.length - 1; a >= 0 && ++index[a] === dims[a]; a--) index[a] = 0;
  }
  return { dims, data };
}

/** Slicing with ONNX's clamping rules, over the given axes (starts/ends/steps already per axis). */
export function sliceElems<T>(
  x: Elems<T>,
  starts: number[],
  ends: number[],
  axes: number[],
  steps: number[],
): { dims: number[]; data: T[] } {
  const ranges = x.dims.map((n) => ({ start: 0, step: 1, count: n }));
  axes.forEach((axis, j) => {
    const n = x.dims[axis], step = steps[j];
    const clampIndex = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
    const start = step > 0 ? clampIndex(starts[j], 0, n) : clampIndex(starts[j], -1, n - 1);
    const end = step > 0 ? clampIndex(ends[j], 0, n) : clampIndex(ends[j], -1, n - 1);
    const count = Math.max(0, Math.ceil((end - start) / step));
    ranges[axis] = { start, step, count };
  });
  const dims = ranges.map((r) => r.count);
  const inStrides = strides(x.dims);
  const data: T[] = [];
  const index = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < size(dims); flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) src += (ranges[a].start + index[a] * ranges[a].step) * inStrides[a];
    data.push(x.data[src]);
    for (let a = dims.length - 1; a >= 0 && ++index[a] === dims[a]; a--) index[a] = 0;
  }
  return { dims, data };
}

/** Numpy broadcasting of two shapes, or null when they do not broadcast. */
export function broadcastDims(a: number[], b: number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1, y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

/** Element index in a tensor of `dims` broadcast to `outDims`, for each output element. */
export function broadcastIndex(dims: number[], outDims: number[]): Int32Array {
  const out = new Int32Array(size(outDims));
  const inStrides = strides(dims);
  const offset = outDims.length - dims.length;
  const index = new Array<number>(outDims.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) if (dims[a] !== 1) src += index[a + offset] * inStrides[a];
    out[flat] = src;
    for (let a = outDims.length - 1; a >= 0 && ++index[a] === outDims[a]; a--) index[a] = 0;
  }
  return out;
}
