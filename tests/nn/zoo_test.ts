import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { PAIR_ROUNDS } from "../../lib/mpc/truncation_pairs.ts";
import { MASK_ROUNDS } from "../../lib/mpc/comparison_masks.ts";
import { MASKED_RELU_BITS } from "../../lib/mpc/msb_masked.ts";
import {
  initWeights,
  type Model,
  plainParams,
  type Sequential,
  sharedParams,
  shareWeights,
} from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { Pool2d } from "../../lib/nn/layers.ts";
import { alexnetSmall, modelByName, modelNames, resnetDepths } from "../../lib/nn/zoo.ts";
import { deviceAvailable, deviceTest, Rng, runCli } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";

// Parameter counts by hand. BatchNorm2d holds a scale and a shift per channel,
// as many as torchvision's weight and bias; BatchNorm (batch statistics) holds
// weight and bias and the running statistics, buffers in torch, not counted here.
const conv = (i: number, o: number, k: number, bias = true) => o * i * k * k + (bias ? o : 0);
const fc = (i: number, o: number) => i * o + o;
const bn = (c: number) => 2 * c;

const alexnetFeatures = conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3) +
  conv(256, 256, 3);
const vggFeatures = [
  [3, 64],
  [64, 64],
  [64, 128],
  [128, 128],
  [128, 256],
  [256, 256],
  [256, 256],
  [256, 512],
  [
    512,
    512,
  ],
  [512, 512],
  [512, 512],
  [512, 512],
  [512, 512],
].reduce((s, [i, o]) => s + conv(i, o, 3), 0);

function resnetParams(depth: keyof typeof resnetDepths): number {
  let total = conv(3, 64, 7, false) + bn(64), channels = 64;
  resnetDepths[depth].forEach((blocks, stage) => {
    const w = 64 << stage;
    for (let b = 0; b < blocks; b++) {
      total += conv(channels, w, 1, false) + bn(w) + conv(w, w, 3, false) + bn(w) + conv(w, 4 * w, 1, false) +
        bn(4 * w);
      if (b === 0) total += conv(channels, 4 * w, 1, false) + bn(4 * w); // projection shortcut
      channels = 4 * w;
    }
  });
  return total + fc(2048, 1000);
}

/** ResNet-18 for CIFAR-10: 3x3 stem, 4 stages of 2 basic blocks, projection where the shape changes. */
function resnet18CifarParams(): number {
  let total = conv(3, 64, 3, false) + bn(64), channels = 64;
  [64, 128, 256, 512].forEach((w, stage) => {
    for (let b = 0; b < 2; b++) {
      total += conv(channels, w, 3, false) + bn(w) + conv(w, w, 3, false) + bn(w);
      if (b === 0 && stage > 0) total += conv(channels, w, 1, false) + bn(w);
      channels = w;
    }
  });
  return total + fc(512, 10);
}

/** name, input shape, output classes, parameters by hand, and the well-known count where there is one. */
const expected: [string, number[], number, number, number | null][] = [
  ["lenet", [1, 28, 28], 10, conv(1, 20, 5) + conv(20, 50, 5) + fc(800, 500) + fc(500, 10), 431_080],
  // features end 256x1x1 (CIFAR-10) and 256x3x3 (Tiny ImageNet): the last pooling is dropped
  ["alexnet-cifar10", [3, 32, 32], 10, alexnetFeatures + fc(256, 256) + fc(256, 256) + fc(256, 10), null],
  [
    "alexnet-tinyimagenet",
    [3, 64, 64],
    200,
    alexnetFeatures + fc(2304, 1024) + fc(1024, 1024) + fc(1024, 200),
    null,
  ],
  // torchvision alexnet: 61,100,840
  [
    "alexnet-imagenet",
    [3, 224, 224],
    1000,
    alexnetFeatures + fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000),
    61_100_840,
  ],
  ["vgg16-cifar10", [3, 32, 32], 10, vggFeatures + fc(512, 256) + fc(256, 256) + fc(256, 10), null],
  ["vgg16-tinyimagenet", [3, 64, 64], 200, vggFeatures + fc(2048, 512) + fc(512, 512) + fc(512, 200), null],
  // torchvision vgg16 has 138,357,544 with a 25088-wide first linear layer; the paper's extra 2x2 pool makes it 4608
  [
    "vgg16-imagenet",
    [3, 224, 224],
    1000,
    vggFeatures + fc(4608, 4096) + fc(4096, 4096) + fc(4096, 1000),
    138_357_544 - fc(25088, 4096) + fc(4608, 4096),
  ],
  // torchvision resnet50/101/152: 25,557,032 / 44,549,160 / 60,192,808
  ["resnet50", [3, 224, 224], 1000, resnetParams(50), 25_557_032],
  ["resnet101", [3, 224, 224], 1000, resnetParams(101), 44_549_160],
  ["resnet152", [3, 224, 224], 1000, resnetParams(152), 60_192_808],
  ["bncnn", [1, 28, 28], 10, conv(1, 8, 3, false) + bn(8) + conv(8, 16, 3, false) + bn(16) + fc(784, 10), null],
  // the CIFAR ResNet-18 (3x3 stem, no pooling): the well-known 11.17M
  ["resnet18-cifar10", [3, 32, 32], 10, resnet18CifarParams(), 11_173_962],
  // torchvision resnet50(num_classes=200); at 64x64 the features end 2048x2x2 before the global pooling
  ["resnet50-64", [3, 64, 64], 200, resnetParams(50) - fc(2048, 1000) + fc(2048, 200), 23_917_832],
];

