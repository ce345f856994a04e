import assert from "node:assert/strict";
import { NativeBackend } from "../../lib/native/backend.ts";
import { readTensorFile, tensorBytes } from "../../lib/io/format.ts";
import { reconstructFiles, sharePath, shareTensors } from "../../lib/io/share_files.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { loadDatasetShares, shareDataset } from "../../lib/data/dataset_shares.ts";
import { loadDataset } from "../../lib/data/load.ts";
import { makeDataset } from "../../lib/data/dataset.ts";
import { deviceAvailable, runCli } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";
import { pixel, withTempDir, writeMnistDir } from "./writers.ts";

const FRAC = 20;
/** Encoding rounds to the nearest 2^-20; reconstruction is exact on that. */
const TOL = 2 ** -(FRAC + 1);

const values = (f: Awaited<ReturnType<typeof readTensorFile>>, name: string) =>
  new Float64Array(tensorBytes(f, name).bytes.buffer);

function assertClose(got: Float64Array, want: ArrayLike<number>, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= TOL, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** Three samples of 1x2x2 over 4 classes. */
const tiny = makeDataset({
  name: "tiny",
  split: "train",
  images: Float64Array.from({ length: 12 }, (_, i) => pixel(i, i) / 255),
  labels: Int32Array.of(3, 0, 2),
  shape: [1, 2, 2],
  classes: 4,
});

Deno.test({
  name: "shareDataset: kind dataset, images [n,c,h,w] and one-hot labels [n,classes]; two files reconstruct them",
  ignore: !deviceAvailable,
  fn: async () => {
    const backend = new NativeBackend();
    try {
      await withTempDir(async (dir) => {
        const paths = await shareDataset(backend, tiny, `${dir}/d`, FRAC);
        assert.deepEqual(paths, [0, 1, 2].map((i) => sharePath(`${dir}/d`, i)));
        const f1 = await readTensorFile(paths[1]);
        assert.equal(f1.header.kind, "dataset");
        assert.equal(f1.header.model, "tiny:train");
        assert.equal(f1.header.share?.party, 1);
        assert.deepEqual(f1.header.tensors.map((t) => [t.name, t.shape]), [["images", [3, 1, 2, 2]], ["labels", [
          3,
          4,
        ]]]);
        await reconstructFiles(backend, [paths[2], paths[0]], `${dir}/back.cgtf`);
        const back = await readTensorFile(`${dir}/back.cgtf`);
        assert.equal(back.header.kind, "dataset");
        assertClose(values(back, "images"), tiny.images, "images");
        assert.deepEqual(Array.from(values(back, "labels")), [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0]);
      });
    } finally {
      backend.dispose();
    }
  },
});

Deno.test({
  name: "loadDatasetShares: three parties take the same batch of rows and reveal exactly the plaintext rows",
  ignore: !deviceAvailable,
  sanitizeResources: false,
  fn: async () => {
    const backend = new NativeBackend();
    try {
      await withTempDir(async (dir) => {
        const paths = await shareDataset(backend, tiny, `${dir}/d`, FRAC);
        const results = await runParties(async (p) => {
          const d = await loadDatasetShares(p, paths[p.index]);
          assert.equal(d.size, 3);
          assert.deepEqual(d.shape, [1, 2, 2]);
          assert.equal(d.classes, 4);
          const { images, labels } = d.batch([2, 0]);
          try {
            assert.deepEqual(images.shape, [2, 1, 2, 2]);
            assert.deepEqual(labels.shape, [2, 4]);
            using x = await reveal(images);
            using y = await reveal(labels);
            return { x: x.decode(FRAC), y: y.decode(FRAC) };
          } finally {
            images.dispose();
            labels.dispose();
          }
        }, { fracBits: FRAC });
        for (const r of results) {
          assertClose(r.x, [...tiny.images.subarray(8, 12), ...tiny.images.subarray(0, 4)], "batch images");
          assert.deepEqual(Array.from(r.y), [0, 0, 1, 0, 0, 0, 0, 1]);
        }
        // a party given another party's file, or another session's precision, is refused before any protocol
        await runParties(async (p) => {
          if (p.index !== 1) return;
          await assert.rejects(loadDatasetShares(p, paths[0]), {
            message: `${paths[0]}: is party 0's share file, not party 1's`,
          });
        }, { fracBits: FRAC });
        await runParties(async (p) => {
          await assert.rejects(loadDatasetShares(p, paths[p.index]), {
            message: `${paths[p.index]}: uses 20 fractional bits, this session 16`,
          });
        }, { fracBits: 16 });
        // an input's share files are not a dataset; a batch index past the end is refused
        const input = await shareTensors(
          backend,
          { kind: "input", model: "any", fracBits: FRAC },
          new Map([["input", { shape: [1, 2], data: Float64Array.of(1, 2) }]]),
          `${dir}/in`,
        );
        await runParties(async (p) => {
          await assert.rejects(loadDatasetShares(p, input[p.index]), {
            message: `${input[p.index]}: is a share file of kind "input", not "dataset"`,
          });
          const d = await loadDatasetShares(p, paths[p.index]);
          assert.throws(() => d.batch([0, 3]), { message: "sample index 3 outside 0..2" });
        }, { fracBits: FRAC });
      });
    } finally {
      backend.dispose();
    }
  },
});

Deno.test({
  name: "cryptgpu share --dataset: a tiny MNIST directory and the embedded digits, reconstructed from two files",
  ignore: !deviceAvailable,
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/mnist`);
      await writeMnistDir(`${dir}/mnist`, "t10k", [7, 2, 1], 3, 3, true);
      let r = await runCli([
        "share",
        "--dataset",
        `${dir}/mnist`,
        "--split",
        "test",
        "--limit",
        "2",
        "--out",
        `${dir}/x`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\(test\): 2 samples of \[1,3,3\], 10 classes/);
      r = await runCli(["reconstruct", sharePath(`${dir}/x`, 1), sharePath(`${dir}/x`, 2), "--out", `${dir}/x.cgtf`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /dataset of .*:test, images \[2,1,3,3\], labels \[2,10\]/);
      const back = await readTensorFile(`${dir}/x.cgtf`);
      const plain = await loadDataset(`${dir}/mnist`, { split: "test", limit: 2 });
      assertClose(values(back, "images"), plain.images, "images");
      const labels = Array.from(values(back, "labels"));
      assert.deepEqual(labels, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);

      r = await runCli(["share", "--dataset", "mnist", "--limit", "20", "--out", `${dir}/m`]);
      assert.equal(r.code, 0, r.stderr);
      r = await runCli(["reconstruct", sharePath(`${dir}/m`, 0), sharePath(`${dir}/m`, 1), "--out", `${dir}/m.cgtf`]);
      assert.equal(r.code, 0, r.stderr);
      const embedded = await loadDataset("mnist", { limit: 20 });
      const m = await readTensorFile(`${dir}/m.cgtf`);
      assert.equal(m.header.model, "mnist (embedded):train");
      assertClose(values(m, "images"), embedded.images, "embedded images");
      const hot = values(m, "labels");
      embedded.labels.forEach((l, i) => assert.equal(hot[i * 10 + l], 1));
      assert.equal(hot.reduce((s, v) => s + v, 0), 20);
    });
  },
});

Deno.test({
  name: "cryptgpu share --dataset: bad names, splits, limits and corrupt files are one error line",
  ignore: !deviceAvailable,
  fn: async () => {
    await withTempDir(async (dir) => {
      const err = async (...args: string[]) => {
        const r = await runCli(["share", ...args, "--out", `${dir}/x`]);
        assert.notEqual(r.code, 0);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        return lines[0];
      };
      assert.equal(
        await err("--dataset", "imagenet"),
        'cryptgpu: error: no dataset imagenet: give "mnist" (the embedded digits) or the path of an MNIST, ' +
          "CIFAR-10 or Tiny ImageNet directory",
      );
      assert.equal(
        await err("--dataset", "mnist", "--split", "val"),
        "cryptgpu: error: --split must be train or test, got val",
      );
      assert.equal(
        await err("--dataset", "mnist", "--limit", "-3"),
        "cryptgpu: error: --limit must be a positive integer, got -3",
      );
      assert.equal(
        await err("--dataset", "mnist", "--model", "lenet"),
        "cryptgpu: error: give exactly one of --model, --input and --dataset",
      );
      await writeMnistDir(dir, "train", [1, 2], 2, 2);
      const f = `${dir}/train-images-idx3-ubyte`;
      const bytes = await Deno.readFile(f);
      await Deno.writeFile(f, bytes.subarray(0, bytes.length - 1));
      assert.equal(
        await err("--dataset", dir),
        `cryptgpu: error: ${f}: truncated: 23 bytes, the header [2,2,2] needs 24`,
      );
      // nothing was written
      assert.equal((await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.name.endsWith(".share")).length, 0);
    });
  },
});
