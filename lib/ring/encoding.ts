/**
 * How host values become `RingTensor` words and back: ring elements given as
 * words or bigints (reduced mod 2^64), reals in fixed point (round(x * 2^f)
 * in two's complement, one native call each way), and a tensor's words as
 * raw little-endian bytes for the network. `RingTensor`'s static `from` and
 * `encode` and its `decode`, `toBytes` and `setBytes` delegate here; packed
 * bits have theirs in bits.ts. Separate from tensor.ts because these are the
 * checks and conversions at the host boundary, and need only the tensor's
 * public surface.
 *
 * tensor.ts and this module import each other; that is safe because neither
 * uses the other while it is being evaluated, only inside functions.
 */
import type { Backend } from "../native/backend.ts";
import { requireDtype, withDense } from "./operand.ts";
import { checkShape, fmt, type Shape, size } from "./shape.ts";
import { RingTensor } from "./tensor.ts";

/** Ring elements given as words (bigints are reduced mod 2^64), in `shape` (default: a vector). */
export function fromWords(backend: Backend, values: BigUint64Array | readonly bigint[], shape?: Shape): RingTensor {
  const data = values instanceof BigUint64Array ? values : BigUint64Array.from(values, (v) => BigInt.asUintN(64, v));
  const s = shape ?? [data.length];
  checkShape(s);
  if (size(s) !== data.length) throw new RangeError(`from: ${data.length} values do not fill shape ${fmt(s)}`);
  const t = RingTensor.empty(backend, s);
  backend.upload(t.handle, 0, data);
  return t;
}

/** Fixed-point encoding of reals: round(x * 2^fracBits) in two's complement, in `shape` (default: a vector). */
export function encode(
  backend: Backend,
  values: Float64Array | readonly number[],
  fracBits: number,
  shape?: Shape,
): RingTensor {
  const data = values instanceof Float64Array ? values : Float64Array.from(values);
  const s = shape ?? [data.length];
  checkShape(s);
  if (size(s) !== data.length) throw new RangeError(`encode: ${data.length} values do not fill shape ${fmt(s)}`);
  const t = RingTensor.empty(backend, s);
  try {
    backend.encodeFixed(t.handle, data, fracBits);
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/** Fixed-point decoding: t's elements as signed integers divided by 2^fracBits. */
export function decode(t: RingTensor, fracBits: number): Float64Array {
  requireDtype(t, "u64", "decode");
  return withDense(t, (d) => d.backend.decodeFixed(d.handle, d.size, fracBits));
}

/** Copies a dense tensor's bytes to the host (a GPU tensor's too). */
export function toBytes(t: RingTensor): Uint8Array {
  const w = t.toBigUint64Array();
  return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
}

/** Overwrites a dense tensor from bytes (little-endian words). */
export function setBytes(t: RingTensor, bytes: Uint8Array): void {
  if (bytes.length !== t.words * 8) {
    throw new RangeError(`setBytes: ${bytes.length} bytes for ${t.words} words`);
  }
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  t.backend.upload(t.handle, 0, new BigUint64Array(aligned.buffer, aligned.byteOffset, t.words));
}
