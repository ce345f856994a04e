/**
 * ResNet-18 (CIFAR variant, batch statistics in training) trained privately on
 * the embedded digits resized to 32x32 (grey repeated to three channels),
 * beside its float64 twin from the same weights, batch order and optimizer
 * constants; both then classify the same held-out digits (the private model
 * privately, from its running statistics). Issue 15's accuracy gap.
 *
 *   deno run -A bench/resnet_digits.ts private OUT [--iterations 200 --batch 8 --eval 1000 --lr 0.02]
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
import { sharePath, shareTensors } from "../lib/io/share_files.ts";
import { initWeights } from "../lib/nn/model.ts";
import { PlainTensor } from "../lib/nn/plain.ts";
import { plainCountCorrect } from "../lib/nn/train_step.ts";
import { plainSource, type Schedule, trainPlain } from "../lib/nn/training_loop.ts";
import { resnet18Cifar10 } from "../lib/nn/zoo.ts";
import { runLocal } from "../cli/local.ts";
import type { TrainReport } from "../cli/train.ts";

const F = 16, SEED = 1;

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    iterations: { type: "string", default: "200" },
    batch: { type: "string", default: "8" },
    eval: { type: "string", default: "1000" },
    lr: { type: "string", default: "0.02" },
  },
});
const [part, dir] = positionals;
if (!["private", "twin", "report"].includes(part) || !dir) {
  console.error("usage: resnet_digits.ts private|twin|report OUT [--iterations N --batch B --eval E --lr LR]");
  Deno.exit(2);
}
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
    ...["--report", `${dir}/report.p{i}.json`, "--out", `${dir}/trained`],
  ]);
  for (const name of ["train", "test", "model"]) {
    for (const i of [0, 1, 2]) await Deno.remove(sharePath(`${dir}/${name}`, i)).catch(() => {});
  }
  if (code !== 0) throw new Error(`private training failed (exit code ${code})`);
  const report: TrainReport = JSON.parse(await Deno.readTextFile(`${dir}/report.p0.json`));
  await Deno.writeTextFile(`${dir}/private.json`, JSON.stringify(report));
} else if (part === "twin") {
  const train = await digits("train", iterations * batch), test = await digits("test", evalCount);
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
  await Deno.writeTextFile(`${dir}/twin.json`, JSON.stringify({ losses, seconds, correct, total: evalCount }));
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
