/**
 * The sign bit of an arithmetic sharing as a binary sharing (ABY3's A2B
 * variant, protocols.md "Most significant bit"):
 *   1. P0 knows u = x_0 + x_1 and shares it as <u> with one share zero
 *      (1 round, 64 bits from P0); <v> = <x_2> is local. x = u + v mod 2^64.
 *   2. msb(u + v) = u_63 ^ v_63 ^ carry into bit 63. Generate g_k = u_k & v_k
 *      for bits 0..62 (1 round, 63 bits) and propagate p_k = u_k ^ v_k (free).
 *   3. carry_63 = G[62:0], by a tree of (G, P) o (G', P') = (G ^ P & G', P & P')
 *      over pairs of adjacent groups: 63 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1
 *      groups, 6 rounds. Only live bits travel: the lowest group never needs
 *      its P, and each level's bits are packed densely across elements.
 * 8 rounds. Bits sent per element: 64 + 61 + 31 + 15 + 7 + 3 + 1 = 182 by
 * every party (g travels as whole words: bit 63 is not needed, but compacting
 * 63 of 64 bits costs more time than the bit costs bytes), plus 64 by P0.
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { andMany } from "./and.ts";
import { BShare } from "./binary.ts";
import { shareKnown } from "./input.ts";

/** Bits each party sends per element in msb: [P0, P1, P2]. */
export const MSB_BITS = [182 + 64, 182, 182] as const;

/** The result: a binary sharing of packed bits, shape [n, 1] for the n elements of x. */
export async function msb(x: AShare): Promise<BShare> {
  const p = x.party;
  const before = p.enter("msb");
  const n = x.size;
  const disposeLater: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (disposeLater.push(t), t);
  try {
    // Step 1: <u> from P0, <v> = <x_2> re-read locally.
    const xCur = own(x.cur.reshape([n])), xNext = own(x.next.reshape([n]));
    const u0 = p.index === 0 ? own(xCur.add(xNext)) : null;
    const uShares = await shareKnown(p, 0, u0, [n], "binary");
    const u = own(new BShare(p, uShares.cur, uShares.next));
    const v = own(BShare.fromShares(p, [n], "u64", (j) => (j !== 2 ? null : j === p.index ? xCur : xNext)));
    const uv = own(u.xor(v));

    // Step 2: generate g = u & v on whole words (bit 63 rides along unused:
    // cheaper than compacting 63 of 64 bits first), propagate p = u ^ v.
    const [g] = await andMany(p, [[u, v]], "msb generate");
    let G = own(g); // group k at bit k, groups 0..m-1
    let P: BShare | null = uv; // group k at position k - 1 + pOff, groups 1..m-1
    let pOff = 1; // in the raw words group k sits at bit k; packed levels start at group 1
    let m = 63;

    // Step 3: the carry tree.
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

    // Step 4: msb = u_63 ^ v_63 ^ carry_63.
    using top = uv.gatherBits(63, 1, 1);
    return top.xor(G);
  } finally {
    disposeLater.forEach((t) => t.dispose());
    p.enter(before);
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
