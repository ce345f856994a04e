/**
 * The dress rehearsal of a forward (lib/nn/rehearsal.ts) and the demand it
 * counts (lib/mpc/demand.ts): the material it counts is the material the real
 * forward takes, so that making it ahead leaves nothing to make on demand; the
 * real forward's answer is the same with and without a rehearsal before it;
 * nothing is left behind.
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { madeOnDemand, preprocessFor, resetDemand } from "../../lib/mpc/demand.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { emptyBreakdown, sharedParams, shareWeights } from "../../lib/nn/model.ts";
import { seededWeights } from "../../lib/nn/calibrate.ts";
import { rehearseForward } from "../../lib/nn/rehearsal.ts";
import { modelByName } from "../../lib/nn/zoo.ts";
import { seededInput } from "../../bench/parties.ts";
import { backend, deviceTest } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";

const F = 20;

/** The model's forward on seeded weights and input, opened to party 0: [logits at party 0, rounds]. */
async function forward(p: Party, name: string): Promise<[Float64Array | null, number]> {
  const model = modelByName(name), shape = [1, ...model.inputShape];
  const w = await shareWeights(p, model, 0, p.index === 0 ? seededWeights(model, 1) : null);
  const plain = p.index === 1 ? RingTensor.encode(p.backend, seededInput(shape, 2).data, F, shape) : null;
  using x = await shareInput(p, 1, plain, shape);
  plain?.dispose();
  const r0 = p.mesh.rounds;
  const y = await model.net.openOutputTo(x, sharedParams(w), 0, emptyBreakdown());
  const rounds = p.mesh.rounds - r0;
  w.forEach((s) => s.dispose());
  using v = y.value;
  return [v ? v.decode(y.fracBits) : null, rounds];
}

for (const name of ["lenet:max", "bncnn"]) {
  deviceTest(`rehearsal: ${name}'s forward takes exactly the material its rehearsal counted`, async () => {
    const model = modelByName(name), shape = [1, ...model.inputShape];
    const live = backend().liveBuffers().count;
    const results = await runParties(async (p) => {
      const { demand } = await rehearseForward(p, model, shape, 0);
      const made = await preprocessFor(p, demand);
      resetDemand(p);
      const [logits, rounds] = await forward(p, name);
      const usage = [...p.pairs.usage, ...p.masks.usage, ...p.bits.usage].map(([k, u]) => [k, u.taken]);
      return { demand, made, short: madeOnDemand(p), usage, logits, rounds };
    }, { fracBits: F, truncation: "preprocessed" });
    const plain = await runParties((p) => forward(p, name), { fracBits: F, truncation: "preprocessed" });
    const local = await runParties((p) => rehearseForward(p, model, shape, 0), { fracBits: F, truncation: "local" });
    assert.equal(backend().liveBuffers().count, live, "nothing left behind");
    for (const l of local) assert.deepEqual(l.demand, { pairs: new Map(), masks: 0, bits: 0 }, "local: no material");
    const { demand } = results[0];
    assert.ok(demand.pairs.size > 0 && demand.masks > 0, JSON.stringify([...demand.pairs, demand.masks]));
    assert.equal(demand.bits > 0, name === "lenet:max", "the max poolings' selections take random bits");
    const total = [...demand.pairs.values()].reduce((a, c) => a + c, demand.masks + demand.bits);
    for (const r of results) {
      assert.equal(r.made, total, "all of it made ahead");
      assert.equal(r.short, 0, "nothing made on demand");
      const want = [...demand.pairs, ["masks", demand.masks], ...(demand.bits > 0 ? [["bits", demand.bits]] : [])];
      assert.deepEqual(r.usage, want);
    }
    // without a rehearsal the same forward makes its material on the spot, in more rounds, to the same answer (up to
    // the truncations' last-place rounding, which the masks move)
    assert.ok(plain[0][1] > results[0].rounds, `${plain[0][1]} rounds unrehearsed, ${results[0].rounds} rehearsed`);
    const [a, b] = [results[0].logits!, plain[0][0]!];
    assert.equal(a.length, b.length);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-4, `logit ${i}: ${v} against ${b[i]}`));
  });
}
