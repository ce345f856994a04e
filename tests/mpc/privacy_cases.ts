/**
 * Every protocol of lib/mpc that moves data (reveal and revealProductTo
 * aside: they open on purpose, and reveal_product_test.ts checks the
 * latter's masks; commonId too: its id is public), each on fixed inputs: the shares
 * come from a seeded generator, never from the session's keys, so that two
 * sessions under different keys differ only by what the keys mask.
 * Sizes hit the thirds' boundaries of msb and the bit injection (n = 1, 2, 3,
 * 4, 7, 10 = 3k + 1) and rows of k > 1 for the injection.
 */
import { RingTensor } from "../../lib/ring/tensor.ts";
import type { Shape } from "../../lib/ring/shape.ts";
import { AShare } from "../../lib/mpc/arithmetic.ts";
import { BShare } from "../../lib/mpc/binary.ts";
import type { Party, TruncationMode } from "../../lib/mpc/party.ts";
import { shareInput, shareKnown } from "../../lib/mpc/input.ts";
import { conv2d, matmul, mul, mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { andMany } from "../../lib/mpc/and.ts";
import { msb } from "../../lib/mpc/msb.ts";
import { bitInject, bitInjectComplement, bitToArithmetic } from "../../lib/mpc/bitinject.ts";
import { drelu, relu } from "../../lib/mpc/relu.ts";
import { greaterEqual, lessThan } from "../../lib/mpc/compare.ts";
import { maxLastAxis } from "../../lib/mpc/max.ts";
import { maxAllPairs } from "../../lib/mpc/max_pairs.ts";
import { avgPool2d, maxPool2d } from "../../lib/mpc/pool.ts";
import { exp } from "../../lib/mpc/exp.ts";
import { reciprocal } from "../../lib/mpc/reciprocal.ts";
import { invSqrt } from "../../lib/mpc/inv_sqrt.ts";
import { softmax } from "../../lib/mpc/softmax.ts";
import { Rng, wrap } from "../helpers.ts";

type Disposable = { dispose(): void };
export interface Case {
  name: string;
  run(p: Party): Promise<void>;
}

/** x = x_0 + x_1 + x_2 with x_0, x_1 from the seed: P_i gets (x_i, x_next(i)). */
export function fixedShares(p: Party, values: readonly bigint[], shape: Shape, seed: number): AShare {
  const rng = new Rng(seed);
  const s0 = values.map(() => rng.next()), s1 = values.map(() => rng.next());
  const shares = [s0, s1, values.map((v, i) => wrap(v - s0[i] - s1[i]))];
  const t = (j: number) => RingTensor.from(p.backend, BigUint64Array.from(shares[j]), shape);
  return new AShare(p, t(p.index), t(p.next));
}

/** n bits as a binary sharing [n, 1] of packed bits, shares from the seed. */
export function fixedBits(p: Party, bits: readonly number[], seed: number): BShare {
  const rng = new Rng(seed), words = Math.ceil(bits.length / 64);
  const b0 = Array.from({ length: words }, () => rng.next()), b1 = Array.from({ length: words }, () => rng.next());
  const b = new Array(words).fill(0n);
  bits.forEach((v, i) => b[i >> 6] |= BigInt(v & 1) << BigInt(i & 63));
  const shares = [b0, b1, b.map((w, i) => w ^ b0[i] ^ b1[i])];
  const t = (j: number) => RingTensor.fromBitWords(p.backend, BigUint64Array.from(shares[j]), [bits.length, 1]);
  return new BShare(p, t(p.index), t(p.next));
}

const fx = (x: number) => wrap(BigInt(Math.round(x * 2 ** 20)));
/** n fixed-point values in [lo, hi), from the seed. */
function reals(n: number, lo: number, hi: number, seed: number): bigint[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => fx(lo + (hi - lo) * (rng.int(1 << 20) / (1 << 20))));
}
const size = (shape: Shape) => shape.reduce((a, b) => a * b, 1);
const input = (p: Party, shape: Shape, seed: number, lo = -8, hi = 8) =>
  fixedShares(p, reals(size(shape), lo, hi, seed), shape, seed + 1);

