/**
 * The sign bit of an arithmetic sharing as a binary sharing (ABY3's A2B
 * variant, protocols.md "Most significant bit"):
 *   1. P_j knows u = x_j + x_next(j) and shares it as <u> with one share zero
 *      (1 round, 64 bits from P_j); <v> = <x_prev(j)> is local. x = u + v.
 *      The tensor is cut in thirds and P_j plays this part for third j, so
 *      that every party sends a third of the 64 bits.
 *   2. msb(u + v) = u_63 ^ v_63 ^ carry into bit 63. Generate g_k = u_k & v_k
 *      for bits 0..62 (1 round) and propagate p_k = u_k ^ v_k (free).
 *   3. carry_63 = G[62:0], by a tree of (G, P) o (G', P') = (G ^ P & G', P & P')
 *      over pairs of adjacent groups: 63 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1
 *      groups, 6 rounds. Only live bits travel: the lowest group never needs
 *      its P, and each level's bits are packed densely across elements.
 * 8 rounds. Bits sent per element: 64 + 61 + 31 + 15 + 7 + 3 + 1 = 182 by
 * every party, plus 64 / 3 for the inputs (MSB_BITS).
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { andMany } from "./and.ts";
import { BShare } from "./binary.ts";
import { exchange, type TensorRecv, type TensorSend } from "./transfer.ts";
import { third } from "./bitinject.ts";
import type { Party } from "./party.ts";

/** Bits each party sends per element in msb: [P0, P1, P2], per variant. */
export const MSB_BITS = {
  input: [182 + 64 / 3, 182 + 64 / 3, 182 + 64 / 3],
  "carry-save": [64 + 182, 64 + 182, 64 + 182],
} as const;

export type MsbVariant = keyof typeof MSB_BITS;

/**
 * The result: a binary sharing of packed bits, shape [n, 1] for the n
 * elements of x. Two front ends reduce x = x_0 + x_1 + x_2 to two operands:
 * "input" (default, above, P_j inputting third j), or "carry-save": s = x_0 ^ x_1 ^ x_2 and
 * c = maj(x_0, x_1, x_2) << 1 with maj = ((x_0 ^ x_2) & (x_1 ^ x_2)) ^ x_2, one
 * AND round in which every party sends 64 bits instead of a third of them.
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
      [u, v] = (await inputInThirds(p, xCur, xNext, n)).map(own);
    } else {
      const a = own(BShare.fromShares(p, [n], "u64", (j) => (j === 1 ? null : share(j)))); // <x_0 ^ x_2>
      const b = own(BShare.fromShares(p, [n], "u64", (j) => (j === 0 ? null : share(j)))); // <x_1 ^ x_2>
      const x2 = own(BShare.fromShares(p, [n], "u64", (j) => (j === 2 ? share(2) : null)));
      const [ab] = await andMany(p, [[a, b]], "msb carry-save");
      const maj = own(own(ab).xor(x2));
      u = own(new BShare(p, xCur.clone(), xNext.clone())); // s: the shares themselves
      v = own(maj.map((t) => t.shl(1))); // c
    }
    const uv = own(u.xor(v)); // the propagate bits, and bit 63 of the sum's operands
    const carry = own(await carryInto63(p, u, v, uv));
    using top = uv.gatherBits(63, 1, 1);
    return top.xor(carry); // msb(u + v) = u_63 ^ v_63 ^ carry_63
  } finally {
    held.forEach((t) => t.dispose());
    p.enter(before);
  }
}

/**
 * <u> and <v> with x = u + v: in third j, P_j inputs u = x_j + x_next(j) as a
 * binary sharing whose share prev(j) is zero: share j = F(k_prev(j)) (P_j and
 * P_prev(j)), share next(j) = u ^ share j, sent by P_j to P_next(j), which
 * lacks k_prev(j). <v> = <x_prev(j)> is the share P_next(j) and P_prev(j)
 * already hold. Every party draws a nonce for every third.
 */
async function inputInThirds(p: Party, xCur: RingTensor, xNext: RingTensor, n: number): Promise<[BShare, BShare]> {
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const zeros = (m: number) => own(RingTensor.zeros(p.backend, [m]));
    const sends: TensorSend[] = [], recvs: TensorRecv[] = [];
    // Per third: this party's (cur, next) pieces of u and of v; a received piece is filled in after the round.
    const pieces = [0, 1, 2].map((j) => {
      const [lo, hi] = third(n, j), m = hi - lo, c = p.rand.nonce();
      const piece = (t: RingTensor) => own(own(t.slice(0, lo, hi)).contiguous());
      switch ((p.index - j + 3) % 3) {
        case 0: { // P_j: knows u
          const mask = own(p.rand.draw("prev", [m], c));
          const masked = own(own(own(piece(xCur).add(piece(xNext)))).xor(mask));
          sends.push({ to: p.next, tensor: masked });
          return { u: [mask, masked], v: [zeros(m), zeros(m)] };
        }
        case 1: // P_next(j): receives share next(j) of u; holds v = x_prev(j) as its next share
          recvs.push({ from: p.prev, shape: [m] });
          return { u: [null, zeros(m)], v: [zeros(m), piece(xNext)] };
        default: // P_prev(j): share prev(j) of u is zero; holds v = x_prev(j) as its cur share
          return { u: [zeros(m), own(p.rand.draw("own", [m], c))], v: [piece(xCur), zeros(m)] };
      }
    });
    const [got] = (await exchange(p.mesh, p.backend, sends, recvs)).map(own);
    const join = (k: "u" | "v", s: 0 | 1) => RingTensor.concat(pieces.map((x) => x[k][s] ?? got), 0);
    return [new BShare(p, join("u", 0), join("u", 1)), new BShare(p, join("v", 0), join("v", 1))];
  } finally {
    held.forEach((t) => t.dispose());
  }
}

/**
 * The carry into bit 63 of u + v: generate g = u & v (1 round, on whole words:
 * bit 63 rides along unused, cheaper than compacting 63 of 64 bits), propagate
 * p = u ^ v (the caller's, which it also needs), then the tree over groups
 * 0..62: 7 rounds, [n, 1] packed bits.
 */
async function carryInto63(p: Party, u: BShare, v: BShare, uXorV: BShare): Promise<BShare> {
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const [g] = await andMany(p, [[u, v]], "msb generate");
    let G = own(g); // groups 0..m-1: group k at position k
    let P: BShare | null = uXorV; // groups 1..m-1: group k at position k - 1 + pOff
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
