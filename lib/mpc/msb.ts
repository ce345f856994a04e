/**
 * The sign bit of an arithmetic sharing as a binary sharing (ABY3's A2B
 * variant, protocols.md "Most significant bit"):
 *   1. P_j knows u = x_j + x_next(j) and shares it as <u> with one share zero
 *      (1 round, 64 bits from P_j); <v> = <x_prev(j)> is local. x = u + v.
 *      The tensor is cut in thirds and P_j plays this part for third j, so
 *      that every party sends a third of the 64 bits.
 *   2. msb(u + v) = u_63 ^ v_63 ^ carry into bit 63, the carry by the
 *      parallel prefix of carry.ts from p = u ^ v and g = u & v (1 round for
 *      g, 6 for the levels: 7 rounds). In third j the AND's share from P_j
 *      is a PRF output that the party it would go to computes itself, so g
 *      costs 64 bits in two thirds only.
 * 8 rounds. Bits sent per element by every party: 64 / 3 (input) + 128 / 3
 * (g) + 126 (levels) = 190 (MSB_BITS).
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { BShare } from "./binary.ts";
import { exchangeInto, type TensorSend } from "./transfer.ts";
import { third } from "./bitinject.ts";
import { assignReplicatedProduct } from "./local_steps.ts";
import { CARRY_BITS, carryInto63, carrySave, generate, LEVEL_BITS } from "./carry.ts";
import type { Party } from "./party.ts";
import { msbMasked } from "./msb_masked.ts";

/**
 * Bits each party sends per element in msb: [P0, P1, P2], per variant. The
 * input front end: 64 in one third (the input) and 64 in two thirds (g, which
 * costs nothing in the third a party inputs), then the levels.
 */
const INPUT_BITS = 64 / 3 + (2 * 64) / 3 + LEVEL_BITS;
export const MSB_BITS = {
  input: [INPUT_BITS, INPUT_BITS, INPUT_BITS],
  "carry-save": [64 + CARRY_BITS, 64 + CARRY_BITS, 64 + CARRY_BITS],
} as const;

export type MsbVariant = keyof typeof MSB_BITS;

/**
 * The result: a binary sharing of packed bits, shape [n, 1] for the n
 * elements of x. Under preprocessed truncation, unless a variant is named, x
 * is opened masked instead (msb_masked.ts, 7 rounds). Two front ends reduce x = x_0 + x_1 + x_2 to two operands:
 * "input" (default, above, P_j inputting third j), or "carry-save": s = x_0 ^ x_1 ^ x_2 and
 * c = maj(x_0, x_1, x_2) << 1 with maj = ((x_0 ^ x_2) & (x_1 ^ x_2)) ^ x_2, one
 * AND round in which every party sends 64 bits instead of a third of them.
 */
export async function msb(x: AShare, variant?: MsbVariant): Promise<BShare> {
  const p = x.party;
  // the session's preprocessing mode opens x masked instead (msb_masked.ts: 7 rounds)
  if (variant === undefined && p.truncation === "preprocessed") return await msbMasked(x);
  const n = x.size;
  if (n === 0) { // shapes are public: every party returns here, no round
    return new BShare(p, RingTensor.zeros(p.backend, [0, 1], "bit"), RingTensor.zeros(p.backend, [0, 1], "bit"));
  }
  const before = p.setStep("msb");
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const xCur = own(x.cur.reshape([n])), xNext = own(x.next.reshape([n]));
    let prop: BShare, gen: BShare; // p = u ^ v and g = u & v
    if ((variant ?? "input") === "input") {
      [prop, gen] = (await inputInThirds(p, xCur, xNext, n)).map(own);
    } else {
      const { t: u, maj } = await carrySave(p, xCur, xNext, "msb carry-save");
      own(u), own(maj);
      const v = own(maj.map((t) => t.shl(1))); // c
      prop = own(u.xor(v));
      gen = own(await generate(p, u, v));
    }
    const carry = own(await carryInto63(p, prop, gen));
    using top = prop.gatherBits(63, 1, 1);
    return top.xor(carry); // msb(u + v) = u_63 ^ v_63 ^ carry_63
  } finally {
    held.forEach((t) => t.dispose());
    p.setStep(before);
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
 * P_prev(j); and the local half L_i of the AND g = u & v, (u_cur & (v_cur ^
 * v_next)) ^ (u_next & v_cur), is zero at P_j (its v shares are zero) and
 * p_cur & p_next at the other two.
 *
 * The AND's round then needs no message from P_j. Its zero share in third j
 * is b_j = F(k_prev(j)), b_next(j) = F(k_next(j)), b_prev(j) = F(k_next(j)) ^
 * F(k_prev(j)) (they XOR to zero, each party holds the keys of its own). P_j's
 * share z_j = L_j ^ b_j = F(k_prev(j)) is one P_prev(j), to which it would
 * go, computes itself. Every message still carries a key its receiver lacks:
 * P_next(j) sends z_next(j) under k_next(j) to P_j, which lacks it, and
 * P_prev(j) sends z_prev(j) under k_prev(j) to P_next(j), which lacks that.
 * 2 rounds; 64 bits per element in one third (input) and in two (g).
 */
async function inputInThirds(p: Party, xCur: RingTensor, xNext: RingTensor, n: number): Promise<[BShare, BShare]> {
  const [pCur, pNext, gCur, gNext] = [0, 1, 2, 3].map(() => RingTensor.empty(p.backend, [n]));
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
    const before = p.setStep("msb generate");
    try {
      // z_i = L_i ^ b_i, sent to P_prev(i), with the zero share of third j
      // b_j = F(k_prev(j)), b_next(j) = F(k_next(j)), b_prev(j) = F(k_next(j)) ^ F(k_prev(j)):
      // P_prev(j) holds k_prev(j) too, so z_j = b_j (L_j is zero) is never sent.
      const [fOwn, fPrev] = p.rand.zeroShareParts([n]).map(own); // F(k_i), F(k_prev(i))
      const gSends: TensorSend[] = [], gRecvs: { from: number; into: RingTensor }[] = [];
      for (const { lo, hi, role, pc, pn } of regions) {
        const [gc, gn, fo, fp] = [gCur, gNext, fOwn, fPrev].map((t) => own(t.slice(0, lo, hi)));
        if (role === 0) { // P_j: z_j = F(k_prev(j)), kept; z_next(j) arrives
          gc.assign(fp);
          gRecvs.push({ from: p.next, into: gn });
        } else if (role === 1) { // P_next(j): z = (p_cur & p_next) ^ F(k_next(j)); z_prev(j) arrives
          gc.assignBinary("xor", own(pc.and(pn)), fo);
          gSends.push({ to: p.prev, tensor: gc });
          gRecvs.push({ from: p.next, into: gn });
        } else { // P_prev(j): the usual zero share; z_j = F(k_prev(j)) is its own key's
          assignReplicatedProduct(gc, "bits", [pc, pc], [pn, pn], [fo, fp]);
          gSends.push({ to: p.prev, tensor: gc });
          gn.assign(fo);
        }
      }
      await exchangeInto(p.mesh, gSends, gRecvs);
      return [new BShare(p, pCur, pNext), new BShare(p, gCur, gNext)];
    } finally {
      p.setStep(before);
    }
  } catch (e) {
    [pCur, pNext, gCur, gNext].forEach((t) => t.dispose());
    throw e;
  } finally {
    held.forEach((t) => t.dispose());
  }
}
