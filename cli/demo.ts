/**
 * `cryptgpu demo`, the README's main job: on this machine, three local
 * parties (three processes, authenticated and encrypted channels) privately train LeNet on the embedded
 * handwritten digits, then privately classify held-out digits; the same
 * training runs in the clear (the float64 twin, same initialization, batch
 * order and optimizer constants) for comparison. Prints both accuracies, the
 * time and bytes, and writes the two loss curves (CSV and SVG).
 *
 * What is disclosed, by the demo's choice and to party 0 only: each batch's
 * mean loss and the number of correct held-out predictions. The weights,
 * samples, labels and gradients stay shared throughout.
 */
import { Command } from "commander";
import { NativeBackend } from "../lib/native/backend.ts";
import { loadEmbeddedMnist } from "../lib/data/embedded.ts";
import { subset } from "../lib/data/transform.ts";
import { shareDataset } from "../lib/data/dataset_shares.ts";
import { sharePath, shareTensors } from "../lib/io/share_files.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { initWeights } from "../lib/nn/model.ts";
import { PlainTensor } from "../lib/nn/plain.ts";
import { plainCountCorrect } from "../lib/nn/train_step.ts";
import { plainSource, type Schedule, trainPlain } from "../lib/nn/training_loop.ts";
import { lenet } from "../lib/nn/zoo.ts";
import { runLocal } from "./local.ts";
import { lossChartSvg } from "./plot.ts";
import { Progress } from "./progress.ts";
import { si, table } from "./output.ts";
import type { TrainReport } from "./train.ts";

interface DemoOptions {
  iterations: string;
  batch: string;
  lr: string;
  eval: string;
  out: string;
  insecure?: boolean;
}

/** Training runs with 16 fractional bits: docs/protocols.md, "Fixed point in training" (truncation failures). */
const TRAIN_FRAC_BITS = 16;

export function demoCommand(): Command {
  return new Command("demo")
    .description("private LeNet training on the embedded digits by three local parties, beside plaintext training")
    .option("--iterations <n>", "training iterations", "80")
    .option("--batch <b>", "batch size", "64")
    .option("--lr <lr>", "learning rate (SGD, momentum 0.9)", "0.05")
    .option("--eval <n>", "held-out digits to classify", "500")
    .option("--out <dir>", "where the loss curves, reports and trained model shares go", "cryptgpu-demo")
    .option("--insecure", "plain TCP between the local parties (no encryption or authentication)")
    .action(async (o: DemoOptions) => {
      await demo(o);
    });
}

