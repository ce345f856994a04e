/**
 * The private training benchmark, run by each of the three parties: seconds,
 * bytes and rounds per iteration of a zoo model on one seeded batch (weights
 * shared by party 0, the batch by party 1, before the clock starts), the
 * per-layer-type breakdown (the paper's Table V), the float64 twin's time for
 * the same step on this machine, and peak memory. Party 0 collects the three
 * parties' counts; results accumulate in bench/results/training-<device>.
 */
import { RingTensor } from "../lib/ring/tensor.ts";
import { shareInput } from "../lib/mpc/input.ts";
import type { Party } from "../lib/mpc/party.ts";
import { type Breakdown, emptyBreakdown, initWeights, shareWeights } from "../lib/nn/model.ts";
import { Adam } from "../lib/nn/adam.ts";
import { type Optimizer, type OptimizerKind, Sgd } from "../lib/nn/optim.ts";
import { PlainTensor } from "../lib/nn/plain.ts";
import { plainTrainStep, trainStep } from "../lib/nn/train_step.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { LAN } from "./protocols.ts";
import { gatherToZero, seededInput } from "./parties.ts";

const kinds = ["linear", "pool", "relu", "softmax", "other"] as const;

export interface TrainingRow {
  model: string;
  /** The optimizer when not SGD with momentum 0.9 (rows from before Adam have none). */
  optimizer?: OptimizerKind;
  batch: number;
  iterations: number;
  /** Party 0's seconds per iteration (the parties finish each step together). */
  secondsPerIteration: number;
  /** Bytes each party sent per iteration, and their sum. */
  bytesPerIteration: number[];
  bytesTotalPerIteration: number;
  roundsPerIteration: number;
  /** Rounds and the busiest party's bytes on the paper's LAN, per iteration (communication only). */
  lanSecondsPerIteration: number;
  /** Per iteration and layer type: party 0's time, bytes summed over the parties, rounds. */
  breakdown: Breakdown;
  plainSecondsPerIteration: number;
  ratio: number;
  /** Largest resident set of any party (bytes), and of party 0's native buffers (words). */
  peakRss: number;
  nativeWords: number;
  fracBits: number;
}

export interface TrainingBenchOptions {
  model: string;
  batch: number;
  iterations: number;
  seed: number;
  /** SGD (lr 0.01, momentum 0.9) by default; Adam and AdamW with lr 0.001 and their defaults. */
  optimizer?: OptimizerKind;
}

/** The bench's optimizer: SGD lr 0.01 momentum 0.9, or Adam/AdamW lr 0.001 with the default betas and eps. */
function benchOptimizer(kind: OptimizerKind = "sgd"): Optimizer {
  return kind === "sgd" ? new Sgd({ lr: 0.01, momentum: 0.9 }) : new Adam({ lr: 0.001, decoupled: kind === "adamw" });
}

/** Every party calls this; party 0 gets the row, the others null. */
export async function trainingBench(p: Party, o: TrainingBenchOptions): Promise<TrainingRow | null> {
  const model = modelByName(o.model);
  const shape = [o.batch, ...model.inputShape];
  const classes = model.checkInput(shape)[1];
  const weights = p.index === 0 ? initWeights(model, o.seed) : null;
  const x = seededInput(shape, o.seed + 1);
  const labels = Int32Array.from({ length: o.batch }, (_, i) => (i * 7 + o.seed) % classes);
  const y = new PlainTensor(
    [o.batch, classes],
    Float64Array.from({ length: o.batch * classes }, (_, i) => labels[Math.floor(i / classes)] === i % classes ? 1 : 0),
  );
  const params = await shareWeights(p, model, 0, weights);
  const enc = (t: PlainTensor) => (p.index === 1 ? RingTensor.encode(p.backend, t.data, p.fracBits, t.shape) : null);
  using xs = await shareInput(p, 1, enc(x), x.shape), ys = await shareInput(p, 1, enc(y), y.shape);
  const sgd = benchOptimizer(o.optimizer);
  const breakdown = emptyBreakdown();
  let peakRss = Deno.memoryUsage().rss, nativeWords = 0;
  const s0 = p.mesh.stats(), t0 = performance.now();
  for (let it = 0; it < o.iterations; it++) {
    // AlexNet and VGG hold Dropout layers: public masks from the bench seed and the iteration
    await trainStep(model, params, sgd, xs, ys, { breakdown, dropout: { seed: o.seed, iteration: it } });
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    nativeWords = Math.max(nativeWords, p.backend.liveBuffers().words);
  }
  const seconds = (performance.now() - t0) / 1000, s1 = p.mesh.stats();
  params.forEach((t) => t.dispose());
  sgd.dispose();
  const mine = [s1.bytesSent - s0.bytesSent, s1.rounds - s0.rounds, peakRss];
  for (const k of kinds) mine.push(breakdown[k].bytes);
  const all = await gatherToZero(p, mine);
  if (!all) return null;

  // the twin, on party 0 alone, after the private run (so it does not compete for the cores)
  const twinWeights = weights!, twinSgd = benchOptimizer(o.optimizer);
  const tp = performance.now();
  for (let it = 0; it < o.iterations; it++) {
    plainTrainStep(model, twinWeights, twinSgd, x, y, p.fracBits, { dropout: { seed: o.seed, iteration: it } });
  }
  const plainSeconds = (performance.now() - tp) / 1000 / o.iterations;

  const n = o.iterations, per = (v: number) => v / n;
  const bytes = all.map((s) => per(s[0]));
  const rounds = per(all[0][1]);
  const perIteration = emptyBreakdown();
  kinds.forEach((k, j) => {
    perIteration[k] = {
      seconds: per(breakdown[k].seconds),
      bytes: per(all.reduce((s, r) => s + r[3 + j], 0)),
      rounds: per(breakdown[k].rounds),
    };
  });
  const secondsPerIteration = per(seconds);
  return {
    model: o.model,
    ...(o.optimizer && o.optimizer !== "sgd" ? { optimizer: o.optimizer } : {}),
    batch: o.batch,
    iterations: n,
    secondsPerIteration,
    bytesPerIteration: bytes,
    bytesTotalPerIteration: bytes.reduce((a, b) => a + b, 0),
    roundsPerIteration: rounds,
    lanSecondsPerIteration: rounds * LAN.roundSeconds + Math.max(...bytes) / LAN.bytesPerSecond,
    breakdown: perIteration,
    plainSecondsPerIteration: plainSeconds,
    ratio: secondsPerIteration / plainSeconds,
    peakRss: Math.max(...all.map((s) => s[2])),
    nativeWords,
    fracBits: p.fracBits,
  };
}

