/**
 * 1/sqrt(x) for a shared fixed-point x known (publicly) to lie in [min, max],
 * min > 0 (batch normalization's 1/sqrt(var + eps), Adam's 1/sqrt(v + eps)).
 *
 * 1. Normalization by powers of 4. With K_lo = floor(log4 min) and
 *    K = floor(log4 max), the m = K - K_lo thresholds 4^k, k = K_lo+1..K,
 *    are compared with x in ONE batched comparison (msb of the concatenated
 *    x - 4^k, then one bit injection of the complement): b_k = [x >= 4^k] as
 *    arithmetic 0/1 (b_{K_lo} = 1 and b_{K+1} = 0 are public). The one-hot
 *    o_k = b_k - b_{k+1} selects the k with x in [4^k, 4^(k+1)), and any
 *    public table t_k becomes sum_k o_k t_k = t_{K_lo} + sum_k b_k (t_k - t_{k-1}),
 *    local with integer t_k.
 * 2. z = x 4^-k in [1, 4): x times the integer sum_k o_k 2^(c - 2k), c = max(0, 2K)
 *    (every exponent >= 0, so the table is exact), truncated by c: 1 product,
 *    1 truncation (none when c = 0). The product is z 2^(f + c) < 2^(f + c + 2)
 *    whatever k is, so small x (large 4^-k) never leaves the ring.
 * 3. y_0 = a_0 + a_1 z + a_2 z^2, the minimax fit of max |1 - z y_0^2| on [1, 4]
 *    (0.0481): z^2 (2 rounds), then a_1 z + a_2 z^2 with the coefficients at f
 *    bits in one truncation (1 round).
 * 4. Newton for 1/sqrt(z): y <- y (3 - z y^2) / 2; with e = 1 - z y^2 it maps
 *    e to (3/4) e^2 + (1/4) e^3, so 0.0481 -> 1.8e-3 -> 2.3e-6 (y relative
 *    1.2e-6 = 2^-19.7 after 2 steps). Each step in 4 rounds: [y^2, z y] in one
 *    product and one truncation, then z y^3 = (z y)(y^2), and (3 y 2^f - z y^3)
 *    (both at 2f bits) truncated by f + 1. Steps: 2 for f <= 21, 3 above.
 * 5. 1/sqrt(x) = y 2^-k: y times the integer sum_k o_k 2^(d - k), d = max(0, K),
 *    truncated by d (none when d = 0): 1 product, 1 truncation.
 *
 * Error (tests at f = 16 and 20 over [2^-(f-4), 2^20]): |result - 1/sqrt(x)| <=
 * 2^-(f-4) / sqrt(x) + 2^-f, x read as its fixed-point word: relative error
 * 2^-(f-4) wherever the output's last place allows it (the 2^-f term is that
 * place: 1/sqrt(2^20) = 2^-10 is only 64 ulp at f = 16). Measured on 3,000
 * log-spaced points: for x <= 1 relative 2^-14.5 (f = 16) and 2^-18.3 (f = 20);
 * for x >= 1 the error less one ulp is below 2^-16.8 and 2^-19.5 relative.
 * Truncations fail (Pi_trunc1) with chance about |z| / 2^64; the largest here is
 * the normalization's, z < 2^(f + c + 2), c = 2 floor(log4 max): 2^-26 per
 * element at f = 16 and max 2^20 (2^-22 at f = 20), none with --truncation corrected.
 *
 * Cost (invSqrtCost), with m comparisons and Pi_trunc1: rounds 10 (if m > 0) +
 * 1 + [c > 0] + 3 + 4 s + 1 + [d > 0] (s Newton steps); bytes per element per
 * party m * 37.08 (msb 23.75 + injection 13.33, from every party) plus 8 per
 * product word (z: 1, y_0: 1, a step: 3, the scale: 1) and 8 per truncated
 * word from P0 and P1 only (z: 1, y_0: 2, a step: 3, the scale: 1). E.g. f = 16,
 * [2^-12, 2^20]: m = 16, 25 rounds, 745.3 / 745.3 / 665.3 bytes; the comparisons
 * are 80% of it, so a narrower range is the way to cheaper calls ([1e-3, 10]:
 * m = 6, 25 rounds, 374.5 / 374.5 / 294.5 bytes). A range inside one [4^k, 4^(k+1))
 * needs no comparison and no scaling product: 11 rounds and 120 / 120 / 56 bytes
 * below 4 (c = d = 0), 13 rounds and 136 / 136 / 56 at or above it.
 */
