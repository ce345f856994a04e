/**
 * SGD's settings are bounded before any connection: one line naming the flag, the value and the bound. Adam and
 * AdamW against the definition in float64, parameters without gradients, schedules (lib/nn/optim.ts, adam.ts).
 */
import assert from "node:assert/strict";
import { checkSgdOptions, MAX_LR, Sgd } from "../../lib/nn/optim.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { formatLrSchedule, lrFactor, type Optimizer, parseLrSchedule } from "../../lib/nn/optim.ts";
import { Adam, checkAdamOptions } from "../../lib/nn/adam.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { deviceTest, Rng } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";

Deno.test("the learning rate must be positive and at most 1024", () => {
  assert.equal(MAX_LR, 1024);
  assert.throws(
    () => new Sgd({ lr: 1e30 }),
    /^RangeError: --lr must be at most 1024 \(larger rates only diverge, .*\), got 1e\+30$/,
  );
  for (const lr of [0, -0.1, Number.NaN]) {
    assert.throws(() => new Sgd({ lr }), new RegExp(`^RangeError: --lr must be a positive number, got ${lr}$`));
  }
  assert.throws(() => new Sgd({ lr: Infinity }), /--lr must be at most 1024/);
  assert.doesNotThrow(() => new Sgd({ lr: 1024 }));
});

Deno.test("at high fractional bits the ring bounds lr below 1024: lr < 2^(62 - 2f)", () => {
  checkSgdOptions({ lr: 1024 }, 16);
  checkSgdOptions({ lr: 1023 }, 26);
  assert.throws(
    () => checkSgdOptions({ lr: 1024 }, 26),
    /^RangeError: --lr must be below 1024, the largest rate whose product with a gradient of 1 stays in the ring at 26 fractional bits, got 1024$/,
  );
  assert.throws(() => checkSgdOptions({ lr: 300 }, 27), /--lr must be below 256, .* at 27 fractional bits, got 300/);
  // the constructor does not know f; the first step's constants do
  const sgd = new Sgd({ lr: 300 });
  assert.throws(() => sgd.constants(64, 27), /--lr must be below 256/);
});

Deno.test("momentum and weight decay must be in [0, 1)", () => {
  for (const momentum of [1, 1.5, -0.1, Number.NaN]) {
    assert.throws(
      () => new Sgd({ lr: 0.1, momentum }),
      new RegExp(`^RangeError: --momentum must be in \\[0, 1\\), got ${momentum}$`),
    );
  }
  for (const weightDecay of [1, 2, -1e-4]) {
    assert.throws(
      () => new Sgd({ lr: 0.1, weightDecay }),
      new RegExp(`^RangeError: --weight-decay must be in \\[0, 1\\), got ${weightDecay}$`),
    );
  }
  assert.doesNotThrow(() => new Sgd({ lr: 0.1, momentum: 0.99, weightDecay: 0.999 }));
});

Deno.test("the largest accepted settings encode exactly: lr / batch and lr * weightDecay do not wrap", () => {
  const plain = new Sgd({ lr: 1024, weightDecay: 0.5 }).constants(1, 16);
  assert.equal(plain.grad.value, 1024);
  assert.equal(plain.decay.value, 512);
  assert.equal(plain.grad.multiplier, 1024n << 16n);
  const m = new Sgd({ lr: 1024, momentum: 0.9, weightDecay: 0.5 }).constants(8, 20);
  assert.equal(m.lr.value, 1024);
  assert.equal(m.lr.multiplier, 1n << 30n);
  assert.equal(m.grad.value, 1 / 8);
  assert.ok(Math.abs(m.momentum.value - 0.9) < 2 ** -20);
});

// ---------------------------------------------------------------------------------------------------------------
// Adam, AdamW, parameters without gradients, schedules

const F = 16;

const shareOf = (p: Party, t: PlainTensor): Promise<AShare> =>
  shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, t.data, p.fracBits, t.shape) : null, t.shape);

