import assert from "node:assert/strict";
import { detectFormat, loadDataset } from "../../lib/data/load.ts";
import { DatasetError } from "../../lib/data/dataset.ts";
import { cifarBatch, ppm, withTempDir, writeMnistDir } from "./writers.ts";

Deno.test("loadDataset: the format is detected from a directory's content", async () => {
  await withTempDir(async (dir) => {
    for (const sub of ["m", "c", "t", "empty"]) await Deno.mkdir(`${dir}/${sub}`);
    await writeMnistDir(`${dir}/m`, "t10k", [4], 2, 2, true);
    await Deno.writeFile(`${dir}/c/test_batch.bin`, cifarBatch([2]));
    await Deno.writeTextFile(`${dir}/t/wnids.txt`, "n1\n");
    await Deno.mkdir(`${dir}/t/train/n1/images`, { recursive: true });
    await Deno.writeFile(`${dir}/t/train/n1/images/x.ppm`, ppm(1, 1, Uint8Array.of(255, 0, 51)));
    assert.equal(await detectFormat(`${dir}/m`), "mnist-idx");
    assert.equal(await detectFormat(`${dir}/c`), "cifar10");
    assert.equal(await detectFormat(`${dir}/t`), "tiny-imagenet");
    assert.equal(await detectFormat(`${dir}/empty`), null);
    assert.deepEqual(Array.from((await loadDataset(`${dir}/m`, { split: "test" })).labels), [4]);
    assert.deepEqual(Array.from((await loadDataset(`${dir}/c`, { split: "test" })).labels), [2]);
    const t = await loadDataset(`${dir}/t`);
    assert.deepEqual(Array.from(t.images), [1, 0, 0.2]);
    await assert.rejects(loadDataset(`${dir}/empty`), {
      name: "DatasetError",
      message: `${dir}/empty: not a dataset directory: no MNIST IDX files (train-images-idx3-ubyte[.gz]), ` +
        "no CIFAR-10 batches (data_batch_1.bin, test_batch.bin) and no Tiny ImageNet wnids.txt",
    });
    await Deno.writeTextFile(`${dir}/notes.txt`, "hi");
    await assert.rejects(loadDataset(`${dir}/notes.txt`), {
      message: `${dir}/notes.txt is a file: give a dataset directory (MNIST IDX, CIFAR-10, Tiny ImageNet) ` +
        "or a CIFAR-10 .bin batch",
    });
    await assert.rejects(loadDataset(`${dir}/m`, { split: "test", limit: 0 }), {
      message: "limit must be a positive integer, got 0",
    });
  });
});

Deno.test("loadDataset: an unknown name or a bad split is one line naming what is accepted", async () => {
  await assert.rejects(loadDataset("cifar100"), (e: Error) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(
      e.message,
      'no dataset cifar100: give "mnist" (the embedded digits) or the path of an MNIST, CIFAR-10 or Tiny ImageNet directory',
    );
    return true;
  });
  await assert.rejects(loadDataset("mnist", { split: "val" as "test" }), {
    message: "split must be train or test, got val",
  });
});
