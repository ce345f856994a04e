/**
 * 1/sqrt(x) for a shared fixed-point x known (publicly) to lie in [min, max],
 * min > 0 (batch normalization's 1/sqrt(var + eps), Adam's 1/sqrt(v + eps)).
 * invSqrtPlan picks, per call, a base b = 4^j (4 or 16) and a start from
 * INV_SQRT_STARTS: the one with the fewest bytes from P0 (then rounds) for the
 * range, f and truncation protocol (invSqrtCost gives every candidate's cost).
 *
 * 1. Normalization by powers of b. With K_lo = floor(log_b min) and
 *    K = floor(log_b max), the m = K - K_lo thresholds b^k, k = K_lo+1..K,
 *    are compared with x in ONE batched comparison (msb of the concatenated
 *    x - b^k, then one bit injection of the complement): b_k = [x >= b^k] as
 *    arithmetic 0/1 (b_{K_lo} = 1 and b_{K+1} = 0 are public). The one-hot
 *    o_k = b_k - b_{k+1} selects the k with x in [b^k, b^(k+1)), and any
 *    public table t_k becomes sum_k o_k t_k = t_{K_lo} + sum_k b_k (t_k - t_{k-1}),
 *    local with integer t_k. Base 16 needs half the thresholds of base 4.
 * 2. z = x b^-k 2^-s: z in [1, 4) for base 4 (s = 0), in [1/4, 4) for base 16
 *    (s = 2, so z^2 < 16 either way): x times the integer sum_k o_k 2^(c - 2jk - s),
 *    c = max(0, 2jK + s) (every exponent >= 0, so the table is exact), truncated
 *    by c: 1 product, 1 truncation (none when c = 0). The product is z 2^(f + c)
 *    < 2^(f + c + 2) whatever k is, so small x (large b^-k) never leaves the ring.
 * 3. y_0, a minimax fit of max |1 - z y_0^2| written as a product of F quadratic
 *    factors a_i0 + a_i1 z + a_i2 z^2: z^2 (2 rounds), the F factors in one
 *    truncation (coefficients at 2^-max(f, 18), the words q_i 2^(f + max(f, 18))
 *    with q_i < 6), then a product tree (2 rounds a level). The starts: base 4
 *    quadratic (F = 1, 0.0481) and quartic (F = 2, 0.0044), base 16 sextic
 *    (F = 3, 0.0285) and octic (F = 4, 0.0099), each e an upper bound on the fit
 *    with the rounding at f = 16. Start cost: F product words, 2F truncated
 *    words, 3 + 2 ceil(log2 F) rounds.
 * 4. Newton for 1/sqrt(z): y <- y (3 - z y^2) / 2; with e = 1 - z y^2 it maps
 *    e to (3/4) e^2 + (1/4) e^3 (0.0481 -> 1.8e-3 -> 2.3e-6; 0.0099 -> 7.4e-5;
 *    0.0285 -> 6.2e-4 -> 2.9e-7). Each step in 4 rounds: [y^2, z y] in one
 *    product and one truncation, then z y^3 = (z y)(y^2), and (3 y 2^f - z y^3)
 *    (both at 2f bits) truncated by f + 1. Steps (invSqrtIterations): the fewest
 *    with e/2 <= 2^-(f-2); quadratic 2 for f <= 21, quartic 1 for f <= 19,
 *    sextic 2 for f <= 24, octic 1 for f = 16 (2 above).
 * 5. 1/sqrt(x) = y 2^(-jk - s/2): y times the integer sum_k o_k 2^(d - jk - s/2),
 *    d = max(0, jK + s/2), truncated by d (none when d = 0): 1 product, 1 truncation.
 *
 * Error (tests at f = 16 and 20 over [2^-(f-4), 2^20], every start, and over the
 * narrower ranges): |result - 1/sqrt(x)| <= 2^-(f-4) / sqrt(x) + 2^-f, x read as
 * its fixed-point word: relative error 2^-(f-4) wherever the output's last place
 * allows it (the 2^-f term is that place: 1/sqrt(2^20) = 2^-10 is only 64 ulp at
 * f = 16). Measured on 3,000 log-spaced points (the worst of two runs; the
 * truncations' rounding is random), relative for x <= 1 / error less one ulp
 * relative for x >= 1: f = 16, the octic chosen there: 2^-13.8 / 2^-14.4 (the
 * quadratic: 2^-14.5 / 2^-15.7); f = 20, the sextic: 2^-18.3 / 2^-19.9.
 * Truncations fail (Pi_trunc1) with chance about |z| / 2^64; the largest words
 * truncated here are the normalization's z 2^(f + c + 2) (c about log2 max: 2^-26
 * per element at f = 16 and max 2^20) and z^2 < 2^(2f + 4) (2^-28 at f = 16, 2^-20
 * at f = 20); the factors' words (< 6 2^(f + max(f, 18))), the tree's products
 * (< 14 2^(2f)) and Newton's (about 4 2^(2f)) are smaller. None with --truncation corrected.
 *
 * Cost (invSqrtCost), with m comparisons and Pi_trunc1: rounds 10 (if m > 0) +
 * 1 + [c > 0] + 3 + 2 ceil(log2 F) + 4 s + 1 + [d > 0] (s Newton steps); bytes
 * per element per party m * 37.08 (msb 23.75 + injection 13.33, from every
 * party) plus 8 per product word (z: 1, y_0: F, a step: 3, the scale: 1) and 8
 * per truncated word from P0 and P1 only (z: 1, y_0: 2F, a step: 3, the scale:
 * 1). E.g. f = 16, Adam's [0.064, 4096.064]: base 16, m = 4 and the octic with 1
 * step, 25 rounds, 324.3 / 324.3 / 220.3 bytes (base 4 and the quadratic: m = 8,
 * 25 rounds, 448.7 / 448.7 / 368.7); at f = 20 the sextic with 2 steps, 29 rounds,
 * 348.3 / 348.3 / 236.3. Batch normalization's [1e-3, 10]: m = 3, 25 rounds and
 * 287.3 bytes at f = 16 (29 rounds, 311.3 at f = 20; base 4: m = 6, 25 rounds,
 * 374.5). A range inside one [4^k, 4^(k+1)) needs no comparison and no scaling
 * product: at f = 16 the quartic and 1 step, 9 rounds and 96 / 96 / 40 bytes
 * below 4 (c = d = 0), 11 rounds and 112 / 112 / 40 at or above it; at f = 20 the
 * quadratic and 2 steps, 11 rounds and 120 / 120 / 56 (13, 136 / 136 / 56).
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

/**
 * A starting guess: thresholds base^k, z normalized into [2^-shift, base 2^-shift), and y_0 the product of the
 * quadratics factors[i] = [a0, a1, a2] (a0 + a1 z + a2 z^2), with max |1 - z y_0^2| <= e on that interval (the
 * minimax fit in that measure, measured with the fixed-point rounding at f = 16).
 */