async function openOf(x: AShare): Promise<Float64Array> {
  using r = await reveal(x);
  return r.decode(x.party.fracBits);
}

interface AdamReference {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/**
 * Adam/AdamW from the definition (Kingma & Ba; Loshchilov & Hutter), float64, written here independently of the
 * optimizer: g the batch mean (+ L2 for Adam), bias-corrected moments, eps inside the square root.
 */
function referenceAdam(o: AdamReference) {
  const m = new Map<string, number[]>(), v = new Map<string, number[]>();
  let t = 0;
  return (w: Map<string, number[]>, sums: Map<string, number[]>, batch: number, rate = o.lr) => {
    t++;
    for (const [n, gs] of sums) {
      const W = w.get(n)!, M = m.get(n) ?? W.map(() => 0), V = v.get(n) ?? W.map(() => 0);
      for (let i = 0; i < W.length; i++) {
        const g = gs[i] / batch + (o.decoupled ? 0 : o.weightDecay * W[i]);
        M[i] = o.beta1 * M[i] + (1 - o.beta1) * g;
        V[i] = o.beta2 * V[i] + (1 - o.beta2) * g * g;
        const mhat = M[i] / (1 - o.beta1 ** t), vhat = V[i] / (1 - o.beta2 ** t);
        W[i] -= rate * mhat / Math.sqrt(vhat + o.eps) + (o.decoupled ? rate * o.weightDecay * W[i] : 0);
      }
      m.set(n, M);
      v.set(n, V);
    }
  };
}

/**
 * The stated bound on a weight's error after `steps` steps: lr (2^-16 / eps + 2^-10) a step, a conservative cover
 * of: m rounded to 2^-16 (times r <= 1/sqrt(eps), and lr_t's 1/(1 - beta1^t) on a first step's small m), vhat to
 * 2^-22, invSqrt's 2^-12 relative and 2^-16 absolute on r / 8, and the update's truncation (2^-16). Measured:
 * 6.3e-5 to 6.6e-5 after 3 steps at lr 0.01, eps 1e-3 (bound 4.9e-4, i.e. 0.2% of lr a step against 1.6%); 2.5e-4
 * to 3.0e-4 after 4 AdamW steps at lr 0.05, eps 2e-4 (bound 1.5e-2).
 */
const updateBound = (o: AdamReference, steps: number) => steps * o.lr * (2 ** -16 / o.eps + 2 ** -10);

/** Random parameters (one without a gradient, as batch normalization's running mean) and per-step gradient sums. */
function problem(seed: number, steps: number, batch: number) {
  const r = new Rng(seed), uniform = (a: number, b: number) => a + (b - a) * r.int(2 ** 30) / 2 ** 30;
  const shapes = new Map<string, number[]>([["0.weight", [6, 5]], ["0.bias", [6]], ["1.running_mean", [6]], [
    "2.weight",
    [3, 6],
  ]]);
  const weights = new Map<string, PlainTensor>();
  for (const [n, s] of shapes) {
    const size = s.reduce((a, b) => a * b, 1);
    weights.set(n, new PlainTensor(s, Float64Array.from({ length: size }, () => uniform(-1, 1))));
  }
  // batch-mean gradients over four decades (1e-3 .. 2), some negative; sums as the backward pass gives them
  const grads = Array.from({ length: steps }, () => {
    const g = new Map<string, PlainTensor>();
    for (const [n, w] of weights) {
      if (n.endsWith("running_mean")) continue;
      const data = w.data.map(() => Math.sign(uniform(-1, 1)) * 10 ** uniform(-3, 0.3) * batch);
      g.set(n, new PlainTensor(w.shape, data));
    }
    return g;
  });
  return { weights, grads };
}

/** `steps` private steps of `make()` against the float64 reference; returns the worst weight error and more. */
async function compareAdam(ref: AdamReference, steps: number, batch = 32) {
  const { weights, grads } = problem(7, steps, batch);
  const make = () =>
    new Adam({
      lr: ref.lr,
      beta1: ref.beta1,
      beta2: ref.beta2,
      eps: ref.eps,
      weightDecay: ref.weightDecay,
      decoupled: ref.decoupled,
    });
  const [got] = await runParties(async (p) => {
    const params = new Map<string, AShare>();
    for (const [n, w] of weights) params.set(n, await shareOf(p, w));
    const adam = make();
    const perStep: Map<string, Float64Array>[] = [];
    for (const g of grads) {
      const gs = new Map<string, AShare>();
      for (const [n, t] of g) gs.set(n, await shareOf(p, t));
      await adam.step(params, gs, batch);
      gs.forEach((x) => x.dispose());
      const out = new Map<string, Float64Array>();
      for (const [n, v] of params) out.set(n, await openOf(v));
      perStep.push(out);
    }
    const state = [...adam.state().keys()].sort();
    params.forEach((x) => x.dispose());
    adam.dispose();
    return { perStep, state, iteration: adam.iteration };
  }, { fracBits: F });
  // the reference, and the optimizer's own twin
  const w = new Map([...weights].map(([n, t]) => [n, [...t.data]]));
  const step = referenceAdam(ref);
  const twin = new Map(weights), twinAdam = make();
  let worst = 0, worstTwin = 0;
  const initial = new Map([...weights].map(([n, t]) => [n, [...t.data]]));
  grads.forEach((g, s) => {
    step(w, new Map([...g].map(([n, t]) => [n, [...t.data]])), batch);
    twinAdam.plainStep(twin, g, batch, F);
    for (const [n, want] of w) {
      const priv = got.perStep[s].get(n)!, plain = twin.get(n)!.data;
      want.forEach((x, i) => {
        worst = Math.max(worst, Math.abs(priv[i] - x));
        worstTwin = Math.max(worstTwin, Math.abs(plain[i] - x));
      });
    }
  });
  return { worst, worstTwin, got, initial, reference: w };
}

deviceTest("Adam's private steps follow the definition in float64 (three steps, state carried)", async () => {
  const ref = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-3, weightDecay: 1e-2, decoupled: false };
  const { worst, worstTwin, got, initial, reference } = await compareAdam(ref, 3);
  console.log(`Adam: largest weight error after 1..3 steps ${worst.toExponential(2)} (lr ${ref.lr})`);
  assert.ok(worstTwin < 1e-12, `the twin is the definition: ${worstTwin}`);
  assert.ok(worst <= updateBound(ref, 3), `largest error ${worst}`);
  assert.equal(got.iteration, 3);
  assert.deepEqual(got.state, ["0.bias", "0.weight", "2.weight"].flatMap((n) => [`adam_m.${n}`, `adam_v.${n}`]).sort());
  // the running mean has no gradient: untouched, to the last bit
  assert.deepEqual(
    [...got.perStep[2].get("1.running_mean")!],
    initial.get("1.running_mean")!.map((x) => Math.round(x * 2 ** F) / 2 ** F),
  );
  // the steps moved the weights by about lr each (Adam's scale), as the reference did
  const moved = Math.abs(reference.get("0.weight")![0] - initial.get("0.weight")![0]);
  assert.ok(moved > 0.3 * ref.lr && moved < 4 * ref.lr, `moved ${moved}`);
});

