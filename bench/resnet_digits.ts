/**
 * ResNet-18 (CIFAR variant, batch statistics in training) trained privately on
 * the embedded digits resized to 32x32 (grey repeated to three channels),
 * beside its float64 twin from the same weights, batch order and optimizer
 * constants; both then classify the same held-out digits (the private model
 * privately, from its running statistics). Issue 15's accuracy gap.
 *
 *   deno run -A bench/resnet_digits.ts private OUT [--iterations 200 --batch 8 --eval 1000 --lr 0.02
 *     --frac-bits 16 --truncation local]
 *   deno run -A bench/resnet_digits.ts twin OUT [same flags]
 *   deno run -A bench/resnet_digits.ts report OUT
 *
 * `private` and `twin` may run at the same time (two processes); each writes
 * OUT/<part>.json, and `report` prints the table from both.
 */
import { parseArgs } from "node:util";
import { NativeBackend } from "../lib/native/backend.ts";
import { loadEmbeddedMnist } from "../lib/data/embedded.ts";
import { resize, subset } from "../lib/data/transform.ts";
import { shareDataset } from "../lib/data/dataset_shares.ts";
import { reconstructFiles, sharePath, shareTensors, writePlainFile } from "../lib/io/share_files.ts";
import { readTensorFile, tensorBytes } from "../lib/io/format.ts";
import { exportOnnx } from "../lib/io/onnx/export.ts";
import { sequentialToGraph } from "../lib/nn/graph_from_sequential.ts";
import { runOrt } from "../tests/io/onnx/ort.ts";
import { initWeights } from "../lib/nn/model.ts";
import { PlainTensor } from "../lib/nn/plain.ts";
import { plainCountCorrect } from "../lib/nn/train_step.ts";
import { plainSource, type Schedule, trainPlain } from "../lib/nn/training_loop.ts";
import { resnet18Cifar10 } from "../lib/nn/zoo.ts";
import { runLocal } from "../cli/local.ts";
import type { TrainReport } from "../cli/train.ts";

const SEED = 1;

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    iterations: { type: "string", default: "200" },
    batch: { type: "string", default: "8" },
    eval: { type: "string", default: "1000" },
    lr: { type: "string", default: "0.02" },
    "frac-bits": { type: "string", default: "16" },
    truncation: { type: "string", default: "local" },
    "twin-start": { type: "string", default: "exact" },
    name: { type: "string", default: "twin" },
  },
});
const [part, dir] = positionals;
if (!["private", "twin", "report", "heldout"].includes(part) || !dir) {
  console.error(
    "usage: resnet_digits.ts private|twin|report OUT [--iterations N --batch B --eval E --lr LR --frac-bits F --truncation local|corrected]",
  );
  Deno.exit(2);
}
const F = Number(values["frac-bits"]), truncation = values.truncation!;
const iterations = Number(values.iterations), batch = Number(values.batch), evalCount = Number(values.eval);
const SGD = { lr: Number(values.lr), momentum: 0.9 };
await Deno.mkdir(dir, { recursive: true });

const digits = async (split: "train" | "test", n: number) =>
  resize(await loadEmbeddedMnist({ split, limit: n }), 32, 32, 3);
const model = resnet18Cifar10(), weights = initWeights(model, SEED);
const schedule: Schedule = { batch, iterations, seed: SEED, sgd: SGD };

