import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { maxLastAxis, maxRounds } from "../../lib/mpc/max.ts";
import { maxAllPairs, pairsRounds, preferPairs } from "../../lib/mpc/max_pairs.ts";
import { greaterEqual, lessThan } from "../../lib/mpc/compare.ts";
import { deviceTest, Rng } from "../helpers.ts";
import { runParties } from "./harness.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import { madeOnDemand } from "../../lib/mpc/demand.ts";

/** Party `owner` shares xs; every party runs `op` and reveals its max and one-hot argmax, with the rounds op took. */
function revealedMax(
  xs: Float64Array,
  shape: number[],
  owner: number,
  f: number,
  op: (x: AShare) => Promise<{ max: AShare; argmax?: AShare }>,
  preprocessed?: { masks: number; bits: number },
) {
  return runParties(async (p) => {
    using x = await shareInput(p, owner, p.index === owner ? RingTensor.encode(p.backend, xs, f, shape) : null, shape);
    if (preprocessed) { // the masks and bits made before the rounds are counted
      await p.masks.fill("masks", preprocessed.masks);
      await p.bits.fill("bits", preprocessed.bits);
    }
    const r0 = p.mesh.rounds;
    const { max, argmax } = await op(x);
    const rounds = p.mesh.rounds - r0;
    using m = max, am = argmax!;
    using rm = await reveal(m);
    using ra = await reveal(am);
    const short = madeOnDemand(p);
    return { max: rm.decode(f), argmax: ra.toBigInt64Array(), rounds, short };
  }, { truncation: preprocessed ? "preprocessed" : "corrected" });
}

deviceTest("comparisons are exact on fixed-point values, including equal ones", async () => {
  const rng = new Rng(90);
  const n = 1000, f = 20;
  const xs = Float64Array.from({ length: n }, () => (rng.int(2001) - 1000) / 8);
  const ys = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? xs[i] : (rng.int(2001) - 1000) / 8));
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f) : null, [n]);
    using y = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, ys, f) : null, [n]);
    using lt = await lessThan(x, y);
    using ge = await greaterEqual(x, y);
    using a = await reveal(lt);
    using b = await reveal(ge);
    return [a.toBigInt64Array(), b.toBigInt64Array()];
  });
  for (let i = 0; i < n; i++) {
    assert.equal(results[2][0][i], xs[i] < ys[i] ? 1n : 0n, `${xs[i]} < ${ys[i]}`);
    assert.equal(results[2][1][i], xs[i] >= ys[i] ? 1n : 0n);
  }
});

deviceTest("max and argmax over the last axis are exact on distinct values, 10 rounds a level", async () => {
  const rng = new Rng(91);
  const f = 20;
  for (const d of [1, 2, 3, 5, 10, 16]) {
    const rows = 7;
    const xs = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const perm = [...Array(d).keys()].sort(() => rng.int(3) - 1);
      for (let j = 0; j < d; j++) xs[r * d + j] = (perm[j] - d / 2) * 3.25 + (rng.int(2) ? 0.5 : -100);
    }
    const results = await revealedMax(xs, [rows, d], 2, f, (x) => maxLastAxis(x, true));
    const r = results[0];
    assert.equal(r.rounds, maxRounds(d), `rounds for d=${d}`);
    for (let row = 0; row < rows; row++) {
      const slice = Array.from(xs.subarray(row * d, (row + 1) * d));
      const best = Math.max(...slice), at = slice.indexOf(best);
      assert.equal(r.max[row], best, `max of row ${row}, d=${d}`);
      for (let j = 0; j < d; j++) assert.equal(r.argmax[row * d + j], j === at ? 1n : 0n, `argmax d=${d} row ${row}`);
    }
  }
});

for (const masked of [false, true]) {
  deviceTest(
    `all-pairs max, argmax and ReLU of max${masked ? " from masks" : ""}: exact, ties to the first entry, ` +
      (masked ? "7 + (ceil(log2) - 1) + 2 rounds" : "8 + ceil(log2) + 2 rounds"),
    async () => {
      const rng = new Rng(92);
      const f = 20;
      for (
        const [d, relu] of [[2, false], [4, false], [4, true], [9, true], [1, true], [5, false]] as [number, boolean][]
      ) {
        const rows = 40;
        // small integers and halves: plenty of ties, zeros and negative rows
        const xs = Float64Array.from({ length: rows * d }, () => (rng.int(9) - 5) / 2);
        const material = { masks: rows * ((d * (d - 1)) / 2 + (relu ? d : 0)), bits: rows * d };
        const results = await revealedMax(
          xs,
          [rows, d],
          1,
          f,
          (x) => maxAllPairs(x, { relu, argmax: true }),
          masked ? material : undefined,
        );
        const r = results[2];
        assert.equal(r.short, 0, "nothing made on demand");
        assert.equal(r.rounds, pairsRounds(d, relu, masked), `rounds for d=${d}`);
        const levels = Math.ceil(Math.log2(d - 1 + +relu));
        assert.equal(pairsRounds(d, relu, masked), masked ? 7 + Math.max(0, levels - 1) + 2 : 8 + levels + 2);
        for (let row = 0; row < rows; row++) {
          const slice = Array.from(xs.subarray(row * d, (row + 1) * d));
          const best = Math.max(...slice), at = slice.indexOf(best);
          const won = !relu || best > 0;
          assert.equal(r.max[row], won ? best : 0, `max of row ${row} (${slice}), d=${d} relu=${relu}`);
          for (let j = 0; j < d; j++) {
            assert.equal(r.argmax[row * d + j], won && j === at ? 1n : 0n, `argmax of row ${row} (${slice}), d=${d}`);
          }
        }
      }
    },
  );
}

Deno.test("the all-pairs max is chosen where the rounds it saves outweigh its extra comparisons", () => {
  // LeNet's pools at batch 1 (20x12x12 and 50x4x4 windows of 4, then ReLU): all pairs
  assert.ok(preferPairs(2880, 4, true) && preferPairs(800, 4, true));
  // the same at batch 64: 1.1M extra comparisons against 18 rounds, the tree
  assert.ok(!preferPairs(64 * 2880, 4, true));
  // a window of 2 without ReLU is one comparison either way
  assert.ok(!preferPairs(10, 2, false));
});