export interface InvSqrtStart {
  readonly base: 4 | 16;
  readonly shift: 0 | 2;
  readonly factors: readonly (readonly [number, number, number])[];
  readonly e: number;
}

/** Minimax quadratic for 1/sqrt(z) on [1, 4] in the measure max |1 - z y^2| (0.0481). */
export const INV_SQRT_INIT = [1.3350317653106556, -0.41055089592146565, 0.05119044779561838] as const;

/** The starts invSqrtPlan chooses from (the cheapest in bytes for the range and f, then the fewest rounds). */
export const INV_SQRT_STARTS: readonly InvSqrtStart[] = [
  // quadratic on [1, 4): 0.0481
  { base: 4, shift: 0, factors: [INV_SQRT_INIT], e: 0.0481 },
  // quartic on [1, 4): 0.0042 (0.0044 with the rounding at f = 16)
  {
    base: 4,
    shift: 0,
    factors: [
      [2.5565303376119908, -0.8846880073023637, 0.08646260165857944],
      [0.6841348075134562, -0.2025499987593975, 0.08593908115267658],
    ],
    e: 0.0044,
  },
  // sextic on [1/4, 4): 0.0280 (0.0284)
  {
    base: 16,
    shift: 2,
    factors: [
      [5.405632467166988, -2.4609769833482953, 0.2875329594628592],
      [1.8549607880653929, -1.0945563515734802, 0.21928922512112614],
      [0.2971985711059982, -0.21897505858632113, 0.23434509635635292],
    ],
    e: 0.0285,
  },
  // octic on [1/4, 4): 0.0090 (0.0099)
  {
    base: 16,
    shift: 2,
    factors: [
      [6.72552814135419, -3.0632392663215, 0.35364053666984624],
      [2.5879213130441663, -1.3942971223675866, 0.21691587559931386],
      [0.9980680168659228, -0.7246976291383346, 0.23198455487523037],
      [0.19472319521947243, -0.142786477696212, 0.2987599172784777],
    ],
    e: 0.0099,
  },
];

/** The factors' coefficients are applied at 2^-max(f, 18) (the octic's need a little more than 2^-16 at f = 16). */
const coefBits = (f: number) => Math.max(f, 18);

/**
 * Newton steps so that the approximation's relative error e/2 is at most 2^-(f-2), a quarter of the bound, from a
 * start with |1 - z y_0^2| <= e (the quadratic on [1, 4) by default).
 */
