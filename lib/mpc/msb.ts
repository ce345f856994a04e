/**
 * The sign bit of an arithmetic sharing as a binary sharing (ABY3's A2B
 * variant, protocols.md "Most significant bit"):
 *   1. P_j knows u = x_j + x_next(j) and shares it as <u> with one share zero
 *      (1 round, 64 bits from P_j); <v> = <x_prev(j)> is local. x = u + v.
 *      The tensor is cut in thirds and P_j plays this part for third j, so
 *      that every party sends a third of the 64 bits.
 *   2. msb(u + v) = u_63 ^ v_63 ^ carry into bit 63, the carry by the
 *      parallel prefix of carry.ts from p = u ^ v and g = u & v (1 round for
 *      g, 6 for the levels: 7 rounds, CARRY_BITS).
 * 8 rounds. Bits sent per element: CARRY_BITS = 190 by every party, plus
 * 64 / 3 for the inputs (MSB_BITS).
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { andMany, completeAnds } from "./and.ts";
import { BShare } from "./binary.ts";
import { exchangeInto, type TensorSend } from "./transfer.ts";
import { third } from "./bitinject.ts";
import { CARRY_BITS, carryInto63, generate } from "./carry.ts";
import type { Party } from "./party.ts";

/** Bits each party sends per element in msb: [P0, P1, P2], per variant. */
export const MSB_BITS = {
  input: [CARRY_BITS + 64 / 3, CARRY_BITS + 64 / 3, CARRY_BITS + 64 / 3],
  "carry-save": [64 + CARRY_BITS, 64 + CARRY_BITS, 64 + CARRY_BITS],
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
  const n = x.size;
  if (n === 0) { // shapes are public: every party returns here, no round
    return new BShare(p, RingTensor.zeros(p.backend, [0, 1], "bit"), RingTensor.zeros(p.backend, [0, 1], "bit"));
  }
  const before = p.enter("msb");
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const xCur = own(x.cur.reshape([n])), xNext = own(x.next.reshape([n]));
    // The arithmetic share x_j, re-read as the binary sharing <x_j>.
    const share = (j: number) => (j === p.index ? xCur : j === p.next ? xNext : null);
    let prop: BShare, gen: BShare; // p = u ^ v and g = u & v
    if (variant === "input") {
      [prop, gen] = (await inputInThirds(p, xCur, xNext, n)).map(own);
    } else {
      const a = own(BShare.fromShares(p, [n], "u64", (j) => (j === 1 ? null : share(j)))); // <x_0 ^ x_2>
      const b = own(BShare.fromShares(p, [n], "u64", (j) => (j === 0 ? null : share(j)))); // <x_1 ^ x_2>
      const x2 = own(BShare.fromShares(p, [n], "u64", (j) => (j === 2 ? share(2) : null)));
      const [ab] = await andMany(p, [[a, b]], "msb carry-save");
      const maj = own(own(ab).xor(x2));
      const u = own(new BShare(p, xCur.clone(), xNext.clone())); // s: the shares themselves
      const v = own(maj.map((t) => t.shl(1))); // c
      prop = own(u.xor(v));
      gen = own(await generate(p, u, v));
    }
    const carry = own(await carryInto63(p, prop, gen));
    using top = prop.gatherBits(63, 1, 1);
    return top.xor(carry); // msb(u + v) = u_63 ^ v_63 ^ carry_63
  } finally {
    held.forEach((t) => t.dispose());
    p.enter(before);
  }
}

/**
 * p = u ^ v and g = u & v for x = u + v, 2 rounds. In third j, P_j inputs
 * u = x_j + x_next(j) as a binary sharing whose share prev(j) is zero: share
 * j = F(k_prev(j)) (P_j and P_prev(j)), share next(j) = u ^ share j, sent by
 * P_j to P_next(j), which lacks k_prev(j). <v> = <x_prev(j)> is the share
 * P_next(j) and P_prev(j) already hold. Every party draws a nonce for every third.
 *
 * Neither u nor v is materialised: with their zero shares written out, this
 * party's shares of p in third j are (share j, share next(j)) at P_j,
 * (share next(j), x_prev(j)) at P_next(j) and (x_prev(j), share j) at
 * P_prev(j); and the local half of the AND g = u & v, (u_cur & (v_cur ^
 * v_next)) ^ (u_next & v_cur), is zero at P_j (its v shares are zero) and
 * p_cur & p_next at the other two, which is replicatedProduct with both
 * operands doubled: (p_cur & (p_next ^ p_next)) ^ (p_cur & p_next).
 */
async function inputInThirds(p: Party, xCur: RingTensor, xNext: RingTensor, n: number): Promise<[BShare, BShare]> {
  const [pCur, pNext, z] = [0, 1, 2].map(() => RingTensor.empty(p.backend, [n]));
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const sends: TensorSend[] = [], recvs: { from: number; into: RingTensor }[] = [];
    const regions = [0, 1, 2].map((j) => {
      const [lo, hi] = third(n, j), c = p.rand.nonce(), role = (p.index - j + 3) % 3;
      const [pc, pn, xc, xn] = [pCur, pNext, xCur, xNext].map((t) => own(t.slice(0, lo, hi)));
      if (role === 0) { // P_j: knows u, masks it with F(k_prev(j)) and sends share next(j)
        p.rand.drawInto("prev", pc, c);
        pn.assignBinary("xor", own(xc.add(xn)), pc);
        sends.push({ to: p.next, tensor: pn });
      } else if (role === 1) { // P_next(j): receives share next(j) of u; v = x_prev(j) is its next share
        recvs.push({ from: p.prev, into: pc });
        pn.assign(xn);
      } else { // P_prev(j): u's share prev(j) is zero, share j is F(k_prev(j)); v = x_prev(j) is its cur share
        pc.assign(xc);
        p.rand.drawInto("own", pn, c);
      }
      return { lo, hi, role, pc, pn };
    });
    await exchangeInto(p.mesh, sends, recvs);
    const before = p.enter("msb generate");
    try {
      const [r0, r1] = p.rand.zeroShareParts([n]).map(own);
      for (const { lo, hi, role, pc, pn } of regions) {
        const [zr, r0r, r1r] = [z, r0, r1].map((t) => own(t.slice(0, lo, hi)));
        if (role === 0) zr.assignBinary("xor", r0r, r1r);
        else zr.assignReplicatedProduct("bits", [pc, pc], [pn, pn], [r0r, r1r]);
      }
      const [g] = await completeAnds(p, [z]);
      return [new BShare(p, pCur, pNext), g];
    } finally {
      p.enter(before);
    }
  } catch (e) {
    [pCur, pNext, z].forEach((t) => t.dispose());
    throw e;
  } finally {
    held.forEach((t) => t.dispose());
  }
}