deviceTest("AdamW (decoupled weight decay) and beta2 0.99 follow the definition over four steps", async () => {
  const ref = { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 2e-4, weightDecay: 0.1, decoupled: true };
  const { worst, worstTwin } = await compareAdam(ref, 4);
  console.log(`AdamW: largest weight error after 1..4 steps ${worst.toExponential(2)} (lr ${ref.lr})`);
  assert.ok(worstTwin < 1e-12);
  assert.ok(worst <= updateBound(ref, 4), `largest error ${worst}`);
});

deviceTest("SGD leaves parameters without a gradient unchanged, privately and in the twin", async () => {
  const { weights, grads } = problem(3, 2, 8);
  const opts = { lr: 0.1, momentum: 0.9, weightDecay: 0.01 };
  const [got] = await runParties(async (p) => {
    const params = new Map<string, AShare>();
    for (const [n, w] of weights) params.set(n, await shareOf(p, w));
    const sgd = new Sgd(opts);
    for (const g of grads) {
      const gs = new Map<string, AShare>();
      for (const [n, t] of g) gs.set(n, await shareOf(p, t));
      await sgd.step(params, gs, 8);
      gs.forEach((x) => x.dispose());
    }
    const out = new Map<string, Float64Array>();
    for (const [n, v] of params) out.set(n, await openOf(v));
    const velocities = [...sgd.state().keys()];
    params.forEach((x) => x.dispose());
    sgd.dispose();
    return { out, velocities };
  }, { fracBits: F });
  const rm = weights.get("1.running_mean")!.data;
  assert.deepEqual([...got.out.get("1.running_mean")!], [...rm].map((x) => Math.round(x * 2 ** F) / 2 ** F));
  assert.ok(!got.velocities.includes("velocity.1.running_mean"));
  assert.notDeepEqual([...got.out.get("0.weight")!], [...weights.get("0.weight")!.data]);
  for (
    const opt of [new Sgd(opts), new Adam({ lr: 0.01 }), new Adam({ lr: 0.01, decoupled: true, weightDecay: 0.5 })]
  ) {
    const twin = new Map(weights);
    for (const g of grads) opt.plainStep(twin, g, 8, F);
    assert.equal(twin.get("1.running_mean"), weights.get("1.running_mean"), opt.describe());
  }
});

