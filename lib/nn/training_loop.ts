/**
 * The training loop, private and plaintext twin side by side: the same
 * public batch order (seeded, per epoch, fixed batch size), the same
 * optimizer constants, so that the two loss curves can be compared point by
 * point. Batches come from a source that uploads one batch at a time.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import type { Breakdown } from "./breakdown.ts";
import type { Model, Weights } from "./model.ts";
import { Adam, ADAM_DEFAULTS } from "./adam.ts";
import { type LrSchedule, type Optimizer, type OptimizerKind, Sgd, type SgdOptions } from "./optim.ts";
import { PlainTensor } from "./plain.ts";
import { plainTrainStep, trainStep } from "./train_step.ts";
import { batchCount, epochOrder } from "../data/batches.ts";

export interface Schedule {
  batch: number;
  /** Iterations to run in all (counted from 0, including those a resumed run already did). */
  iterations: number;
  /** Seed of the public batch order. */
  seed: number;
  /** lr and weight decay for every optimizer; momentum for SGD only. */
  sgd: SgdOptions;
  /** SGD by default. */
  optimizer?: OptimizerKind;
  /** Adam's and AdamW's moments' decay and eps (ADAM_DEFAULTS where not given). */
  adam?: { beta1?: number; beta2?: number; eps?: number };
  /** Constant by default. */
  lrSchedule?: LrSchedule;
}

/** The schedule's optimizer, fresh (no state, at iteration 0). */
export function createOptimizer(s: Schedule): Optimizer {
  const schedule = { lrSchedule: s.lrSchedule, iterations: s.iterations };
  const kind = s.optimizer ?? "sgd";
  if (kind === "sgd") return new Sgd({ ...s.sgd, ...schedule });
  const { beta1, beta2, eps } = { ...ADAM_DEFAULTS, ...s.adam };
  return new Adam({
    lr: s.sgd.lr,
    weightDecay: s.sgd.weightDecay,
    beta1,
    beta2,
    eps,
    decoupled: kind === "adamw",
    ...schedule,
  });
}

/** The sample indices of iteration `it` (full batches only; epochs reshuffle). */
export function batchIndices(samples: number, s: Schedule, it: number): Int32Array {
  const perEpoch = batchCount(samples, s.batch, true);
  if (perEpoch < 1) throw new RangeError(`a batch of ${s.batch} needs at least that many samples, got ${samples}`);
  const epoch = Math.floor(it / perEpoch), k = it % perEpoch;
  return epochOrder(samples, { seed: s.seed, epoch }).slice(k * s.batch, (k + 1) * s.batch);
}

export interface BatchSource<T> {
  readonly size: number;
  batch(indices: ArrayLike<number>): { images: T; labels: T };
}

export interface StepReport {
  iteration: number;
  /** The batch's mean loss where it was disclosed to this party, else null. */
  loss: number | null;
  seconds: number;
}

export interface PrivateRun {
  model: Model;
  params: Map<string, AShare>;
  /** Any optimizer (named `sgd` for the callers that predate Adam); its iteration is set before each step. */
  sgd: Optimizer;
  data: BatchSource<AShare>;
  schedule: Schedule;
  /** The first iteration to run (a resumed run). */
  start?: number;
  /** Disclose each batch's loss to this party (opt-in). */
  lossTo?: number;
  breakdown?: Breakdown;
  onStep?: (r: StepReport) => void | Promise<void>;
}

export async function trainPrivate(r: PrivateRun): Promise<void> {
  for (let it = r.start ?? 0; it < r.schedule.iterations; it++) {
    const t0 = performance.now();
    const { images, labels } = r.data.batch(batchIndices(r.data.size, r.schedule, it));
    using x = images, y = labels;
    r.sgd.iteration = it;
    const loss = await trainStep(r.model, r.params, r.sgd, x, y, {
      lossTo: r.lossTo,
      breakdown: r.breakdown,
      dropout: { seed: r.schedule.seed, iteration: it },
    });
    await r.onStep?.({ iteration: it, loss, seconds: (performance.now() - t0) / 1000 });
  }
}

export interface PlainRun {
  model: Model;
  weights: Weights;
  data: BatchSource<PlainTensor>;
  schedule: Schedule;
  /** The fixed-point bits whose rounded optimizer constants the twin applies. */
  fracBits: number;
  onStep?: (r: StepReport) => void;
}

/** The twin of trainPrivate; updates `weights` in place. */
export function trainPlain(r: PlainRun): void {
  const sgd = createOptimizer(r.schedule);
  for (let it = 0; it < r.schedule.iterations; it++) {
    const t0 = performance.now();
    const { images, labels } = r.data.batch(batchIndices(r.data.size, r.schedule, it));
    sgd.iteration = it;
    const loss = plainTrainStep(r.model, r.weights, sgd, images, labels, r.fracBits, {
      dropout: { seed: r.schedule.seed, iteration: it },
    });
    r.onStep?.({ iteration: it, loss, seconds: (performance.now() - t0) / 1000 });
  }
}

/** A plaintext dataset as a batch source of float64 tensors (one-hot labels). */
export function plainSource(
  d: { images: Float64Array; labels: Int32Array; shape: readonly number[]; classes: number },
): BatchSource<PlainTensor> {
  const row = d.shape.reduce((a, b) => a * b, 1);
  return {
    size: d.labels.length,
    batch(indices) {
      const b = indices.length, x = new Float64Array(b * row), y = new Float64Array(b * d.classes);
      for (let k = 0; k < b; k++) {
        const i = indices[k];
        x.set(d.images.subarray(i * row, (i + 1) * row), k * row);
        y[k * d.classes + d.labels[i]] = 1;
      }
      return { images: new PlainTensor([b, ...d.shape], x), labels: new PlainTensor([b, d.classes], y) };
    },
  };
}
