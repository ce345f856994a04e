import assert from "node:assert/strict";
import { calibrateBatchNorm } from "../../lib/nn/calibrate.ts";
import { BatchNorm2d, Conv2d, ReLU } from "../../lib/nn/layers.ts";
import { initWeights, Model, plainParams, Sequential } from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { bottleneck } from "../../lib/nn/zoo.ts";
import { Rng } from "../helpers.ts";

function input(shape: number[], seed: number, scale: number): PlainTensor {
  const rng = new Rng(seed), n = shape.reduce((a, b) => a * b, 1);
  return new PlainTensor(shape, Float64Array.from({ length: n }, () => scale * (rng.int(2001) - 1000) / 1000 + 3));
}

/** Per-channel mean and standard deviation of an [n, c, h, w] tensor. */
function stats(y: PlainTensor): { mean: number[]; std: number[] } {
  const [n, c, h, w] = y.shape, hw = h * w;
  const mean: number[] = [], std: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const vs: number[] = [];
    for (let b = 0; b < n; b++) vs.push(...y.data.subarray((b * c + ch) * hw, (b * c + ch + 1) * hw));
    const m = vs.reduce((a, v) => a + v, 0) / vs.length;
    mean.push(m);
    std.push(Math.sqrt(vs.reduce((a, v) => a + (v - m) ** 2, 0) / vs.length));
  }
  return { mean, std };
}

Deno.test("BatchNorm calibration: each BN's output has the seeded (gamma, beta) as per-channel std and mean", () => {
  // two BNs in sequence and one inside a residual block: each is set from the input the earlier ones produce
  const net = new Sequential([new Conv2d(3, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU()]);
  const model = new Model("calibration", net, [3, 6, 6]);
  const weights = initWeights(model, 7);
  const gamma = weights.get("1.scale")!.data.slice(), beta = weights.get("1.shift")!.data.slice();
  const x = input([4, 3, 6, 6], 1, 50); // far from unit scale on purpose
  assert.equal(calibrateBatchNorm(model, weights, x), 1);
  const conv = new Sequential([net.layers[0], net.layers[1]]);
  const y = conv.plain(x, plainParams(weights));
  const { mean, std } = stats(y);
  for (let ch = 0; ch < 8; ch++) {
    assert.ok(Math.abs(mean[ch] - beta[ch]) < 1e-9, `channel ${ch}: mean ${mean[ch]} vs ${beta[ch]}`);
    assert.ok(Math.abs(std[ch] - gamma[ch]) < 1e-4 * gamma[ch], `channel ${ch}: std ${std[ch]} vs ${gamma[ch]}`);
  }
});

Deno.test("BatchNorm calibration keeps a stack of residual blocks at unit scale, where seeded weights grow", () => {
  const blocks = Array.from({ length: 12 }, () => bottleneck(16, 4));
  const model = new Model("blocks", new Sequential(blocks), [16, 5, 5]);
  const x = input([2, 16, 5, 5], 2, 1);
  const seeded = initWeights(model, 3), calibrated = initWeights(model, 3);
  assert.equal(calibrateBatchNorm(model, calibrated, x), 12 * 3);
  const maxAbs = (w: typeof seeded) => Math.max(...model.net.plain(x, plainParams(w)).data.map(Math.abs));
  const before = maxAbs(seeded), after = maxAbs(calibrated);
  console.log(`12 bottleneck blocks: max |output| ${before.toExponential(2)} seeded, ${after.toFixed(2)} calibrated`);
  // the residual stream adds one unit-scale branch per block: about sqrt(12) growth, not a factor per block
  assert.ok(after < 30, `calibrated output ${after}`);
  assert.ok(before > 10 * after, `seeded output ${before} did not grow: the test shows nothing`);
});