export function invSqrtIterations(fracBits: number, e: number = INV_SQRT_STARTS[0].e): number {
  let steps = 0;
  while (e / 2 > 2 ** -(fracBits - 2)) {
    e = 0.75 * e * e + 0.25 * e ** 3;
    steps++;
  }
  return steps;
}

/**
 * The public plan for a range: the start (index into INV_SQRT_STARTS) and its base b = 4^j, thresholds b^k for
 * k = lo+1..hi (m = hi - lo), the shifts c (normalization: z = x b^-k 2^-shift) and d (scale back by
 * 2^(-j k - shift/2)), and the Newton steps.
 */
export interface InvSqrtPlan {
  start: number;
  base: 4 | 16;
  lo: number;
  hi: number;
  m: number;
  c: number;
  d: number;
  steps: number;
}

function planFor(range: InvSqrtRange, fracBits: number, start: number): InvSqrtPlan | RangeError {
  const { min, max } = range;
  const s = INV_SQRT_STARTS[start];
  if (!s) return new RangeError(`invSqrt: no start ${start}`);
  const { base, shift } = s, j = base === 4 ? 1 : 2;
  let lo = 0, hi = 0; // floor(log_b min), floor(log_b max), exactly
  while (base ** lo > min) lo--;
  while (base ** (lo + 1) <= min) lo++;
  hi = lo;
  while (base ** (hi + 1) <= max) hi++;
  const c = Math.max(0, 2 * j * hi + shift), d = Math.max(0, j * hi + shift / 2);
  // the normalization's product is z 2^(f + c) with z < base 2^-shift; keep it well inside the ring
  const top = fracBits + c + 2 * j - shift;
  if (top > 52) return new RangeError(`invSqrt: max ${max} is too large at ${fracBits} fractional bits (2^${top})`);
  return { start, base, lo, hi, m: hi - lo, c, d, steps: invSqrtIterations(fracBits, s.e) };
}

/** A truncation's rounds and bytes per element from each party (preprocessed: online, from a full pool). */
const TRUNCATION_COST: Record<TruncationMode, { rounds: number; bytes: number[] }> = {
  local: { rounds: 1, bytes: [8, 8, 0] },
  corrected: { rounds: 2, bytes: [16, 8, 8] },
  preprocessed: { rounds: 1, bytes: [8, 8, 8] },
};

function costOf(plan: InvSqrtPlan, truncation: TruncationMode): { rounds: number; bytes: [number, number, number] } {
  const { m, c, d, steps } = plan, factors = INV_SQRT_STARTS[plan.start].factors.length;
  const tr = TRUNCATION_COST[truncation];
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
  product(1), trunc(1), trunc(factors); // z^2, the factors
  for (let q = factors; q > 1; q -= Math.floor(q / 2)) product(Math.floor(q / 2)), trunc(Math.floor(q / 2));
  for (let i = 0; i < steps; i++) product(2), trunc(2), product(1), trunc(1);
  if (m > 0) product(1);
  if (d > 0) trunc(1);
  return { rounds, bytes: bytes as [number, number, number] };
}

/**
 * The plan invSqrt runs for this range: the given start, or of those whose normalization fits the ring the one
 * with the fewest bytes from P0 (then the fewest rounds) under this truncation.
 */
export function invSqrtPlan(
  range: InvSqrtRange,
  fracBits: number,
  truncation: TruncationMode = "local",
  start?: number,
): InvSqrtPlan {
  const { min, max } = range;
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) {
    throw new RangeError(`invSqrt: the range [${min}, ${max}] must have 0 < min <= max < infinity`);
  }
  if (min * 2 ** fracBits < 1) {
    throw new RangeError(`invSqrt: min ${min} is below one unit in the last place at ${fracBits} fractional bits`);
  }
  if (start !== undefined) {
    const plan = planFor(range, fracBits, start);
    if (plan instanceof RangeError) throw plan;
    return plan;
  }
  let best: { plan: InvSqrtPlan; rounds: number; bytes: number } | null = null, error: RangeError | null = null;
  for (let i = 0; i < INV_SQRT_STARTS.length; i++) {
    const plan = planFor(range, fracBits, i);
    if (plan instanceof RangeError) {
      error ??= plan;
      continue;
    }
    const cost = costOf(plan, truncation), bytes = cost.bytes[0];
    if (!best || bytes < best.bytes - 1e-9 || (Math.abs(bytes - best.bytes) <= 1e-9 && cost.rounds < best.rounds)) {
      best = { plan, rounds: cost.rounds, bytes };
    }
  }
  if (!best) throw error!;
  return best.plan;
}

/** Rounds and bytes sent per element by each party [P0, P1, P2] (bytes averaged over the msb's thirds), and the plan. */
export function invSqrtCost(
  range: InvSqrtRange,
  fracBits = 20,
  truncation: TruncationMode = "local",
  start?: number,
): { rounds: number; bytes: [number, number, number]; plan: InvSqrtPlan } {
  const plan = invSqrtPlan(range, fracBits, truncation, start);
  return { ...costOf(plan, truncation), plan };
}

