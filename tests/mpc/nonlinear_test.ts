import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { exp, EXP_ROUNDS } from "../../lib/mpc/exp.ts";
import { reciprocal, reciprocalIterations } from "../../lib/mpc/reciprocal.ts";
import { softmax } from "../../lib/mpc/softmax.ts";
import { avgPool2d, maxPool2d } from "../../lib/mpc/pool.ts";
import { maxRounds } from "../../lib/mpc/max.ts";
import { pairsRounds } from "../../lib/mpc/max_pairs.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { deviceTest, Rng } from "../helpers.ts";
import { runParties } from "./harness.ts";

const f = 20;

async function privately(
  values: Float64Array,
  shape: number[],
  fn: (p: Party, x: Awaited<ReturnType<typeof shareInput>>) => Promise<Awaited<ReturnType<typeof shareInput>>>,
) {
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, values, f, shape) : null, shape);
    const r0 = p.mesh.rounds;
    using y = await fn(p, x);
    const rounds = p.mesh.rounds - r0;
    using out = await reveal(y);
    return { y: out.decode(f), rounds, shape: y.shape };
  });
  return results[0];
}

deviceTest("exp within 2e-4 on [-45, 0] (the paper: 6e-4), near 0 below -512, 28 rounds", async () => {
  const xs = Float64Array.from({ length: 901 }, (_, i) => -i / 20); // 0 .. -45
  const far = Float64Array.of(-512.5, -600, -1000, -5000);
  const r = await privately(Float64Array.from([...xs, ...far]), [905], (_p, x) => exp(x));
  assert.equal(r.rounds, EXP_ROUNDS);
  let worst = 0;
  for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(r.y[i] - Math.exp(xs[i])));
  assert.ok(worst <= 2e-4, `max error ${worst}`);
  for (let i = 0; i < far.length; i++) {
    assert.ok(Math.abs(r.y[xs.length + i]) <= 1e-5, `exp(${far[i]}) = ${r.y[xs.length + i]}`);
  }
});

for (const Y of [200, 1000]) {
  deviceTest(`reciprocal within 1e-4 on [1, ${Y}] with ${reciprocalIterations(Y)} iterations`, async () => {
    const rng = new Rng(Y);
    const ys = Float64Array.from(
      { length: 2000 },
      (_, i) => (i < 2 ? [1, Y][i] : 1 + rng.int(1 << 20) / (1 << 20) * (Y - 1)),
    );
    const r = await privately(ys, [ys.length], (_p, y) => reciprocal(y, Y));
    assert.equal(r.rounds, 4 * reciprocalIterations(Y));
    let worst = 0;
    for (let i = 0; i < ys.length; i++) worst = Math.max(worst, Math.abs(r.y[i] - 1 / ys[i]));
    assert.ok(worst <= 1e-4, `max error ${worst}`);
  });
}

deviceTest("softmax rows sum to 1 within 1e-3 and match float64 within 2e-3", async () => {
  const rng = new Rng(100);
  const rows = 6, d = 10;
  const xs = Float64Array.from({ length: rows * d }, () => (rng.int(4001) - 2000) / 100);
  const r = await privately(xs, [rows, d], (_p, x) => softmax(x));
  for (let row = 0; row < rows; row++) {
    const z = Array.from(xs.subarray(row * d, (row + 1) * d));
    const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b);
    let sum = 0;
    for (let j = 0; j < d; j++) {
      sum += r.y[row * d + j];
      assert.ok(
        Math.abs(r.y[row * d + j] - e[j] / s) <= 2e-3,
        `row ${row} col ${j}: ${r.y[row * d + j]} vs ${e[j] / s}`,
      );
    }
    assert.ok(Math.abs(sum - 1) <= 1e-3, `row ${row} sums to ${sum}`);
  }
});

deviceTest("average and max pooling against float64 (max pooling exact, padding ignored)", async () => {
  const rng = new Rng(101);
  const [n, c, h, w] = [2, 3, 6, 5];
  const xs = Float64Array.from({ length: n * c * h * w }, () => (rng.int(2001) - 1000) / 16);
  const ref = (k: number, s: number, pad: number, op: "avg" | "max") => {
    const oh = Math.floor((h + 2 * pad - k) / s) + 1, ow = Math.floor((w + 2 * pad - k) / s) + 1;
    const out: number[] = [];
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            const vals: number[] = [];
            for (let i = 0; i < k; i++) {
              for (let j = 0; j < k; j++) {
                const y = oy * s - pad + i, x = ox * s - pad + j;
                if (y >= 0 && y < h && x >= 0 && x < w) vals.push(xs[((b * c + ch) * h + y) * w + x]);
                else if (op === "avg") vals.push(0);
              }
            }
            out.push(op === "max" ? Math.max(...vals) : vals.reduce((a, v) => a + v) / (k * k));
          }
        }
      }
    }
    return out;
  };
  const avg = await privately(xs, [n, c, h, w], (_p, x) => avgPool2d(x, [2, 2]));
  ref(2, 2, 0, "avg").forEach((v, i) => assert.ok(Math.abs(avg.y[i] - v) <= 2 ** -18, `avg ${i}`));
  for (const variant of ["tree", "pairs"] as const) {
    for (const [k, s, pad] of [[2, 2, 0], [3, 2, 1], [3, 1, 1]]) {
      const mx = await privately(
        xs,
        [n, c, h, w],
        async (_p, x) => (await maxPool2d(x, [k, k], { stride: s, padding: pad, variant })).y,
      );
      assert.deepEqual(Array.from(mx.y), ref(k, s, pad, "max"), `${variant} max pool k${k} s${s} p${pad}`);
      const rounds = (relu: boolean) =>
        variant === "pairs" ? pairsRounds(k * k, relu) : maxRounds(k * k) + (relu ? 10 : 0);
      assert.equal(mx.rounds, rounds(false));
      // ReLU of the pooled maximum, fused
      const mr = await privately(
        xs,
        [n, c, h, w],
        async (_p, x) => (await maxPool2d(x, [k, k], { stride: s, padding: pad, variant, relu: true })).y,
      );
      const want = ref(k, s, pad, "max").map((v) => Math.max(v, 0));
      assert.deepEqual(Array.from(mr.y), want, `${variant} relu of max pool k${k} s${s} p${pad}`);
      assert.equal(mr.rounds, rounds(true));
    }
  }
});
