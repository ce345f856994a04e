/**
 * Packed-bit operations on `RingTensor`s ("bit" dtype: 64 bits to a word):
 * creating one from words, reading one back as 0/1 values, packing bit k of
 * ring elements and unpacking, and gathering/scattering strided bits of rows
 * (the bit-sliced layouts the binary-circuit protocols use). `RingTensor`'s
 * methods of the same names delegate here.
 *
 * tensor.ts and this module import each other; that is safe because neither
 * uses the other while it is being evaluated, only inside functions.
 */
import type { Backend } from "../native/backend.ts";
import { expectShape, requireDtype, withDense } from "./operand.ts";
import { checkShape, fmt, type Shape, size } from "./shape.ts";
import { RingTensor, wordsFor } from "./tensor.ts";

/** Packed bits from a BigUint64Array of words holding `shape`'s bits in order. */
export function fromBitWords(backend: Backend, words: BigUint64Array, shape: Shape): RingTensor {
  checkShape(shape);
  if (words.length !== wordsFor("bit", size(shape))) {
    throw new RangeError(`fromBitWords: ${size(shape)} bits need ${wordsFor("bit", size(shape))} words`);
  }
  const t = RingTensor.empty(backend, shape, "bit");
  backend.upload(t.handle, 0, words);
  return t;
}

/** Packed bits as 0/1 numbers (for tests and small results). */
export function toBits(t: RingTensor): Uint8Array {
  requireDtype(t, "bit", "toBits");
  const words = t.backend.download(t.handle, 0, t.words);
  const out = new Uint8Array(t.size);
  for (let i = 0; i < out.length; i++) out[i] = Number((words[i >> 6] >> BigInt(i & 63)) & 1n);
  return out;
}

/** Bit k of every element of t, packed 64 to a word: a "bit" tensor of the same shape. */
export function packBit(t: RingTensor, k: number): RingTensor {
  requireDtype(t, "u64", "packBit");
  return withDense(t, (d) => {
    const out = RingTensor.empty(d.backend, d.shape, "bit");
    d.backend.bitsGather(out.handle, d.handle, d.size, 64, k, 1, 1);
    return out;
  });
}

/** Packed bits back to one 0/1 word per element. */
export function unpackBits(t: RingTensor): RingTensor {
  requireDtype(t, "bit", "unpackBits");
  const out = RingTensor.zeros(t.backend, t.shape);
  t.backend.bitsScatter(out.handle, t.handle, t.size, 64, 0, 1, 1);
  return out;
}

/**
 * Reads t's last axis as rows of `width` bits (u64: the 64 bits of each word;
 * bit: the packed stream) and gathers bits start, start + step, ... (`count`
 * of them) of every row into a packed "bit" tensor [rows, count].
 */
export function gatherBits(t: RingTensor, start: number, step: number, count: number): RingTensor {
  const { rows, width } = bitRows(t, "gatherBits");
  return withDense(t, (d) => {
    const out = RingTensor.empty(d.backend, [rows, count], "bit");
    d.backend.bitsGather(out.handle, d.handle, rows, width, start, step, count);
    return out;
  });
}

/** The inverse of gatherBits: writes `bits` [rows, count] into a copy of t's rows. */
export function scatterBits(t: RingTensor, bits: RingTensor, start: number, step: number, count: number): RingTensor {
  const { rows, width } = bitRows(t, "scatterBits");
  requireDtype(bits, "bit", "scatterBits");
  expectShape(bits, [rows, count], "scatterBits: bits");
  const out = t.clone();
  out.backend.bitsScatter(out.handle, bits.handle, rows, width, start, step, count);
  return out;
}

/** t's rows of bits: each u64 word is a row of 64; a packed [rows, width] tensor's rows are its own. */
function bitRows(t: RingTensor, what: string): { rows: number; width: number } {
  if (t.dtype === "u64") return { rows: t.size, width: 64 };
  if (t.rank !== 2) {
    throw new RangeError(`${what}: a packed bit tensor must be [rows, width], got ${fmt(t.shape)}`);
  }
  return { rows: t.shape[0], width: t.shape[1] };
}
