import assert from "node:assert/strict";
import type { RingTensor } from "../../lib/ring/tensor.ts";
import { encodeFixed } from "../../lib/ring/fixed.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import { Dropout, dropoutKeep, Flatten, Linear, ReLU } from "../../lib/nn/layers.ts";
import { initWeights, Model, plainParams, Sequential, sharedParams, shareWeights } from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { Grads, Tape } from "../../lib/nn/tape.ts";
import { Sgd } from "../../lib/nn/optim.ts";
import { plainTrainStep, trainStep } from "../../lib/nn/train_step.ts";
import { deviceTest } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";
import { open, random, relativeError, share } from "./twin_helpers.ts";

const ctx = { seed: 1234, iteration: 7 };
const F = 20;

Deno.test("dropoutKeep: about p dropped, deterministic in (seed, iteration, path), different otherwise", () => {
  const n = 20000;
  for (const p of [0.5, 0.3, 0.1]) {
    const keep = dropoutKeep(ctx, "2", p, n);
    const dropped = keep.reduce((a, k) => a + (1 - k), 0);
    // a binomial(n, p) count: 5 standard deviations
    const bound = 5 * Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(dropped - p * n) <= bound, `p = ${p}: ${dropped} of ${n} dropped`);
    assert.deepEqual(dropoutKeep({ ...ctx }, "2", p, n), keep, "the same (seed, iteration, path): the same mask");
  }
  const base = dropoutKeep(ctx, "0.3", 0.5, 256);
  const differs = (other: Uint8Array) => other.some((k, i) => k !== base[i]);
  assert.ok(differs(dropoutKeep({ ...ctx, iteration: 8 }, "0.3", 0.5, 256)), "another iteration");
  assert.ok(differs(dropoutKeep(ctx, "0.4", 0.5, 256)), "another layer path");
  assert.ok(differs(dropoutKeep(ctx, "1.3", 0.5, 256)), "another layer path (prefix)");
  assert.ok(differs(dropoutKeep({ ...ctx, seed: 1235 }, "0.3", 0.5, 256)), "another seed");
  assert.deepEqual(dropoutKeep(ctx, "0.3", 0, 256), new Uint8Array(256).fill(1), "p = 0 keeps everything");
  assert.throws(() => new Dropout(1), /outside \[0, 1\)/);
  assert.throws(() => new Dropout(-0.1), /outside \[0, 1\)/);
  assert.equal(new Dropout().p, 0.5);
});

deviceTest(
  "Dropout(0.5) and Dropout(0.3): private forward and backward match the twin, with the same masks",
  async () => {
    const net = new Sequential([
      new Linear(12, 16),
      new ReLU(),
      new Dropout(0.5),
      new Linear(16, 10),
      new Dropout(0.3),
    ]);
    const model = new Model("m", net, [12]);
    const weights = initWeights(model, 3);
    const x = random([4, 12], 4);
    const tape = new Tape({ dropout: ctx }), grads = new Grads<PlainTensor>();
    const y = net.plain(x, plainParams(weights), tape);
    const dy = random(y.shape, 5);
    const dx = net.plainBackward(dy, plainParams(weights), tape, grads);
    const twinKeep = { half: tape.child("2").get<Uint8Array>("keep"), third: tape.child("4").get<Uint8Array>("keep") };
    assert.equal(tape.child("2").path, "2");

    const got = await runParties(async (p) => {
      const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
      using xs = await share(p, 1, x), dys = await share(p, 2, dy);
      using t = new Tape({ dropout: { ...ctx } });
      const g = new Grads<AShare>();
      using ys = await net.forward(xs, sharedParams(w), undefined, t);
      using dxs = (await net.backward(dys, sharedParams(w), t, g, true))!;
      const masks = {
        half: t.child("2").get<RingTensor>("mask").toBigUint64Array(),
        third: t.child("4").get<RingTensor>("mask").toBigUint64Array(),
      };
      const out = { y: await open(ys), dx: await open(dxs), grads: new Map<string, Float64Array>(), masks };
      for (const [n, v] of g.map) out.grads.set(n, await open(v));
      g.map.forEach((v) => v.dispose());
      w.forEach((v) => v.dispose());
      return out;
    }, { fracBits: F });

    // the masks: the same at every party, and the twin's keep-mask scaled by 1/(1 - p)
    const want = {
      half: BigUint64Array.from(twinKeep.half, (k) => (k ? 2n : 0n)),
      third: BigUint64Array.from(twinKeep.third, (k) => (k ? encodeFixed(1 / 0.7, F) : 0n)),
    };
    for (const r of got) assert.deepEqual(r.masks, want);
    assert.ok(twinKeep.half.includes(0) && twinKeep.half.includes(1), "Dropout(0.5) drops some, keeps some");
    assert.ok(twinKeep.third.includes(0) && twinKeep.third.includes(1), "Dropout(0.3) drops some, keeps some");
    // dropped outputs are zero in both
    y.data.forEach((v, i) => twinKeep.third[i] === 0 && assert.equal(v, 0));
    got[0].y.forEach((v, i) => twinKeep.third[i] === 0 && assert.equal(v, 0));

    const r = got[0];
    assert.ok(relativeError(r.y, y.data) <= 1e-4, `forward error ${relativeError(r.y, y.data)}`);
    assert.ok(relativeError(r.dx, dx.data) <= 1e-4, `dx error ${relativeError(r.dx, dx.data)}`);
    assert.deepEqual([...r.grads.keys()].sort(), [...grads.map.keys()].sort());
    for (const [n, gw] of grads.map) {
      const e = relativeError(r.grads.get(n)!, gw.data);
      assert.ok(e <= 1e-4, `gradient of ${n}: error ${e}`);
    }
  },
);

