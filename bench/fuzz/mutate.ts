/**
 * Byte-level mutations of a valid input: bit flips, interesting bytes and
 * words, insertions, deletions, truncations of every length class, chunk
 * duplication and splices with another valid input. Several are stacked per
 * case, as AFL does, so that a mutation can get past one check and hit the
 * next. Format-aware callers name the offsets of length and tag fields, where
 * the interesting words (caps, caps + 1, 2^32 - 1, 2^63...) go half the time.
 */
import type { Rng } from "./rng.ts";

export const INTERESTING_BYTES = [0, 0xff, 0x7f, 0x80, 1, 0xfe, 0x20, 0x22, 0x5c, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d];
const WORDS32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
const WORDS64 = [0n, 1n, 0xffff_ffffn, 1n << 32n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];

/** A field of the input where word-sized values are worth trying (a length, a magic, a round number). */
export interface Field {
  offset: number;
  size: 4 | 8;
}

export interface MutateOptions {
  /** Other valid inputs to splice with. */
  others?: readonly Uint8Array[];
  fields?: readonly Field[];
  /** Values worth writing into fields besides the usual edges: the caps of this format, and their neighbours. */
  words?: readonly bigint[];
  /** The largest output: insertions stop growing the input past it. */
  maxLength?: number;
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
};

/** A length below n, drawn first by its class (0, 1-3, 4-7, 8-15, ...) so that short and long cuts are both common. */
export function lengthByClass(rng: Rng, n: number): number {
  if (n <= 1) return 0;
  const classes = Math.ceil(Math.log2(n));
  const c = rng.int(classes + 1);
  if (c === 0) return 0;
  const lo = 1 << (c - 1), hi = Math.min(n - 1, (1 << c) - 1);
  return lo > hi ? n - 1 : rng.range(lo, hi);
}

function word(rng: Rng, size: 4 | 8, extra: readonly bigint[]): bigint {
  if (extra.length > 0 && rng.chance(0.4)) {
    const v = rng.pick(extra) + BigInt(rng.range(-1, 1));
    return BigInt.asUintN(size * 8, v);
  }
  return size === 4 ? BigInt(rng.pick(WORDS32)) : rng.pick(WORDS64);
}

function writeWord(b: Uint8Array, at: number, size: 4 | 8, v: bigint, littleEndian: boolean): void {
  if (at + size > b.length) return;
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  if (size === 4) view.setUint32(at, Number(v & 0xffff_ffffn), littleEndian);
  else view.setBigUint64(at, v, littleEndian);
}

type Op = (rng: Rng, b: Uint8Array, o: MutateOptions) => Uint8Array;

const OPS: Op[] = [
  // flip one bit
  (rng, b) => {
    if (b.length) b[rng.int(b.length)] ^= 1 << rng.int(8);
    return b;
  },
  // an interesting byte (0, 0xff, 0x7f, 0x80, JSON punctuation)
  (rng, b) => {
    if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING_BYTES);
    return b;
  },
  // a random byte, or a small step of one
  (rng, b) => {
    if (!b.length) return b;
    const i = rng.int(b.length);
    b[i] = rng.chance(0.5) ? rng.int(256) : (b[i] + rng.range(-35, 35)) & 0xff;
    return b;
  },
  // an interesting word at a known field (half the time) or anywhere, little- or big-endian
  (rng, b, o) => {
    const f = o.fields?.length && rng.chance(0.5) ? rng.pick(o.fields) : null;
    const size = f?.size ?? (rng.chance(0.5) ? 4 : 8);
    const at = f?.offset ?? rng.int(Math.max(1, b.length - size + 1));
    writeWord(b, at, size, word(rng, size, o.words ?? []), f !== null || rng.chance(0.7));
    return b;
  },
  // insert random or repeated interesting bytes
  (rng, b) => {
    const n = rng.range(1, 32), at = rng.int(b.length + 1);
    const ins = rng.chance(0.5) ? rng.bytes(n) : new Uint8Array(n).fill(rng.pick(INTERESTING_BYTES));
    return concat(b.subarray(0, at), ins, b.subarray(at));
  },
  // delete a range
  (rng, b) => {
    if (!b.length) return b;
    const at = rng.int(b.length),
      n = rng.range(1, Math.max(1, Math.min(b.length - at, rng.chance(0.7) ? 16 : b.length)));
    return concat(b.subarray(0, at), b.subarray(at + n));
  },
  // truncate, at a length of any class
  (rng, b) => b.slice(0, lengthByClass(rng, b.length)),
  // duplicate a chunk (inserted elsewhere), or copy it over another place
  (rng, b) => {
    if (!b.length) return b;
    const from = rng.int(b.length), n = rng.range(1, Math.min(b.length - from, 256));
    const chunk = b.slice(from, from + n), at = rng.int(b.length + 1);
    if (rng.chance(0.5)) return concat(b.subarray(0, at), chunk, b.subarray(at));
    b.set(chunk.subarray(0, Math.min(n, b.length - Math.min(at, b.length))), Math.min(at, b.length));
    return b;
  },
  // repeat a chunk many times (inflation)
  (rng, b) => {
    if (!b.length) return b;
    const from = rng.int(b.length), n = rng.range(1, Math.min(b.length - from, 16));
    const chunk = b.subarray(from, from + n), times = rng.range(2, 64);
    return concat(b.subarray(0, from), ...Array(times).fill(chunk), b.subarray(from + n));
  },
  // splice: a prefix of this input and a suffix of another valid one
  (rng, b, o) => {
    if (!o.others?.length) return b;
    const other = rng.pick(o.others);
    return concat(b.subarray(0, rng.int(b.length + 1)), other.subarray(rng.int(other.length + 1)));
  },
];

/** 1 to 8 stacked mutations of a copy of input (one most often). */
export function mutateBytes(rng: Rng, input: Uint8Array, o: MutateOptions = {}): Uint8Array {
  let b: Uint8Array = input.slice();
  let n = 1;
  while (n < 8 && rng.chance(0.5)) n++;
  for (let i = 0; i < n; i++) {
    b = rng.pick(OPS)(rng, b, o);
    if (o.maxLength !== undefined && b.length > o.maxLength) b = b.slice(0, o.maxLength);
  }
  return b;
}