/** Trainable parameters (BatchNorm's running statistics are buffers: shared and saved, but not trained). */
const count = (m: Model) =>
  m.paramShapes().filter(([n]) => !/running_(mean|var)$/.test(n))
    .reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);

Deno.test("every zoo model has its known output shape and parameter count", () => {
  assert.deepEqual(expected.map((e) => e[0]).sort(), [...modelNames].sort());
  assert.equal(vggFeatures, 14_714_688); // torchvision vgg16.features
  for (const [name, input, classes, params, known] of expected) {
    for (const spec of [name, `${name}:max`]) {
      const model = modelByName(spec);
      assert.deepEqual([...model.inputShape], input, spec);
      assert.deepEqual(model.checkInput([2, ...input]), [2, classes], spec);
      assert.equal(count(model), params, spec);
      if (known !== null) assert.equal(params, known, `${spec}: hand count vs the well-known count`);
    }
  }
});

Deno.test("':max' keeps max pooling and the default is average pooling", () => {
  const pools = (spec: string) =>
    (modelByName(spec).net as Sequential).layers.filter((l) => l instanceof Pool2d).map((l) => (l as Pool2d).op);
  assert.deepEqual(pools("alexnet-cifar10"), ["avg", "avg"]);
  assert.deepEqual(pools("alexnet-cifar10:max"), ["max", "max"]);
  assert.deepEqual(pools("alexnet-imagenet:max"), ["max", "max", "max"]);
  // VGG-16 on ImageNet: the paper's added 2x2 pooling is average either way
  assert.deepEqual(pools("vgg16-imagenet:max"), [...Array(5).fill("max"), "avg"]);
  assert.deepEqual(pools("resnet50:max"), ["max"]);
  assert.deepEqual(pools("resnet50"), ["avg"]);
  assert.deepEqual(pools("resnet50-64:max"), ["max"]);
  assert.deepEqual(pools("bncnn"), ["avg", "avg"]);
});

Deno.test("an unknown model name or option is refused with the list of names", () => {
  assert.throws(() => modelByName("alexnet"), /unknown model 'alexnet' \(known: lenet, alexnet-cifar10, .*resnet152/);
  assert.throws(() => modelByName("resnet50:maxx"), /unknown model 'resnet50:maxx'/);
  assert.throws(() => modelByName("constructor"), /unknown model/);
});

function relativeError(got: Float64Array, want: PlainTensor): number {
  let diff = 0, mag = 0;
  for (let i = 0; i < got.length; i++) {
    diff += Math.abs(got[i] - want.data[i]);
    mag += Math.abs(want.data[i]);
  }
  return diff / mag;
}

function argmaxRows(v: ArrayLike<number>, d: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < v.length / d; r++) {
    let best = 0;
    for (let j = 1; j < d; j++) if (v[r * d + j] > v[r * d + best]) best = j;
    out.push(best);
  }
  return out;
}

deviceTest(
  "private AlexNet on CIFAR-10 matches its plaintext twin on 100 inputs: error below 0.1%, the same classes",
  async () => {
    const model = alexnetSmall("cifar10");
    const shape = [100, 3, 32, 32]; // the check: the same class on 100 random inputs
    const rng = new Rng(21);
    const input = new PlainTensor(
      shape,
      Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(1 << 20) / (1 << 20)),
    );
    const weights = initWeights(model, 22);
    const want = model.net.plain(input, plainParams(weights));
    const results = await runParties(async (p: Party) => {
      const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
      const x = await shareInput(
        p,
        1,
        p.index === 1 ? RingTensor.encode(p.backend, input.data, p.fracBits, shape) : null,
        shape,
      );
      using y = await model.net.forward(x, sharedParams(w));
      x.dispose();
      w.forEach((s) => s.dispose());
      using out = await reveal(y);
      return { y: out.decode(p.fracBits), shape: y.shape };
    }, { fracBits: 20, truncation: "corrected" }); // as `infer`: Pi_trunc1 would fail on some runs (|z| / 2^63 a product)
    assert.deepEqual(results[0].shape, [100, 10]);
    const err = relativeError(results[0].y, want);
    assert.ok(err <= 1e-3, `average relative error ${err}`);
    assert.deepEqual(argmaxRows(results[0].y, 10), argmaxRows(want.data, 10));
  },
);

