/**
 * Preprocessing for the one-round exact truncation (truncate_preprocessed.ts):
 * for a public d, sharings of a uniform r in Z_2^64 and of the two values of
 * it that the online step needs,
 *   top = r's bit 63,  mid = floor((r mod 2^63) / 2^d),
 * made without a dealer and before any input exists.
 *
 * r costs nothing: share j is r_j = F(k_prev(j)), drawn by the two parties that
 * hold share j, so each party lacks one uniform addend. Its bits are those of
 * a three-operand sum, which a binary circuit on the shares re-read as binary
 * addends gives. With A_j = r_j mod 2^63 and a carry-save layer
 *   s = (r_0 ^ r_1 ^ r_2) mod 2^63,  c = (maj(r_0, r_1, r_2) mod 2^63) << 1,
 * A_0 + A_1 + A_2 = s + c, so with k_i the carry into bit i of s + c:
 *   m   = floor(sum A_j / 2^63) = c_63 + k_63           (0, 1 or 2)
 *   top = (r_0 ^ r_1 ^ r_2)_63 ^ c_63 ^ k_63
 *   mid = sum_j floor(A_j / 2^d) + kappa - 2^(63-d) m,  kappa = c_d + k_d
 * where kappa, the carry of the three low d-bit parts, is c's bit d (the
 * majority of bit d-1) plus the carry into bit d of s + c. sum_j floor(A_j /
 * 2^d) is local. k_d is the carry into bit 63 of the same sum shifted left by
 * 63 - d, so both carries come from one run of carry.ts's circuit on 2n words.
 * The five bits c_d, k_d, c_63, k_63 and top become arithmetic 0/1 values in
 * one bit injection.
 *
 * Rounds: 1 (maj) + 1 (generate) + 6 (levels) + 2 (injection) = 10 for any
 * batch. Bits sent per element by every party: 64 (maj) + 64 (generate)
 * + 2 x 126 (levels) + 5 x 5/3 x 64 (injection) = PAIR_BITS, about 14.3 words
 * (a local truncation's is 2/3 of a word, an msb's 3).
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import { BShare } from "./binary.ts";
import { bitToArithmetic, injectWords } from "./bitinject.ts";
import { carryInto63, carrySave, generate, LEVEL_BITS } from "./carry.ts";
import type { Party } from "./party.ts";

/** Rounds of one preprocessing batch, whatever its size. */
export const PAIR_ROUNDS = 10;
/** Bits each party sends per pair made (see above). */
export const PAIR_BITS = 64 + 64 + 2 * LEVEL_BITS + 5 * injectWords(1) * 64;

const LOW63 = (1n << 63n) - 1n;

/** n pairs for a truncation by d bits: flat sharings of shape [n]. */
export interface TruncationPairs {
  readonly d: number;
  /** r, uniform in Z_2^64. */
  readonly r: AShare;
  /** r's bit 63, as 0/1. */
  readonly top: AShare;
  /** floor((r mod 2^63) / 2^d). */
  readonly mid: AShare;
}

export function disposePairs(pairs: TruncationPairs): void {
  pairs.r.dispose();
  pairs.top.dispose();
  pairs.mid.dispose();
}

export async function makeTruncationPairs(p: Party, n: number, d: number): Promise<TruncationPairs> {
  if (!Number.isInteger(d) || d < 1 || d > 62) throw new RangeError(`truncation pairs: ${d} bits outside [1, 62]`);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`truncation pairs: ${n} is not a count`);
  const before = p.setStep("truncation pairs");
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const nonce = p.rand.nonce();
    // share j = F(k_prev(j)): this party's cur share under its `prev` key, its next share under its `own` key
    const r = new AShare(p, p.rand.draw("prev", [n], nonce), p.rand.draw("own", [n], nonce));
    if (n === 0) return { d, r, top: r.map((t) => t.clone()), mid: r.map((t) => t.clone()) };
    held.push(r);
    const { t, maj } = await carrySave(p, r.cur, r.next, "truncation pairs: carry-save");
    own(t), own(maj);
    const s = own(t.map((w) => w.and(LOW63)));
    const c = own(maj.map((w) => {
      using low = w.and(LOW63);
      return low.shl(1);
    }));
    const prop = own(s.xor(c)), gen = own(await generate(p, s, c));
    const up = (x: BShare) => own(x.map((w) => w.shl(63 - d)));
    const both = (x: BShare, y: BShare) =>
      own(new BShare(p, RingTensor.concat([x.cur, y.cur]), RingTensor.concat([x.next, y.next])));
    const carries = own(await carryInto63(p, both(prop, up(prop)), both(gen, up(gen))));
    const carryWords = own(carries.map((w) => { // k_63, then k_d, as 0/1 words
      using words = w.unpackBits();
      return words.reshape([2 * n]);
    }));
    const k63 = own(carryWords.map((w) => w.slice(0, 0, n))), kd = own(carryWords.map((w) => w.slice(0, n, 2 * n)));
    const c63 = own(c.map((w) => w.bit(63))), cd = own(c.map((w) => w.bit(d)));
    const top = own(own(own(t.map((w) => w.bit(63))).xor(c63)).xor(k63));
    // The five bits of each element side by side in one word, then one injection: [n, 5] 0/1 values.
    let flags = own(cd.map((w) => w.clone()));
    [kd, c63, k63, top].forEach((b, i) => (flags = own(flags.xor(own(b.map((w) => w.shl(i + 1)))))));
    const bits = own(flags.gatherBits(0, 1, 5));
    const like = own(new AShare(p, RingTensor.zeros(p.backend, [5 * n]), RingTensor.zeros(p.backend, [5 * n])));
    const values = own(own(await bitToArithmetic(bits, like)).reshape([n, 5]));
    const [aCd, aKd, aC63, aK63, aTop] = [0, 1, 2, 3, 4].map((i) => own(own(values.slice(1, i, i + 1)).reshape([n])));
    // mid = sum_j floor(A_j / 2^d) + c_d + k_d - 2^(63-d) (c_63 + k_63)
    const local = own(r.map((w) => {
      using low = w.and(LOW63);
      return low.shr(d);
    }));
    const kappa = own(aCd.add(aKd)), m = own(aC63.add(aK63));
    const wrap = own(m.mulPublic(1n << BigInt(63 - d)));
    const mid = own(local.add(kappa)).sub(wrap);
    held.splice(held.indexOf(r), 1);
    return { d, r, top: aTop.map((w) => w.clone()), mid };
  } finally {
    held.forEach((x) => x.dispose());
    p.setStep(before);
  }
}
