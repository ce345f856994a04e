import assert from "node:assert/strict";
import { loadMnistDir, parseIdxImages, parseIdxLabels } from "../../lib/data/mnist.ts";
import { loadDataset } from "../../lib/data/load.ts";
import { gzip, idx, pixel, withTempDir, writeMnistDir } from "./writers.ts";

Deno.test("MNIST IDX: images and labels read exactly, plain and gzip, with limit", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      await writeMnistDir(dir, "train", [3, 0, 9, 7, 1], 4, 3, compress);
      await writeMnistDir(dir, "t10k", [5, 2], 4, 3, compress);
      const d = await loadMnistDir(dir, { split: "train" });
      assert.deepEqual(d.shape, [1, 4, 3]);
      assert.equal(d.classes, 10);
      assert.equal(d.split, "train");
      assert.deepEqual(Array.from(d.labels), [3, 0, 9, 7, 1]);
      assert.equal(d.images.length, 5 * 12);
      for (let k = 0; k < d.images.length; k++) assert.equal(d.images[k], pixel(Math.floor(k / 12), k) / 255);
      // the byte values 0 and 255 map to exactly 0 and 1
      assert.equal(d.images[0], 0);
      const test = await loadDataset(dir, { split: "test" });
      assert.deepEqual(Array.from(test.labels), [5, 2]);
      assert.equal(test.images[13], pixel(1, 13) / 255);
      const few = await loadMnistDir(dir, { limit: 2 });
      assert.deepEqual(Array.from(few.labels), [3, 0]);
      assert.deepEqual(Array.from(few.images), Array.from(d.images.subarray(0, 24)));
    });
  }
});

Deno.test("MNIST IDX: the distributions' '.idx' spelling is found too", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/t10k-images.idx3-ubyte`, idx([1, 2, 2], Uint8Array.of(0, 51, 102, 255)));
    await Deno.writeFile(`${dir}/t10k-labels.idx1-ubyte`, idx([1], Uint8Array.of(8)));
    const d = await loadDataset(dir, { split: "test" });
    assert.deepEqual(Array.from(d.images), [0, 0.2, 0.4, 1]);
    assert.deepEqual(Array.from(d.labels), [8]);
  });
});

Deno.test("MNIST IDX: bad magic, truncation, trailing bytes, bad labels and count mismatch are one-line errors", async () => {
  const images = idx([2, 2, 2], Uint8Array.from({ length: 8 }, (_, i) => i));
  assert.throws(() => parseIdxImages(images.subarray(0, 20), "x-images"), {
    message: "x-images: truncated: 20 bytes, the header [2,2,2] needs 24",
  });
  assert.throws(() => parseIdxImages(images.subarray(0, 10), "x-images"), {
    message: "x-images: truncated: 10 bytes, an IDX header needs 16",
  });
  assert.throws(() => parseIdxImages(Uint8Array.of(...images, 0, 0), "x-images"), {
    message: "x-images: 2 unexpected bytes after the data of [2,2,2]",
  });
  assert.throws(() => parseIdxImages(idx([2], Uint8Array.of(1, 2)), "x-labels"), {
    message: "x-labels: bad magic number 0x00000801 (expected 0x00000803): not an IDX image file",
  });
  assert.throws(() => parseIdxLabels(idx([3], Uint8Array.of(1, 10, 2)), "x-labels"), {
    message: "x-labels: label 10 at index 1, MNIST labels are 0..9",
  });
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, images);
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, idx([3], Uint8Array.of(1, 2, 3)));
    await assert.rejects(loadDataset(dir), {
      message: `${dir}/train-labels-idx1-ubyte: 3 labels for 2 images in ${dir}/train-images-idx3-ubyte`,
    });
    await assert.rejects(loadDataset(dir, { split: "test" }), {
      message: `${dir}: no MNIST test images file (looked for t10k-images-idx3-ubyte and t10k-images-idx3-ubyte.gz)`,
    });
    // a gzip file cut short, and a .gz that is not gzip
    const gz = await gzip(images);
    await Deno.remove(`${dir}/train-images-idx3-ubyte`);
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, gz.subarray(0, gz.length - 12));
    await assert.rejects(loadDataset(dir), (e: Error) => {
      assert.match(e.message, /^\S+\/train-images-idx3-ubyte\.gz: corrupt or truncated gzip data \(.*\)$/);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, images);
    await assert.rejects(loadDataset(dir), {
      message: `${dir}/train-images-idx3-ubyte.gz: not gzip data (the file is named .gz)`,
    });
  });
});
