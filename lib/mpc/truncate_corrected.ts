/**
 * Truncation by d bits that corrects the wrap Pi_trunc1 misses (protocols.md,
 * "wrap-corrected truncation"). Pi_trunc1 shifts a 2-out-of-2 sharing
 * z = A - C (P0 holds A = z_0 + z_1, P1 holds C = -z_2) locally:
 *   A >> d - C >> d = (A - C) / 2^d + (-1, 1),
 * which is z / 2^d only when the integer A - C equals z. For |z| < 2^62 it is
 * otherwise z -+ 2^64, and the top two bits a of A and c of C tell which:
 *   A - C = z - 2^64  iff  a = 0 and c = 3     (correction +2^(64-d))
 *   A - C = z + 2^64  iff  a = 3 and c = 0     (correction -2^(64-d))
 * so the correction is delta 2^(64-d) with delta = (c_hi - a_hi) x, where
 * x = [a_hi = a_lo] is P0's and c_hi is known to P1 and P2 (both hold z_2).
 * P0 offers P1 both candidates M_b = A >> d - y_0 + (b - a_hi) x 2^(64-d),
 * b in {0, 1}, masked by w_0, w_1 from the key P0 shares with P2, and P2 hands
 * P1 the mask w_{c_hi} (ABY3's three-party oblivious transfer): P1 learns
 * M_{c_hi}, uniformly masked by y_0, and nothing of the other.
 *   round 1: P0 -> P1 two words, P2 -> P1 one word;
 *   round 2: P1 -> P0 one word, y_1 = M_{c_hi} + (-(C >> d) - y_2).
 * 2 rounds, 4 words per element in all (Pi_trunc1: 1 round, 2 words), and no
 * failure for any |z| < 2^62; the result is floor(z / 2^d) + {0, 1} like
 * Pi_trunc1's.
 */
import { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import type { Party } from "./party.ts";
import { exchange } from "./transfer.ts";

type Role = (p: Party, z: AShare, d: number, c: bigint, cMask: bigint) => Promise<[RingTensor, RingTensor]>;

/** c 2^(64-d) for 0/1 words c (zero when d = 0: the shift is then exact). */
function atWrap(bits: RingTensor, d: number): RingTensor {
  return d === 0 ? bits.mul(0n) : bits.shl(64 - d);
}

/** m_0 + c (m_1 - m_0) for 0/1 words c. */
function choose(m0: RingTensor, m1: RingTensor, c: RingTensor): RingTensor {
  using diff = m1.sub(m0);
  using picked = diff.mul(c);
  return m0.add(picked);
}

const roles: [Role, Role, Role] = [
  // P0: A = z_0 + z_1; y_0 = F(k_2) and the masks w from its `prev` key (common with P2).
  async (p, z, d, c, cMask) => {
    using y0 = p.rand.draw("prev", z.shape, c);
    using w = p.rand.draw("prev", [2 * z.size], cMask);
    using a = z.cur.add(z.next);
    using aShift = a.shr(d);
    using m = aShift.sub(y0);
    using aHi = a.bit(63), aLo = a.bit(62);
    using differ = aHi.xor(aLo);
    using x = differ.xor(1n);
    using hiX = aHi.and(x); // a_hi x:        delta = -a_hi x      when c_hi = 0
    using loX = x.sub(hiX); // (1 - a_hi) x:  delta = (1 - a_hi) x when c_hi = 1
    using down = atWrap(hiX, d), up = atWrap(loX, d);
    using m0 = m.sub(down), m1 = m.add(up);
    using f0 = m0.reshape([z.size]), f1 = m1.reshape([z.size]);
    using both = RingTensor.concat([f0, f1], 0);
    using masked = both.add(w);
    await exchange(p.mesh, p.backend, [{ to: 1, tensor: masked }], []);
    const [y1] = await exchange(p.mesh, p.backend, [], [{ from: 1, shape: z.shape }]);
    return [y0.clone(), y1];
  },
  // P1: C = -z_2; y_2 = F(k_1) from its `own` key (common with P2).
  async (p, z, d, c, _cMask) => {
    const y2 = p.rand.draw("own", z.shape, c);
    using cc = z.next.neg();
    using cShift = cc.shr(d);
    using bShift = cShift.neg();
    using mine = bShift.sub(y2);
    using cHi = cc.bit(63);
    const [offers, wChosen] = await exchange(p.mesh, p.backend, [], [
      { from: 0, shape: [2 * z.size] },
      { from: 2, shape: z.shape },
    ]);
    using _o = offers, _w = wChosen;
    using o0 = offers.slice(0, 0, z.size), o1 = offers.slice(0, z.size, 2 * z.size);
    using picked = choose(o0.reshape(z.shape), o1.reshape(z.shape), cHi);
    using theirs = picked.sub(wChosen);
    const y1 = theirs.add(mine);
    try {
      await exchange(p.mesh, p.backend, [{ to: 0, tensor: y1 }], []);
    } catch (e) {
      y1.dispose();
      throw e;
    }
    return [y1, y2];
  },
  // P2: holds z_2, hence c_hi; hands P1 the mask of the candidate it may open.
  async (p, z, _d, c, cMask) => {
    using w = p.rand.draw("own", [2 * z.size], cMask);
    using cc = z.cur.neg();
    using cHi = cc.bit(63);
    using w0 = w.slice(0, 0, z.size), w1 = w.slice(0, z.size, 2 * z.size);
    using chosen = choose(w0.reshape(z.shape), w1.reshape(z.shape), cHi);
    await exchange(p.mesh, p.backend, [{ to: 1, tensor: chosen }], []);
    await exchange(p.mesh, p.backend, [], []);
    return [p.rand.draw("prev", z.shape, c), p.rand.draw("own", z.shape, c)];
  },
];

/** Each party's part; `c` draws the output shares, `cMask` the transfer's masks. */
export function truncateCorrectedRole(
  p: Party,
  z: AShare,
  d: number,
  c: bigint,
  cMask: bigint,
): Promise<[RingTensor, RingTensor]> {
  return roles[p.index](p, z, d, c, cMask);
}
