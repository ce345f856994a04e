/**
 * Matrix products of `RingTensor`s, exact mod 2^64: the shape rules (2-D,
 * batched 3-D, one side shared by every batch entry) and how each operand
 * reaches the native kernel (dense, or a transposed view passed as a
 * transpose instead of copied). `RingTensor.matmul` delegates here. Separate
 * from tensor.ts because it is an operation on tensors, like the elementwise
 * and windowed ones beside it, and needs only the tensor's public surface.
 *
 * tensor.ts and this module import each other; that is safe because neither
 * uses the other while it is being evaluated, only inside functions.
 */
import type { MatmulOptions } from "../native/backend.ts";
import type { Method } from "../native/symbols.ts";
import { requireDtype, withDense } from "./operand.ts";
import { fmt } from "./shape.ts";
import { RingTensor } from "./tensor.ts";

/**
 * Matrix product over the last two axes: [m, k] . [k, n], batched
 * [b, m, k] . [b, k, n], or one side 2-D shared by every batch entry.
 */
export function matmul(left: RingTensor, other: RingTensor, method?: Method): RingTensor {
  requireDtype(left, "u64", "matmul");
  requireDtype(other, "u64", "matmul");
  if (left.rank < 2 || left.rank > 3 || other.rank < 2 || other.rank > 3) {
    throw new RangeError(`matmul: operands must be 2-D or 3-D, got ${fmt(left.shape)} and ${fmt(other.shape)}`);
  }
  const [m, k] = left.shape.slice(-2), [k2, n] = other.shape.slice(-2);
  const ba = left.rank === 3 ? left.shape[0] : 0, bb = other.rank === 3 ? other.shape[0] : 0;
  if (k !== k2 || (ba && bb && ba !== bb)) {
    throw new RangeError(`matmul: shapes ${fmt(left.shape)} and ${fmt(other.shape)} do not multiply`);
  }
  const batch = Math.max(ba, bb, 1);
  const shape = ba || bb ? [batch, m, n] : [m, n];
  return asMatrix(left, (a, transA) =>
    asMatrix(other, (b, transB) => {
      const out = RingTensor.empty(left.backend, shape);
      out.backend.matmul(
        out.handle,
        a.handle,
        b.handle,
        batch,
        m,
        n,
        k,
        {
          transA,
          transB,
          bcastA: !ba && batch > 1,
          bcastB: !bb && batch > 1,
          method,
        } satisfies MatmulOptions,
      );
      return out;
    }));
}

/**
 * Runs fn on t as a dense matrix (or batch of them), telling it whether it is
 * stored transposed: a transposed view of dense words (the last two axes
 * swapped, nothing else moved) is passed as those words, read transposed.
 */
function asMatrix<T>(t: RingTensor, fn: (dense: RingTensor, transposed: boolean) => T): T {
  const r = t.rank, s = t.strides;
  const [rows, cols] = t.shape.slice(-2);
  const transposedDense = t.offset === 0 && s[r - 2] === 1 && s[r - 1] === rows &&
    (r === 2 || s[0] === rows * cols || t.shape[0] === 1);
  if (transposedDense && !t.isContiguous()) {
    // Swapping the last two axes back gives the words as stored: [..., cols, rows], dense.
    using stored = t.transpose();
    return fn(stored, true);
  }
  return withDense(t, (d) => fn(d, false));
}
