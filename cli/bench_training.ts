/** `cryptgpu bench training` (run by each party; `local bench training` for three local processes). */
import type { Command } from "commander";
import { mergeTrainingRow, trainingBench, trainingMarkdown } from "../bench/training.ts";
import { provenance, resultsDir, writeResults } from "../bench/record.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { type OptimizerKind, OPTIMIZERS } from "../lib/nn/optim.ts";
import { si, table } from "./output.ts";
import { addPartyOptions, openFromFlags, type PartyFlags } from "./party_options.ts";

interface TrainingOptions extends PartyFlags {
  model: string;
  batch: string;
  iterations: string;
  seed: string;
  optimizer: string;
  write: boolean;
  json?: boolean;
}

export function addTrainingBench(bench: Command): void {
  addPartyOptions(
    bench.command("training")
      .description("private training iterations of a zoo model on a seeded batch: time, bytes, rounds, breakdown")
      .requiredOption("--model <name>", "zoo model, e.g. lenet, alexnet-cifar10")
      .option("--batch <k>", "batch size", "128")
      .option("--iterations <n>", "iterations to average over", "2")
      .option("--seed <n>", "seed of the weights and the batch", "1")
      .option("--optimizer <name>", "sgd (lr 0.01, momentum 0.9), adam or adamw (lr 0.001)", "sgd")
      .option("--no-write", "do not write bench/results/")
      .option("--json", "print JSON"),
    "local",
    // training's precision (docs/protocols.md, "Fixed point in training": f = 16 keeps the local truncation's failures rare)
    { fracBits: 16 },
  ).action(async (o: TrainingOptions) => {
    await runTraining(o);
  });
}

async function runTraining(o: TrainingOptions) {
  const [batch, iterations, seed] = [o.batch, o.iterations, o.seed].map(Number);
  for (const [name, v] of [["--batch", batch], ["--iterations", iterations], ["--seed", seed + 1]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  modelByName(o.model); // an unknown name fails before connecting
  if (!(OPTIMIZERS as readonly string[]).includes(o.optimizer)) {
    throw new Error(`--optimizer must be one of ${OPTIMIZERS.join(", ")}, got ${o.optimizer}`);
  }
  const optimizer = o.optimizer as OptimizerKind;
  const session = await openFromFlags(o);
  try {
    const p = session.party;
    const row = await trainingBench(p, { model: o.model, batch, iterations, seed, optimizer });
    if (!row) return;
    const prov = await provenance();
    const path = new URL(`training-${o.device}.json`, resultsDir).pathname;
    const rec = await mergeTrainingRow(path, o.device, {
      ...row,
      commit: prov.commit,
      date: prov.date,
      tls: p.mesh.secure,
      threads: p.backend.threads,
    });
    if (o.json) console.log(JSON.stringify(row, null, 2));
    else {
      console.log(
        `${row.model}${row.optimizer ? ` (${row.optimizer})` : ""}, batch ${row.batch}, f = ${row.fracBits}: ${
          row.secondsPerIteration.toFixed(2)
        } s and ` +
          `${si(row.bytesTotalPerIteration)}B per iteration (${row.roundsPerIteration} rounds, LAN comm ` +
          `${row.lanSecondsPerIteration.toFixed(2)} s); twin ${row.plainSecondsPerIteration.toFixed(3)} s ` +
          `(${row.ratio.toFixed(0)}x); peak RSS ${si(row.peakRss)}B`,
      );
    }
    if (o.write) {
      const paths = await writeResults(`training-${o.device}`, rec, trainingMarkdown(rec, table, si));
      if (!o.json) console.log(`written: ${paths.join(", ")}`);
    }
  } finally {
    session.close();
  }
}
