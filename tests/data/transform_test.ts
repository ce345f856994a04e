import assert from "node:assert/strict";
import { type Dataset, makeDataset } from "../../lib/data/dataset.ts";
import { channelStats, normalize, oneHot, subset } from "../../lib/data/transform.ts";

/** Two samples of 2 channels x 1 x 2 pixels. */
const tiny: Dataset = makeDataset({
  name: "tiny",
  split: "train",
  //                      sample 0: c0    c1     sample 1: c0    c1
  images: Float64Array.of(0, 0.5, 1, 1, 0.25, 0.25, 1, 1),
  labels: Int32Array.of(2, 0),
  shape: [2, 1, 2],
  classes: 3,
});

Deno.test("oneHot: one 1 per row at the label", () => {
  assert.deepEqual(Array.from(oneHot(tiny.labels, 3)), [0, 0, 1, 1, 0, 0]);
  assert.throws(() => oneHot([0, 3], 3), { message: "label 3 at index 1 is outside 0..2" });
});

Deno.test("subset: samples in the given order", () => {
  const s = subset(tiny, [1, 0, 1]);
  assert.deepEqual(Array.from(s.labels), [0, 2, 0]);
  assert.deepEqual(Array.from(s.images), [0.25, 0.25, 1, 1, 0, 0.5, 1, 1, 0.25, 0.25, 1, 1]);
  assert.throws(() => subset(tiny, [2]), { message: "index 2 outside 0..1" });
});

Deno.test("channelStats and normalize: per channel; test data normalised with the training statistics", () => {
  const stats = channelStats(tiny);
  // channel 0: 0, 0.5, 0.25, 0.25 -> mean 0.25, variance (0.0625 + 0.0625) / 4; channel 1: all 1
  assert.deepEqual(stats.mean, [0.25, 1]);
  assert.equal(stats.std[0], Math.sqrt(0.125 / 4));
  assert.equal(stats.std[1], 0);
  const n = normalize(tiny);
  const s0 = Math.sqrt(0.125 / 4);
  // a channel with std 0 is only centred
  assert.deepEqual(Array.from(n.images), [-0.25 / s0, 0.25 / s0, 0, 0, 0, 0, 0, 0]);
  const m = normalize(tiny, { mean: [0.5, 0.5], std: [0.5, 0.25] });
  assert.deepEqual(Array.from(m.images), [-1, 0, 2, 2, -0.5, -0.5, 2, 2]);
  assert.deepEqual(Array.from(tiny.images), [0, 0.5, 1, 1, 0.25, 0.25, 1, 1], "the input is left as it was");
  assert.throws(() => normalize(tiny, { mean: [0], std: [1] }), {
    message: "normalisation for 1 channels applied to 2 channels",
  });
});

Deno.test("makeDataset refuses parts that do not fit together", () => {
  assert.throws(() => makeDataset({ ...tiny, labels: Int32Array.of(1) }), {
    message: "tiny: 8 pixel values for 1 samples of shape [2,1,2]",
  });
  assert.throws(() => makeDataset({ ...tiny, labels: Int32Array.of(1, 3) }), {
    message: "tiny: sample 1 has label 3, outside 0..2",
  });
});