if (part === "private") {
  const train = await digits("train", iterations * batch), test = await digits("test", evalCount);
  const backend = new NativeBackend();
  try {
    await shareTensors(backend, { kind: "model", model: "resnet18-cifar10", fracBits: F }, weights, `${dir}/model`);
    await shareDataset(backend, train, `${dir}/train`, F);
    await shareDataset(backend, test, `${dir}/test`, F);
  } finally {
    backend.dispose();
  }
  const code = await runLocal([
    "train",
    ...["--model", `${dir}/model.p{i}.share`, "--data", `${dir}/train.p{i}.share`],
    ...["--eval-data", `${dir}/test.p{i}.share`, "--accuracy-to", "0", "--loss-to", "0"],
    ...["--iterations", String(iterations), "--batch", String(batch)],
    ...["--lr", String(SGD.lr), "--momentum", String(SGD.momentum), "--seed", String(SEED)],
    ...["--report", `${dir}/report.p{i}.json`, "--out", `${dir}/trained`, "--truncation", truncation],
  ]);
  for (const name of ["train", "test", "model"]) {
    for (const i of [0, 1, 2]) await Deno.remove(sharePath(`${dir}/${name}`, i)).catch(() => {});
  }
  if (code !== 0) throw new Error(`private training failed (exit code ${code})`);
  // the trained weights in float64, for `heldout` (party 0 saw only its own report; this is the bench's view)
  const rebuild = new NativeBackend();
  try {
    await reconstructFiles(rebuild, [0, 1, 2].map((i) => sharePath(`${dir}/trained`, i)), `${dir}/private.cgtf`);
  } finally {
    rebuild.dispose();
  }
  const report: TrainReport = JSON.parse(await Deno.readTextFile(`${dir}/report.p0.json`));
  await Deno.writeTextFile(`${dir}/private.json`, JSON.stringify(report));
} else if (part === "twin") {
  const train = await digits("train", iterations * batch), test = await digits("test", evalCount);
  // "rounded": the twin starts where the private run starts, from the weights encoded at f fractional bits;
  // "rounded:B" from the weights rounded to B bits (another start as near the exact one, for the spread of twins)
  const start = values["twin-start"]!, bits = start === "rounded" ? F : Number(start.split(":")[1]);
  if (start !== "exact") {
    if (!/^rounded(:\d+)?$/.test(start)) throw new Error(`--twin-start must be exact, rounded or rounded:B`);
    for (const [n, w] of weights) {
      weights.set(n, new PlainTensor(w.shape, w.data.map((v) => Math.round(v * 2 ** bits) / 2 ** bits)));
    }
  }
  const losses: number[] = [], t0 = performance.now();
  trainPlain({
    model,
    weights,
    data: plainSource(train),
    schedule,
    fracBits: F,
    onStep: ({ iteration, loss }) => {
      losses.push(loss!);
      if (iteration % 10 === 0) console.log(`twin ${iteration}: loss ${loss!.toFixed(4)}`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  let correct = 0;
  for (let s = 0; s < evalCount; s += 100) {
    const part = subset(test, Array.from({ length: Math.min(100, evalCount - s) }, (_, i) => s + i));
    correct += plainCountCorrect(
      model,
      weights,
      new PlainTensor([part.labels.length, ...part.shape], part.images),
      part.labels,
    );
  }
  const name = values.name!;
  await Deno.writeTextFile(`${dir}/${name}.json`, JSON.stringify({ losses, seconds, correct, total: evalCount }));
  await writePlainFile(`${dir}/${name}.cgtf`, { kind: "model", model: "resnet18-cifar10", fracBits: F }, weights);
} else if (part === "heldout") {
  await heldout();
} else {
  const priv: TrainReport = JSON.parse(await Deno.readTextFile(`${dir}/private.json`));
  const twin = JSON.parse(await Deno.readTextFile(`${dir}/twin.json`));
  const acc = priv.accuracy!, pct = (c: number, n: number) => (100 * c / n).toFixed(2);
  const tail = (xs: number[]) => (xs.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, xs.length)).toFixed(4);
  const gaps = priv.losses.map((l) => Math.abs(l.loss - twin.losses[l.iteration]));
  console.log(
    `| held-out accuracy | ${pct(acc.correct, acc.total)}% (${acc.correct}/${acc.total}) | ` +
      `${pct(twin.correct, twin.total)}% (${twin.correct}/${twin.total}) |`,
  );
  console.log(`| loss, mean of last 10 iterations | ${tail(priv.losses.map((l) => l.loss))} | ${tail(twin.losses)} |`);
  console.log(`| training time | ${priv.seconds.toFixed(1)} s | ${twin.seconds.toFixed(1)} s |`);
  console.log(
    `| per iteration | ${priv.secondsPerIteration.toFixed(2)} s, ` +
      `${(priv.bytesPerIteration / 1e9).toFixed(2)} GB sent by party 0 | ${
        (twin.seconds / twin.losses.length).toFixed(2)
      } s |`,
  );
  console.log(
    `loss gap: mean ${(gaps.reduce((a, b) => a + b, 0) / gaps.length).toExponential(2)}, ` +
      `max ${Math.max(...gaps).toExponential(2)}`,
  );
  const csv = [
    "iteration,private,plaintext",
    ...twin.losses.map((l: number, i: number) => `${i},${priv.losses.find((p) => p.iteration === i)?.loss ?? ""},${l}`),
  ];
  await Deno.writeTextFile(`${dir}/loss.csv`, csv.join("\n") + "\n");
}

/**
 * Every OUT/*.cgtf (the reconstructed private weights, the twins') classifies up to --eval held-out digits in ONNX
 * Runtime, in float32, from its running statistics: many more held-out digits than private inference on 2 cores
 * allows. Private inference on the same weights agrees with their float64 plaintext inference (the report's count).
 * Writes OUT/heldout.json: per file the count and the per-digit correctness, for a paired comparison.
 */
async function heldout() {
  // held out: the 2,000 test digits, then the training digits the run never drew (it draws from the first
  // iterations * batch)
  const test = await digits("test", 2000), unused = await digits("train", 8000);
  const row = test.shape.reduce((a, b) => a * b, 1), chunk = 500, skip = iterations * batch;
  const total = Math.min(evalCount, 2000 + 8000 - skip);
  const images = new Float64Array(total * row), labels = new Int32Array(total);
  for (let k = 0; k < total; k++) {
    const [from, i] = k < 2000 ? [test, k] : [unused, skip + k - 2000];
    images.set(from.images.subarray(i * row, (i + 1) * row), k * row);
    labels[k] = from.labels[i];
  }
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".cgtf")).sort();
  type Result = { correct: number; total: number; right: number[]; sha256: string };
  // a file classified before (same bytes, same digits) is taken from the last heldout.json
  let earlier: Record<string, Result> = {};
  try {
    earlier = JSON.parse(await Deno.readTextFile(`${dir}/heldout.json`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const results: Record<string, Result> = {};
  for (const file of files) {
    const bytes = await Deno.readFile(`${dir}/${file}`);
    const sha256 = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const before = earlier[file];
    if (before?.sha256 === sha256 && before.total === total) {
      results[file] = before;
      console.log(`${file}: ${before.correct}/${total} = ${(100 * before.correct / total).toFixed(2)}% (as before)`);
      continue;
    }
    const f = await readTensorFile(`${dir}/${file}`);
    const weights = new Map(f.header.tensors.map((t) => [t.name, {
      shape: t.shape,
      data: new Float64Array(tensorBytes(f, t.name).bytes.buffer),
    }]));
    const onnx = exportOnnx(sequentialToGraph(model), weights), right: number[] = [];
    for (let s = 0; s < total; s += chunk) {
      const n = Math.min(chunk, total - s);
      const out = await runOrt(onnx, {
        name: null,
        shape: [n, ...test.shape],
        data: images.subarray(s * row, (s + n) * row),
      });
      const classes = out.shape[1];
      for (let k = 0; k < n; k++) {
        const logits = out.data.subarray(k * classes, (k + 1) * classes);
        right.push(logits.indexOf(Math.max(...logits)) === labels[s + k] ? 1 : 0);
      }
    }
    const correct = right.reduce((a, b) => a + b, 0);
    results[file] = { correct, total, right, sha256 };
    console.log(`${file}: ${correct}/${total} = ${(100 * correct / total).toFixed(2)}%`);
  }
  const names = Object.keys(results);
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const a = results[names[i]].right, b = results[names[j]].right;
      const onlyA = a.filter((x, k) => x && !b[k]).length, onlyB = b.filter((x, k) => x && !a[k]).length;
      // McNemar: under "same accuracy", onlyA - onlyB has standard deviation sqrt(onlyA + onlyB)
      console.log(
        `${names[i]} vs ${names[j]}: ${((100 * (onlyA - onlyB)) / total).toFixed(2)} points ` +
          `(${onlyA} digits right only in the first, ${onlyB} only in the second; ` +
          `standard error ${((100 * Math.sqrt(onlyA + onlyB)) / total).toFixed(2)} points)`,
      );
    }
  }
  await Deno.writeTextFile(`${dir}/heldout.json`, JSON.stringify(results));
}
