/**
 * Truncation by d bits (ABY3 Pi_trunc1, semi-honest), protocols.md:
 *   P0 and P1 first hold a 2-out-of-2 sharing A = z_0 + z_1 (P0), B = z_2 (P1);
 *   P0: A' = A >> d, P1: B' = -((-B) >> d) (logical shifts), so
 *   A' + B' = z / 2^d + {0, 1}, except with probability about |z| / 2^63;
 *   then y_0 = F(k_2) (P2 and P0), y_2 = F(k_1) (P1 and P2), and
 *   y_1 = (A' - y_0) + (B' - y_2) from one message each way between P0 and P1.
 * 1 round; P0 and P1 send 1 word per element, P2 nothing. P2 never receives
 * anything: a variant in which it learned A' would leak z to it.
 *
 * The protocol is asymmetric by nature, so each party's part is written out
 * as its role: role[i] is what P_i does.
 *
 * A session's `truncation` picks the protocol for every truncation it runs:
 * "local" is Pi_trunc1 above; "corrected" (truncate_corrected.ts) also fixes
 * the wrap, for 1 more round and twice the words, so that networks with tens
 * of millions of truncated activations at f = 20 never meet a failure;
 * "preprocessed" (truncate_preprocessed.ts) is exact too, in 1 round, from
 * pairs made ahead (truncation_pairs.ts).
 */
import type { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import type { Party } from "./party.ts";
import { exchange } from "./transfer.ts";
import { truncateCorrectedRole } from "./truncate_corrected.ts";
import { truncateWithPairs } from "./truncate_preprocessed.ts";

type Role = (p: Party, z: AShare, d: number, c: bigint) => Promise<[RingTensor, RingTensor]>;

const roles: [Role, Role, Role] = [
  // P0 holds (z_0, z_1): A' = (z_0 + z_1) >> d; y_0 = F(k_2) is P0's `prev` key.
  async (p, z, d, c) => {
    const y0 = p.rand.draw("prev", z.shape, c);
    using a = z.cur.add(z.next);
    using aShift = a.shr(d);
    using m0 = aShift.sub(y0);
    const [m1] = await exchange(p.mesh, p.backend, [{ to: 1, tensor: m0 }], [{ from: 1, shape: z.shape }]);
    using _m1 = m1;
    return [y0, m0.add(m1)];
  },
  // P1 holds (z_1, z_2): B' = -((-z_2) >> d); y_2 = F(k_1) is P1's `own` key.
  async (p, z, d, c) => {
    const y2 = p.rand.draw("own", z.shape, c);
    using negB = z.next.neg();
    using shifted = negB.shr(d);
    using bShift = shifted.neg();
    using m1 = bShift.sub(y2);
    const [m0] = await exchange(p.mesh, p.backend, [{ to: 0, tensor: m1 }], [{ from: 0, shape: z.shape }]);
    using _m0 = m0;
    return [m0.add(m1), y2];
  },
  // P2 holds (y_2, y_0) from its keys alone: k_1 is its `prev`, k_2 its `own`.
  async (p, z, _d, c) => {
    await exchange(p.mesh, p.backend, [], []);
    return [p.rand.draw("prev", z.shape, c), p.rand.draw("own", z.shape, c)];
  },
];

export async function truncate(z: AShare, d: number): Promise<AShare> {
  if (!Number.isInteger(d) || d < 0 || d > 63) throw new RangeError(`truncate: ${d} bits outside [0, 63]`);
  const p = z.party;
  const before = p.setStep("truncate");
  try {
    if (p.truncation === "preprocessed" && d > 0) return await truncateWithPairs(z, await p.pairs.take(d, z.size));
    const c = p.rand.nonce();
    const [cur, next] = p.truncation === "corrected"
      ? await truncateCorrectedRole(p, z, d, c, p.rand.nonce())
      : await roles[p.index](p, z, d, c);
    return new AShare(p, cur, next);
  } finally {
    p.setStep(before);
  }
}
