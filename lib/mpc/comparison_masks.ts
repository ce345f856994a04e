/**
 * Preprocessing for comparisons from a masked opening (msb_masked.ts): per
 * element, a uniform r in Z_2^64 shared twice, arithmetically and bit by bit,
 * and a uniform bit rho shared twice, in binary and as an arithmetic 0/1,
 * made without a dealer and before any input exists.
 *
 * r costs nothing arithmetically: share j is r_j = F(k_prev(j)), so each party
 * lacks one uniform addend (as for truncation pairs). Its bits come from the
 * three shares re-read as binary addends: a carry-save layer
 *   t = r_0 ^ r_1 ^ r_2,  c = maj(r_0, r_1, r_2) << 1,  r = t + c mod 2^64,
 * then every carry of t + c at once by a Kogge-Stone prefix on whole words:
 * (G, P) = (t & c, t ^ c), and for s = 1, 2, 4, ..., 32
 *   G <- G ^ (P & (G << s)),  P <- P & (P << s)
 * (the two ANDs of a level in one round; the last needs no P), after which
 * bit i of G is the carry out of bits 0..i, so r = (t ^ c) ^ (G << 1).
 * rho's binary shares are drawn like r's (bit 0 of F(k_prev(j))), and its
 * arithmetic value comes from one bit injection.
 *
 * Rounds: 1 (maj) + 1 (generate) + 6 (levels) + 2 (injection) = 10 for any
 * batch. Bits sent per element by every party: 64 (maj) + 64 (generate) +
 * 5 x 128 + 64 (levels) + 5/3 x 64 (injection) = MASK_BITS, about 117 bytes.
 * Random bits alone (for the max's selection, max_pairs.ts) are the last two
 * rounds.
 */
import { AShare } from "./arithmetic.ts";
import { andMany } from "./and.ts";
import { carrySave } from "./carry.ts";
import { BShare } from "./binary.ts";
import { bitToArithmetic, injectWords } from "./bitinject.ts";
import type { Party } from "./party.ts";
import { RingTensor } from "../ring/tensor.ts";

/** Rounds of one preprocessing batch, whatever its size. */
export const MASK_ROUNDS = 10;
/** Bits each party sends per element made. */
export const MASK_BITS = 64 + 64 + 5 * 128 + 64 + injectWords(1) * 64;

/** n uniform bits, each shared in binary and as an arithmetic 0/1: flat sharings of shape [n]. */
export type RandomBits = {
  /** the bit, in bit 0 of a word (the other bits zero). */
  readonly rho: BShare;
  /** the same bit as an arithmetic 0/1. */
  readonly rhoA: AShare;
};

/** n masks: flat sharings of shape [n]. */
export type ComparisonMasks = RandomBits & {
  /** r, uniform in Z_2^64. */
  readonly r: AShare;
  /** r's 64 bits, one word per element. */
  readonly rBits: BShare;
};

/** Rounds and bits per element of makeRandomBits: one bit injection. */
export const RANDOM_BIT_ROUNDS = 2;
export const RANDOM_BIT_BITS = injectWords(1) * 64;

/** share j = F(k_prev(j)): this party's cur share under its `prev` key, its next share under its `own` key. */
function drawn(p: Party, n: number): [RingTensor, RingTensor] {
  const nonce = p.rand.nonce();
  return [p.rand.draw("prev", [n], nonce), p.rand.draw("own", [n], nonce)];
}

export async function makeRandomBits(p: Party, n: number): Promise<RandomBits> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`random bits: ${n} is not a count`);
  const before = p.setStep("random bits");
  const coins = drawn(p, n);
  const rho = new BShare(p, coins[0].and(1n), coins[1].and(1n));
  coins.forEach((t) => t.dispose());
  try {
    using packed = new BShare(p, rho.cur.packBit(0), rho.next.packBit(0));
    using like = new AShare(p, RingTensor.zeros(p.backend, [n]), RingTensor.zeros(p.backend, [n]));
    return { rho, rhoA: await bitToArithmetic(packed, like) };
  } catch (e) {
    rho.dispose();
    throw e;
  } finally {
    p.setStep(before);
  }
}

export async function makeComparisonMasks(p: Party, n: number): Promise<ComparisonMasks> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`comparison masks: ${n} is not a count`);
  const before = p.setStep("comparison masks");
  const r = new AShare(p, ...drawn(p, n));
  let rBits: BShare | null = null;
  try {
    rBits = n === 0 ? new BShare(p, r.cur.clone(), r.next.clone()) : await bitsOf(p, r);
    return { r, rBits, ...(await makeRandomBits(p, n)) };
  } catch (e) {
    r.dispose();
    rBits?.dispose();
    throw e;
  } finally {
    p.setStep(before);
  }
}

/** <r> from [[r]]: the carry-save layer, then every carry of t + c by the Kogge-Stone levels (8 rounds). */
async function bitsOf(p: Party, r: AShare): Promise<BShare> {
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const { t, maj } = await carrySave(p, r.cur, r.next, "comparison masks: carry-save");
    own(t), own(maj);
    const c = own(maj.map((w) => w.shl(1)));
    const prop = own(t.xor(c));
    let [gen] = (await andMany(p, [[t, c]], "comparison masks: generate")).map(own);
    let pp = prop;
    for (let s = 1; s < 64; s *= 2) {
      const last = s === 32;
      const gs = own(gen.map((w) => w.shl(s))), ps = own(pp.map((w) => w.shl(s)));
      const ands = (await andMany(p, last ? [[pp, gs]] : [[pp, gs], [pp, ps]], `comparison masks: level ${s}`))
        .map(own);
      gen = own(gen.xor(ands[0]));
      if (!last) pp = ands[1];
    }
    const carries = own(gen.map((w) => w.shl(1))); // bit i: the carry into bit i
    return prop.xor(carries);
  } finally {
    held.forEach((x) => x.dispose());
  }
}
