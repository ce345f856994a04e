/**
 * Comparisons from a masked opening (lib/mpc/msb_masked.ts) and their masks
 * (lib/mpc/comparison_masks.ts): the masks opened against their definition,
 * msb, DReLU and ReLU exact against BigInt on the ring's edges and on random
 * words, their rounds and bytes against the formulas, the circuit's results
 * word for word, the dispatch under preprocessed truncation, and the masks
 * made on demand when the stock is short.
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { AShare } from "../../lib/mpc/arithmetic.ts";
import { BShare } from "../../lib/mpc/binary.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { lastCarryShare } from "../../lib/mpc/carry.ts";
import { makeComparisonMasks, MASK_BITS, MASK_ROUNDS } from "../../lib/mpc/comparison_masks.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { msb } from "../../lib/mpc/msb.ts";
import {
  dreluMasked,
  MASKED_DRELU_BITS,
  MASKED_MSB_BITS,
  MASKED_RELU_BITS,
  msbMasked,
  reluMasked,
} from "../../lib/mpc/msb_masked.ts";
import { drelu, relu } from "../../lib/mpc/relu.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { deviceTest, Rng, wrap } from "../helpers.ts";
import { openBinary, runParties } from "./harness.ts";

async function openWords(b: BShare): Promise<BigUint64Array> {
  using open = await openBinary(b);
  return open.toBigUint64Array();
}

const EDGES = [
  0n,
  1n,
  wrap(-1n),
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 63n) + 1n,
  1n << 62n,
  wrap(-(1n << 62n)),
  (1n << 20n) + 3n,
  wrap(-(1n << 20n)),
];

function values(n: number, seed: number): BigUint64Array {
  const rng = new Rng(seed);
  return BigUint64Array.from({ length: n }, (_, i) => {
    if (i < EDGES.length) return EDGES[i];
    const v = rng.next(); // all magnitudes: a random word shifted right by 0..63
    return rng.int(2) ? v >> BigInt(rng.int(64)) : wrap(-(v >> BigInt(rng.int(64))));
  });
}

const neg = (w: bigint) => w >> 63n === 1n;

/** A wrapper that runs a step on p and appends its [rounds, bytes sent] to `cost`. */
const costed = (p: Party, cost: number[][]) => async <T>(f: () => Promise<T>): Promise<T> => {
  const s0 = p.mesh.stats(), out = await f(), s1 = p.mesh.stats();
  cost.push([s1.rounds - s0.rounds, s1.bytesSent - s0.bytesSent]);
  return out;
};

deviceTest("comparison masks: r's bits are r, rho is a bit and rhoA is rho; 10 rounds and MASK_BITS", async () => {
  const n = 960;
  const results = await runParties(async (p) => {
    const s0 = p.mesh.stats();
    const m = await makeComparisonMasks(p, n);
    const s1 = p.mesh.stats();
    try {
      return {
        r: (await reveal(m.r)).toBigUint64Array(),
        bits: await openWords(m.rBits),
        rho: await openWords(m.rho),
        rhoA: (await reveal(m.rhoA)).toBigUint64Array(),
        rounds: s1.rounds - s0.rounds,
        bytes: s1.bytesSent - s0.bytesSent,
      };
    } finally {
      Object.values(m).forEach((s) => s.dispose());
    }
  });
  const { r, bits, rho, rhoA } = results[0];
  let ones = 0, topOnes = 0;
  for (let i = 0; i < n; i++) {
    assert.equal(bits[i], r[i], `bits of r ${i}`);
    assert.ok(rho[i] === 0n || rho[i] === 1n, `rho ${i}: ${rho[i]}`);
    assert.equal(rhoA[i], rho[i], `rhoA ${i}`);
    ones += Number(rho[i]);
    topOnes += Number(r[i] >> 63n);
  }
  // fair coins (sd of each count: 15.5)
  assert.ok(Math.abs(ones - n / 2) < 80 && Math.abs(topOnes - n / 2) < 80, `${ones}, ${topOnes} of ${n}`);
  for (const [i, res] of results.entries()) {
    assert.equal(res.rounds, MASK_ROUNDS, `party ${i}: rounds`);
    const formula = (MASK_BITS / 8) * n;
    assert.ok(Math.abs(res.bytes - formula) <= 64, `party ${i}: ${res.bytes} bytes, formula ${formula}`);
  }
});

deviceTest(
  "masked msb, DReLU and ReLU: exact against BigInt, in 7, 7 and 8 rounds of the documented bits",
  async () => {
    const n = 3072, vals = values(n, 90);
    const results = await runParties(async (p) => {
      await p.masks.fill("masks", 3 * n); // made before the clock: the online cost alone below
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.from(p.backend, vals) : null, [n]);
      const cost: number[][] = [], timed = costed(p, cost);
      using sign = await timed(() => msbMasked(x));
      using d = await timed(() => dreluMasked(x));
      using y = await timed(() => reluMasked(x));
      const short = p.masks.usage.get("masks")!.madeOnDemand;
      return {
        sign: await openWords(sign),
        d: (await reveal(d)).toBigUint64Array(),
        y: (await reveal(y)).toBigUint64Array(),
        cost,
        short,
      };
    });
    const { sign, d, y } = results[0];
    for (let i = 0; i < n; i++) {
      const v = vals[i], s = neg(v) ? 1n : 0n;
      assert.equal((sign[Math.floor(i / 64)] >> BigInt(i % 64)) & 1n, s, `msb of ${v}`);
      assert.equal(d[i], 1n - s, `DReLU of ${v}`);
      assert.equal(y[i], s ? 0n : v, `ReLU of ${v}`);
    }
    for (const [i, r] of results.entries()) {
      assert.equal(r.short, 0, "no mask made on demand");
      const bits = [MASKED_MSB_BITS, MASKED_DRELU_BITS, MASKED_RELU_BITS];
      assert.deepEqual(r.cost.map(([rounds]) => rounds), [7, 7, 8], `party ${i}: rounds`);
      r.cost.forEach(([, bytes], k) => {
        const formula = (bits[k] / 8) * n;
        assert.ok(Math.abs(bytes - formula) <= 64, `party ${i}, step ${k}: ${bytes} bytes, formula ${formula}`);
      });
    }
  },
);