function count(name: string, v: string, max = Infinity): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${name} must be an integer in [1, ${max}], got ${v}`);
  return n;
}

async function demo(o: DemoOptions): Promise<void> {
  const iterations = count("--iterations", o.iterations), batch = count("--batch", o.batch, 8000);
  const evalCount = count("--eval", o.eval, 2000), lr = Number(o.lr);
  if (!(lr > 0)) throw new Error(`--lr must be a positive number, got ${o.lr}`);
  const dir = o.out;
  await Deno.mkdir(dir, { recursive: true });

  const fullTrain = await loadEmbeddedMnist({ split: "train" });
  const samples = Math.min(fullTrain.labels.length, iterations * batch);
  const train = subset(fullTrain, Array.from({ length: samples }, (_, i) => i));
  const test = await loadEmbeddedMnist({ split: "test", limit: evalCount });
  const model = lenet(), weights = initWeights(model, 1);
  const schedule: Schedule = { batch, iterations, seed: 1, sgd: { lr, momentum: 0.9 } };

  console.log("cryptgpu demo: three local parties privately train LeNet on handwritten digits.");
  console.log(
    `  ${samples} training digits and ${evalCount} held-out digits (embedded MNIST), secret-shared among the parties;`,
  );
  console.log(
    `  ${iterations} iterations of batch ${batch}, SGD lr ${lr} momentum 0.9, ${TRAIN_FRAC_BITS} fractional bits.`,
  );
  console.log("  Disclosed to party 0 only, by this demo's choice: each batch's mean loss and the number of correct");
  console.log("  held-out predictions. Weights, samples, labels and gradients stay secret-shared.\n");

  // The model owner and the data owner share their inputs (here: this process plays both).
  const backend = new NativeBackend();
  try {
    await shareTensors(backend, { kind: "model", model: "lenet", fracBits: TRAIN_FRAC_BITS }, weights, `${dir}/model`);
    await shareDataset(backend, train, `${dir}/digits-train`, TRAIN_FRAC_BITS);
    await shareDataset(backend, test, `${dir}/digits-test`, TRAIN_FRAC_BITS);
  } finally {
    backend.dispose();
  }

  const code = await runLocal([
    "train",
    ...["--model", `${dir}/model.p{i}.share`, "--data", `${dir}/digits-train.p{i}.share`],
    ...["--eval-data", `${dir}/digits-test.p{i}.share`, "--accuracy-to", "0", "--loss-to", "0"],
    ...["--iterations", String(iterations), "--batch", String(batch), "--lr", String(lr), "--momentum", "0.9"],
    ...["--seed", "1", "--report", `${dir}/report.p{i}.json`, "--out", `${dir}/trained`],
    ...(o.insecure ? ["--insecure"] : []),
  ]);
  for (const name of ["digits-train", "digits-test", "model"]) {
    for (const i of [0, 1, 2]) await Deno.remove(sharePath(`${dir}/${name}`, i)).catch(() => {});
  }
  if (code !== 0) throw new Error(`private training failed (exit code ${code})`);
  const report: TrainReport = JSON.parse(await Deno.readTextFile(`${dir}/report.p0.json`));

  // The plaintext twin from the same initial weights, batch order and optimizer constants.
  const progress = new Progress(iterations, "plaintext twin");
  const twinLosses: number[] = [];
  const t0 = performance.now();
  trainPlain({
    model,
    weights,
    data: plainSource(train),
    schedule,
    fracBits: TRAIN_FRAC_BITS,
    onStep: ({ iteration, loss }) => {
      twinLosses.push(loss!);
      progress.update(iteration + 1, `loss ${loss!.toFixed(4)}`);
    },
  });
  const twinSeconds = (performance.now() - t0) / 1000;
  const twinCorrect = plainCountCorrect(
    model,
    weights,
    new PlainTensor([test.labels.length, ...test.shape], test.images),
    test.labels,
  );

  const privateLoss = new Map(report.losses.map((l) => [l.iteration, l.loss]));
  const csv = ["iteration,private,plaintext", ...twinLosses.map((l, i) => `${i},${privateLoss.get(i) ?? ""},${l}`)];
  await writeFileAtomic(`${dir}/loss.csv`, csv.join("\n") + "\n");
  await writeFileAtomic(
    `${dir}/loss.svg`,
    lossChartSvg(`LeNet on digits: private vs plaintext training loss (batch ${batch})`, [
      {
        name: "private (3 parties)",
        color: "#d62728",
        points: report.losses.map((l) => ({ x: l.iteration, y: l.loss })),
      },
      { name: "plaintext twin", color: "#1f77b4", points: twinLosses.map((y, x) => ({ x, y })) },
    ]),
  );

  const acc = report.accuracy!;
  const pct = (c: number, n: number) => `${(100 * c / n).toFixed(2)}%`;
  const tail = (xs: number[]) => xs.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, xs.length);
  console.log("");
  console.log(table(["", "private (3 parties)", "plaintext twin"], [
    [
      "held-out accuracy",
      `${pct(acc.correct, acc.total)} (${acc.correct}/${acc.total})`,
      `${pct(twinCorrect, evalCount)} (${twinCorrect}/${evalCount})`,
    ],
    [
      "loss, mean of last 10 iterations",
      tail(report.losses.map((l) => l.loss)).toFixed(4),
      tail(twinLosses).toFixed(4),
    ],
    ["training time", `${report.seconds.toFixed(1)} s`, `${twinSeconds.toFixed(1)} s`],
    [
      "per iteration",
      `${report.secondsPerIteration.toFixed(2)} s, ${si(report.bytesPerIteration)}B sent by party 0`,
      `${(twinSeconds / iterations).toFixed(3)} s`,
    ],
  ]));
  console.log(
    `\nloss curves: ${dir}/loss.csv and ${dir}/loss.svg; trained model shares: ${dir}/trained.p{0,1,2}.share`,
  );
}
