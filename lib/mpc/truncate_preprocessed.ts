/**
 * Exact truncation in one round from preprocessed pairs (truncation_pairs.ts:
 * r uniform, top = r_63, mid = floor((r mod 2^63) / 2^d)).
 *
 * For |z| < 2^62, u = z + 2^62 lies in [0, 2^63). Open c = u + r (uniform:
 * r is). With r_low = r mod 2^63, S = u + r_low < 2^64 does not wrap, and its
 * bit 63 is w = c_63 ^ top, so S = (c mod 2^63) + 2^63 w and
 *   floor(u / 2^d) = floor((c mod 2^63) / 2^d) + 2^(63-d) w - mid - e,
 * where e = 1 exactly when the low d bits of c are below those of r_low, which
 * happens with probability (u mod 2^d) / 2^d. With w = c_63 + (1 - 2 c_63) top
 * (c_63 public) the result is linear in the pair:
 *   y = floor((c mod 2^63) / 2^d) + 2^(63-d) (c_63 + (1 - 2 c_63) top) - mid - 2^(62-d)
 *     = floor(z / 2^d) + {0, 1},
 * the last place of Pi_trunc1 and of the corrected truncation, never failing.
 *
 * Opened alone (truncate): c = reveal([[z]] + 2^62 + [[r]]), 1 round, 1 word
 * per element from every party. Fused with the product before it
 * (mulTruncate): every party's 3-out-of-3 product share z'_i plus its zero
 * share a_i and r_i goes to both others, whose sum is c: the fixed-point
 * product in 1 round instead of 2, 2 words per element from every party. Each
 * message hides under a key its receiver lacks (a_i under k_i for P_prev(i),
 * under k_prev(i) for P_next(i)), and the two a party receives add up to c
 * minus its own: nothing beyond c, which r makes uniform.
 */
import type { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import type { Bilinear } from "./multiply.ts";
import { localProduct } from "./local_steps.ts";
import { reveal } from "./reveal.ts";
import { exchange } from "./transfer.ts";
import { disposePairs, type TruncationPairs } from "./truncation_pairs.ts";

const LOW63 = (1n << 63n) - 1n;
const HALF = 1n << 62n;

/** [[floor(z / 2^d) + {0, 1}]] for |z| < 2^62, from an opened c = z + 2^62 + r (public, z's shape). */
export function fromOpened(c: RingTensor, pairs: TruncationPairs): AShare {
  const d = pairs.d;
  using cTop = c.shr(63);
  using cLow = c.and(LOW63);
  using cHigh = cLow.shr(d);
  using topAt = cTop.shl(63 - d);
  using pub = cHigh.add(topAt);
  using pubShifted = pub.sub(1n << BigInt(62 - d));
  // (1 - 2 c_63) 2^(63-d): +2^(63-d) where c_63 = 0, -2^(63-d) where it is 1
  using twice = cTop.shl(64 - d);
  using minusTwice = twice.neg();
  using coef = minusTwice.add(1n << BigInt(63 - d));
  using top = pairs.top.reshape(c.shape), mid = pairs.mid.reshape(c.shape);
  using w = top.mulPublic(coef);
  using diff = w.sub(mid);
  return diff.addPublic(pubShifted);
}

/** Truncation of a replicated [[z]] by pairs.d bits with z.size pairs (taken over and disposed), 1 round. */
export async function truncateWithPairs(z: AShare, pairs: TruncationPairs): Promise<AShare> {
  try {
    using r = pairs.r.reshape(z.shape);
    using masked = z.add(r);
    using shifted = masked.addPublic(HALF);
    using c = await reveal(shifted);
    return fromOpened(c, pairs);
  } finally {
    disposePairs(pairs);
  }
}

/**
 * The fixed-point product [[floor((x o y) / 2^d) + {0, 1}]] in 1 round: the
 * multiplication's local 3-out-of-3 shares, masked by r and opened to all.
 * `take` gives the pairs for the product's shape (taken over and disposed).
 */
export async function mulTruncate(
  x: AShare,
  y: AShare,
  op: Bilinear,
  take: (shape: number[]) => Promise<TruncationPairs>,
): Promise<AShare> {
  const p = x.party;
  using t = localProduct([x.cur, x.next], [y.cur, y.next], op);
  const shape = [...t.shape];
  // The pairs are taken before this party's zero share is drawn, by every party alike.
  const pairs = await take(shape);
  const before = p.setStep("multiply and truncate");
  try {
    using r = pairs.r.reshape(shape);
    using a = p.rand.zeroShare(shape);
    using ta = t.add(a);
    using mine = ta.add(r.cur);
    using sent = p.index === 0 ? mine.add(HALF) : mine.clone();
    const got = await exchange(p.mesh, p.backend, [{ to: p.next, tensor: sent }, { to: p.prev, tensor: sent }], [
      { from: p.next, shape },
      { from: p.prev, shape },
    ]);
    using g0 = got[0], g1 = got[1];
    using partial = sent.add(g0);
    using c = partial.add(g1);
    return fromOpened(c, pairs);
  } finally {
    disposePairs(pairs);
    p.setStep(before);
  }
}
