/**
 * `cryptgpu train`: private training by one of the three parties, on its
 * share files of a model and a dataset (a `{i}` in a path stands for the
 * party index, for `local train`). Everything that can be checked alone is
 * checked before connecting. Checkpoints (the model's and the optimizer's
 * shares, and the progress) are written at every epoch's end and at the end;
 * `--resume` continues from one and gives the same weights as an
 * uninterrupted run. Disclosures are opt-in, each to one named party: the
 * batch loss (`--loss-to`), the held-out accuracy (`--accuracy-to`).
 */
import { Command } from "commander";
import { FileFormatError, type Header } from "../lib/io/format.ts";
import { checkModelTensors, checkShareFile } from "../lib/io/checks.ts";
import { loadShares, saveShares, sharePath } from "../lib/io/share_files.ts";
import { modelOf } from "../lib/io/models.ts";
import { loadDatasetShares } from "../lib/data/dataset_shares.ts";
import type { AShare } from "../lib/mpc/arithmetic.ts";
import type { Party } from "../lib/mpc/party.ts";
import { emptyBreakdown, type Model } from "../lib/nn/model.ts";
import { ADAM_DEFAULTS, checkAdamOptions } from "../lib/nn/adam.ts";
import {
  checkSgdOptions,
  formatLrSchedule,
  isOptimizerState,
  type OptimizerKind,
  OPTIMIZERS,
  parseLrSchedule,
} from "../lib/nn/optim.ts";
import { architectureDigest } from "../lib/nn/architecture.ts";
import { commonId } from "../lib/mpc/common_id.ts";
import { agreeOnCheckpoint, commitCheckpoint, findCheckpoints } from "../lib/io/checkpoint.ts";
import { assertNotDirectory, writeFileAtomic } from "../lib/io/atomic.ts";
import { revealCount, sharedCorrect } from "../lib/nn/train_step.ts";
import { createOptimizer, type Schedule, trainPrivate } from "../lib/nn/training_loop.ts";
import { batchCount } from "../lib/data/batches.ts";
import { addPartyOptions, openFromFlags, type PartyFlags } from "./party_options.ts";
import { Progress } from "./progress.ts";
import { si } from "./output.ts";

interface TrainOptions extends PartyFlags {
  model?: string;
  resume?: string;
  data: string;
  iterations?: string;
  epochs?: string;
  batch: string;
  optimizer: string;
  lr?: string;
  momentum?: string;
  beta1?: string;
  beta2?: string;
  eps?: string;
  lrSchedule: string;
  weightDecay: string;
  seed: string;
  out?: string;
  checkpoint?: string;
  lossTo?: string;
  lossCsv?: string;
  evalData?: string;
  accuracyTo?: string;
  report?: string;
  json?: boolean;
}

export function trainCommand(): Command {
  return addPartyOptions(
    new Command("train")
      .description("private training on shared weights and a shared dataset")
      .option("--model <file>", "this party's model share file ({i}: the party index)")
      .option("--resume <file>", "continue from this party's checkpoint file instead of --model")
      .requiredOption("--data <file>", "this party's dataset share file (from `share --dataset`)")
      .option("--iterations <n>", "iterations in all (a resumed run counts those already done)")
      .option("--epochs <e>", "epochs in all, instead of --iterations")
      .option("--batch <b>", "batch size", "64")
      .option("--optimizer <name>", "sgd, adam or adamw (AdamW: decoupled weight decay)", "sgd")
      .option("--lr <lr>", "learning rate (default 0.05 for sgd, 0.001 for adam and adamw)")
      .option("--momentum <m>", "SGD's momentum (default 0.9)")
      .option("--beta1 <b>", `Adam's first-moment decay (default ${ADAM_DEFAULTS.beta1})`)
      .option("--beta2 <b>", `Adam's second-moment decay (default ${ADAM_DEFAULTS.beta2})`)
      .option("--eps <e>", `Adam's eps, inside the square root: 1/sqrt(vhat + eps) (default ${ADAM_DEFAULTS.eps})`)
      .option("--lr-schedule <s>", "constant, step:EVERY:GAMMA (lr GAMMA^floor(i/EVERY)) or cosine", "constant")
      .option("--weight-decay <w>", "weight decay (L2 for sgd and adam, decoupled for adamw)", "0")
      .option("--seed <s>", "seed of the public batch order", "1")
      .option("--out <prefix>", "write the trained model's shares to PREFIX.p<i>.share")
      .option("--checkpoint <prefix>", "write checkpoints to PREFIX.p<i>.share at each epoch's end and at the end")
      .option("--loss-to <j>", "disclose each batch's mean loss to party j (opt-in; nothing else is revealed)")
      .option("--loss-csv <file>", "where party --loss-to writes the loss curve (iteration,loss)")
      .option("--eval-data <file>", "held-out dataset share file: count correct predictions after training")
      .option("--accuracy-to <j>", "the party that learns the held-out accuracy (a count)", "0")
      .option("--report <file>", "write this party's JSON report ({i}: the party index)")
      .option("--json", "print the report as JSON"),
  ).action(async (o: TrainOptions) => {
    await train(o);
  });
}

