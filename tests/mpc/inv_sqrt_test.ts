import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import {
  INV_SQRT_STARTS,
  invSqrt,
  invSqrtCost,
  invSqrtIterations,
  invSqrtPlan,
  type InvSqrtRange,
  invSqrtRounds,
} from "../../lib/mpc/inv_sqrt.ts";
import type { TruncationMode } from "../../lib/mpc/party.ts";
import { deviceTest } from "../helpers.ts";
import { runParties } from "./harness.ts";

/** Log-uniform points over [min, max], the endpoints, and every power of 4 (so of 16) inside with its neighbours. */
function points(range: InvSqrtRange, f: number, count: number): Float64Array {
  const { min, max } = range, ulp = 2 ** -f;
  const xs: number[] = [min, max];
  for (let i = 0; i < count; i++) xs.push(min * (max / min) ** (i / (count - 1)));
  for (let k = -40; k <= 40; k++) {
    const t = 4 ** k;
    for (const v of [t, t - ulp, t + ulp, t * (1 - 1e-3), t * (1 + 1e-3)]) xs.push(v);
  }
  // as the parties will hold them: rounded to f bits, inside the range
  const fixed = xs.map((v) => Math.round(v * 2 ** f) / 2 ** f).filter((v) => v >= min && v <= max);
  return Float64Array.from(new Set(fixed));
}

/**
 * invSqrt on the points, its rounds and bytes asserted against invSqrtCost; returns the worst excess over the bound
 * 2^-(f-4) / sqrt(x) + 2^-f (<= 0 passes) and the worst relative error where 1/sqrt(x) >= 1 (x <= 1).
 */
async function measure(
  range: InvSqrtRange,
  f: number,
  count: number,
  truncation: TruncationMode = "local",
  start?: number,
) {
  const xs = points(range, f, count), n = xs.length;
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
    const s0 = p.mesh.stats();
    using y = await invSqrt(x, range, { start });
    const s1 = p.mesh.stats();
    using out = await reveal(y);
    return { y: out.decode(f), rounds: s1.rounds - s0.rounds, bytes: s1.bytesSent - s0.bytesSent };
  }, { fracBits: f, truncation });
  const cost = invSqrtCost(range, f, truncation, start);
  results.forEach((r, i) => {
    assert.equal(r.rounds, cost.rounds, `party ${i}: rounds`);
    if (start === undefined) assert.equal(r.rounds, invSqrtRounds(range, f, truncation));
    const formula = cost.bytes[i] * n;
    // the msb and the injection cut the batch in thirds and pack bits in words: a few words either way
    assert.ok(Math.abs(r.bytes - formula) <= 64, `party ${i}: ${r.bytes} bytes, formula ${formula}`);
  });
  const ys = results[0].y;
  let excess = -Infinity, at = 0, rel = 0;
  for (let i = 0; i < n; i++) {
    const want = 1 / Math.sqrt(xs[i]), err = Math.abs(ys[i] - want);
    const over = err - (2 ** -(f - 4) * want + 2 ** -f);
    if (over > excess) [excess, at] = [over, i];
    if (want >= 1) rel = Math.max(rel, err / want);
  }
  const where = `x = ${xs[at]}: ${ys[at]} against ${1 / Math.sqrt(xs[at])}`;
  return { n, excess, where, rel, cost };
}

for (const f of [16, 20]) {
  const range = { min: 2 ** -(f - 4), max: 2 ** 20 };
  deviceTest(
    `invSqrt at f = ${f} over [2^-${f - 4}, 2^20], every start: within 2^-${f - 4} relative + 1 ulp`,
    async () => {
      for (const start of [undefined, ...INV_SQRT_STARTS.keys()]) {
        const r = await measure(range, f, 160, "local", start);
        const at = `start ${start ?? "chosen"} (${r.cost.plan.start})`;
        assert.ok(r.excess <= 0, `${at}: ${r.where}, past the bound by ${r.excess}`);
        assert.ok(r.rel <= 2 ** -(f - 4), `${at}: relative error ${r.rel} for x <= 1`);
      }
      assert.equal(invSqrtIterations(f), 2);
      // base 16 (9 or 8 thresholds): f = 16 the octic and 1 Newton step, f = 20 the sextic and 2
      const plan = invSqrtPlan(range, f);
      assert.deepEqual([plan.start, plan.base, plan.m, plan.steps], f === 16 ? [3, 16, 8, 1] : [2, 16, 9, 2]);
      // comparisons, z, z^2 + factors + product tree, Newton steps, the scale
      assert.equal(invSqrtCost(range, f).rounds, f === 16 ? 10 + 2 + (3 + 4) + 4 + 2 : 10 + 2 + (3 + 4) + 8 + 2);
    },
  );
}

