/**
 * The one-round exact truncation from preprocessed pairs
 * (lib/mpc/truncate_preprocessed.ts, lib/mpc/truncation_pairs.ts): results
 * against BigInt floor division over the whole range |z| < 2^62 and at its
 * edges, the pairs' values against their definition, the rounding's bias, the
 * cost of the online step and of the preprocessing against their formulas,
 * the fixed-point product in one round, and the pool running short.
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { makeTruncationPairs, PAIR_BITS, PAIR_ROUNDS } from "../../lib/mpc/truncation_pairs.ts";
import { deviceTest, Rng, wrap } from "../helpers.ts";
import { runParties } from "./harness.ts";

const DS = [1, 13, 16, 20, 40, 62] as const;
const LIMIT = 1n << 62n;
const signed = (w: bigint) => BigInt.asIntN(64, w);

/** |z| < 2^62 spread over all magnitudes, both signs, with the range's edges first. */
function hardValues(n: number, seed: number): BigInt64Array {
  const rng = new Rng(seed);
  const edges = [0n, 1n, -1n, LIMIT - 1n, -LIMIT, -LIMIT + 1n, (1n << 61n) + 7n, -(1n << 61n) - 7n, 1n << 40n];
  return BigInt64Array.from({ length: n }, (_, i) => {
    if (i < edges.length) return edges[i];
    const bits = 1 + rng.int(62);
    const v = ((BigInt(rng.int(2 ** 31)) << 31n) | BigInt(rng.int(2 ** 31))) & ((1n << BigInt(bits)) - 1n);
    return rng.int(2) ? v : -v;
  });
}

deviceTest("preprocessed truncation: floor(z / 2^d) + {0, 1} for every |z| < 2^62, in 1 round of 1 word", async () => {
  const n = 6000, vals = hardValues(n, 70);
  const results = await runParties(async (p) => {
    using x = await shareInput(
      p,
      0,
      p.index === 0 ? RingTensor.from(p.backend, BigUint64Array.from(vals, (v) => wrap(v))) : null,
      [n],
    );
    const out: { got: BigInt64Array; bytes: number; rounds: number }[] = [];
    for (const d of DS) {
      await p.pairs.fill(d, n);
      const s0 = p.mesh.stats();
      using t = await truncate(x, d);
      const s1 = p.mesh.stats();
      using r = await reveal(t);
      out.push({ got: r.toBigInt64Array(), bytes: s1.bytesSent - s0.bytesSent, rounds: s1.rounds - s0.rounds });
    }
    return out;
  }, { truncation: "preprocessed" });
  for (const [k, d] of DS.entries()) {
    let ones = 0;
    for (let i = 0; i < n; i++) {
      const diff = results[0][k].got[i] - (vals[i] >> BigInt(d)); // BigInt >> is floor division
      assert.ok(diff === 0n || diff === 1n, `d = ${d}, z = ${vals[i]}: got ${results[0][k].got[i]}`);
      ones += Number(diff);
    }
    // the rounding adds 1 with probability (z mod 2^d) / 2^d, so about half the time over these values
    if (d >= 13) assert.ok(ones > 0.4 * n && ones < 0.6 * n, `d = ${d}: ${ones} of ${n} rounded up`);
  }
  // online: 1 round, every party sends 1 word per element, from a full pool
  results.forEach((r, i) =>
    assert.deepEqual(r.map((o) => [o.bytes, o.rounds]), DS.map(() => [8 * n, 1]), `party ${i}`)
  );
});

deviceTest(
  "truncation pairs: r uniform-looking, top = r's bit 63, mid = floor((r mod 2^63) / 2^d); cost by the formula",
  async () => {
    const n = 3000, d = 20;
    const results = await runParties(async (p) => {
      const s0 = p.mesh.stats();
      const pairs = await makeTruncationPairs(p, n, d);
      const s1 = p.mesh.stats();
      try {
        const open = async (x: typeof pairs.r) => (await reveal(x)).toBigUint64Array();
        return { r: await open(pairs.r), top: await open(pairs.top), mid: await open(pairs.mid), s0, s1 };
      } finally {
        pairs.r.dispose(), pairs.top.dispose(), pairs.mid.dispose();
      }
    });
    const { r, top, mid } = results[0];
    let topOnes = 0;
    for (let i = 0; i < n; i++) {
      assert.equal(top[i], r[i] >> 63n, `top ${i}`);
      assert.equal(mid[i], (r[i] & ((1n << 63n) - 1n)) >> BigInt(d), `mid ${i}`);
      topOnes += Number(top[i]);
    }
    // r's top bit is a fair coin over the three parties' PRF outputs (sd of the count: 27)
    assert.ok(Math.abs(topOnes - n / 2) < 150, `${topOnes} of ${n}`);
    for (const [i, { s0, s1 }] of results.entries()) {
      assert.equal(s1.rounds - s0.rounds, PAIR_ROUNDS, `party ${i}: rounds`);
      // packed rows round up to whole words, so allow a few words over the per-element formula
      const bytes = s1.bytesSent - s0.bytesSent, formula = (PAIR_BITS / 8) * n;
      assert.ok(bytes >= formula - 64 && bytes <= formula + 256, `party ${i}: ${bytes} bytes, formula ${formula}`);
    }
  },
);