const partyIndex = (name: string, v: string) => {
  const n = Number(v);
  if (![0, 1, 2].includes(n)) throw new Error(`${name} must be 0, 1 or 2, got ${v}`);
  return n;
};

function positive(name: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (integer && (!Number.isInteger(n) || n < 1))) {
    throw new Error(`${name} must be a ${integer ? "positive integer" : "non-negative number"}, got ${v}`);
  }
  return n;
}

/** What the flags and files say, checked; nothing connected yet. */
async function plan(o: TrainOptions) {
  const party = partyIndex("--party", o.party);
  const at = (path: string) => path.replaceAll("{i}", String(party));
  if (!o.model === !o.resume) throw new Error("give exactly one of --model and --resume");
  const modelPath = at(o.model ?? o.resume!);
  // A resumed run reads every whole checkpoint of the path (committed, previous, staged): which one the three
  // continue from is agreed once connected.
  const checkpoints = o.resume ? await findCheckpoints(modelPath) : null;
  const mh = checkpoints ? checkpoints[0].header : await checkShareFile(modelPath, party, "model");
  if (mh.share?.party !== party) {
    throw new FileFormatError(`${modelPath} is party ${mh.share?.party}'s share file, not party ${party}'s`);
  }
  if (o.resume && !mh.training) throw new FileFormatError(`${modelPath} is a model, not a training checkpoint`);
  const model = modelOf(mh);
  checkModelTensors(
    modelPath,
    { ...mh, tensors: mh.tensors.filter((t) => !isOptimizerState(t.name)) },
    model.paramShapes(),
  );
  const dataPath = at(o.data), dh = await checkShareFile(dataPath, party, "dataset");
  const sampleShape = dataShape(dataPath, dh);
  const outShape = model.checkInput([1, ...sampleShape.sample]);
  if (outShape.length !== 2 || outShape[1] !== sampleShape.classes) {
    throw new FileFormatError(
      `${dataPath} has ${sampleShape.classes} classes, ${mh.model} outputs ${outShape.slice(1)}`,
    );
  }
  if (dh.fracBits !== mh.fracBits) {
    throw new FileFormatError(`the model uses ${mh.fracBits} fractional bits, the dataset ${dh.fracBits}`);
  }
  const batch = positive("--batch", o.batch, true);
  const perEpoch = batchCount(sampleShape.n, batch, true);
  if (perEpoch < 1) throw new Error(`--batch ${batch} is larger than the dataset (${sampleShape.n} samples)`);
  if (!o.iterations === !o.epochs) throw new Error("give exactly one of --iterations and --epochs");
  const iterations = o.iterations
    ? positive("--iterations", o.iterations, true)
    : positive("--epochs", o.epochs!, true) * perEpoch;
  const optimizer = optimizerSettings(o, mh.fracBits);
  const schedule: Schedule = {
    batch,
    iterations,
    seed: Number.isInteger(Number(o.seed)) ? Number(o.seed) : (() => {
      throw new Error(`--seed must be an integer, got ${o.seed}`);
    })(),
    ...optimizer,
  };
  const t = mh.training;
  if (t) {
    // what the checkpoint's run was trained with (checkpoints from before Adam: SGD, constant rate)
    const was: Record<string, string | number | undefined> = {
      batch: t.batch,
      seed: t.seed,
      optimizer: t.optimizer ?? "sgd",
      lr: t.lr,
      momentum: t.momentum,
      weightDecay: t.weightDecay,
      lrSchedule: t.lrSchedule ?? "constant",
    };
    const now: Record<string, string | number | undefined> = {
      batch,
      seed: schedule.seed,
      optimizer: schedule.optimizer,
      lr: schedule.sgd.lr,
      momentum: schedule.sgd.momentum,
      weightDecay: schedule.sgd.weightDecay,
      lrSchedule: formatLrSchedule(schedule.lrSchedule),
    };
    if (schedule.optimizer !== "sgd") {
      Object.assign(was, { beta1: t.beta1, beta2: t.beta2, eps: t.eps });
      Object.assign(now, schedule.adam);
    }
    // a cosine schedule's rate depends on the run's length
    if (schedule.lrSchedule?.kind === "cosine") [was.iterations, now.iterations] = [t.iterations, iterations];
    const mismatch = Object.keys(now).filter((k) => now[k] !== was[k]);
    if (mismatch.length) {
      throw new Error(
        `${modelPath} was trained with other settings (${mismatch.map((k) => `${k} ${was[k]}`).join(", ")})`,
      );
    }
    if (t.iteration > iterations) {
      throw new Error(`${modelPath} is already at iteration ${t.iteration} of ${iterations}`);
    }
  }
  let evalPath: string | undefined, evalSharing: string | undefined;
  if (o.evalData) {
    evalPath = at(o.evalData);
    const eh = await checkShareFile(evalPath, party, "dataset"), es = dataShape(evalPath, eh);
    evalSharing = eh.share!.id;
    if (es.sample.join() !== sampleShape.sample.join() || es.classes !== sampleShape.classes) {
      throw new FileFormatError(`${evalPath} does not match the training data's samples and classes`);
    }
  }
  const lossTo = o.lossTo === undefined ? undefined : partyIndex("--loss-to", o.lossTo);
  const accuracyTo = partyIndex("--accuracy-to", o.accuracyTo ?? "0");
  // Everything the three must hold in common, compared at setup before any protocol: one party's other seed,
  // learning rate, model, data or checkpoint run is refused by name instead of trained on.
  const agree = {
    command: "train",
    model: mh.model,
    architecture: architectureDigest(model),
    [o.resume ? "checkpointRun" : "modelSharing"]: mh.share!.id,
    dataSharing: dh.share!.id,
    evalSharing: evalSharing ?? "none",
    batch,
    iterations,
    seed: schedule.seed,
    optimizer: schedule.optimizer!,
    lr: schedule.sgd.lr,
    momentum: schedule.sgd.momentum ?? 0,
    weightDecay: schedule.sgd.weightDecay ?? 0,
    beta1: schedule.adam?.beta1 ?? "none",
    beta2: schedule.adam?.beta2 ?? "none",
    eps: schedule.adam?.eps ?? "none",
    lrSchedule: formatLrSchedule(schedule.lrSchedule),
    lossTo: lossTo ?? "none",
    accuracyTo: evalPath ? accuracyTo : "none",
    checkpoint: o.checkpoint ? "yes" : "no",
    output: o.out ? "shares" : "none",
  };
  return {
    party,
    model,
    modelPath,
    checkpoints,
    header: mh,
    dataPath,
    evalPath,
    schedule,
    perEpoch,
    start: t?.iteration ?? 0,
    lossTo,
    accuracyTo,
    agree,
    at,
  };
}

