/** Shape arithmetic for ring tensors: sizes, strides, broadcasting plans. */

export type Shape = readonly number[];

export function checkShape(shape: Shape, what = "shape"): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`${what} ${fmt(shape)} has a dimension that is not a non-negative integer`);
    }
  }
  if (size(shape) > Number.MAX_SAFE_INTEGER) throw new RangeError(`${what} ${fmt(shape)} is too large`);
}

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RangeError(`${what}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/**
 * How `small` repeats across `big` for the native broadcast
 * out[i] = a[i] op b[(i / inner) % nb]: `small`, right-aligned, must be a
 * block of `big`'s dimensions with ones elsewhere (a scalar, a row, a column,
 * a per-channel vector). Returns null when it is not.
 */
export function broadcastPlan(big: Shape, small: Shape): { nb: number; inner: number } | null {
  if (small.length > big.length) {
    if (small.slice(0, small.length - big.length).some((d) => d !== 1)) return null;
    small = small.slice(small.length - big.length);
  }
  const padded = [...new Array(big.length - small.length).fill(1), ...small];
  const live = padded.flatMap((d, i) => (d !== 1 ? [i] : []));
  if (live.length === 0) return { nb: 1, inner: 1 };
  const first = live[0], last = live[live.length - 1];
  for (let d = first; d <= last; d++) if (padded[d] !== big[d]) return null;
  return { nb: size(big.slice(first, last + 1)), inner: size(big.slice(last + 1)) };
}
