import assert from "node:assert/strict";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import { BatchNorm, BN_EPS } from "../../lib/nn/batchnorm.ts";
import { Conv2d } from "../../lib/nn/layers.ts";
import {
  initWeights,
  Model,
  plainParams,
  Sequential,
  sharedParams,
  shareWeights,
  type Weights,
} from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { Grads, Tape } from "../../lib/nn/tape.ts";
import { deviceTest, Rng } from "../helpers.ts";
import { loadEmbeddedMnist } from "../../lib/data/embedded.ts";
import { subset } from "../../lib/data/transform.ts";
import { loadDatasetShares, shareDataset } from "../../lib/data/dataset_shares.ts";
import { sharePath } from "../../lib/io/share_files.ts";
import { Sgd } from "../../lib/nn/optim.ts";
import { countCorrect, plainCountCorrect, plainTrainStep, trainStep } from "../../lib/nn/train_step.ts";
import { plainSource, type Schedule, trainPlain, trainPrivate } from "../../lib/nn/training_loop.ts";
import { bncnn, modelByName, resnet18Cifar10 } from "../../lib/nn/zoo.ts";
import { NativeBackend } from "../../lib/native/backend.ts";
import { Graph } from "../../lib/nn/graph.ts";
import { invSqrtRounds } from "../../lib/mpc/inv_sqrt.ts";
import { sequentialToGraph } from "../../lib/nn/graph_from_sequential.ts";
import { seededWeights } from "../../lib/nn/calibrate.ts";

const BNCNN_ITERATIONS = Number(Deno.env.get("BNCNN_ITERATIONS") ?? 60);
import { runParties } from "../mpc/harness.ts";
import { open, random, relativeError, share } from "./twin_helpers.ts";

const copyWeights = (w: Weights): Weights =>
  new Map([...w].map(([n, t]) => [n, new PlainTensor(t.shape, t.data.slice())]));

/** Non-trivial BN parameters: gamma in [0.5, 1.5], beta in [-0.5, 0.5], running mean and variance off their init. */
function bnWeights(model: Model, seed: number): Weights {
  const w = initWeights(model, seed), rng = new Rng(seed + 100);
  const u = () => rng.int(1 << 24) / (1 << 24);
  for (const [name, t] of w) {
    if (name.endsWith("weight") && t.shape.length === 1) t.data.forEach((_, i) => t.data[i] = 0.5 + u());
    if (name.endsWith("bias") && t.shape.length === 1) t.data.forEach((_, i) => t.data[i] = u() - 0.5);
    if (name.endsWith("running_mean")) t.data.forEach((_, i) => t.data[i] = u() - 0.5);
    if (name.endsWith("running_var")) t.data.forEach((_, i) => t.data[i] = 0.2 + 2 * u());
  }
  return w;
}

/** Private training forward + backward, then an inference forward, of `net` against the twin. */
async function compare(net: Sequential, inputShape: number[], seed: number, lo: number, hi: number, f = 16) {
  const model = new Model("m", net, inputShape.slice(1));
  const weights = bnWeights(model, seed);
  const start = copyWeights(weights);
  const x = random(inputShape, seed + 1, lo, hi);
  const twin = copyWeights(weights), tape = new Tape(), grads = new Grads<PlainTensor>();
  const y = net.plain(x, plainParams(twin), tape);
  const dy = random(y.shape, seed + 2);
  const dx = net.plainBackward(dy, plainParams(twin), tape, grads);
  const yInfer = net.plain(x, plainParams(twin)); // with the updated running statistics
  const [got] = await runParties(async (p) => {
    const w = await shareWeights(p, model, 0, p.index === 0 ? start : null);
    using xs = await share(p, 1, x), dys = await share(p, 2, dy);
    using t = new Tape();
    const g = new Grads<AShare>();
    using ys = await net.forward(xs, sharedParams(w), undefined, t);
    const dxs = await net.backward(dys, sharedParams(w), t, g, true);
    using _dxs = dxs!;
    using yi = await net.forward(xs, sharedParams(w));
    const out = {
      y: await open(ys),
      dx: await open(dxs!),
      yInfer: await open(yi),
      grads: new Map<string, Float64Array>(),
      params: new Map<string, Float64Array>(),
    };
    for (const [n, v] of g.map) out.grads.set(n, await open(v));
    for (const [n, v] of w) out.params.set(n, await open(v));
    g.map.forEach((v) => v.dispose());
    w.forEach((v) => v.dispose());
    return out;
  }, { fracBits: f });
  return { got, want: { y, dx, yInfer, grads: grads.map, params: twin } };
}

