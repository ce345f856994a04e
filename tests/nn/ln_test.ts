import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import type { TruncationMode } from "../../lib/mpc/party.ts";
import { LN_ERROR_BOUND, lnBounded, lnRounds } from "../../lib/nn/ln.ts";
import { deviceTest } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";

/**
 * Points of [1, d] as the parties hold them (rounded to f bits): 1, d, the chord's worst point
 * (d - 1) / ln d, log-spaced points, and every power of 2 inside with its neighbours.
 */
function points(d: number, f: number, count: number): Float64Array {
  const ulp = 2 ** -f;
  const xs: number[] = [1, d, 1 + ulp, d - ulp, 1.5, Math.E];
  if (d > 1) xs.push((d - 1) / Math.log(d));
  for (let i = 0; i < count; i++) xs.push(d ** (i / Math.max(1, count - 1)));
  for (let k = 0; 2 ** k <= d; k++) {
    const t = 2 ** k;
    for (const v of [t, t - ulp, t + ulp, t * (1 - 1e-3), t * (1 + 1e-3), 1.5 * t]) xs.push(v);
  }
  const fixed = xs.map((v) => Math.round(v * 2 ** f) / 2 ** f).filter((v) => v >= 1 && v <= d);
  return Float64Array.from(new Set(fixed));
}

/** lnBounded on the points of [1, d]: the worst absolute error (and where), and every party's rounds. */
async function measure(d: number, f: number, count: number, truncation: TruncationMode = "local") {
  const xs = points(d, f, count), n = xs.length;
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
    const s0 = p.mesh.stats();
    using y = await lnBounded(x, d);
    const s1 = p.mesh.stats();
    using out = await reveal(y);
    return { y: out.decode(f), rounds: s1.rounds - s0.rounds };
  }, { fracBits: f, truncation });
  let worst = 0, at = 0;
  const ys = results[0].y;
  for (let i = 0; i < n; i++) {
    const err = Math.abs(ys[i] - Math.log(xs[i]));
    if (err > worst) [worst, at] = [err, i];
  }
  return {
    n,
    worst,
    where: `s = ${xs[at]}: ${ys[at]} against ${Math.log(xs[at])}`,
    rounds: results.map((r) => r.rounds),
  };
}

for (const f of [16, 20]) {
  for (const d of [1, 2, 10, 200, 1000]) {
    deviceTest(
      `lnBounded on [1, ${d}] at f = ${f}: within ${LN_ERROR_BOUND} of Math.log, lnRounds rounds`,
      async () => {
        const r = await measure(d, f, 400);
        console.log(`  d = ${d}, f = ${f}: ${r.n} points, worst ${r.worst.toExponential(2)} at ${r.where}`);
        assert.ok(r.worst <= LN_ERROR_BOUND, `worst error ${r.worst} at ${r.where}`);
        r.rounds.forEach((rounds, i) => assert.equal(rounds, lnRounds(d), `party ${i}: rounds`));
      },
    );
  }
}

deviceTest("lnBounded rounds: 16 for 2 <= d < 1024, 4 for d < 2 (local truncation); the formula's cases", () => {
  assert.equal(lnRounds(1), 4);
  assert.equal(lnRounds(1.9), 4);
  for (const d of [2, 10, 200, 1000, 1023]) assert.equal(lnRounds(d), 16);
  assert.equal(lnRounds(10, "corrected"), 10 + 1 + 2 + 2 + 4);
  assert.throws(() => lnRounds(0.5), RangeError);
});

deviceTest("lnBounded with the wrap-corrected truncation: same bound, 2 rounds a truncation", async () => {
  const r = await measure(200, 16, 100, "corrected");
  assert.ok(r.worst <= LN_ERROR_BOUND, `worst error ${r.worst} at ${r.where}`);
  r.rounds.forEach((rounds, i) => assert.equal(rounds, lnRounds(200, "corrected"), `party ${i}: rounds`));
});

deviceTest(
  "lnBounded keeps the input's shape ([n, 1], as the loss calls it), and a little outside [1, d]",
  async () => {
    const xs = Float64Array.from([1 - 2e-4, 1, 3.5, 10, 10.01]);
    const [got] = await runParties(async (p) => {
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, 20, [5, 1]) : null, [5, 1]);
      using y = await lnBounded(x, 10);
      assert.deepEqual([...y.shape], [5, 1]);
      using out = await reveal(y);
      return out.decode(20);
    });
    xs.forEach((v, i) => assert.ok(Math.abs(got[i] - Math.log(v)) <= LN_ERROR_BOUND, `ln ${v}: ${got[i]}`));
  },
);