deviceTest(
  "under preprocessed truncation msb, drelu and relu take the masked path; results equal the circuit's",
  async () => {
    const n = 500, vals = values(n, 91);
    const run = (truncation: "corrected" | "preprocessed") =>
      runParties(async (p) => {
        using x = await shareInput(p, 2, p.index === 2 ? RingTensor.from(p.backend, vals) : null, [n]);
        const cost: number[][] = [], counted = costed(p, cost);
        using sign = await counted(() => msb(x));
        using d = await counted(() => drelu(x));
        using y = await counted(() => relu(x));
        const taken = p.masks.usage.get("masks")?.taken ?? 0;
        return {
          sign: await openWords(sign),
          d: (await reveal(d)).toBigUint64Array(),
          y: (await reveal(y)).toBigUint64Array(),
          rounds: cost.map(([r]) => r),
          taken,
        };
      }, { truncation });
    const [circuit, masked] = [await run("corrected"), await run("preprocessed")];
    assert.deepEqual(masked[0].sign, circuit[0].sign);
    assert.deepEqual(masked[0].d, circuit[0].d);
    assert.deepEqual(masked[0].y, circuit[0].y);
    // the masks were made on demand inside the timed calls: 10 rounds each on top
    assert.deepEqual(circuit[0].rounds, [8, 10, 10]);
    assert.deepEqual(masked[0].rounds, [7 + MASK_ROUNDS, 7 + MASK_ROUNDS, 8 + MASK_ROUNDS]);
    assert.deepEqual(masked.map((r) => r.taken), [3 * n, 3 * n, 3 * n]);
    assert.deepEqual(circuit.map((r) => r.taken), [0, 0, 0]);
  },
);

deviceTest("masked comparisons on an empty tensor: no round, empty results", async () => {
  const results = await runParties(async (p) => {
    using x = new AShare(p, RingTensor.zeros(p.backend, [0]), RingTensor.zeros(p.backend, [0]));
    const r0 = p.mesh.rounds;
    using a = await msbMasked(x);
    using b = await reluMasked(x);
    return [p.mesh.rounds - r0, a.shape[0], b.size];
  });
  results.forEach((r) => assert.deepEqual(r, [0, 0, 0]));
});

deviceTest(
  "lastCarryShare: the three shares XOR to the carry, and each changes with the key its party masks it by",
  async () => {
    const n = 128, rng = new Rng(92);
    // three shares of n rows of two units, (P_lo, G_lo, P_hi, G_hi) in bits 0..3 of each row
    const shares = [0, 1, 2].map(() => rng.words((4 * n) / 64));
    const bit = (w: BigUint64Array, j: number) => Number((w[Math.floor(j / 64)] >> BigInt(j % 64)) & 1n);
    const unit = (j: number) => bit(shares[0], j) ^ bit(shares[1], j) ^ bit(shares[2], j);
    const want = Array.from({ length: n }, (_, i) => unit(4 * i + 3) ^ (unit(4 * i + 2) & unit(4 * i + 1)));
    const key = (seed: number) => Uint8Array.from({ length: 16 }, (_, i) => (seed * 31 + i * 7) & 255);
    const run = (keys: Uint8Array[]) =>
      runParties((p) => {
        const t = (j: number) => RingTensor.fromBitWords(p.backend, shares[j], [n, 4]);
        using units = new BShare(p, t(p.index), t(p.next));
        using mine = lastCarryShare(p, units);
        return Promise.resolve(mine.toBits());
      }, { keys });
    const base = await run([key(1), key(2), key(3)]);
    for (let i = 0; i < n; i++) assert.equal(base[0][i] ^ base[1][i] ^ base[2][i], want[i], `carry of row ${i}`);
    // k_j is held by P_j and P_next(j); re-drawn, it moves both of their shares, every row at some re-draw
    for (const j of [0, 1, 2]) {
      const flipped = [0, 1, 2].map(() => new Array(n).fill(0));
      for (let t = 0; t < 12; t++) {
        const keys = [key(1), key(2), key(3)];
        keys[j] = key(50 + 10 * j + t);
        const other = await run(keys);
        for (const q of [0, 1, 2]) for (let i = 0; i < n; i++) flipped[q][i] |= other[q][i] ^ base[q][i];
      }
      for (const q of [0, 1, 2]) {
        const moved = flipped[q].reduce((a, b) => a + b, 0), holds = q === j || q === (j + 1) % 3;
        assert.equal(moved, holds ? n : 0, `k_${j} re-drawn: party ${q}'s share moved in ${moved} of ${n} rows`);
      }
    }
  },
);
