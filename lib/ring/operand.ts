/**
 * What a `RingTensor` operation asks of its operands, shared by tensor.ts and
 * the modules beside it (elementwise.ts, matmul.ts, windows.ts, bits.ts,
 * encoding.ts, layout.ts): the dtype it needs, the shape it expects, and a
 * dense version of each operand for the native call. Everything here goes
 * through the tensor's public surface (`dtype`, `shape`, `isDense`,
 * `contiguous`), so no tensor internals are exposed.
 * Not re-exported from mod.ts.
 */
import { fmt, sameShape, type Shape } from "./shape.ts";
import type { DType, RingTensor } from "./tensor.ts";

/** Throws a TypeError unless t has the dtype `what` needs. */
export function requireDtype(t: RingTensor, dtype: DType, what: string): void {
  if (t.dtype !== dtype) throw new TypeError(`${what}: needs a ${dtype} tensor, got ${t.dtype}`);
}

/** Throws a RangeError unless t has exactly this shape. */
export function expectShape(t: RingTensor, shape: Shape, what: string): void {
  if (!sameShape(t.shape, shape)) {
    throw new RangeError(`${what} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
  }
}

/** Runs fn on a dense version of t, disposing any temporary copy. */
export function withDense<T>(t: RingTensor, fn: (dense: RingTensor) => T): T {
  if (t.isDense) return fn(t);
  const dense = t.contiguous();
  try {
    return fn(dense);
  } finally {
    dense.dispose();
  }
}