import { encodeFixed } from "../ring/fixed.ts";
import { AShare } from "./arithmetic.ts";
import { injectWords } from "./bitinject.ts";
import { msb, MSB_BITS } from "./msb.ts";
import { mul } from "./multiply.ts";
import type { TruncationMode } from "./party.ts";
import { dreluFromSign } from "./relu.ts";
import { truncate } from "./truncate.ts";

export interface InvSqrtRange {
  min: number;
  max: number;
}

/** Minimax quadratic for 1/sqrt(z) on [1, 4] in the measure max |1 - z y^2| (0.0481). */
export const INV_SQRT_INIT = [1.3350317653106556, -0.41055089592146565, 0.05119044779561838] as const;
const INIT_E = 0.0481;

/** Newton steps so that the approximation's relative error e/2 is at most 2^-(f-2), a quarter of the bound. */
export function invSqrtIterations(fracBits: number): number {
  let e = INIT_E, steps = 0;
  while (e / 2 > 2 ** -(fracBits - 2)) {
    e = 0.75 * e * e + 0.25 * e ** 3;
    steps++;
  }
  return steps;
}

/** The public plan for a range: thresholds k = lo+1..hi, and the shifts c (normalization) and d (scale back). */
export function invSqrtPlan(range: InvSqrtRange, fracBits: number): { lo: number; hi: number; c: number; d: number } {
  const { min, max } = range;
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) {
    throw new RangeError(`invSqrt: the range [${min}, ${max}] must have 0 < min <= max < infinity`);
  }
  if (min * 2 ** fracBits < 1) {
    throw new RangeError(`invSqrt: min ${min} is below one unit in the last place at ${fracBits} fractional bits`);
  }
  let lo = 0, hi = 0; // floor(log4 min), floor(log4 max), exactly
  while (4 ** lo > min) lo--;
  while (4 ** (lo + 1) <= min) lo++;
  hi = lo;
  while (4 ** (hi + 1) <= max) hi++;
  const c = Math.max(0, 2 * hi), d = Math.max(0, hi);
  // the normalization's product is z 2^(f + c) with z < 4; keep it well inside the ring
  if (fracBits + c + 2 > 52) {
    throw new RangeError(`invSqrt: max ${max} is too large at ${fracBits} fractional bits (2^${fracBits + c + 2})`);
  }
  return { lo, hi, c, d };
}

/** Rounds and bytes sent per element by each party [P0, P1, P2] (bytes averaged over the msb's thirds). */
export function invSqrtCost(
  range: InvSqrtRange,
  fracBits = 20,
  truncation: TruncationMode = "local",
): { rounds: number; bytes: [number, number, number] } {
  const { lo, hi, c, d } = invSqrtPlan(range, fracBits);
  const m = hi - lo, steps = invSqrtIterations(fracBits);
  const tr = truncation === "local" ? { rounds: 1, bytes: [8, 8, 0] } : { rounds: 2, bytes: [16, 8, 8] };
  let rounds = 0;
  const bytes = [0, 0, 0];
  const product = (words: number) => (rounds++, bytes.forEach((_, i) => bytes[i] += 8 * words));
  const trunc = (words: number) => (rounds += tr.rounds, bytes.forEach((_, i) => bytes[i] += tr.bytes[i] * words));
  if (m > 0) {
    rounds += 10;
    bytes.forEach((_, i) => bytes[i] += m * (MSB_BITS.input[i] / 8 + 8 * injectWords(1)));
    product(1);
  }
  if (c > 0) trunc(1);
  product(1), trunc(1), trunc(1); // y_0
  for (let s = 0; s < steps; s++) product(2), trunc(2), product(1), trunc(1);
  if (m > 0) product(1);
  if (d > 0) trunc(1);
  return { rounds, bytes: bytes as [number, number, number] };
}