/** Rounds of invSqrt over this range (invSqrtCost's). */
export function invSqrtRounds(range: InvSqrtRange, fracBits = 20, truncation: TruncationMode = "local"): number {
  return invSqrtCost(range, fracBits, truncation).rounds;
}

/**
 * 1/sqrt(x) for a shared x known (publicly) to lie in [min, max], min > 0; error as in the header. `start` forces
 * one of INV_SQRT_STARTS (tests); by default invSqrtPlan picks the cheapest.
 */
export async function invSqrt(input: AShare, range: InvSqrtRange, options: { start?: number } = {}): Promise<AShare> {
  const p = input.party;
  const f = p.fracBits;
  const plan = invSqrtPlan(range, f, p.truncation, options.start);
  const { lo, c, d, m } = plan, { factors, shift } = INV_SQRT_STARTS[plan.start], j = plan.base === 4 ? 1 : 2;
  const n = input.size;
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
        (_, i) => x.addPublic(BigInt.asUintN(64, -encodeFixed(plan.base ** (lo + 1 + i), f))),
      );
      using all = AShare.concat(shifted, 0);
      shifted.forEach((s) => s.dispose());
      using sign = await msb(all);
      bits = await dreluFromSign(sign, all); // b_k = [x >= b^k], k = lo+1..hi, each a run of n
      const b = bits;
      table = (t) => {
        using zero = x.mulPublic(0n);
        let acc = zero.addPublic(BigInt.asUintN(64, t(lo)));
        for (let i = 0; i < m; i++) {
          const k = lo + 1 + i;
          using run = b.slice(0, i * n, (i + 1) * n);
          using term = run.mulPublic(BigInt.asUintN(64, t(k) - t(k - 1)));
          using prev = acc;
          acc = prev.add(term);
        }
        return acc;
      };
    }
    try {
      const scaled = async (v: AShare, t: (k: number) => bigint, by: number) => {
        const w = table(t);
        let prod: AShare;
        if (w) {
          using _w = w;
          prod = await mul(v, w);
        } else prod = v.mulPublic(t(lo));
        if (by === 0) return prod;
        using _p = prod;
        return await truncate(prod, by);
      };
      // z = x b^-k 2^-shift at f bits
      using z = await scaled(x, (k) => pow2(c - 2 * j * k - shift), c);
      // y_0 = prod_i (a_i0 + a_i1 z + a_i2 z^2): z^2, the factors in one truncation, then a product tree
      const g = coefBits(f);
      using zz = await mul(z, z);
      using z2 = await truncate(zz, f);
      // q_i 2^(f + g) = a_i0 2^(f + g) + a_i1 z + a_i2 z^2 with the a_i at g bits; the words are q_i's, below 6 2^(f + g)
      const lins = factors.map(([a0, a1, a2]) => {
        using t1 = z.mulPublic(encodeFixed(a1, g)), t2 = z2.mulPublic(encodeFixed(a2, g));
        using sum = t1.add(t2);
        return sum.addPublic(BigInt.asUintN(64, encodeFixed(a0, g) << BigInt(f)));
      });
      using linAll = AShare.concat(lins, 0);
      lins.forEach((l) => l.dispose());
      using qAll = await truncate(linAll, g);
      let qs = factors.map((_, i) => {
        using part = qAll.slice(0, i * n, (i + 1) * n);
        return part.contiguous();
      });
      while (qs.length > 1) {
        const h = Math.floor(qs.length / 2);
        const left = AShare.concat(qs.slice(0, h), 0), right = AShare.concat(qs.slice(h, 2 * h), 0);
        let prodRaw: AShare;
        try {
          prodRaw = await mul(left, right);
        } finally {
          left.dispose(), right.dispose();
        }
        let prod: AShare;
        try {
          prod = await truncate(prodRaw, f);
        } finally {
          prodRaw.dispose();
        }
        const next = Array.from({ length: h }, (_, i) => {
          using part = prod.slice(0, i * n, (i + 1) * n);
          return part.contiguous();
        });
        prod.dispose();
        qs.slice(0, 2 * h).forEach((q) => q.dispose());
        qs = [...next, ...qs.slice(2 * h)];
      }
      let y = qs[0];
      for (let s = 0; s < plan.steps; s++) {
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
      // 1/sqrt(x) = y b^(-k/2) 2^(-shift/2)
      using out = await scaled(yf, (k) => pow2(d - j * k - shift / 2), d);
      return out.reshape(input.shape);
    } finally {
      bits?.dispose();
    }
  } finally {
    p.setStep(before);
  }
}
