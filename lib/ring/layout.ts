/**
 * The arithmetic of `RingTensor`'s view and layout operations: each function
 * checks one operation's operand and arguments (dtype, axes, ranges) and
 * computes where the result's elements are: shape, strides, offset. Kept out
 * of tensor.ts so that file reads as what only it can do, sharing and copying
 * the native storage these numbers describe; everything here goes through
 * the tensor's public surface. shape.ts has the general helpers (sizes,
 * contiguous strides, axes) these build on.
 * Not re-exported from mod.ts.
 */
import { requireDtype } from "./operand.ts";
import { contiguousStrides, fmt, normAxis, type Shape, size } from "./shape.ts";
import type { RingTensor } from "./tensor.ts";

/** Where a tensor's elements are in its storage, in words. */
export interface View {
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

/** reshape's target shape, its -1 (at most one) resolved; it must hold as many elements as `from`. */
export function resolveReshape(from: Shape, to: Shape): number[] {
  const n = size(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new RangeError(`reshape: ${fmt(to)} has more than one -1`);
  const known = size(to.filter((d) => d !== -1));
  const shape = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || size(shape) !== n) {
    throw new RangeError(`reshape: cannot view ${fmt(from)} as ${fmt(to)}`);
  }
  return shape;
}

/** permute's view: axis i of the result is axis axes[i] of t (negative axes count from the end). */
export function permuted(t: RingTensor, axes: readonly number[]): View {
  requireDtype(t, "u64", "permute");
  const rank = t.rank;
  if (axes.length !== rank || new Set(axes.map((a) => normAxis(a, rank, "permute"))).size !== rank) {
    throw new RangeError(`permute: ${fmt(axes)} is not a permutation of ${rank} axes`);
  }
  const ax = axes.map((a) => normAxis(a, rank, "permute"));
  return { shape: ax.map((a) => t.shape[a]), strides: ax.map((a) => t.strides[a]), offset: t.offset };
}

/** transpose's permutation: the identity on `rank` axes with axes a and b swapped. */
export function swappedAxes(rank: number, a: number, b: number): number[] {
  const axes = [...Array(rank).keys()];
  const i = normAxis(a, rank, "transpose"), j = normAxis(b, rank, "transpose");
  [axes[i], axes[j]] = [axes[j], axes[i]];
  return axes;
}

/** slice's view: t's elements [start, end) along one axis. */
export function sliced(t: RingTensor, axis: number, start: number, end: number): View {
  requireDtype(t, "u64", "slice");
  const a = normAxis(axis, t.rank, "slice");
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > t.shape[a] || start > end) {
    throw new RangeError(`slice: [${start}, ${end}) is outside axis ${a} of length ${t.shape[a]}`);
  }
  const shape = [...t.shape];
  shape[a] = end - start;
  return { shape, strides: t.strides, offset: t.offset + start * t.strides[a] };
}

/** concat's operands checked (u64, alike off the axis), and the output's shape and axis. */
export function concatenated(tensors: readonly RingTensor[], axis: number): { shape: number[]; axis: number } {
  if (tensors.length === 0) throw new RangeError("concat: no tensors");
  const first = tensors[0];
  const a = normAxis(axis, first.rank, "concat");
  for (const t of tensors) {
    requireDtype(t, "u64", "concat");
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new RangeError(`concat: shape ${fmt(t.shape)} does not match ${fmt(first.shape)} off axis ${a}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = tensors.reduce((s, t) => s + t.shape[a], 0);
  return { shape, axis: a };
}

/**
 * pad's operand and amounts checked (pads[d] = [before, after], missing axes:
 * none), and the padded shape with the word where t's first element goes in
 * a dense tensor of that shape.
 */
export function padded(t: RingTensor, pads: readonly (readonly [number, number])[]): { shape: number[]; at: number } {
  requireDtype(t, "u64", "pad");
  if (pads.length > t.rank) throw new RangeError(`pad: ${pads.length} pairs for a tensor of rank ${t.rank}`);
  const p = t.shape.map((_, d) => pads[d] ?? [0, 0]);
  if (p.some(([b, e]) => !Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0)) {
    throw new RangeError("pad: amounts must be non-negative integers");
  }
  const shape = t.shape.map((d, i) => d + p[i][0] + p[i][1]), strides = contiguousStrides(shape);
  return { shape, at: p.reduce((s, [b], i) => s + b * strides[i], 0) };
}