/** Rounds of invSqrt over this range (invSqrtCost's). */
export function invSqrtRounds(range: InvSqrtRange, fracBits = 20, truncation: TruncationMode = "local"): number {
  return invSqrtCost(range, fracBits, truncation).rounds;
}

/** 1/sqrt(x) for a shared x known (publicly) to lie in [min, max], min > 0; error as in the header. */
export async function invSqrt(input: AShare, range: InvSqrtRange): Promise<AShare> {
  const p = input.party;
  const f = p.fracBits;
  const { lo, hi, c, d } = invSqrtPlan(range, f);
  const n = input.size, m = hi - lo;
  const before = p.setStep("inverse square root");
  try {
    using x = input.reshape([n]);
    const pow2 = (e: number) => 1n << BigInt(e);
    // table(t): the sharing of sum_k o_k t(k), or null when m = 0 (then it is the public t(lo))
    let table: (t: (k: number) => bigint) => AShare | null = () => null;
    let bits: AShare | null = null;
    if (m > 0) {
      const shifted = Array.from(
        { length: m },
        (_, j) => x.addPublic(BigInt.asUintN(64, -encodeFixed(4 ** (lo + 1 + j), f))),
      );
      using all = AShare.concat(shifted, 0);
      shifted.forEach((s) => s.dispose());
      using sign = await msb(all);
      bits = await dreluFromSign(sign, all); // b_k = [x >= 4^k], k = lo+1..hi, each a run of n
      const b = bits;
      table = (t) => {
        using zero = x.mulPublic(0n);
        let acc = zero.addPublic(BigInt.asUintN(64, t(lo)));
        for (let j = 0; j < m; j++) {
          const k = lo + 1 + j;
          using run = b.slice(0, j * n, (j + 1) * n);
          using term = run.mulPublic(BigInt.asUintN(64, t(k) - t(k - 1)));
          using prev = acc;
          acc = prev.add(term);
        }
        return acc;
      };
    }
    try {
      // z = x 4^-k at f bits
      const scaled = async (v: AShare, t: (k: number) => bigint, shift: number) => {
        const w = table(t);
        let prod: AShare;
        if (w) {
          using _w = w;
          prod = await mul(v, w);
        } else prod = v.mulPublic(t(lo));
        if (shift === 0) return prod;
        using _p = prod;
        return await truncate(prod, shift);
      };
      using z = await scaled(x, (k) => pow2(c - 2 * k), c);
      // y_0 = a_0 + a_1 z + a_2 z^2
      const [a0, a1, a2] = INV_SQRT_INIT;
      using zz = await mul(z, z);
      using z2 = await truncate(zz, f);
      using t1 = z.mulPublic(encodeFixed(a1, f)), t2 = z2.mulPublic(encodeFixed(a2, f));
      using lin = t1.add(t2);
      using linT = await truncate(lin, f);
      let y = linT.addPublic(encodeFixed(a0, f));
      for (let s = 0; s < invSqrtIterations(f); s++) {
        using prev = y;
        using left = AShare.concat([prev, z], 0), right = AShare.concat([prev, prev], 0);
        using pairRaw = await mul(left, right);
        using pair = await truncate(pairRaw, f);
        using y2 = pair.slice(0, 0, n), zy = pair.slice(0, n, 2 * n);
        using zy3 = await mul(zy, y2); // z y^3 at 2f bits
        using three = prev.mulPublic(3n << BigInt(f)); // 3 y at 2f bits
        using diff = three.sub(zy3);
        y = await truncate(diff, f + 1);
      }
      using yf = y;
      using out = await scaled(yf, (k) => pow2(d - k), d);
      return out.reshape(input.shape);
    } finally {
      bits?.dispose();
    }
  } finally {
    p.setStep(before);
  }
}