Deno.test({
  name: "`local bench inference` reports bytes per party, rounds and the agreement with the twin, for each truncation",
  ignore: !deviceAvailable,
  async fn() {
    const rows: Record<
      string,
      {
        bytesSent: number[];
        rounds: number;
        truncation: string;
        preprocess?: Record<string, number>;
        rehearsalSeconds?: number;
      }
    > = {};
    for (const mode of ["corrected", "local", "preprocessed"]) {
      const r = await runCli([
        "local",
        "bench",
        "inference",
        "--model",
        "lenet",
        "--batch",
        "2",
        "--truncation",
        mode,
        ...(mode === "preprocessed" ? ["--rehearse"] : []),
        "--insecure",
        "--json",
        "--no-write",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const row = JSON.parse(r.stdout);
      assert.equal(row.model, "lenet");
      assert.equal(row.batch, 2);
      assert.equal(row.truncation, mode);
      assert.equal(row.bytesSent.length, 3);
      assert.equal(row.bytesTotal, row.bytesSent.reduce((a: number, b: number) => a + b, 0));
      // three ReLUs: 10 rounds each, 8 under preprocessed truncation (masked comparisons)
      assert.equal(row.breakdown.relu.rounds, mode === "preprocessed" ? 3 * 8 : 3 * 10);
      assert.equal(row.argmaxAgree, 2);
      assert.ok(row.relativeError <= 1e-3, `error ${row.relativeError}`);
      assert.equal(row.tls, false);
      // linear: three products with their truncations (preprocessed: in the product's round), then the opening of
      // the logits' product (1 round)
      assert.deepEqual(row.breakdown.linear.rounds, { local: 3 * 2, corrected: 3 * 3, preprocessed: 3 }[mode]! + 1);
      rows[mode] = row;
    }
    // 3 linear layers (a product and a truncation), the last one's product opened to party 0 (1 round, no
    // truncation), 2 average pools (a truncation), 3 ReLUs of 10 rounds; the corrected truncation takes 2 rounds
    // where the local one takes 1
    assert.equal(rows.local.rounds, 3 * 2 + 1 + 2 * 1 + 3 * 10);
    assert.equal(rows.corrected.rounds, 3 * 3 + 1 + 2 * 2 + 3 * 10);
    // and 1 word more from P0 and from P2 per truncated element: conv1, pool1, conv2, pool2, fc1 outputs
    const truncated = 2 * (20 * 24 * 24 + 20 * 12 * 12 + 50 * 8 * 8 + 50 * 4 * 4 + 500);
    const extra = rows.corrected.bytesSent.map((b, i) => b - rows.local.bytesSent[i]);
    assert.deepEqual(extra, [8 * truncated, 0, 8 * truncated]);
    // preprocessed: every truncation 1 round (fused with the product's in the linear layers); P2 sends the word the
    // local truncation spares it; the pairs, one per truncated element, made before the timed forward in 10 rounds
    assert.equal(rows.preprocessed.rounds, 3 * 1 + 1 + 2 * 1 + 3 * 8);
    // the ReLUs from masks: 31.75 bytes an element from every party instead of the circuit's 37.08 (msb 190 bits,
    // the injection 5/3 words), up to the packing of the one-bit openings and the circuit's thirds
    const reluElements = 2 * (20 * 24 * 24 + 50 * 8 * 8 + 500);
    const reluSaved = reluElements * ((190 + (5 / 3) * 64 - MASKED_RELU_BITS) / 8);
    const extraPre = rows.preprocessed.bytesSent.map((b, i) => b - rows.local.bytesSent[i]);
    extraPre.forEach((extra, i) => {
      const want = (i === 2 ? 8 * truncated : 0) - reluSaved;
      assert.ok(Math.abs(extra - want) < 200, `party ${i}: ${extra} bytes more than local, formula ${want}`);
    });
    assert.equal(rows.preprocessed.preprocess?.pairs, truncated);
    assert.equal(rows.preprocessed.preprocess?.masks, reluElements);
    assert.equal(rows.preprocessed.preprocess?.rounds, PAIR_ROUNDS + MASK_ROUNDS);
    // rehearsed at setup (the bench refuses a forward that then still makes pairs on demand)
    assert.ok(rows.preprocessed.rehearsalSeconds! > 0 && rows.local.rehearsalSeconds === undefined);
  },
});

Deno.test({
  name: "`bench inference` refuses an unknown model before connecting",
  ignore: !deviceAvailable,
  async fn() {
    const r = await runCli(["local", "bench", "inference", "--model", "alexnet", "--insecure", "--no-write"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown model 'alexnet' \(known: lenet, /);
  },
});