/**
 * The bound on every relative error of a BatchNorm pass at f bits: the inverse
 * square root's relative error is at most 2^-(f-4) (inv_sqrt.ts), and it
 * enters y, xhat, dx and the inference factor once or twice; each fixed-point
 * product adds 2^-f relative to values of order 1. 2^-(f-7) = 8 2^-(f-4) leaves
 * room for both: 2e-3 at f = 16, 1.2e-4 at f = 20 (measured: at most 3.4e-5
 * and 8.7e-6).
 */
const layerBound = (f: number) => 2 ** -(f - 7);

function checkAgainstTwin(r: Awaited<ReturnType<typeof compare>>, bound: number, label: string) {
  const { got, want } = r;
  const errs: Record<string, number> = {
    y: relativeError(got.y, want.y.data),
    dx: relativeError(got.dx, want.dx.data),
    yInfer: relativeError(got.yInfer, want.yInfer.data),
  };
  assert.deepEqual([...got.grads.keys()].sort(), [...want.grads.keys()].sort());
  for (const [n, g] of want.grads) errs[`d ${n}`] = relativeError(got.grads.get(n)!, g.data);
  for (const [n, t] of want.params) errs[n] = relativeError(got.params.get(n)!, t.data);
  console.log(label, Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", "));
  for (const [k, v] of Object.entries(errs)) assert.ok(v <= bound, `${label}: ${k} relative error ${v} > ${bound}`);
}

deviceTest("BatchNorm: training forward, backward, running statistics and inference against the twin", async () => {
  const r = await compare(new Sequential([new BatchNorm(3)]), [4, 3, 5, 5], 7, -2, 3);
  checkAgainstTwin(r, layerBound(16), "BatchNorm");
  // gradients without gradients: the running statistics get none
  assert.deepEqual([...r.got.grads.keys()].sort(), ["0.bias", "0.weight"]);
});

/**
 * Large and small variances (about 500 and 2e-2, inside the default range): the private pass keeps
 * k inv = gamma inv^2 and q = k inv mean(dy xhat) with extra fractional bits, which these channels need (inv^2 about
 * 2e-3 and 50). Measured over 5 runs at var ~ 500: y 0.8-3.6e-4, dx 2.8-4.8e-4, dgamma 0.6-2.3e-4 (with q at f bits,
 * dx was 6e-3); at var ~ 2e-2: at most 1.8e-4.
 */
deviceTest("BatchNorm at large and small input scales against the twin", async () => {
  const large = await compare(new Sequential([new BatchNorm(3)]), [4, 3, 5, 5], 11, -40, 40);
  checkAgainstTwin(large, layerBound(16), "BatchNorm, var ~ 500");
  const small = await compare(new Sequential([new BatchNorm(3)]), [4, 3, 5, 5], 12, -0.25, 0.25);
  checkAgainstTwin(small, layerBound(16), "BatchNorm, var ~ 2e-2");
});

/**
 * Variances past the default range (about 5,000, as a first layer on 0-255 pixels gives) with maxVar raised to 2^16,
 * as an imported BatchNormalization gets from its running variances (lib/io/onnx/ops_linear.ts).
 */
deviceTest("BatchNorm with maxVar 2^16 at variances in the thousands against the twin", async () => {
  const wide = await compare(new Sequential([new BatchNorm(3, { maxVar: 2 ** 16 })]), [4, 3, 5, 5], 13, -120, 120);
  checkAgainstTwin(wide, layerBound(16), "BatchNorm, var ~ 5000, maxVar 2^16");
});

deviceTest("BatchNorm after a convolution, at f = 20 and a batch of 1", async () => {
  const r = await compare(
    new Sequential([new Conv2d(2, 4, 3, { padding: 1, bias: false }), new BatchNorm(4)]),
    [1, 2, 6, 6],
    9,
    0,
    1,
    20,
  );
  checkAgainstTwin(r, layerBound(20), "Conv2d+BatchNorm");
});

