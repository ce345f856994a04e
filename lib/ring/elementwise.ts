/**
 * Elementwise ring arithmetic on `RingTensor`s: a binary operation of two
 * tensors or of a tensor and a public bigint, with the smaller tensor
 * broadcast (as a scalar, row, column or per-channel block, on either side);
 * a unary operation (negation, not, shifts, bit extraction); and sum over one
 * axis, the reduction that undoes a broadcast. Each is one native call on
 * dense operands. `RingTensor`'s `binary`, `unary` and `sum` delegate here
 * (add, sub, ..., neg, shl, ... go through those two).
 *
 * tensor.ts and this module import each other; that is safe because neither
 * uses the other while it is being evaluated, only inside functions.
 */
import type { BinaryOp, UnaryOp } from "../native/symbols.ts";
import { requireDtype, withDense } from "./operand.ts";
import { broadcastPlan, fmt, normAxis, sameShape, size } from "./shape.ts";
import { RingTensor } from "./tensor.ts";

/** The operation that gives the same result with the operands swapped (sub becomes rsub). */
const COMMUTES: Partial<Record<BinaryOp, BinaryOp>> = {
  add: "add",
  mul: "mul",
  xor: "xor",
  and: "and",
  or: "or",
  sub: "rsub",
  rsub: "sub",
};

/**
 * `a op other`, where other is a tensor of the same shape, one that
 * broadcasts as a scalar, row, column or per-channel block, or a public
 * bigint. Either side may be the smaller one.
 */
export function binary(a: RingTensor, op: BinaryOp, other: RingTensor | bigint): RingTensor {
  if (typeof other === "bigint") {
    return withDense(a, (x) => {
      const out = RingTensor.empty(x.backend, x.shape, x.dtype);
      x.backend.scalar(op, out.handle, x.handle, other, x.words);
      return out;
    });
  }
  if (other.dtype !== a.dtype) throw new TypeError(`${op}: dtypes ${a.dtype} and ${other.dtype} differ`);
  if (a.dtype === "bit") {
    if (!sameShape(a.shape, other.shape)) {
      throw new RangeError(
        `${op}: packed bit tensors must have the same shape, got ${fmt(a.shape)} and ${fmt(other.shape)}`,
      );
    }
    if (op === "add" || op === "sub" || op === "rsub" || op === "mul") {
      throw new TypeError(`${op} is not defined on packed bits; use xor and and`);
    }
  }
  const plan = sameShape(a.shape, other.shape)
    ? { nb: Math.max(1, a.words), inner: 1 }
    : broadcastPlan(a.shape, other.shape);
  if (plan) return broadcast(a, op, other, plan);
  // the smaller operand on the left: swap, with the mirrored operation
  const swapped = broadcastPlan(other.shape, a.shape);
  if (!swapped || !COMMUTES[op]) {
    throw new RangeError(`${op}: shapes ${fmt(a.shape)} and ${fmt(other.shape)} do not broadcast`);
  }
  return broadcast(other, COMMUTES[op]!, a, swapped);
}

/** big op small, with small repeating as the native broadcast describes. */
function broadcast(
  big: RingTensor,
  op: BinaryOp,
  small: RingTensor,
  { nb, inner }: { nb: number; inner: number },
): RingTensor {
  return withDense(big, (a) =>
    withDense(small, (b) => {
      const out = RingTensor.empty(a.backend, a.shape, a.dtype);
      a.backend.binary(op, out.handle, a.handle, b.handle, a.words, nb, inner);
      return out;
    }));
}

/** op applied to every element of t (k: the shift or bit index where op takes one). */
export function unary(t: RingTensor, op: UnaryOp, k: number): RingTensor {
  if (t.dtype === "bit" && op !== "not") throw new TypeError(`${op} is not defined on packed bits`);
  return withDense(t, (a) => {
    const out = RingTensor.empty(a.backend, a.shape, a.dtype);
    a.backend.unary(op, out.handle, a.handle, a.words, k);
    return out;
  });
}

/** Sum over one axis (the axis is removed unless keepDims). */
export function sum(t: RingTensor, axis: number, keepDims: boolean): RingTensor {
  requireDtype(t, "u64", "sum");
  const a = normAxis(axis, t.rank, "sum");
  const outer = size(t.shape.slice(0, a)), inner = size(t.shape.slice(a + 1));
  const shape = keepDims ? t.shape.map((d, i) => (i === a ? 1 : d)) : t.shape.filter((_, i) => i !== a);
  return withDense(t, (d) => {
    const out = RingTensor.empty(d.backend, shape);
    d.backend.sumAxis(out.handle, d.handle, outer, d.shape[a], inner);
    return out;
  });
}