deviceTest(
  "preprocessed truncation inside fixed-point products: 1 round, 2 words an element, no wrap failure",
  async () => {
    const rng = new Rng(71);
    const n = 4096, f = 20;
    const xs = Float64Array.from({ length: n }, () => (rng.int(2 ** 20) - 2 ** 19) / 2 ** 10); // |x| < 512
    const ys = Float64Array.from({ length: n }, () => (rng.int(2 ** 20) - 2 ** 19) / 2 ** 8); // |y| < 2048
    const results = await runParties(async (p) => {
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
      using y = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, ys, f, [n]) : null, [n]);
      await p.pairs.fill(f, n);
      const live = p.backend.liveBuffers().count;
      const s0 = p.mesh.stats();
      using z = await mulFixed(x, y);
      const s1 = p.mesh.stats();
      // the product and nothing else: the pairs it took (3 sharings) and every temporary are gone
      assert.equal(p.backend.liveBuffers().count, live - 6 + 2, `party ${p.index}: buffers`);
      using out = await reveal(z);
      return { z: out.decode(f), rounds: s1.rounds - s0.rounds, bytes: s1.bytesSent - s0.bytesSent };
    }, { truncation: "preprocessed" });
    results.forEach((r, i) => assert.deepEqual([r.rounds, r.bytes], [1, 16 * n], `party ${i}`));
    // products up to 2^20 at scale 2^40: |z| up to 2^60, where Pi_trunc1 fails for about 1 in 16
    const z = results[0].z;
    for (let i = 0; i < n; i++) {
      const want = xs[i] * ys[i];
      assert.ok(Math.abs(z[i] - want) <= 2 ** -f * 2, `${i}: ${z[i]} vs ${want}`);
    }
    // matmul through the same path: the bilinear map is the caller's
    const [m] = await runParties(async (p) => {
      const a = [[1.5, -2.25, 3], [0.5, 4, -1]], b = [[2, -1], [0.25, 3], [-1.5, 0.75]];
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, a.flat(), f, [2, 3]) : null, [
        2,
        3,
      ]);
      using w = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, b.flat(), f, [3, 2]) : null, [
        3,
        2,
      ]);
      using prod = await mulFixed(x, w, (u, v) => u.matmul(v));
      using out = await reveal(prod);
      return out.decode(f);
    }, { truncation: "preprocessed" });
    const want = [1.5 * 2 - 2.25 * 0.25 - 3 * 1.5, -1.5 - 2.25 * 3 + 3 * 0.75, 1 + 1 + 1.5, -0.5 + 12 - 0.75];
    want.forEach((v, i) => assert.ok(Math.abs(m[i] - v) <= 2 ** -f, `matmul ${i}: ${m[i]} vs ${v}`));
  },
);

deviceTest(
  "truncation pool: pairs taken in order across batches, the shortfall made on the spot, nothing leaked",
  async () => {
    const n = 50, d = 16, vals = hardValues(n, 72);
    const [r] = await runParties(async (p) => {
      using x = await shareInput(
        p,
        0,
        p.index === 0 ? RingTensor.from(p.backend, BigUint64Array.from(vals, (v) => wrap(v))) : null,
        [n],
      );
      const live = p.backend.liveBuffers().count;
      await p.pairs.fill(d, 80);
      const ok = [];
      for (let k = 0; k < 3; k++) { // 80 in stock: the second take spans the stock's end and 20 made on demand
        const r0 = p.mesh.rounds;
        using t = await truncate(x, d);
        const rounds = p.mesh.rounds - r0;
        using out = await reveal(t);
        ok.push({ got: out.toBigInt64Array(), rounds, left: p.pairs.available(d) });
      }
      p.pairs.dispose();
      // every buffer the pool, the pairs and the truncations made is gone again
      assert.equal(p.backend.liveBuffers().count, live, `party ${p.index}: buffers left`);
      return { ok, usage: p.pairs.usage.get(d) };
    }, { truncation: "preprocessed" });
    assert.deepEqual(r.ok.map((o) => [o.rounds, o.left]), [[1, 30], [1 + PAIR_ROUNDS, 0], [1 + PAIR_ROUNDS, 0]]);
    assert.deepEqual(r.usage, { taken: 150, madeOnDemand: 70 });
    for (const o of r.ok) {
      o.got.forEach((g, i) => {
        const diff = signed(BigInt.asUintN(64, g)) - (vals[i] >> BigInt(d));
        assert.ok(diff === 0n || diff === 1n, `${vals[i]}: ${g}`);
      });
    }
  },
);
