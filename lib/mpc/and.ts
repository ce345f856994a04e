/**
 * Binary AND: z_i = (x_i & (y_i ^ y_next(i))) ^ (x_next(i) & y_i) ^ b_i with
 * b_i a binary zero-share; P_i sends z_i to P_prev(i). Several independent
 * ANDs share one round. 1 round; 1 bit per output bit per party (packed 64 to
 * a word).
 */
import { BShare } from "./binary.ts";
import { replicatedProduct } from "./local_steps.ts";
import type { Party } from "./party.ts";
import { exchange } from "./transfer.ts";
import type { RingTensor } from "../ring/tensor.ts";

export async function andMany(p: Party, pairs: readonly [BShare, BShare][], step = "and"): Promise<BShare[]> {
  const before = p.setStep(step);
  try {
    return await completeAnds(p, pairs.map(([x, y]) => localAnd(x, y)));
  } finally {
    p.setStep(before);
  }
}

/** This party's 3-out-of-3 share z_i of x & y, masked by its part of a zero share; no round. */
export function localAnd(x: BShare, y: BShare): RingTensor {
  const [r0, r1] = x.party.rand.zeroShareParts(x.shape, x.dtype);
  using _r0 = r0, _r1 = r1;
  return replicatedProduct("bits", [x.cur, x.next], [y.cur, y.next], [r0, r1]);
}

export async function and(x: BShare, y: BShare): Promise<BShare> {
  return (await andMany(x.party, [[x, y]]))[0];
}

/**
 * The round of an AND: this party's local shares z_i (taken over) go to
 * P_prev(i), and z_next(i) comes from P_next(i), one binary sharing each.
 */
export async function completeAnds(p: Party, zs: RingTensor[]): Promise<BShare[]> {
  try {
    const got = await exchange(
      p.mesh,
      p.backend,
      zs.map((z) => ({ to: p.prev, tensor: z })),
      zs.map((z) => ({ from: p.next, shape: z.shape, dtype: z.dtype })),
    );
    return zs.map((z, k) => new BShare(p, z, got[k]));
  } catch (e) {
    zs.forEach((z) => z.dispose());
    throw e;
  }
}
