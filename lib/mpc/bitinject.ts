/**
 * Bit injection: from a shared bit <b> and [[a]], the product [[b * a]].
 * b = b01 ^ b2, where P0 knows b01 = b_0 ^ b_1 and P1, P2 both know b_2, so
 *   b * a = b2 * a + b01 * (1 - 2 b2) * a.
 * Round 1, at once:
 *   - P0 shares [[b01]] with one share zero (1 word from P0);
 *   - [[b2 * a]] from the two parties that know b2: with r, r' = F(k_1) (known
 *     to P1 and P2 only), s_0 = b2 a_0 + r', s_1 = b2 a_1 - r - r',
 *     s_2 = b2 a_2 + r; P2 sends s_0 and P1 sends s_1 to P0 (1 word each),
 *     whose view (s_0, s_1) is uniform.
 * Round 2: [[b01]] * [[a - 2 b2 a]], one multiplication (1 word each).
 * 2 rounds, 2 words per element from every party.
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import type { BShare } from "./binary.ts";
import { mul } from "./multiply.ts";
import type { Party } from "./party.ts";
import { exchange } from "./transfer.ts";

/**
 * b: a binary sharing of n packed bits ([n, 1]); a: an arithmetic sharing of
 * n * k elements, read as n rows of k: bit e multiplies row e (k = 1 for one
 * bit per element). Round 1 then carries n words from P0 and n * k from P1, P2.
 */
export async function bitInject(b: BShare, a: AShare): Promise<AShare> {
  const p = a.party;
  const before = p.enter("bit injection");
  const shape = a.shape, n = b.shape[0] * (b.shape[1] ?? 1);
  if (n === 0 || a.size % n !== 0) throw new RangeError(`bitInject: ${n} bits for ${a.size} elements`);
  try {
    using rows = a.reshape([n, a.size / n]);
    const nonces: [bigint, bigint] = [p.rand.nonce(), p.rand.nonce()];
    const [b01Share, b2aShare] = await roles[p.index](p, b, rows, nonces);
    using b01 = b01Share, b2a = b2aShare;
    using twice = b2a.mulPublic(2n);
    using rest = rows.sub(twice);
    using prod = await mul(b01, rest);
    using sum = prod.add(b2a);
    return sum.map((t) => t.reshape(shape));
  } finally {
    p.enter(before);
  }
}

/** Bits [n, 1] of one share as 0/1 ring words of the given shape. */
function asWords(bits: RingTensor, shape: readonly number[]): RingTensor {
  using flat = bits.reshape([bits.size]);
  using words = flat.unpackBits();
  return words.reshape(shape);
}

type Role = (p: Party, b: BShare, a: AShare, c: [bigint, bigint]) => Promise<[AShare, AShare]>;

const roles: [Role, Role, Role] = [
  // P0: knows b01 = b_0 ^ b_1; sends [[b01]]'s share 1 to P1, receives s_0 and s_1.
  async (p, b, a, c) => {
    using b01Bits = b.cur.xor(b.next);
    const col = [a.shape[0], 1];
    using b01 = asWords(b01Bits, col);
    const mask = p.rand.draw("prev", col, c[0]); // F(k_2): P0 and P2
    const masked = b01.sub(mask);
    const [s0, s1] = await exchange(p.mesh, p.backend, [{ to: 1, tensor: masked }], [
      { from: 2, shape: a.shape },
      { from: 1, shape: a.shape },
    ]);
    return [new AShare(p, mask, masked), new AShare(p, s0, s1)];
  },
  // P1: holds (b_1, b_2), (a_1, a_2); receives [[b01]]'s share 1, sends s_1.
  async (p, b, a, c) => {
    const col = [a.shape[0], 1];
    using b2 = asWords(b.next, col);
    using r = p.rand.draw("own", a.shape, c[0]), r2 = p.rand.draw("own", a.shape, c[1]);
    using b2a1 = b2.mul(a.cur);
    using t = b2a1.sub(r);
    const s1 = t.sub(r2);
    using b2a2 = b2.mul(a.next);
    const s2 = b2a2.add(r);
    const [masked] = await exchange(p.mesh, p.backend, [{ to: 0, tensor: s1 }], [{ from: 0, shape: col }]);
    return [new AShare(p, masked, RingTensor.zeros(p.backend, col)), new AShare(p, s1, s2)];
  },
  // P2: holds (b_2, b_0), (a_2, a_0); sends s_0.
  async (p, b, a, c) => {
    const col = [a.shape[0], 1];
    using b2 = asWords(b.cur, col);
    using r = p.rand.draw("prev", a.shape, c[0]), r2 = p.rand.draw("prev", a.shape, c[1]);
    using b2a2 = b2.mul(a.cur);
    const s2 = b2a2.add(r);
    using b2a0 = b2.mul(a.next);
    const s0 = b2a0.add(r2);
    await exchange(p.mesh, p.backend, [{ to: 0, tensor: s0 }], []);
    const mask = p.rand.draw("own", col, c[0]); // F(k_2)
    return [new AShare(p, RingTensor.zeros(p.backend, col), mask), new AShare(p, s2, s0)];
  },
];

/** [[b]] as an arithmetic 0/1 sharing shaped like `like` (a bit injection into 1). */
export async function bitToArithmetic(b: BShare, like: AShare): Promise<AShare> {
  using zero = like.map((s) => s.mul(0n));
  using one = zero.addPublic(1n);
  return await bitInject(b, one);
}