/**
 * The optimizer's flags, checked: --momentum for SGD only, --beta1, --beta2
 * and --eps for Adam and AdamW only; every bound that the share files' f
 * sets is checked here, before connecting.
 */
function optimizerSettings(
  o: TrainOptions,
  fracBits: number,
): Pick<Schedule, "sgd" | "optimizer" | "adam" | "lrSchedule"> {
  if (!(OPTIMIZERS as readonly string[]).includes(o.optimizer)) {
    throw new Error(`--optimizer must be one of ${OPTIMIZERS.join(", ")}, got ${o.optimizer}`);
  }
  const kind = o.optimizer as OptimizerKind, lrSchedule = parseLrSchedule(o.lrSchedule);
  const lr = positive("--lr", o.lr ?? (kind === "sgd" ? "0.05" : "0.001"), false);
  const weightDecay = positive("--weight-decay", o.weightDecay, false);
  if (kind === "sgd") {
    for (const [flag, v] of [["--beta1", o.beta1], ["--beta2", o.beta2], ["--eps", o.eps]] as const) {
      if (v !== undefined) throw new Error(`${flag} applies to --optimizer adam and adamw, not sgd`);
    }
    const sgd = { lr, momentum: positive("--momentum", o.momentum ?? "0.9", false), weightDecay };
    checkSgdOptions(sgd, fracBits);
    return { sgd, optimizer: kind, lrSchedule };
  }
  if (o.momentum !== undefined) throw new Error(`--momentum applies to --optimizer sgd (${kind} uses --beta1)`);
  const adam = {
    beta1: positive("--beta1", o.beta1 ?? String(ADAM_DEFAULTS.beta1), false),
    beta2: positive("--beta2", o.beta2 ?? String(ADAM_DEFAULTS.beta2), false),
    eps: positive("--eps", o.eps ?? String(ADAM_DEFAULTS.eps), false),
  };
  checkAdamOptions({ lr, weightDecay, ...adam, decoupled: kind === "adamw" }, fracBits);
  return { sgd: { lr, momentum: 0, weightDecay }, optimizer: kind, adam, lrSchedule };
}