Deno.test("BatchNorm twin: gradients match finite differences of its forward", () => {
  const bn = new BatchNorm(2), net = new Sequential([bn]), model = new Model("m", net, [2, 3, 3]);
  const w = bnWeights(model, 3), x = random([3, 2, 3, 3], 4, -1, 2), dy = random(x.shape, 5);
  // L = sum(dy y): its gradients are the backward's outputs for incoming dy
  const loss = (xv: PlainTensor, wv: Weights) => {
    const y = net.plain(xv, plainParams(copyWeights(wv)), new Tape());
    return y.data.reduce((s, v, i) => s + v * dy.data[i], 0);
  };
  const tape = new Tape(), grads = new Grads<PlainTensor>();
  net.plain(x, plainParams(copyWeights(w)), tape);
  const dx = net.plainBackward(dy, plainParams(w), tape, grads);
  const h = 1e-6;
  for (let i = 0; i < x.size; i++) {
    const up = new PlainTensor(x.shape, x.data.slice()), down = new PlainTensor(x.shape, x.data.slice());
    up.data[i] += h;
    down.data[i] -= h;
    const fd = (loss(up, w) - loss(down, w)) / (2 * h);
    assert.ok(Math.abs(fd - dx.data[i]) <= 1e-6 * (1 + Math.abs(fd)), `dx[${i}]: ${dx.data[i]} vs ${fd}`);
  }
  for (const name of ["0.weight", "0.bias"]) {
    for (let i = 0; i < 2; i++) {
      const up = copyWeights(w), down = copyWeights(w);
      up.get(name)!.data[i] += h;
      down.get(name)!.data[i] -= h;
      const fd = (loss(x, up) - loss(x, down)) / (2 * h), g = grads.map.get(name)!.data[i];
      assert.ok(Math.abs(fd - g) <= 1e-6 * (1 + Math.abs(fd)), `${name}[${i}]: ${g} vs ${fd}`);
    }
  }
  // the definition: per channel, y has mean beta and (biased) variance gamma^2 var / (var + eps)
  const y = net.plain(x, plainParams(copyWeights(w)), new Tape());
  for (let ch = 0; ch < 2; ch++) {
    const xs: number[] = [], ys: number[] = [];
    for (let b = 0; b < 3; b++) {
      for (let i = 0; i < 9; i++) xs.push(x.data[(b * 2 + ch) * 9 + i]), ys.push(y.data[(b * 2 + ch) * 9 + i]);
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const variance = (v: number[]) => mean(v.map((t) => (t - mean(v)) ** 2));
    const g = w.get("0.weight")!.data[ch], b = w.get("0.bias")!.data[ch];
    assert.ok(Math.abs(mean(ys) - b) < 1e-12);
    assert.ok(Math.abs(variance(ys) - g * g * variance(xs) / (variance(xs) + BN_EPS)) < 1e-12);
  }
});

/**
 * The accuracy regression for batch normalization: `bncnn` trained privately
 * on the embedded digits (three parties, share files as `train` reads them)
 * against the twin from the same weights, batch order and optimizer constants;
 * held-out accuracy (inference: the running statistics) within 1.5 points.
 * SGD lr 0.1, momentum 0.5 (as the LeNet regression, accuracy_test.ts), f = 16,
 * local truncation, 60 iterations of 32, 1,000 held-out digits. Measured:
 * private 915/1000 against the twin's 915/1000, loss 0.381 / 0.377, mean loss
 * gap 2.4e-3 (largest 1.0e-2); 27 s of private training on 2 otherwise idle
 * cores (40 iterations: 872-874 vs 873). BNCNN_ITERATIONS overrides the count.
 */
deviceTest("private bncnn training on the embedded digits follows the twin (loss and held-out accuracy)", async () => {
  const F = 16, ITERATIONS = BNCNN_ITERATIONS, BATCH = 32, HELD_OUT = 1000, CHUNK = 250;
  const full = await loadEmbeddedMnist({ split: "train" });
  const train = subset(full, Array.from({ length: ITERATIONS * BATCH }, (_, i) => i));
  const test = await loadEmbeddedMnist({ split: "test", limit: HELD_OUT });
  const model = bncnn(), weights = initWeights(model, 1);
  const schedule: Schedule = { batch: BATCH, iterations: ITERATIONS, seed: 1, sgd: { lr: 0.1, momentum: 0.5 } };
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-bn-accuracy-" });
  try {
    const backend = new NativeBackend();
    await shareDataset(backend, train, `${dir}/train`, F);
    await shareDataset(backend, test, `${dir}/test`, F);
    backend.dispose();
    const t0 = performance.now();
    const [got] = await runParties(async (p) => {
      const params = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
      const sgd = new Sgd(schedule.sgd), losses: number[] = [];
      const data = await loadDatasetShares(p, sharePath(`${dir}/train`, p.index));
      await trainPrivate({
        model,
        params,
        sgd,
        data,
        schedule,
        lossTo: 0,
        onStep: ({ loss }) => void (loss !== null && losses.push(loss)),
      });
      const held = await loadDatasetShares(p, sharePath(`${dir}/test`, p.index));
      let correct = 0;
      for (let start = 0; start < HELD_OUT; start += CHUNK) {
        const { images, labels } = held.batch(Array.from({ length: CHUNK }, (_, i) => start + i));
        using x = images, y = labels;
        correct += (await countCorrect(model, params, x, y, 0)) ?? 0;
      }
      params.forEach((t) => t.dispose());
      sgd.dispose();
      return { losses, correct };
    }, { fracBits: F });
    const seconds = (performance.now() - t0) / 1000;
    const twinLosses: number[] = [];
    trainPlain({
      model,
      weights,
      data: plainSource(train),
      schedule,
      fracBits: F,
      onStep: ({ loss }) => void twinLosses.push(loss!),
    });
    const twinCorrect = plainCountCorrect(
      model,
      weights,
      new PlainTensor([HELD_OUT, ...test.shape], test.images),
      test.labels,
    );
    assert.equal(got.losses.length, ITERATIONS);
    const gaps = got.losses.map((l, i) => Math.abs(l - twinLosses[i]));
    const meanGap = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    console.log(
      `bncnn, ${ITERATIONS} x ${BATCH} in ${seconds.toFixed(1)} s: loss ${got.losses.at(-1)!.toFixed(4)} / ` +
        `${twinLosses.at(-1)!.toFixed(4)} (first ${got.losses[0].toFixed(4)} / ${twinLosses[0].toFixed(4)}), ` +
        `mean gap ${meanGap.toExponential(2)}, max gap ${Math.max(...gaps).toExponential(2)}; ` +
        `held-out ${got.correct}/${HELD_OUT} / ${twinCorrect}/${HELD_OUT}`,
    );
    assert.ok(meanGap <= 0.04 && Math.max(...gaps) <= 0.2, `loss curves part: mean gap ${meanGap}`);
    const points = (c: number) => (100 * c) / HELD_OUT;
    assert.ok(points(twinCorrect) >= 85, `twin accuracy ${points(twinCorrect)}%`);
    assert.ok(points(got.correct) >= points(twinCorrect) - 1.5, `private ${got.correct} vs twin ${twinCorrect}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * ResNet-18 (CIFAR-10) with batch statistics: one private SGD step (momentum
 * 0.9) on a batch of 2 at 32x32 from seeded weights, against the twin's step:
 * the loss, the step's change of every weight and the running statistics. The
 * last stage normalizes over m = 2 * 4 * 4 = 32 values per channel. At f = 20
 * with the corrected truncation (as `infer` runs large networks: 11M weights'
 * worth of truncated products) the measured errors were: loss 4e-6 absolute,
 * update 4.7e-3 relative (L1 over all 11.2M weights), running statistics 2e-5;
 * at f = 16 (RF=16, local truncation) 6e-4, 3.8e-2 and 3e-4: the weight
 * gradients of the deep layers are a few units of 2^-16. About 60 s on 2 cores.
 */
deviceTest("resnet18-cifar10: one private training step on a batch of 2 matches the twin", async () => {
  const F = Number(Deno.env.get("RF") ?? 20), BATCH = 2, model = resnet18Cifar10(), weights = initWeights(model, 5);
  const x = random([BATCH, 3, 32, 32], 6, 0, 1);
  const y = new PlainTensor(
    [BATCH, 10],
    Float64Array.from({ length: BATCH * 10 }, (_, i) => i % 10 === [3, 8][i / 10 | 0] ? 1 : 0),
  );
  const sgdOptions = { lr: 0.05, momentum: 0.9 };
  const t0 = performance.now();
  const [got] = await runParties(async (p) => {
    const params = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
    const sgd = new Sgd(sgdOptions);
    using xs = await share(p, 1, x), ys = await share(p, 1, y);
    const loss = await trainStep(model, params, sgd, xs, ys, { lossTo: 0 });
    const out = new Map<string, Float64Array>();
    for (const [n, v] of params) out.set(n, await open(v));
    params.forEach((t) => t.dispose());
    sgd.dispose();
    return { loss, params: out };
  }, { fracBits: F, truncation: F > 16 ? "corrected" : "local" });
  const seconds = (performance.now() - t0) / 1000;
  const twin = copyWeights(weights);
  const twinLoss = plainTrainStep(model, twin, new Sgd(sgdOptions), x, y, F);
  // the step's change, privately and in the twin, relative (the weights themselves barely move in one step)
  let diff = 0, mag = 0, statsErr = 0, count = 0;
  for (const [n, t] of twin) {
    count += t.size;
    const g = got.params.get(n)!, w0 = weights.get(n)!.data;
    if (/running_(mean|var)$/.test(n)) statsErr = Math.max(statsErr, relativeError(g, t.data));
    for (let i = 0; i < t.size; i++) {
      diff += Math.abs(g[i] - w0[i] - (t.data[i] - w0[i]));
      mag += Math.abs(t.data[i] - w0[i]);
    }
  }
  console.log(
    `resnet18-cifar10 step (batch ${BATCH}) in ${seconds.toFixed(1)} s: loss ${got.loss} / twin ${twinLoss}, ` +
      `update relative error ${(diff / mag).toExponential(2)} (mean |error| ${
        (diff / count / (sgdOptions.lr * 2 ** -F)).toFixed(2)
      } lr 2^-f), ` +
      `running statistics ${statsErr.toExponential(2)}`,
  );
  // bounds: 4x the f = 20 measurements, scaled by 2^(20 - f) for a run at other f
  const scale = 2 ** (20 - F);
  assert.ok(Math.abs(got.loss! - twinLoss) <= 1e-3 * scale, `loss ${got.loss} vs ${twinLoss}`);
  assert.ok(diff / mag <= 0.02 * scale, `update relative error ${diff / mag}`);
  assert.ok(statsErr <= 1e-4 * scale, `running statistics error ${statsErr}`);
});

Deno.test("graph: a BatchNorm becomes a batchnorm_stats node under the zoo's names; its twin trains as the Sequential's", () => {
  for (const model of [bncnn(), resnet18Cifar10()]) {
    const graph = new Graph(sequentialToGraph(model));
    assert.deepEqual(graph.paramShapes(), model.paramShapes(), model.name);
    const copy = (w: Weights): Weights =>
      new Map([...w].map(([n, t]) => [n, new PlainTensor(t.shape, t.data.slice())]));
    const weights = bnWeights(model, 8), a = copy(weights), b = copy(weights);
    const x = random([2, ...model.inputShape], 9, 0, 1);
    // inference from the running statistics
    const want = model.net.plain(x, plainParams(weights)), got = graph.plain(x, plainParams(weights));
    assert.ok(relativeError(got.data, want.data) <= 1e-12, `${model.name}: ${relativeError(got.data, want.data)}`);
    // training: batch statistics, the same running-statistics updates, the same gradients
    using ta = new Tape(), tb = new Tape();
    const ya = model.net.plain(x, plainParams(a), ta), yb = graph.plain(x, plainParams(b), tb);
    assert.ok(relativeError(yb.data, ya.data) <= 1e-12);
    for (const [n, t] of a) assert.ok(relativeError(b.get(n)!.data, t.data) <= 1e-12, `${model.name}: ${n}`);
    const dy = random(ya.shape, 10), ga = new Grads<PlainTensor>(), gb = new Grads<PlainTensor>();
    const dxa = model.net.plainBackward(dy, plainParams(a), ta, ga),
      dxb = graph.plainBackward(dy, plainParams(b), tb, gb);
    assert.ok(relativeError(dxb.data, dxa.data) <= 1e-12);
    assert.deepEqual([...gb.map.keys()].sort(), [...ga.map.keys()].sort());
    for (const [n, g] of ga.map) assert.ok(relativeError(gb.map.get(n)!.data, g.data) <= 1e-12, `${model.name}: ${n}`);
  }
});

Deno.test("seeded weights: BatchNorm starts at gamma 1, beta 0, running mean 0 and variance 1; calibration sets the statistics", () => {
  const model = bncnn(), w = initWeights(model, 3);
  assert.deepEqual([...w.get("1.weight")!.data], Array(8).fill(1));
  assert.deepEqual([...w.get("1.bias")!.data], Array(8).fill(0));
  assert.deepEqual([...w.get("1.running_mean")!.data], Array(8).fill(0));
  assert.deepEqual([...w.get("5.running_var")!.data], Array(16).fill(1));
  // the convolutions' and the linear layer's weights are drawn as before (BatchNorm draws nothing)
  const lenetLike = new Model("m", new Sequential([new Conv2d(1, 8, 3, { padding: 1, bias: false })]), [1, 28, 28]);
  assert.deepEqual(initWeights(lenetLike, 3).get("0.weight")!.data, w.get("0.weight")!.data);
  const seeded = seededWeights(model, 3);
  assert.ok(seeded.get("1.running_var")!.data.some((v) => v !== 1), "calibrated running variance");
  assert.deepEqual([...seeded.get("1.weight")!.data], Array(8).fill(1));
});

deviceTest(
  "BatchNorm rounds: training forward, backward and inference as the layer's comment counts them",
  async () => {
    for (const shape of [[2, 3, 4, 4], [1, 3, 3, 3]]) {
      const bn = new BatchNorm(3), net = new Sequential([bn]), model = new Model("m", net, shape.slice(1));
      const weights = bnWeights(model, 2), x = random(shape, 3, -1, 2), dy = random(shape, 4);
      const [rounds] = await runParties(async (p) => {
        const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
        using xs = await share(p, 1, x), dys = await share(p, 2, dy);
        using t = new Tape();
        const g = new Grads<AShare>();
        const count = async (fn: () => Promise<AShare | null>) => {
          const s0 = p.mesh.stats().rounds;
          (await fn())?.dispose();
          return p.mesh.stats().rounds - s0;
        };
        const out = {
          train: await count(() => net.forward(xs, sharedParams(w), undefined, t)),
          backward: await count(() => net.backward(dys, sharedParams(w), t, g, true)),
          infer: await count(() => net.forward(xs, sharedParams(w))),
          backwardNoInput: 0,
        };
        g.map.forEach((v) => v.dispose());
        using t2 = new Tape();
        const g2 = new Grads<AShare>();
        (await net.forward(xs, sharedParams(w), undefined, t2)).dispose();
        out.backwardNoInput = await count(() => net.backward(dys, sharedParams(w), t2, g2, false));
        g2.map.forEach((v) => v.dispose());
        w.forEach((v) => v.dispose());
        return out;
      }, { fracBits: 16 });
      const m = shape[0] * shape[2] * shape[3], pow2 = Number.isInteger(Math.log2(m));
      const divide = (extra: number) => (extra + Math.floor(Math.log2(m)) > 0 ? 1 : 0) + (pow2 ? 0 : 1);
      const r = invSqrtRounds(bn.range, 16, "local");
      // forward: ... + gamma inv (1) + one truncation of [running update, gamma inv] (1) + [d k, k inv] (1) + their
      // truncation (1); backward: dy d (1) + its channel sum's truncation (1) + inv times it (1) + the two means + q (2)
      // + dx's products (1) + one truncation of [dx, dgamma] (1)
      assert.deepEqual(rounds, {
        train: divide(0) + 1 + divide(16) + r + 1 + 1 + 1 + 1,
        backward: 1 + 1 + 1 + divide(16) + 2 + 1 + 1,
        infer: r + 2 + 2,
        backwardNoInput: 4,
      }, `[${shape}]`);
    }
  },
);

/**
 * resnet50-64 (the bench row): a private training-mode forward at batch 1
 * against the twin's. The last stage normalizes 2x2 values per channel, which
 * amplifies fixed-point error (the twin is just as sensitive to its input):
 * measured 3.0e-3 relative at the logits (f = 20, corrected truncation).
 */
deviceTest("resnet50-64: the private training forward at batch 1 follows the twin", async () => {
  const model = modelByName("resnet50-64"), weights = initWeights(model, 5);
  const x = random([1, 3, 64, 64], 6, 0, 1);
  const want = model.net.plain(x, plainParams(copyWeights(weights)), new Tape());
  const [got] = await runParties(async (p) => {
    const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
    using xs = await share(p, 1, x);
    using t = new Tape();
    using y = await model.net.forward(xs, sharedParams(w), undefined, t);
    w.forEach((v) => v.dispose());
    return await open(y);
  }, { fracBits: 20, truncation: "corrected" });
  const err = relativeError(got, want.data);
  console.log(`resnet50-64 training forward, batch 1: logits relative error ${err.toExponential(2)}`);
  assert.equal(got.length, 200);
  assert.ok(err <= 3e-2, `relative error ${err}`);
});