Deno.test("Adam's bias correction: the first step moves each weight by lr g / sqrt(g^2 + eps), whatever beta", () => {
  for (const [beta1, beta2] of [[0.9, 0.999], [0.5, 0.9], [0, 0]]) {
    const adam: Optimizer = new Adam({ lr: 0.01, beta1, beta2, eps: 1e-3 });
    const w = new Map([["w", new PlainTensor([3], Float64Array.from([1, 1, 1]))]]);
    const g = [0.5, -0.02, 2];
    adam.plainStep(w, new Map([["w", new PlainTensor([3], Float64Array.from(g, (x) => 4 * x))]]), 4, F);
    const got = w.get("w")!.data;
    g.forEach((x, i) => assert.ok(Math.abs(got[i] - (1 - 0.01 * x / Math.sqrt(x * x + 1e-3))) < 1e-12));
    assert.equal(adam.iteration, 1);
  }
  // and its private constants: lr / (1 - beta1^t), 1 / (1 - beta2^t) at t = iteration + 1
  const a = new Adam({ lr: 0.01, beta1: 0.9, beta2: 0.999 });
  a.iteration = 9;
  const c = a.constants(64, F);
  assert.equal(c.t, 10);
  assert.equal(c.lrT, 0.01 / (1 - 0.9 ** 10));
  // mu = lr_t 2^e m: its constants carry lr_t 2^e
  assert.ok(Math.abs(c.muB1.value / (0.9 * c.lrT * 2 ** c.e) - 1) < 2 ** -18);
  // vhat's own recurrence: weights (1 - beta2) / (1 - beta2^t) on g^2 and the rest on the old vhat, summing to 1
  assert.ok(Math.abs(c.vGrad.value / (0.001 / (1 - 0.999 ** 10)) - 1) < 2 ** -14);
  assert.equal(c.b2.value + c.vGrad.value, 1);
  a.iteration = 0;
  assert.deepEqual([a.constants(64, F).b2.value, a.constants(64, F).vGrad.value], [0, 1]);
});

