/**
 * The wrap-corrected truncation (lib/mpc/truncate_corrected.ts) against
 * BigInt floor division, on values large enough that Pi_trunc1 fails often,
 * and its cost against the formula (2 rounds; P0 2 words, P1 and P2 1 word).
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import type { TruncationMode } from "../../lib/mpc/party.ts";
import { deviceTest, Rng, wrap } from "../helpers.ts";
import { runParties } from "./harness.ts";

const DS = [0, 1, 13, 20, 32, 40] as const;

/** Off-by-more-than-rounding counts per d, for values truncated under `mode`. */
async function failures(vals: BigInt64Array, mode: TruncationMode) {
  const n = vals.length;
  const results = await runParties(async (p) => {
    using x = await shareInput(
      p,
      0,
      p.index === 0 ? RingTensor.from(p.backend, BigUint64Array.from(vals, (v) => wrap(v))) : null,
      [n],
    );
    const out: { got: BigInt64Array; bytes: number; rounds: number }[] = [];
    for (const d of DS) {
      const s0 = p.mesh.stats();
      using t = await truncate(x, d);
      const s1 = p.mesh.stats();
      using r = await reveal(t);
      out.push({ got: r.toBigInt64Array(), bytes: s1.bytesSent - s0.bytesSent, rounds: s1.rounds - s0.rounds });
    }
    return out;
  }, { truncation: mode });
  const counts = DS.map((d, k) => {
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const diff = results[0][k].got[i] - (vals[i] >> BigInt(d)); // BigInt >> is floor division
      if (diff !== 0n && diff !== 1n) bad++;
      if (d === 0 && diff !== 0n) bad++;
    }
    return bad;
  });
  return { counts, cost: results.map((r) => r.map(({ bytes, rounds }) => [bytes, rounds])) };
}

deviceTest(
  "corrected truncation: floor(z / 2^d) + {0, 1} for every |z| < 2^62, where Pi_trunc1 fails often",
  async () => {
    const rng = new Rng(90);
    const n = 20_000;
    // magnitudes spread over 2^30 .. 2^62, both signs: Pi_trunc1 fails with probability about |z| / 2^64
    const vals = BigInt64Array.from({ length: n }, () => {
      const bits = 30 + rng.int(32);
      const v = (BigInt(rng.int(2 ** 30)) << BigInt(bits - 30)) | BigInt(rng.int(2 ** 30));
      return (rng.int(2) ? v : -v) % (1n << 62n);
    });
    const local = await failures(vals, "local");
    const corrected = await failures(vals, "corrected");
    console.log(
      `failures per d ${DS.join("/")}: local ${local.counts.join("/")}, corrected ${corrected.counts.join("/")}`,
    );
    // the values are hard enough that the local protocol visibly fails (expected about n * E|z| / 2^64 ~ 150 per d)
    for (const [k, d] of DS.entries()) {
      if (d > 0) {
        assert.ok(local.counts[k] >= 20, `local, d = ${d}: ${local.counts[k]}`);
      }
    }
    assert.deepEqual(corrected.counts, DS.map(() => 0));
    // cost per truncation: 2 rounds; P0 sends 2 words per element, P1 and P2 one each
    for (const [i, words] of [2, 1, 1].entries()) {
      assert.deepEqual(corrected.cost[i], DS.map(() => [8 * words * n, 2]), `party ${i}`);
    }
    assert.deepEqual(local.cost.map((c) => c[0]), [[8 * n, 1], [8 * n, 1], [0, 1]]);
  },
);

deviceTest("corrected truncation inside fixed-point products: the session's mode reaches mulFixed", async () => {
  const rng = new Rng(91);
  const n = 4096, f = 20;
  const xs = Float64Array.from({ length: n }, () => (rng.int(2 ** 20) - 2 ** 19) / 2 ** 10); // |x| < 512
  const ys = Float64Array.from({ length: n }, () => (rng.int(2 ** 20) - 2 ** 19) / 2 ** 8); // |y| < 2048
  const [r] = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
    using y = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, ys, f, [n]) : null, [n]);
    const r0 = p.mesh.rounds;
    using z = await mulFixed(x, y);
    const rounds = p.mesh.rounds - r0;
    using out = await reveal(z);
    return { z: out.decode(f), rounds };
  }, { truncation: "corrected" });
  assert.equal(r.rounds, 3); // the product's round and the corrected truncation's two
  // products up to 2^20 at scale 2^40: |z| up to 2^60, where Pi_trunc1 would fail for about 1 in 16
  for (let i = 0; i < n; i++) {
    const want = xs[i] * ys[i];
    assert.ok(Math.abs(r.z[i] - want) <= 2 ** -f * 2, `${i}: ${r.z[i]} vs ${want}`);
  }
});
