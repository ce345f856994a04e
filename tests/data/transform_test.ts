import assert from "node:assert/strict";
import { type Dataset, makeDataset } from "../../lib/data/dataset.ts";
import { channelStats, normalize, oneHot, resize, subset } from "../../lib/data/transform.ts";

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

Deno.test("resize: bilinear with half-pixel centres (PyTorch's align_corners=False), channels repeated", () => {
  const one = makeDataset({
    name: "one",
    split: "train",
    images: Float64Array.of(1, 2, 3, 4),
    labels: Int32Array.of(0),
    shape: [1, 2, 2],
    classes: 1,
  });
  // torch.nn.functional.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode="bilinear") gives these rows
  const up = resize(one, 4, 4, 3);
  assert.deepEqual(up.shape, [3, 4, 4]);
  const rows = [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]].flat();
  for (let ch = 0; ch < 3; ch++) assert.deepEqual(Array.from(up.images.subarray(ch * 16, ch * 16 + 16)), rows);
  assert.deepEqual(Array.from(resize(one, 2, 2).images), [1, 2, 3, 4]);
  // 2 -> 1: the centre, the mean of the four
  assert.deepEqual(Array.from(resize(one, 1, 1).images), [2.5]);
  assert.deepEqual(Array.from(resize(tiny, 1, 2).images), Array.from(tiny.images));
  assert.throws(() => resize(tiny, 1, 2, 3), { message: "only a 1-channel dataset repeats to 3 channels" });
  assert.throws(() => resize(tiny, 0, 2), { message: "resize to 0x2: the sizes must be positive integers" });
});