deviceTest("invSqrt over narrower ranges: batch normalization's [1e-3, 10], one interval (no comparison)", async () => {
  const cases: [InvSqrtRange, Record<16 | 20, [start: number, rounds: number]>][] = [
    [{ min: 1e-3, max: 10 }, { 16: [3, 25], 20: [2, 29] }], // base 16, 3 thresholds
    [{ min: 1.25, max: 3.5 }, { 16: [1, 9], 20: [0, 11] }], // inside [1, 4): no comparison, no scaling
    [{ min: 17, max: 60 }, { 16: [1, 11], 20: [0, 13] }],
  ];
  for (const f of [16, 20] as const) {
    for (const [range, want] of cases) {
      const r = await measure(range, f, 40);
      assert.ok(r.excess <= 0, `f = ${f}, [${range.min}, ${range.max}]: ${r.where}, past the bound by ${r.excess}`);
      assert.ok(r.rel <= 2 ** -(f - 4), `relative error ${r.rel} for x <= 1`);
      assert.deepEqual([r.cost.plan.start, r.cost.rounds], want[f], `f = ${f}, [${range.min}, ${range.max}]`);
    }
  }
  // a range inside [1, 4): y_0 (1 product, 2 truncations) and 2 Newton steps (3 products, 3 truncations each)
  assert.deepEqual(invSqrtCost({ min: 1.25, max: 3.5 }, 20).bytes, [120, 120, 56]);
  // at f = 16 the quartic (2 products, 4 truncations) and 1 step
  assert.deepEqual(invSqrtCost({ min: 1.25, max: 3.5 }, 16).bytes, [96, 96, 40]);
});

deviceTest("invSqrt over Adam's range [64 eps, 64 (64 + eps)]: 4 thresholds 16^k instead of 8 of 4^k", async () => {
  const eps = 1e-3, range = { min: 64 * eps, max: 64 * (64 + eps) };
  for (const f of [16, 20]) {
    const r = await measure(range, f, 60);
    assert.ok(r.excess <= 0, `f = ${f}: ${r.where}, past the bound by ${r.excess}`);
  }
  const round1 = (b: number[]) => b.map((v) => Math.round(v * 10) / 10);
  const chosen = invSqrtCost(range, 16), base4 = invSqrtCost(range, 16, "local", 0);
  assert.deepEqual([chosen.plan.base, chosen.plan.m, chosen.rounds], [16, 4, 25]);
  assert.deepEqual(round1(chosen.bytes), [324.3, 324.3, 220.3]);
  assert.deepEqual([base4.plan.m, base4.rounds, round1(base4.bytes)], [8, 25, [448.7, 448.7, 368.7]]);
  const at20 = invSqrtCost(range, 20);
  assert.deepEqual([at20.plan.base, at20.plan.m, at20.rounds, round1(at20.bytes)], [16, 4, 29, [348.3, 348.3, 236.3]]);
});

deviceTest("invSqrt with the wrap-corrected truncation: same error, 2 rounds a truncation", async () => {
  const range = { min: 2 ** -12, max: 2 ** 12 };
  const r = await measure(range, 16, 30, "corrected");
  assert.ok(r.excess <= 0, `${r.where}, past the bound by ${r.excess}`);
  // the octic, 1 Newton step: 10 (comparison) + 8 truncations at 2 rounds + 7 products
  assert.equal(r.cost.plan.start, 3);
  assert.equal(r.cost.rounds, 10 + 2 * 8 + 7);
});

Deno.test("invSqrt refuses ranges it cannot serve", () => {
  assert.throws(() => invSqrtRounds({ min: 0, max: 1 }), RangeError);
  assert.throws(() => invSqrtRounds({ min: 2, max: 1 }), RangeError);
  assert.throws(() => invSqrtRounds({ min: 2 ** -24, max: 1 }, 20), RangeError); // below one unit at f = 20
  assert.throws(() => invSqrtRounds({ min: 1, max: 2 ** 40 }, 20), RangeError); // z 2^(f + c) past 2^52
  assert.throws(() => invSqrtPlan({ min: 1, max: 2 }, 20, "local", INV_SQRT_STARTS.length), RangeError);
  // base 16's normalization (z < 4 at 2^(f + 4K + 2)) past 2^52 where base 4's (z < 4 at 2^(f + 2K)) is not
  assert.throws(() => invSqrtPlan({ min: 1, max: 2 ** 29 }, 22, "local", 2), RangeError);
  assert.equal(invSqrtPlan({ min: 1, max: 2 ** 29 }, 22).base, 4);
});
