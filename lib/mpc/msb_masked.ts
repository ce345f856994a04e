/**
 * Comparisons from a masked opening, under preprocessed truncation (the
 * session's preprocessing mode), with masks made ahead (comparison_masks.ts):
 * r shared arithmetically and bit by bit, rho in binary and arithmetically.
 *
 * msb: open c = x + r (1 round; uniform, since r is). With c' = c mod 2^63 and
 * r' = r mod 2^63, x = c - r gives
 *   msb(x) = c_63 ^ r_63 ^ [c' < r'],
 * and [c' < r'] is the carry into bit 63 of r + v over the low 63 bits, for the
 * public v = c ^ (2^63 - 1): its propagate <r> ^ v and generate <r> & v are
 * local, so carry.ts's six levels follow at once. 7 rounds (the circuit msb's
 * 8 less its input round); 64 + 126 = 190 bits per element from every party.
 *
 * DReLU = 1 - msb as an arithmetic 0/1: the sixth level is not reshared. Each
 * party's 3-out-of-3 share of msb (its share of the level's AND, merged, and
 * of bit 63 of the propagate), masked by its share of rho, goes to both others
 * (1 round, 2 bits), which opens e = msb ^ rho: uniform, rho being secret.
 * With e' = e ^ 1 = (1 - msb) ^ rho, [[1 - msb]] = e' + (1 - 2e') [[rho]]
 * locally. 7 rounds; 64 + 124 + 2 = 190 bits.
 * ReLU = DReLU times x, one multiplication: 8 rounds (the circuit's 10);
 * 64 + 124 + 2 + 64 = 254 bits (the circuit's 296.7).
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { BShare } from "./binary.ts";
import { carryInto63, carryUnits, lastCarryShare } from "./carry.ts";
import type { ComparisonMasks, RandomBits } from "./comparison_masks.ts";
import { mul } from "./multiply.ts";
import type { Party } from "./party.ts";
import { reveal } from "./reveal.ts";
import { disposeMaterial } from "./stock.ts";
import { exchange } from "./transfer.ts";

export const MASKED_MSB_ROUNDS = 7;
export const MASKED_DRELU_ROUNDS = 7;
export const MASKED_RELU_ROUNDS = 8;
/** Bits each party sends per element. */
export const MASKED_MSB_BITS = 64 + 126;
export const MASKED_DRELU_BITS = 64 + 124 + 2;
export const MASKED_RELU_BITS = MASKED_DRELU_BITS + 64;

const LOW63 = (1n << 63n) - 1n;

/** <msb(x)> as packed bits [n, 1], as msb.ts returns it. */
export async function msbMasked(x: AShare): Promise<BShare> {
  const p = x.party, n = x.size;
  if (n === 0) {
    return new BShare(p, RingTensor.zeros(p.backend, [0, 1], "bit"), RingTensor.zeros(p.backend, [0, 1], "bit"));
  }
  return await withMasks(p, n, "msb (masked)", async (m) => {
    const { prop, gen } = await opened(x, m);
    using _p = prop, _g = gen;
    using carry = await carryInto63(p, prop, gen);
    using top = prop.gatherBits(63, 1, 1);
    return top.xor(carry);
  });
}

/** [[1 - msb(x)]] as an arithmetic 0/1 of x's shape. */
export async function dreluMasked(x: AShare): Promise<AShare> {
  const p = x.party, n = x.size;
  if (n === 0) return x.map((t) => t.clone());
  return await withMasks(p, n, "DReLU (masked)", async (m) => {
    const { prop, gen } = await opened(x, m);
    using _p = prop, _g = gen;
    using units = await carryUnits(p, prop, gen, 4);
    // this party's 3-out-of-3 share of msb, opened masked by rho
    using carry = lastCarryShare(p, units);
    using top = prop.cur.gatherBits(63, 1, 1);
    using sign = carry.xor(top);
    using b = await toArithmetic(p, sign, m, true);
    return b.reshape(x.shape);
  });
}

/**
 * [[b]], or [[1 - b]] with `complement`, as arithmetic 0/1 words [n], from this party's 3-out-of-3 share of n bits
 * ([n, 1] packed; the three XOR to b, each masked by a zero share) and n random bits: b ^ rho is opened to all (each
 * party sends its share xor its share of rho to both others: 1 round, 2 bits an element), then e' + (1 - 2e') [[rho]]
 * with e' = b ^ rho (^ 1), locally.
 */
export async function toArithmetic(p: Party, share: RingTensor, bits: RandomBits, complement = false): Promise<AShare> {
  const n = share.shape[0];
  using rhoWords = bits.rho.cur.packBit(0), rho = rhoWords.reshape([n, 1]);
  using mine = share.xor(rho);
  const got = await exchange(p.mesh, p.backend, [{ to: p.next, tensor: mine }, { to: p.prev, tensor: mine }], [
    { from: p.next, shape: mine.shape, dtype: "bit" },
    { from: p.prev, shape: mine.shape, dtype: "bit" },
  ]);
  using g0 = got[0], g1 = got[1];
  using half = mine.xor(g0);
  using e = half.xor(g1); // b ^ rho
  using eWords = e.unpackBits();
  using flat = eWords.reshape([n]);
  using ePrime = complement ? flat.xor(1n) : flat.clone(); // the opened bit ^ rho
  using twice = ePrime.shl(1);
  using negated = twice.neg();
  using factor = negated.add(1n); // 1 - 2e'
  using scaled = bits.rhoA.mulPublic(factor);
  return scaled.addPublic(ePrime);
}

/** ReLU(x) = (1 - msb(x)) x. */
export async function reluMasked(x: AShare): Promise<AShare> {
  if (x.size === 0) return x.map((t) => t.clone());
  using b = await dreluMasked(x);
  return await mul(b, x);
}

/** Takes n masks, runs f with them, disposes them. */
async function withMasks<T>(p: Party, n: number, step: string, f: (m: ComparisonMasks) => Promise<T>): Promise<T> {
  const m = await p.masks.take("masks", n);
  const before = p.setStep(step);
  try {
    return await f(m);
  } finally {
    disposeMaterial(m);
    p.setStep(before);
  }
}

/** Opens c = x + r (1 round) and returns the propagate and generate words of r + (c ^ (2^63 - 1)), local. */
async function opened(x: AShare, m: ComparisonMasks): Promise<{ prop: BShare; gen: BShare }> {
  using flat = x.reshape([x.size]);
  using masked = flat.add(m.r);
  using c = await reveal(masked);
  using v = c.xor(LOW63);
  return { prop: m.rBits.xorPublic(v), gen: m.rBits.map((w) => w.and(v)) };
}