function dataShape(path: string, h: Header) {
  const images = h.tensors.find((t) => t.name === "images"), labels = h.tensors.find((t) => t.name === "labels");
  if (!images || images.shape.length !== 4 || !labels || labels.shape.length !== 2) {
    throw new FileFormatError(`${path}: a dataset needs "images" [n, c, h, w] and "labels" [n, classes]`);
  }
  return { n: images.shape[0], sample: images.shape.slice(1), classes: labels.shape[1] };
}

export interface TrainReport {
  party: number;
  model: string;
  /** The optimizer and its settings, e.g. "adam (lr 0.001, beta1 0.9, ...)". */
  optimizer: string;
  iterations: number;
  startedAt: number;
  batch: number;
  seconds: number;
  secondsPerIteration: number;
  bytesSent: number;
  bytesPerIteration: number;
  rounds: number;
  losses: { iteration: number; loss: number }[];
  accuracy: { correct: number; total: number } | null;
  breakdown: ReturnType<typeof emptyBreakdown>;
}

async function train(o: TrainOptions): Promise<void> {
  const pl = await plan(o);
  if (pl.lossTo !== undefined && o.lossCsv) await assertNotDirectory(o.lossCsv);
  if (o.report) await assertNotDirectory(pl.at(o.report));
  const session = await openFromFlags(o, pl.header.fracBits, pl.agree);
  try {
    const p = session.party;
    let start = pl.start, modelPath = pl.modelPath;
    if (pl.checkpoints) {
      const chosen = await agreeOnCheckpoint(p, pl.modelPath, pl.checkpoints);
      start = chosen.header.training!.iteration;
      modelPath = chosen.path;
    }
    const loaded = await loadShares(p, modelPath);
    const params = new Map<string, AShare>(), opt = createOptimizer(pl.schedule);
    opt.iteration = start;
    for (const [name, x] of loaded.shares) {
      if (opt.loadState(name, x)) continue;
      if (isOptimizerState(name)) x.dispose(); // another optimizer's: the settings check refused those already
      else params.set(name, x);
    }
    const data = await loadDatasetShares(p, pl.dataPath);
    const breakdown = emptyBreakdown(), losses: TrainReport["losses"] = [];
    const quiet = o.json || p.index !== (pl.lossTo ?? 0);
    const progress = quiet ? null : new Progress(pl.schedule.iterations, `${pl.header.model} private training`);
    const s0 = p.mesh.stats(), t0 = performance.now();
    // A resumed run keeps its run's id, so that its checkpoints stay one run's.
    const id = pl.checkpoints ? pl.header.share!.id : await commonId(p);
    const save = async (prefix: string, iteration: number) => {
      const tensors = new Map([...params, ...opt.state()]);
      const { batch, seed, sgd: { lr, momentum = 0, weightDecay = 0 }, optimizer = "sgd", adam } = pl.schedule;
      await commitCheckpoint(p, sharePath(prefix, p.index), {
        model: pl.header.model,
        graph: pl.header.graph,
        id,
        training: {
          iteration,
          batch,
          seed,
          lr,
          momentum,
          weightDecay,
          optimizer,
          ...(optimizer === "sgd" ? {} : adam),
          lrSchedule: formatLrSchedule(pl.schedule.lrSchedule),
          iterations: pl.schedule.iterations,
          step: opt.iteration,
        },
      }, tensors);
    };
    await trainPrivate({
      model: pl.model,
      params,
      sgd: opt,
      data,
      schedule: pl.schedule,
      start,
      lossTo: pl.lossTo,
      breakdown,
      onStep: async ({ iteration, loss }) => {
        if (loss !== null) losses.push({ iteration, loss });
        const done = iteration + 1;
        if (o.checkpoint && (done % pl.perEpoch === 0 || done === pl.schedule.iterations)) {
          await save(o.checkpoint, done);
        }
        const sent = p.mesh.stats().bytesSent - s0.bytesSent;
        progress?.update(done - start, `sent ${si(sent)}B${loss !== null ? ` loss ${loss.toFixed(4)}` : ""}`);
      },
    });
    const seconds = (performance.now() - t0) / 1000, s1 = p.mesh.stats();
    const ran = pl.schedule.iterations - start;
    if (o.out) {
      await saveShares(p, sharePath(o.out, p.index), {
        kind: "model",
        model: pl.header.model,
        graph: pl.header.graph,
        id,
      }, params);
    }
    const accuracy = pl.evalPath ? await heldOut(p, pl.model, params, pl.evalPath, pl.accuracyTo) : null;
    params.forEach((x) => x.dispose());
    opt.dispose();
    const report: TrainReport = {
      party: p.index,
      model: pl.header.model,
      optimizer: opt.describe(),
      iterations: pl.schedule.iterations,
      startedAt: start,
      batch: pl.schedule.batch,
      seconds,
      secondsPerIteration: seconds / Math.max(ran, 1),
      bytesSent: s1.bytesSent - s0.bytesSent,
      bytesPerIteration: (s1.bytesSent - s0.bytesSent) / Math.max(ran, 1),
      rounds: s1.rounds - s0.rounds,
      losses,
      accuracy,
      breakdown,
    };
    if (o.report) await writeFileAtomic(pl.at(o.report), JSON.stringify(report, null, 2));
    if (o.lossCsv && losses.length) {
      await writeFileAtomic(
        o.lossCsv,
        "iteration,loss\n" + losses.map((l) => `${l.iteration},${l.loss}`).join("\n") + "\n",
      );
    }
    if (p.index !== 0) return;
    if (o.json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    console.log(
      `${pl.header.model}: ${ran} iterations of batch ${pl.schedule.batch} in ${seconds.toFixed(1)} s ` +
        `(${report.secondsPerIteration.toFixed(2)} s and ${
          si(report.bytesPerIteration)
        }B sent per iteration by party 0); optimizer ${report.optimizer}`,
    );
    if (accuracy) {
      console.log(
        `held-out accuracy: ${accuracy.correct}/${accuracy.total} = ${
          (100 * accuracy.correct / accuracy.total).toFixed(2)
        }%`,
      );
    }
    if (o.out) console.log(`trained model shares: ${sharePath(o.out, 0)} (one per party)`);
  } finally {
    session.close();
  }
}

/**
 * Correct predictions on a held-out shared dataset, disclosed to one party
 * as one count for the whole set: the chunks' shared counts are added before
 * the only reveal, so nothing per chunk or per sample is opened. Null
 * elsewhere.
 */
async function heldOut(p: Party, model: Model, params: Map<string, AShare>, path: string, to: number) {
  const data = await loadDatasetShares(p, path);
  const chunk = 100;
  let total: AShare | null = null;
  try {
    for (let start = 0; start < data.size; start += chunk) {
      const idx = Array.from({ length: Math.min(chunk, data.size - start) }, (_, k) => start + k);
      const { images, labels } = data.batch(idx);
      using x = images, y = labels;
      using part = await sharedCorrect(model, params, x, y);
      const sum: AShare = total ? total.add(part) : part.map((t) => t.clone());
      total?.dispose();
      total = sum;
    }
    const correct = await revealCount(total!, to);
    return correct === null ? null : { correct, total: data.size };
  } finally {
    total?.dispose();
  }
}
