/**
 * The rehearsal of a forward (lib/nn/rehearsal.ts, lib/mpc/rehearsal.ts): the
 * truncation pairs it counts are the ones the real forward takes, so that
 * pairs made from its count leave nothing to make on demand; a party that
 * fails in a rehearsal stops it with its error instead of leaving the others
 * waiting.
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { AShare } from "../../lib/mpc/arithmetic.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { preprocessFor, rehearse, resetDemand } from "../../lib/mpc/rehearsal.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { emptyBreakdown, sharedParams, shareWeights } from "../../lib/nn/model.ts";
import { seededWeights } from "../../lib/nn/calibrate.ts";
import { rehearseForward } from "../../lib/nn/rehearsal.ts";
import { modelByName } from "../../lib/nn/zoo.ts";
import { seededInput } from "../../bench/parties.ts";
import { backend, deviceTest } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";

for (const name of ["lenet:max", "bncnn"]) {
  deviceTest(`rehearsal: ${name}'s forward takes exactly the pairs and masks its rehearsal counted`, async () => {
    const model = modelByName(name), shape = [1, ...model.inputShape], f = 20;
    const b = backend(), live = b.liveBuffers().count;
    const counted = (await rehearseForward(model, shape, b, f, "preprocessed")).demand;
    const local = await rehearseForward(model, shape, b, f, "local");
    assert.deepEqual(local.demand, { pairs: new Map(), masks: 0 }, "local truncation takes no pairs and no masks");
    assert.equal(b.liveBuffers().count, live, "the rehearsals leave no buffer behind");
    const pairs = counted.pairs;
    assert.ok(pairs.size > 0 && [...pairs.values()].every((n) => n > 0), `${[...pairs]}`);
    assert.ok(counted.masks > 0, "the comparisons take masks");
    const results = await runParties(async (p) => {
      const w = await shareWeights(p, model, 0, p.index === 0 ? seededWeights(model, 1) : null);
      const made = await preprocessFor(p, counted);
      const plain = p.index === 1 ? RingTensor.encode(p.backend, seededInput(shape, 2).data, f, shape) : null;
      using x = await shareInput(p, 1, plain, shape);
      resetDemand(p);
      const r0 = p.mesh.rounds;
      const y = await model.net.openOutputTo(x, sharedParams(w), 0, emptyBreakdown());
      const rounds = p.mesh.rounds - r0;
      y.value?.dispose();
      w.forEach((s) => s.dispose());
      const usage = [...p.pairs.usage, ...p.masks.usage].map(([d, u]) => [d, u.taken, u.madeOnDemand]);
      return { made, rounds, usage };
    }, { fracBits: f, truncation: "preprocessed" });
    const total = [...pairs.values()].reduce((a, c) => a + c, counted.masks);
    for (const r of results) {
      assert.equal(r.made, total);
      assert.deepEqual(r.usage, [...[...pairs].map(([d, n]) => [d, n, 0]), ["masks", counted.masks, 0]]);
      assert.equal(r.rounds, results[0].rounds);
    }
  });
}

deviceTest("rehearsal: a party that fails stops the rehearsal with its error", async () => {
  await assert.rejects(
    rehearse(backend(), 20, "local", async (p) => {
      if (p.index === 1) throw new Error("party 1 gave up");
      // the others wait for a round party 1 never joins, until the rehearsal closes their links
      using x = new AShare(p, RingTensor.zeros(p.backend, [4]), RingTensor.zeros(p.backend, [4]));
      using _ = await reveal(x);
    }),
    /party 1 gave up/,
  );
});
