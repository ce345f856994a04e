/**
 * ln(s) for a shared fixed-point s known (publicly) to lie in [1, d] (the
 * softmax denominator after the max subtraction; d = the number of classes),
 * by normalization with powers of 2 and a polynomial on [1, 2]:
 *
 * 1. With K = floor(log2 d), the K thresholds 2^j, j = 1..K, are compared with
 *    s in ONE batched comparison (msb of the concatenated s - 2^j, then one bit
 *    injection of the complement): b_j = [s >= 2^j] as arithmetic 0/1, so the
 *    k with s in [2^k, 2^(k+1)) is sum_j b_j and any public table t(k) is
 *    t(0) + sum_j b_j (t(j) - t(j-1)), local.
 * 2. z = s 2^-k in [1, 2]: s times the integer table 2^(K - k), truncated by K
 *    (1 product, 1 truncation). The product is z 2^(f + K) < 2^(f + K + 1).
 * 3. ln z = P(u), u = z - 1 in [0, 1]: P(u) = a0 + a1 u + a2 u^2 + a3 u^3 - u^4 / 16,
 *    the minimax fit with the quartic coefficient held at -1/16 (max error
 *    9.1e-5; a free one gives 6.1e-5). In 4 rounds:
 *      u u (1 product), then u^2 and a3 u in one truncation by f (1 round),
 *      [u^2 (a2 + a3 u), u^2 u^2] in one product (1 round), and
 *      16 a1 u 2^f + 16 u^2 (a2 + a3 u) - u^2 u^2 (all at 2f + 4 bits) truncated by f + 4 (1 round).
 * 4. ln s = P(u) + table(round(k ln 2 2^f)) (local; exact to half an ulp per k).
 * No exp is involved, so nothing constrains the sign of any intermediate.
 *
 * Error: |result - ln s| <= LN_ERROR_BOUND = 3e-4 at f = 16 and 20 for s in [1, d],
 * d from 1 to 1000 (the fit's 9.1e-5 plus a few ulps of rounding: the normalization's
 * truncation, u^2's, a3 u's and the last one; at f = 16 an ulp is 1.5e-5). Measured
 * (tests/nn/ln_test.ts, ~450 points each for d = 2, 10, 200, 1000): worst 1.17e-4 at
 * f = 16 and 9.2e-5 at f = 20, the chord's worst point (d - 1) / ln d included. Inputs a little
 * outside [1, d] (s = 1 - 1e-4 from exp's rounding) extrapolate P smoothly.
 * Truncations fail (Pi_trunc1) with chance about |z| / 2^64; the largest here is the
 * last, |z| < 2^(2f + 4): 2^-20 per element at f = 20 (2^-28 at f = 16), none with
 * --truncation corrected or preprocessed.
 *
 * Rounds (lnRounds), with T the rounds of a truncation (1 local or preprocessed, 2 corrected):
 * 10 + 1 + T (comparison and normalization, when K > 0) + 2 + 2T (the polynomial).
 * Local truncation: 16 rounds for 2 <= d < 1024 (4 for d < 2), where the former Newton
 * iteration on exp from the chord took 1 + 5 x 30 = 151 (and was off by several units
 * for d = 200: the chord lies 2.66 below ln s near s = 38).
 */
import { AShare } from "../mpc/arithmetic.ts";
import { msb } from "../mpc/msb.ts";
import { mul } from "../mpc/multiply.ts";
import type { TruncationMode } from "../mpc/party.ts";
import { dreluFromSign } from "../mpc/relu.ts";
import { truncate } from "../mpc/truncate.ts";
import { encodeFixed } from "../ring/fixed.ts";

/** P(u) = a0 + a1 u + a2 u^2 + a3 u^3 + LN_A4 u^4 ~ ln(1 + u) on [0, 1], max error 9.1e-5. */
export const LN_POLY = [-7.282149085256969e-05, 0.9988002562649263, -0.4768697260189386, 0.23369880159038586] as const;
/** The quartic coefficient, -1/2^LN_A4_SHIFT, so that its term needs no coefficient product. */
const LN_A4_SHIFT = 4;
export const LN_A4 = -(2 ** -LN_A4_SHIFT);

/** The stated bound on |lnBounded(s, d) - ln s| over [1, d], d <= 1000, at f = 16 and 20. */
export const LN_ERROR_BOUND = 3e-4;

