import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { loadTinyImagenetDir } from "../../lib/data/tiny_imagenet.ts";
import { loadDataset } from "../../lib/data/load.ts";
import { pgm, ppm, withTempDir } from "./writers.ts";

const W = 4, H = 3, PLANE = W * H;
const WNIDS = ["n01443537", "n02099601"];

/** HWC bytes of image `k`: distinct per image and position. */
const rgbOf = (k: number) => Uint8Array.from({ length: PLANE * 3 }, (_, i) => (k * 41 + i * 7) % 256);

/**
 * A Tiny ImageNet folder with two classes: class 0 has three PPM images,
 * class 1 has two (one a grey PGM); val has one JPEG and one PPM.
 */
async function writeTiny(root: string): Promise<void> {
  await Deno.writeTextFile(`${root}/wnids.txt`, WNIDS.join("\n") + "\n");
  for (const wnid of WNIDS) await Deno.mkdir(`${root}/train/${wnid}/images`, { recursive: true });
  for (let i = 0; i < 3; i++) await Deno.writeFile(`${root}/train/${WNIDS[0]}/images/a_${i}.ppm`, ppm(W, H, rgbOf(i)));
  await Deno.writeFile(`${root}/train/${WNIDS[1]}/images/b_0.ppm`, ppm(W, H, rgbOf(10)));
  await Deno.writeFile(`${root}/train/${WNIDS[1]}/images/b_1.pgm`, pgm(W, H, rgbOf(11).subarray(0, PLANE)));
  // the real dataset keeps a boxes file beside images/, which is not an image
  await Deno.writeTextFile(`${root}/train/${WNIDS[1]}/${WNIDS[1]}_boxes.txt`, "b_0.ppm\t0\t0\t3\t2\n");
  await Deno.mkdir(`${root}/val/images`, { recursive: true });
  const rgba = new Uint8Array(PLANE * 4).fill(255);
  for (let p = 0; p < PLANE; p++) rgba.set([120, 60, 200], 4 * p);
  await Deno.writeFile(`${root}/val/images/val_0.JPEG`, jpeg.encode({ width: W, height: H, data: rgba }, 100).data);
  await Deno.writeFile(`${root}/val/images/val_1.JPEG`, ppm(W, H, rgbOf(20)));
  await Deno.writeTextFile(
    `${root}/val/val_annotations.txt`,
    `val_0.JPEG\t${WNIDS[1]}\t0\t0\t3\t2\nval_1.JPEG\t${WNIDS[0]}\t1\t1\t2\t2\n`,
  );
}

/** CHW values of HWC bytes. */
function chw(rgb: Uint8Array): number[] {
  const out = new Array(PLANE * 3);
  for (let p = 0; p < PLANE; p++) for (let c = 0; c < 3; c++) out[c * PLANE + p] = rgb[3 * p + c] / 255;
  return out;
}

Deno.test("Tiny ImageNet: train round-robin over the classes, exact pixels; val from its annotations", async () => {
  await withTempDir(async (dir) => {
    const root = `${dir}/tiny-imagenet-200`;
    await Deno.mkdir(root);
    await writeTiny(root);
    const d = await loadDataset(dir);
    assert.equal(d.name, root);
    assert.deepEqual(d.shape, [3, H, W]);
    assert.equal(d.classes, 2);
    assert.deepEqual(d.classNames, WNIDS);
    // a_0, b_0, a_1, b_1, a_2
    assert.deepEqual(Array.from(d.labels), [0, 1, 0, 1, 0]);
    const grey = rgbOf(11).subarray(0, PLANE);
    const expected = [
      rgbOf(0),
      rgbOf(10),
      rgbOf(1),
      Uint8Array.from(Array.from(grey).flatMap((v) => [v, v, v])),
      rgbOf(2),
    ];
    expected.forEach((rgb, s) => assert.deepEqual(Array.from(d.images.subarray(s * 36, (s + 1) * 36)), chw(rgb)));
    const few = await loadTinyImagenetDir(root, { limit: 2 });
    assert.deepEqual(Array.from(few.labels), [0, 1]);
    assert.deepEqual(Array.from(few.images), Array.from(d.images.subarray(0, 72)));

    const val = await loadDataset(root, { split: "test" });
    assert.deepEqual(Array.from(val.labels), [1, 0]);
    const colour = [120, 60, 200];
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < PLANE; p++) assert.ok(Math.abs(val.images[c * PLANE + p] * 255 - colour[c]) <= 3);
    }
    assert.deepEqual(Array.from(val.images.subarray(36)), chw(rgbOf(20)));
  });
});

Deno.test("Tiny ImageNet: a missing class folder, a bad annotation, mixed sizes and a corrupt image name the file", async () => {
  await withTempDir(async (root) => {
    await writeTiny(root);
    await Deno.writeFile(`${root}/train/${WNIDS[1]}/images/b_2.ppm`, ppm(W + 1, H, new Uint8Array((W + 1) * H * 3)));
    await assert.rejects(loadDataset(root), {
      message: `${root}/train/${WNIDS[1]}/images/b_2.ppm: 5x3, but ${root}/train/${WNIDS[0]}/images/a_0.ppm is 4x3`,
    });
    await Deno.writeFile(`${root}/train/${WNIDS[1]}/images/b_2.ppm`, new TextEncoder().encode("GIF89a...."));
    await assert.rejects(loadDataset(root), {
      message: `${root}/train/${WNIDS[1]}/images/b_2.ppm: unsupported image format (unknown); ` +
        "supported: JPEG, binary PPM (P6) and PGM (P5)",
    });
    await Deno.writeTextFile(`${root}/wnids.txt`, [...WNIDS, "n09999999"].join("\n"));
    await assert.rejects(loadDataset(root), {
      message: `${root}/train/n09999999/images: missing (class n09999999 of wnids.txt)`,
    });
    await Deno.writeTextFile(`${root}/val/val_annotations.txt`, "val_0.JPEG\tn00000000\t0\t0\t1\t1\n");
    await assert.rejects(loadDataset(root, { split: "test" }), {
      message: `${root}/val/val_annotations.txt: line 1: expected "<file>\\t<wnid>" with a wnid of wnids.txt`,
    });
  });
});
