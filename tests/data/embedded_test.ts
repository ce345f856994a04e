import assert from "node:assert/strict";
import { EMBEDDED_MNIST_SIZE, loadEmbeddedMnist } from "../../lib/data/embedded.ts";
import { loadDataset } from "../../lib/data/load.ts";

Deno.test("embedded mnist: 10,000 real digits, 8,000 train and 2,000 test, disjoint, every digit, values k/255", async () => {
  const train = await loadDataset("mnist", { split: "train" });
  const test = await loadEmbeddedMnist({ split: "test" });
  assert.equal(train.labels.length, 8000);
  assert.equal(test.labels.length, 2000);
  assert.equal(train.labels.length + test.labels.length, EMBEDDED_MNIST_SIZE);
  for (const d of [train, test]) {
    assert.deepEqual(d.shape, [1, 28, 28]);
    assert.equal(d.classes, 10);
    assert.equal(d.images.length, d.labels.length * 784);
    const counts = new Array(10).fill(0);
    for (const l of d.labels) counts[l]++;
    // every digit present, and the split mixes them (no digit below 5% of the split)
    counts.forEach((c, digit) => assert.ok(c > d.labels.length * 0.05, `digit ${digit}: ${c}`));
    let min = Infinity, max = -Infinity;
    for (const v of d.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      // exactly a byte / 255, as the IDX reader gives
      assert.equal(Math.round(v * 255) / 255, v);
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
  }
  // real digits: a digit's ink covers roughly 10-25% of the 784 pixels, not noise or blanks
  const ink = (d: typeof train, i: number) => d.images.subarray(i * 784, (i + 1) * 784).filter((v) => v > 0.5).length;
  for (let i = 0; i < 50; i++) assert.ok(ink(train, i) > 30 && ink(train, i) < 300, `sample ${i}: ${ink(train, i)}`);
  // no digit image is in both splits
  const key = (d: typeof train, i: number) => d.images.subarray(i * 784, (i + 1) * 784).join(",");
  const seen = new Set(Array.from({ length: 2000 }, (_, i) => key(test, i)));
  let shared = 0;
  for (let i = 0; i < 8000; i++) if (seen.has(key(train, i))) shared++;
  assert.equal(shared, 0);
});

Deno.test("embedded mnist: the split is fixed (same digits every load) and limit takes its first samples", async () => {
  const a = await loadEmbeddedMnist({ split: "test", limit: 30 });
  const b = await loadEmbeddedMnist({ split: "test" });
  assert.equal(a.labels.length, 30);
  assert.deepEqual(Array.from(a.labels), Array.from(b.labels.subarray(0, 30)));
  assert.deepEqual(Array.from(a.images), Array.from(b.images.subarray(0, 30 * 784)));
  // pinned: a change of the package or of the split seed shows here
  assert.deepEqual(Array.from(a.labels.subarray(0, 12)), [5, 4, 4, 1, 1, 1, 7, 6, 6, 2, 5, 6]);
  const train = await loadEmbeddedMnist({ split: "train", limit: 12 });
  assert.deepEqual(Array.from(train.labels), [7, 0, 0, 4, 1, 5, 6, 4, 0, 6, 5, 8]);
  // the byte sum of the first training digit
  assert.equal(train.images.subarray(0, 784).reduce((s, v) => s + Math.round(v * 255), 0), 22576);
});

// Timing is reported, not asserted (the project keeps speed out of assertions): about 0.3 s here.
Deno.test("embedded mnist: loading in a fresh process prints nothing", async () => {
  const code = `
    import { loadDataset } from ${JSON.stringify(new URL("../../lib/data/load.ts", import.meta.url).href)};
    const t = performance.now();
    const d = await loadDataset("mnist", { split: "train" });
    Deno.stderr.writeSync(new TextEncoder().encode(String(performance.now() - t) + " " + d.labels.length));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    cwd: new URL("../..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const [ms, n] = new TextDecoder().decode(out.stderr).trim().split(" ").map(Number);
  assert.equal(out.code, 0);
  assert.equal(new TextDecoder().decode(out.stdout), "");
  assert.equal(n, 8000);
  console.log(`    embedded mnist train split loaded in ${ms.toFixed(0)} ms`);
});