/** The paper's Table IV (CryptGPU, batch 128 unless noted): seconds and GB per iteration. */
export const PAPER_TABLE_IV: Record<string, { batch: number; seconds: number; gb: number }> = {
  "lenet": { batch: 128, seconds: 2.21, gb: 1.14 },
  "alexnet-cifar10": { batch: 128, seconds: 2.91, gb: 1.37 },
  "vgg16-cifar10": { batch: 32, seconds: 12.14, gb: 7.55 },
  "alexnet-tinyimagenet": { batch: 128, seconds: 11.30, gb: 6.98 },
  "vgg16-tinyimagenet": { batch: 8, seconds: 13.89, gb: 7.59 },
};

export interface TrainingRecord {
  suite: "training";
  device: string;
  rows: (TrainingRow & { commit?: string; date?: string; tls?: boolean; threads?: number })[];
}

/** Reads the existing record (if any) and replaces the row of the same model, batch and f. */
export async function mergeTrainingRow(path: string, device: string, row: TrainingRecord["rows"][number]) {
  let record: TrainingRecord = { suite: "training", device, rows: [] };
  try {
    record = JSON.parse(await Deno.readTextFile(path));
  } catch { /* first row */ }
  const key = (r: TrainingRow) => `${r.model}/${r.batch}/${r.fracBits}${r.optimizer ? `/${r.optimizer}` : ""}`;
  record.rows = [...record.rows.filter((r) => key(r) !== key(row)), row].sort((a, b) => key(a).localeCompare(key(b)));
  return record;
}

export function trainingMarkdown(
  rec: TrainingRecord,
  table: (h: string[], rows: string[][]) => string,
  si: (v: number) => string,
): string {
  const rows = rec.rows.map((r) => {
    const paper = PAPER_TABLE_IV[r.model.split(":")[0]];
    return [
      r.optimizer ? `${r.model} (${r.optimizer})` : r.model,
      String(r.batch),
      String(r.fracBits),
      r.secondsPerIteration.toFixed(2),
      `${si(r.bytesTotalPerIteration)}B`,
      r.roundsPerIteration.toFixed(0),
      r.lanSecondsPerIteration.toFixed(2),
      r.plainSecondsPerIteration.toFixed(3),
      r.ratio.toFixed(0),
      `${si(r.peakRss)}B`,
      ...(["linear", "pool", "relu", "softmax"] as const).map((k) =>
        `${r.breakdown[k].seconds.toFixed(2)} s / ${si(r.breakdown[k].bytes)}B`
      ),
      paper ? `${paper.seconds} s, ${paper.gb} GB (batch ${paper.batch})` : "",
    ];
  });
  return [
    `# Private training, ${rec.device} build`,
    "",
    "One iteration (forward, softmax cross-entropy gradient, backward, SGD with momentum) on one seeded batch; three",
    "parties on one machine, each process with its own native threads. Time is party 0's; bytes are summed over the",
    "three parties. 'LAN comm' is the communication alone on the paper's LAN (1.25 GB/s, 0.2 ms a round); the twin is",
    "this project's float64 TypeScript twin on the same CPU (the paper's plaintext column is PyTorch on a GPU). The",
    "breakdown columns give party 0's time and all parties' bytes per layer type (the paper's Table V). Paper: CryptGPU",
    "on three GPU servers (Table IV).",
    "",
    table([
      "model",
      "batch",
      "f",
      "s / iteration",
      "sent / iteration",
      "rounds",
      "LAN comm (s)",
      "twin (s)",
      "ratio",
      "peak RSS",
      "linear",
      "pool",
      "ReLU",
      "softmax",
      "paper (CryptGPU)",
    ], rows),
    "",
  ].join("\n");
}
