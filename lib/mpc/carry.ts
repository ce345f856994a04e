/**
 * The carry into bit 63 of u + v for binary sharings u, v of 64-bit words: a
 * parallel-prefix (Kogge-Stone without the redundant nodes) over (propagate,
 * generate) units, protocols.md "Most significant bit":
 *   g = u & v (1 round, whole words; the caller's, see generate), p = u ^ v (free);
 *   units: group 0 = (0, 0), group k = (p_{k-1}, g_{k-1}) for k = 1..63, so
 *     that the carry out of all 64 groups is the carry into bit 63;
 *   6 levels, each pairing adjacent units: (P, G) = (P_hi & P_lo,
 *     G_hi ^ P_hi & G_lo), both ANDs of a pair in one replicated AND, 1 round.
 * The native carry level (cg_carry_and, cg_carry_merge) does a level's layout
 * work and its local AND in two passes. 7 rounds; bits sent per element by
 * every party: 64 (g) + 64 + 32 + 16 + 8 + 4 + 2 (the levels) = CARRY_BITS.
 */
import { andMany, completeAnds } from "./and.ts";
import { BShare } from "./binary.ts";
import { carryAnd, carryMerge } from "./local_steps.ts";
import type { Party } from "./party.ts";
import type { RingTensor } from "../ring/tensor.ts";

/** Bits of the carry's levels after g, each party, per element. */
export const LEVEL_BITS = 64 + 32 + 16 + 8 + 4 + 2;
/** With the generate AND's 64. */
export const CARRY_BITS = 64 + LEVEL_BITS;

/**
 * The carry-save layer of an arithmetic sharing's own shares re-read as binary addends (<x_j> has share j = x_j and
 * the others zero): t = x_0 ^ x_1 ^ x_2 and maj = ((x_0 ^ x_2) & (x_1 ^ x_2)) ^ x_2, so that x = t + 2 maj mod 2^64.
 * `cur` and `next` are this party's shares, flat [n]. 1 AND round, 64 bits per element from every party.
 */
export async function carrySave(
  party: Party,
  cur: RingTensor,
  next: RingTensor,
  step: string,
): Promise<{ t: BShare; maj: BShare }> {
  const n = cur.size;
  const share = (j: number) => (j === party.index ? cur : j === party.next ? next : null);
  const addend = (keep: (j: number) => boolean) =>
    BShare.fromShares(party, [n], "u64", (j) => (keep(j) ? share(j) : null));
  using a = addend((j) => j !== 1), b = addend((j) => j !== 0), x2 = addend((j) => j === 2); // <x_0^x_2>, <x_1^x_2>
  using ab = (await andMany(party, [[a, b]], step))[0];
  return { t: new BShare(party, cur.clone(), next.clone()), maj: ab.xor(x2) };
}

/** g = u & v, the round of generate bits (a front end that knows more about u and v may do it itself). */
export async function generate(party: Party, u: BShare, v: BShare): Promise<BShare> {
  return (await andMany(party, [[u, v]], "msb generate"))[0];
}

/** [n, 1] packed bits: the carry into bit 63 of u + v, from p = u ^ v and g = u & v. 6 rounds. */
export async function carryInto63(party: Party, p: BShare, g: BShare): Promise<BShare> {
  using last = await carryUnits(party, p, g, 2);
  return last.gatherBits(1, 1, 1); // the G of each row's one unit
}

/**
 * The units [n, width] after the levels that leave `width` bits a row: 64 after level 1 (32 units), 2 after all
 * six (one unit, whose G is the carry). One round a level.
 */
export async function carryUnits(party: Party, p: BShare, g: BShare, width: number): Promise<BShare> {
  let units = await carryLevel(party, p, g, 1); // [n, 64]: 32 units a row
  for (let level = 2; units.shape[1] > width; level++) {
    using prev = units;
    units = await carryLevel(party, prev, null, level);
  }
  return units;
}

/**
 * The last level without its round: from units [n, 4] (two a row), this party's 3-out-of-3 share of the carry,
 * [n, 1] packed bits (the level's AND, masked by a zero share as in carryLevel, and the merge of its own share of
 * the units: the merge is linear). The three shares XOR to the carry; the caller opens or reshares them.
 */
export function lastCarryShare(party: Party, units: BShare): RingTensor {
  if (units.shape[1] !== 4) throw new RangeError(`lastCarryShare: two units a row, got [${units.shape}]`);
  const [r0, r1] = party.rand.zeroShareParts([units.shape[0], 2], "bit");
  using _r0 = r0, _r1 = r1;
  using z = carryAnd([units.cur, units.next], null, [r0, r1]);
  using merged = carryMerge(units.cur, z);
  return merged.gatherBits(1, 1, 1);
}

/** One level: from propagate and generate words (level 1) or packed units, the next units. */
async function carryLevel(party: Party, a: BShare, g: BShare | null, level: number): Promise<BShare> {
  const before = party.setStep(`msb carry level ${level}`);
  try {
    const shape = a.dtype === "u64" ? [a.cur.size, 64] : [a.shape[0], a.shape[1] / 2];
    const [r0, r1] = party.rand.zeroShareParts(shape, "bit");
    using _r0 = r0, _r1 = r1;
    const z = carryAnd([a.cur, a.next], g && [g.cur, g.next], [r0, r1]);
    using and = (await completeAnds(party, [z]))[0];
    const source = g ?? a; // where each pair's G_hi comes from
    return new BShare(
      party,
      carryMerge(source.cur, and.cur),
      carryMerge(source.next, and.next),
    );
  } finally {
    party.setStep(before);
  }
}