deviceTest(
  "Dropout rounds: p = 0.5 none (exact), p = 0.3 one truncation each way; inference is the identity",
  async () => {
    const x = random([3, 40], 8);
    const results = await runParties(async (p) => {
      using xs = await share(p, 0, x);
      const rounds = async (f: () => Promise<AShare>) => {
        const s0 = p.mesh.stats();
        const y = await f();
        return { y, rounds: p.mesh.stats().rounds - s0.rounds };
      };
      const out: Record<string, number> = {};
      // a truncation of this shape alone
      {
        using scaled = xs.mulPublic(3n);
        const r = await rounds(() => truncate(scaled, p.fracBits));
        r.y.dispose();
        out.truncate = r.rounds;
      }
      let exact = true;
      for (const [name, layer] of [["half", new Dropout(0.5)], ["third", new Dropout(0.3)]] as const) {
        const net = new Sequential([layer]);
        using t = new Tape({ dropout: ctx });
        const f = await rounds(() => net.forward(xs, sharedParams(new Map()), undefined, t));
        using _y = f.y;
        const b = await rounds(() =>
          net.backward(xs, sharedParams(new Map()), t, new Grads<AShare>(), true) as Promise<AShare>
        );
        using _dx = b.y;
        out[`${name} forward`] = f.rounds;
        out[`${name} backward`] = b.rounds;
        if (name === "half") {
          // exactly x * 2 where kept, 0 where dropped, share by share
          const keep = dropoutKeep(ctx, "0", 0.5, x.size);
          const [x0, y0] = [xs.cur.toBigUint64Array(), f.y.cur.toBigUint64Array()];
          exact &&= keep.every((k, i) => y0[i] === BigInt.asUintN(64, k ? 2n * x0[i] : 0n));
        }
      }
      // inference: no tape, the identity
      const net = new Sequential([new Dropout(0.3)]);
      const inf = await rounds(() => net.forward(xs, sharedParams(new Map())));
      using yi = inf.y;
      out.inference = inf.rounds;
      return { out, exact, inference: await open(yi), x: await open(xs) };
    });
    for (const r of results) {
      assert.ok(r.exact, "p = 0.5 is an exact public multiplication");
      assert.ok(r.out.truncate > 0);
      assert.deepEqual(r.out, {
        truncate: r.out.truncate,
        "half forward": 0,
        "half backward": 0,
        "third forward": r.out.truncate,
        "third backward": r.out.truncate,
        inference: 0,
      });
      assert.deepEqual(r.inference, r.x);
    }
    const tw = new Dropout(0.3).plain(x);
    assert.equal(tw, x, "the twin at inference is the identity");
  },
);

deviceTest(
  "trainStep on a model with Dropout: a clear error without the dropout option, the twin's step with it",
  async () => {
    const net = new Sequential([new Flatten(), new Linear(12, 8), new ReLU(), new Dropout(), new Linear(8, 3)]);
    const model = new Model("m", net, [3, 4]);
    const weights = initWeights(model, 9);
    const x = random([4, 3, 4], 10, 0, 1);
    const y = new PlainTensor(
      [4, 3],
      Float64Array.from({ length: 12 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0)),
    );
    const message = /Dropout in training needs the run's public seed and the iteration/;
    assert.throws(() => plainTrainStep(model, new Map(weights), new Sgd({ lr: 0.1 }), x, y, 16), message);
    const dropout = { seed: 77, iteration: 3 };
    const twin = new Map(weights);
    plainTrainStep(model, twin, new Sgd({ lr: 0.1 }), x, y, 16, { dropout });
    const [got] = await runParties(async (p) => {
      const params = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
      using xs = await share(p, 1, x), ys = await share(p, 1, y);
      const sgd = new Sgd({ lr: 0.1 });
      await assert.rejects(() => trainStep(model, params, sgd, xs, ys), message);
      await trainStep(model, params, sgd, xs, ys, { dropout });
      const out = new Map<string, Float64Array>();
      for (const [n, v] of params) out.set(n, await open(v));
      params.forEach((v) => v.dispose());
      sgd.velocity.forEach((v) => v.dispose());
      return out;
    }, { fracBits: 16 });
    for (const [n, w0] of weights) {
      const dGot = got.get(n)!.map((v, i) => v - w0.data[i]), dWant = twin.get(n)!.data.map((v, i) => v - w0.data[i]);
      const e = relativeError(dGot, dWant);
      assert.ok(e <= 0.02, `${n}: update error ${e}`);
    }
  },
);
