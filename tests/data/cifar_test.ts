import assert from "node:assert/strict";
import { checkCifarBatch, loadCifarDir } from "../../lib/data/cifar.ts";
import { loadDataset } from "../../lib/data/load.ts";
import { cifarBatch, pixel, withTempDir } from "./writers.ts";

const PIXELS = 3072;

Deno.test("CIFAR-10: batches in order, channel-major pixels and labels exact; limit spans files", async () => {
  await withTempDir(async (dir) => {
    // the archive's own folder name, given its parent
    const root = `${dir}/cifar-10-batches-bin`;
    await Deno.mkdir(root);
    await Deno.writeFile(`${root}/data_batch_1.bin`, cifarBatch([6, 9, 9]));
    await Deno.writeFile(`${root}/data_batch_2.bin`, cifarBatch([4, 1], 3));
    await Deno.writeFile(`${root}/test_batch.bin`, cifarBatch([3, 8], 100));
    const d = await loadDataset(dir);
    assert.deepEqual(d.shape, [3, 32, 32]);
    assert.equal(d.classes, 10);
    assert.equal(d.classNames?.[6], "frog");
    assert.deepEqual(Array.from(d.labels), [6, 9, 9, 4, 1]);
    assert.equal(d.images.length, 5 * PIXELS);
    for (let s = 0; s < 5; s++) {
      for (let k = 0; k < PIXELS; k++) assert.equal(d.images[s * PIXELS + k], pixel(s, k) / 255);
    }
    // the record's second byte is red (0, 0), byte 1025 green (0, 0), byte 2049 blue (0, 0): NCHW as stored
    const raw = cifarBatch([6]);
    assert.equal(d.images[0], raw[1] / 255);
    assert.equal(d.images[1024], raw[1025] / 255);
    assert.equal(d.images[2048], raw[2049] / 255);
    const few = await loadCifarDir(root, { limit: 4 });
    assert.deepEqual(Array.from(few.labels), [6, 9, 9, 4]);
    assert.deepEqual(Array.from(few.images), Array.from(d.images.subarray(0, 4 * PIXELS)));
    const test = await loadDataset(root, { split: "test" });
    assert.deepEqual(Array.from(test.labels), [3, 8]);
    assert.equal(test.images[PIXELS + 7], pixel(101, 7) / 255);
    // a single batch file
    const one = await loadDataset(`${root}/data_batch_2.bin`);
    assert.deepEqual(Array.from(one.labels), [4, 1]);
    assert.deepEqual(Array.from(one.images), Array.from(d.images.subarray(3 * PIXELS)));
  });
});

Deno.test("CIFAR-10: truncated batches, bad labels and a missing split are one-line errors", async () => {
  const good = cifarBatch([1, 2]);
  assert.equal(checkCifarBatch(good, "b.bin"), 2);
  assert.throws(() => checkCifarBatch(good.subarray(0, 5000), "b.bin"), {
    message: "b.bin: truncated or not a CIFAR-10 batch: 5000 bytes is 1 records of 3073 bytes and 1927 left over",
  });
  assert.throws(() => checkCifarBatch(new Uint8Array(0), "b.bin"), { message: "b.bin: empty file" });
  const bad = good.slice();
  bad[3073] = 10;
  assert.throws(() => checkCifarBatch(bad, "b.bin"), {
    message: "b.bin: record 1 has label 10, CIFAR-10 labels are 0..9 (not a CIFAR-10 batch?)",
  });
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/test_batch.bin`, good.subarray(0, 3073 + 100));
    await assert.rejects(loadDataset(dir, { split: "test" }), {
      message: `${dir}/test_batch.bin: truncated or not a CIFAR-10 batch: 3173 bytes is 1 records of 3073 bytes ` +
        `and 100 left over`,
    });
    await assert.rejects(loadDataset(dir, { split: "train" }), {
      message: `${dir}: no CIFAR-10 train batches (looked for data_batch_1.bin .. data_batch_5.bin)`,
    });
  });
});