/** Runs fn with the party's truncation set to mode (one session runs both, so that one nonce counter spans all). */
export async function truncating(p: Party, mode: TruncationMode, fn: () => Promise<void>): Promise<void> {
  const q = p as { truncation: TruncationMode };
  const before = q.truncation;
  q.truncation = mode;
  try {
    await fn();
  } finally {
    q.truncation = before;
  }
}

/** Wrap cases of the corrected truncation: |z| in [2^61, 2^62), both signs, and 0. */
const WRAPPY = [0n, 1n << 61n, (1n << 62n) - 1n, (3n << 60n) + 12345n, 5n << 20n].flatMap((v) => [v, wrap(-v)]);

const free = (...xs: (Disposable | undefined)[]) => xs.forEach((x) => x?.dispose());

const MSB_SIZES = [1, 2, 3, 4, 7, 10];

export const CASES: Case[] = [
  ...[0, 1, 2].map((owner): Case => ({
    name: `input by ${owner}`,
    run: async (p) => {
      using v = RingTensor.from(p.backend, BigUint64Array.from(reals(5, -8, 8, 10 + owner)), [5]);
      free(await shareInput(p, owner, p.index === owner ? v : null, [5]));
    },
  })),
  ...(["arithmetic", "binary"] as const).flatMap((kind) =>
    [0, 1, 2].map((owner): Case => ({
      name: `shareKnown ${kind} by ${owner}`,
      run: async (p) => {
        using v = RingTensor.from(p.backend, BigUint64Array.from(reals(3, -8, 8, 20 + owner)), [3]);
        const { cur, next } = await shareKnown(p, owner, p.index === owner ? v : null, [3], kind);
        free(cur, next);
      },
    }))
  ),
  { name: "multiply", run: async (p) => free(await mul(input(p, [7], 30), input(p, [7], 32))) },
  { name: "matmul", run: async (p) => free(await matmul(input(p, [2, 3], 34), input(p, [3, 2], 36))) },
  { name: "conv2d", run: async (p) => free(await conv2d(input(p, [1, 1, 3, 3], 38), input(p, [1, 1, 2, 2], 40))) },
  ...(["local", "corrected", "preprocessed"] as const).flatMap((mode): Case[] => [
    {
      name: `fixed-point multiply, ${mode}`,
      run: (p) => truncating(p, mode, async () => free(await mulFixed(input(p, [7], 42), input(p, [7], 44)))),
    },
    {
      name: `fixed-point matmul, ${mode}`,
      run: (p) =>
        truncating(
          p,
          mode,
          async () => free(await mulFixed(input(p, [2, 3], 46), input(p, [3, 2], 48), (a, b) => a.matmul(b))),
        ),
    },
    {
      name: `truncate, ${mode}`,
      run: (p) =>
        truncating(p, mode, async () => free(await truncate(fixedShares(p, WRAPPY, [WRAPPY.length], 50), 20))),
    },
    {
      name: `average pooling, ${mode}`,
      run: (p) => truncating(p, mode, async () => free(await avgPool2d(input(p, [1, 1, 4, 4], 52), [2, 2]))),
    },
    { name: `exp, ${mode}`, run: (p) => truncating(p, mode, async () => free(await exp(input(p, [4], 54, -10, 0)))) },
    {
      name: `reciprocal, ${mode}`,
      run: (p) => truncating(p, mode, async () => free(await reciprocal(input(p, [3], 56, 1, 8), 8))),
    },
    {
      name: `inverse square root, ${mode}`,
      run: (p) =>
        truncating(p, mode, async () => free(await invSqrt(input(p, [4], 160, 0.01, 100), { min: 0.01, max: 100 }))),
    },
    {
      name: `softmax, ${mode}`,
      run: (p) => truncating(p, mode, async () => free(await softmax(input(p, [2, 3], 58)))),
    },
  ]),
  {
    name: "and (words and packed bits)",
    run: async (p) => {
      const w = (seed: number) => {
        const s = input(p, [3], seed);
        return new BShare(p, s.cur, s.next);
      };
      const out = await andMany(p, [[w(60), w(62)], [
        fixedBits(p, [1, 0, 1, 1, 0], 64),
        fixedBits(p, [1, 1, 0, 1, 0], 66),
      ]]);
      free(...out);
    },
  },
  ...(["input", "carry-save"] as const).flatMap((variant) =>
    MSB_SIZES.map((n): Case => ({
      name: `msb ${variant}, n = ${n}`,
      run: async (p) => free(await msb(input(p, [n], 70 + n), variant)),
    }))
  ),
  ...[1, 3].flatMap((k) =>
    MSB_SIZES.flatMap((n): Case[] => [
      {
        name: `bit injection, n = ${n}, k = ${k}`,
        run: async (p) => free(await bitInject(fixedBits(p, bitsOf(n, 80 + n), 81 + n), input(p, [n, k], 82 + n))),
      },
      {
        name: `bit injection complement, n = ${n}, k = ${k}`,
        run: async (p) =>
          free(await bitInjectComplement(fixedBits(p, bitsOf(n, 90 + n), 91 + n), input(p, [n, k], 92 + n))),
      },
    ])
  ),
  {
    name: "bit to arithmetic",
    run: async (p) => free(await bitToArithmetic(fixedBits(p, bitsOf(4, 100), 101), input(p, [4], 102))),
  },
  ...[1, 4, 7].map((n): Case => ({
    name: `ReLU, n = ${n}`,
    run: async (p) => free(await relu(input(p, [n], 110 + n))),
  })),
  { name: "DReLU", run: async (p) => free(await drelu(input(p, [7], 120))) },
  // the preprocessing mode's comparisons, their masks made on demand inside each case
  ...MSB_SIZES.map((n): Case => ({
    name: `msb masked, n = ${n}`,
    run: (p) => truncating(p, "preprocessed", async () => free(await msb(input(p, [n], 200 + n)))),
  })),
  ...[1, 4, 7].map((n): Case => ({
    name: `ReLU masked, n = ${n}`,
    run: (p) => truncating(p, "preprocessed", async () => free(await relu(input(p, [n], 210 + n)))),
  })),
  {
    name: "DReLU masked",
    run: (p) => truncating(p, "preprocessed", async () => free(await drelu(input(p, [7], 220)))),
  },
  { name: "less than", run: async (p) => free(await lessThan(input(p, [5], 122), input(p, [5], 124))) },
  { name: "greater or equal", run: async (p) => free(await greaterEqual(input(p, [5], 126), input(p, [5], 128))) },
  ...[false, true].map((argmax): Case => ({
    name: `max tree${argmax ? " with argmax" : ""}`,
    run: async (p) => {
      const { max, argmax: hot } = await maxLastAxis(input(p, [2, 5], 130), argmax);
      free(max, hot);
    },
  })),
  ...[{}, { relu: true }, { argmax: true }].map((o): Case => ({
    name: `max all pairs ${JSON.stringify(o)}`,
    run: async (p) => {
      const { max, argmax } = await maxAllPairs(input(p, [2, 3], 140), o);
      free(max, argmax);
    },
  })),
  {
    name: "max all pairs, ReLU of one entry",
    run: async (p) => free((await maxAllPairs(input(p, [3, 1], 142), { relu: true })).max),
  },
  ...[{ relu: true }, { argmax: true }, {}].map((o): Case => ({
    name: `max all pairs masked ${JSON.stringify(o)}`,
    run: (p) =>
      truncating(p, "preprocessed", async () => {
        const { max, argmax } = await maxAllPairs(input(p, [2, o.relu ? 3 : 2], 230), o);
        free(max, argmax);
      }),
  })),
  ...[
    { variant: "tree" as const },
    { variant: "pairs" as const },
    { variant: "tree" as const, relu: true },
    { variant: "pairs" as const, relu: true, padding: 1 },
    { variant: "tree" as const, withArgmax: true },
  ].map((o): Case => ({
    name: `max pooling ${JSON.stringify(o)}`,
    run: async (p) => {
      const { y, argmax } = await maxPool2d(input(p, [1, 1, 4, 4], 150), [2, 2], { stride: 2, ...o });
      free(y, argmax);
    },
  })),
];

function bitsOf(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(2));
}