Deno.test("learning-rate schedules: constant, step:EVERY:GAMMA and cosine at given iterations", () => {
  assert.equal(lrFactor(undefined, 50, 100), 1);
  assert.equal(lrFactor(parseLrSchedule("constant"), 99, 100), 1);
  const step = parseLrSchedule("step:30:0.1");
  assert.deepEqual(step, { kind: "step", every: 30, gamma: 0.1 });
  assert.equal(lrFactor(step, 0, 100), 1);
  assert.equal(lrFactor(step, 29, 100), 1);
  assert.ok(Math.abs(lrFactor(step, 30, 100) - 0.1) < 1e-15);
  assert.ok(Math.abs(lrFactor(step, 65, 100) - 0.01) < 1e-15);
  const cos = parseLrSchedule("cosine");
  assert.equal(lrFactor(cos, 0, 100), 1);
  assert.ok(Math.abs(lrFactor(cos, 50, 100) - 0.5) < 1e-15);
  assert.ok(Math.abs(lrFactor(cos, 25, 100) - (1 + Math.SQRT1_2) / 2) < 1e-15);
  assert.ok(lrFactor(cos, 99, 100) > 0);
  for (const s of ["constant", "cosine", "step:30:0.1", "step:1:1"]) {
    assert.equal(formatLrSchedule(parseLrSchedule(s)), s);
  }
  for (
    const [s, want] of [
      ["linear", /^RangeError: --lr-schedule must be constant, step:EVERY:GAMMA or cosine, got linear$/],
      ["step:0:0.5", /EVERY a positive integer, got 0$/],
      ["step:2.5:0.5", /EVERY a positive integer, got 2.5$/],
      ["step:10:1.5", /GAMMA in \(0, 1\], got 1.5$/],
      ["step:10:0", /GAMMA in \(0, 1\], got 0$/],
      ["step:10", /must be constant, step:EVERY:GAMMA or cosine, got step:10$/],
    ] as const
  ) assert.throws(() => parseLrSchedule(s), want);
  // SGD applies the scheduled rate: lr / batch at iteration 30 of step:30:0.1
  const sgd = new Sgd({ lr: 0.5, lrSchedule: step, iterations: 100 });
  sgd.iteration = 30;
  assert.ok(Math.abs(sgd.constants(1, F).grad.value - 0.05) < 1e-6);
  const adam = new Adam({ lr: 0.5, lrSchedule: cos, iterations: 100 });
  adam.iteration = 50;
  assert.equal(adam.rate(), 0.25);
});

Deno.test("Adam's settings are bounded with one line naming the flag", () => {
  const cases: [Parameters<typeof checkAdamOptions>[0], number | undefined, RegExp][] = [
    [
      { lr: 2 },
      undefined,
      /^RangeError: --lr must be at most 1 for adam \(each step moves a weight by about lr\), got 2$/,
    ],
    [{ lr: 0 }, undefined, /^RangeError: --lr must be a positive number, got 0$/],
    [{ lr: 0.1, beta1: 1 }, undefined, /^RangeError: --beta1 must be in \[0, 1\), got 1$/],
    [{ lr: 0.1, beta2: 0.99999 }, undefined, /^RangeError: --beta2 must be in \[0, 0.9999\], got 0.99999$/],
    [{ lr: 0.1, eps: 0 }, undefined, /^RangeError: --eps must be in \(0, 1\], got 0$/],
    [
      { lr: 0.1, eps: 1e-5 },
      16,
      /^RangeError: --eps must be at least 0.0001220703125 \(8 units of 2\^-16\), got 0.00001$/,
    ],
    [
      { lr: 0.1, weightDecay: 1, decoupled: true },
      undefined,
      /^RangeError: --weight-decay must be in \[0, 1\), got 1$/,
    ],
    [{ lr: 0.1, decoupled: true }, 6, /^RangeError: adamw needs at least 8 fractional bits, got 6$/],
  ];
  for (const [o, f, want] of cases) assert.throws(() => checkAdamOptions(o, f), want);
  checkAdamOptions({ lr: 1, beta1: 0, beta2: 0.9999, eps: 2 ** -13 }, 16);
});