/** The largest supported d (the normalization's product z 2^(f + K) must stay far inside the ring). */
export const LN_MAX_BOUND = 2 ** 20;

/** K = floor(log2 d), exactly. */
function lnThresholds(d: number): number {
  if (!(d >= 1) || !(d <= LN_MAX_BOUND)) throw new RangeError(`ln: the input bound ${d} must lie in [1, 2^20]`);
  let k = 0;
  while (2 ** (k + 1) <= d) k++;
  return k;
}

/** Rounds of lnBounded(·, d): 10 + 1 + T (when d >= 2) + 2 + 2T, T = rounds of a truncation. */
export function lnRounds(d: number, truncation: TruncationMode = "local"): number {
  const k = lnThresholds(d), t = truncation === "corrected" ? 2 : 1;
  return (k > 0 ? 10 + 1 + t : 0) + 2 + 2 * t;
}

export async function lnBounded(input: AShare, d: number): Promise<AShare> {
  const p = input.party, f = p.fracBits;
  const K = lnThresholds(d);
  const n = input.size;
  const before = p.setStep("ln");
  try {
    using s = input.reshape([n]);
    const one = encodeFixed(1, f);
    // b_j = [s >= 2^j], j = 1..K, each a run of n (null when K = 0)
    let bits: AShare | null = null;
    if (K > 0) {
      const shifted = Array.from(
        { length: K },
        (_, j) => s.addPublic(BigInt.asUintN(64, -encodeFixed(2 ** (j + 1), f))),
      );
      using all = AShare.concat(shifted, 0);
      shifted.forEach((x) => x.dispose());
      using sign = await msb(all);
      bits = await dreluFromSign(sign, all);
    }
    try {
      /** The sharing of sum_k o_k t(k) (t(k) integers), or a public t(0) as a sharing when K = 0. */
      const table = (t: (k: number) => bigint): AShare => {
        using zero = s.mulPublic(0n);
        let acc = zero.addPublic(BigInt.asUintN(64, t(0)));
        for (let j = 1; j <= K; j++) {
          using run = bits!.slice(0, (j - 1) * n, j * n);
          using term = run.mulPublic(BigInt.asUintN(64, t(j) - t(j - 1)));
          using prev = acc;
          acc = prev.add(term);
        }
        return acc;
      };
      // z = s 2^-k at f bits
      let z: AShare;
      if (K > 0) {
        using w = table((k) => 1n << BigInt(K - k));
        using prod = await mul(s, w);
        z = await truncate(prod, K);
      } else z = s.map((x) => x.clone());
      using _z = z;
      using u = z.addPublic(BigInt.asUintN(64, -one));
      // P(u) in 4 rounds
      const [a0, a1, a2, a3] = LN_POLY;
      using uu = await mul(u, u);
      using a3u = u.mulPublic(BigInt.asUintN(64, encodeFixed(a3, f)));
      using pairRaw = AShare.concat([uu, a3u], 0);
      using pair = await truncate(pairRaw, f);
      using u2 = pair.slice(0, 0, n), v = pair.slice(0, n, 2 * n);
      using inner = v.addPublic(BigInt.asUintN(64, encodeFixed(a2, f))); // a2 + a3 u
      using left = AShare.concat([u2, u2], 0), right = AShare.concat([inner, u2], 0);
      using prods = await mul(left, right); // [u^2 (a2 + a3 u), u^4] at 2f bits
      using cubic = prods.slice(0, 0, n), quartic = prods.slice(0, n, 2 * n);
      const scale = 1n << BigInt(LN_A4_SHIFT);
      using linear = u.mulPublic(BigInt.asUintN(64, encodeFixed(a1, f) * scale)); // a1 u at 2f + 4
      using cubicS = cubic.mulPublic(scale);
      using lc = linear.add(cubicS);
      using sum = lc.sub(quartic); // P(u) - a0 at 2f + 4 bits
      using poly = await truncate(sum, f + LN_A4_SHIFT);
      // + a0 + k ln 2 (the table rounds each k ln 2 to f bits)
      using kln2 = table((k) => BigInt(Math.round(k * Math.LN2 * 2 ** f)));
      using withK = poly.add(kln2);
      using out = withK.addPublic(BigInt.asUintN(64, encodeFixed(a0, f)));
      return out.reshape(input.shape);
    } finally {
      bits?.dispose();
    }
  } finally {
    p.setStep(before);
  }
}
