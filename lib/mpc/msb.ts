/**
 * The sign bit of an arithmetic sharing as a binary sharing (ABY3's A2B
 * variant, protocols.md "Most significant bit"):
 *   1. P0 knows u = x_0 + x_1 and shares it as <u> with one share zero
 *      (1 round, 64 bits from P0); <v> = <x_2> is local. x = u + v mod 2^64.
 *   2. msb(u + v) = u_63 ^ v_63 ^ carry into bit 63. Generate g_k = u_k & v_k
 *      for bits 0..62 (1 round) and propagate p_k = u_k ^ v_k (free).
 *   3. carry_63 = G[62:0], by a tree of (G, P) o (G', P') = (G ^ P & G', P & P')
 *      over pairs of adjacent groups: 63 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1
 *      groups, 6 rounds. Only live bits travel: the lowest group never needs
 *      its P, and each level's bits are packed densely across elements.
 * 8 rounds. Bits sent per element: 64 + 61 + 31 + 15 + 7 + 3 + 1 = 182 by
 * every party, plus 64 by P0 (MSB_BITS).
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { andMany } from "./and.ts";
import { BShare } from "./binary.ts";
import { shareKnown } from "./input.ts";

/** Bits each party sends per element in msb: [P0, P1, P2], per variant. */
export const MSB_BITS = {
  input: [182 + 64, 182, 182],
  "carry-save": [64 + 182, 64 + 182, 64 + 182],
} as const;

export type MsbVariant = keyof typeof MSB_BITS;

/**
 * The result: a binary sharing of packed bits, shape [n, 1] for the n
 * elements of x. Two front ends reduce x = x_0 + x_1 + x_2 to two operands:
 * "input" (default, above), or "carry-save": s = x_0 ^ x_1 ^ x_2 and
 * c = maj(x_0, x_1, x_2) << 1 with maj = ((x_0 ^ x_2) & (x_1 ^ x_2)) ^ x_2, one
 * AND round in which every party sends 64 bits instead of P0 alone.
 */
export async function msb(x: AShare, variant: MsbVariant = "input"): Promise<BShare> {
  const p = x.party;
  const before = p.enter("msb");
  const n = x.size;
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const xCur = own(x.cur.reshape([n])), xNext = own(x.next.reshape([n]));
    // The arithmetic share x_j, re-read as the binary sharing <x_j>.
    const share = (j: number) => (j === p.index ? xCur : j === p.next ? xNext : null);
    let u: BShare, v: BShare;
    if (variant === "input") {
      // <u> from P0, who knows u = x_0 + x_1; <v> = <x_2>.
      const u0 = p.index === 0 ? own(xCur.add(xNext)) : null;
      const uShares = await shareKnown(p, 0, u0, [n], "binary");
      u = own(new BShare(p, uShares.cur, uShares.next));
      v = own(BShare.fromShares(p, [n], "u64", (j) => (j === 2 ? share(2) : null)));
    } else {
      const a = own(BShare.fromShares(p, [n], "u64", (j) => (j === 1 ? null : share(j)))); // <x_0 ^ x_2>
      const b = own(BShare.fromShares(p, [n], "u64", (j) => (j === 0 ? null : share(j)))); // <x_1 ^ x_2>
      const x2 = own(BShare.fromShares(p, [n], "u64", (j) => (j === 2 ? share(2) : null)));
      const [ab] = await andMany(p, [[a, b]], "msb carry-save");
      const maj = own(own(ab).xor(x2));
      u = own(new BShare(p, xCur.clone(), xNext.clone())); // s: the shares themselves
      v = own(maj.map((t) => t.shl(1))); // c
    }
    const carry = own(await carryInto63(p, u, v));
    using uv = u.xor(v);
    using top = uv.gatherBits(63, 1, 1);
    return top.xor(carry); // msb(u + v) = u_63 ^ v_63 ^ carry_63
  } finally {
    held.forEach((t) => t.dispose());
    p.enter(before);
  }
}

/**
 * The carry into bit 63 of u + v: generate g = u & v (1 round, on whole words:
 * bit 63 rides along unused, cheaper than compacting 63 of 64 bits), propagate
 * p = u ^ v, then the tree over groups 0..62: 7 rounds, [n, 1] packed bits.
 */
async function carryInto63(p: AShare["party"], u: BShare, v: BShare): Promise<BShare> {
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const [g] = await andMany(p, [[u, v]], "msb generate");
    let G = own(g); // groups 0..m-1: group k at position k
    let P: BShare | null = own(u.xor(v)); // groups 1..m-1: group k at position k - 1 + pOff
    let pOff = 1; // in whole words group k sits at bit k; packed levels start at group 1
    let m = 63;
    for (let level = 1; m > 1; level++) {
      const pairs = Math.floor(m / 2);
      const pairsP = pairs - 1; // pairs above the lowest one also combine their P
      const ands: [BShare, BShare][] = [[own(P!.gatherBits(pOff, 2, pairs)), own(G.gatherBits(0, 2, pairs))]];
      if (pairsP > 0) ands.push([own(P!.gatherBits(2 + pOff, 2, pairsP)), own(P!.gatherBits(1 + pOff, 2, pairsP))]);
      const [t, q] = (await andMany(p, ands, `msb carry level ${level}`)).map(own);
      let nextG = own(own(G.gatherBits(1, 2, pairs)).xor(t));
      let nextP: BShare | null = q ?? null;
      if (m % 2 === 1) {
        nextG = own(appendColumn(nextG, own(G.gatherBits(m - 1, 1, 1))));
        const topP: BShare = own(P!.gatherBits(m - 2 + pOff, 1, 1));
        nextP = nextP ? own(appendColumn(nextP, topP)) : topP;
      }
      G = nextG;
      P = nextP;
      pOff = 0;
      m = G.shape[1];
    }
    return G.map((t) => t.clone());
  } finally {
    held.forEach((t) => t.dispose());
  }
}

/** [n, w] and [n, 1] packed rows -> [n, w + 1]. */
function appendColumn(a: BShare, b: BShare): BShare {
  const [n, w] = a.shape;
  return new BShare(a.party, joinRows(a.cur, b.cur, n, w), joinRows(a.next, b.next, n, w));
}

function joinRows(a: RingTensor, b: RingTensor, n: number, w: number): RingTensor {
  using zeros = RingTensor.zeros(a.backend, [n, w + 1], "bit");
  using left = zeros.scatterBits(a, 0, 1, w);
  return left.scatterBits(b, w, 1, 1);
}
