/**
 * The optimizer interface and what every optimizer shares. `Optimizer` is
 * what a training step calls: `step` on shares, `plainStep` its float64
 * twin, and `state()` the shared state a checkpoint holds. Also here: the
 * checkpoint state names, learning-rate schedules (`LrSchedule`, a public
 * rate per iteration), the flat-vector helpers, and SGD. Parameters without
 * a gradient (batch normalization's running statistics) are left unchanged
 * by every optimizer, weight decay included.
 *
 * SGD with a public learning rate, momentum and weight decay:
 *   v <- momentum v + g / batch + weightDecay W,   W <- W - lr v
 * (without momentum: W <- W - lr (g / batch + weightDecay W)). Every public
 * constant is applied as x C >> k (scale.ts) and all parameters go through
 * one concatenated truncation: 1 round a step, 2 with momentum.
 * The twin applies the same rounded constants.
 *
 * Adam and AdamW: adam.ts (which imports this module, never the reverse);
 * the optimizer a run's schedule names: createOptimizer (training_loop.ts).
 */
import { AShare } from "../mpc/arithmetic.ts";
import { truncate } from "../mpc/truncate.ts";
import { PlainTensor } from "./plain.ts";
import { type PublicScale, publicScale, scaledTerm } from "./scale.ts";

/** The three optimizers a run can use. */
export const OPTIMIZERS = ["sgd", "adam", "adamw"] as const;
export type OptimizerKind = typeof OPTIMIZERS[number];

/**
 * A public learning-rate schedule: the rate of iteration i (counted from 0)
 * is lr times `lrFactor`: constant 1; step: GAMMA^floor(i / EVERY); cosine:
 * (1 + cos(pi i / iterations)) / 2 over the run's iterations.
 */
export type LrSchedule =
  | { kind: "constant" }
  | { kind: "step"; every: number; gamma: number }
  | { kind: "cosine" };

/** Parses `constant`, `step:EVERY:GAMMA` (EVERY a positive integer, GAMMA in (0, 1]) or `cosine`; one-line errors. */
export function parseLrSchedule(s: string): LrSchedule {
  if (s === "constant" || s === "cosine") return { kind: s };
  const m = /^step:([^:]+):([^:]+)$/.exec(s);
  if (m) {
    const every = Number(m[1]), gamma = Number(m[2]);
    if (!Number.isInteger(every) || every < 1) {
      throw new RangeError(`--lr-schedule step:EVERY:GAMMA needs EVERY a positive integer, got ${m[1]}`);
    }
    if (!(gamma > 0 && gamma <= 1)) {
      throw new RangeError(`--lr-schedule step:EVERY:GAMMA needs GAMMA in (0, 1], got ${m[2]}`);
    }
    return { kind: "step", every, gamma };
  }
  throw new RangeError(`--lr-schedule must be constant, step:EVERY:GAMMA or cosine, got ${s}`);
}

/** The schedule as `parseLrSchedule` reads it (what checkpoints and the parties' agreement hold). */
export function formatLrSchedule(s: LrSchedule = { kind: "constant" }): string {
  return s.kind === "step" ? `step:${s.every}:${s.gamma}` : s.kind;
}

/** The public factor on lr at `iteration` of a run of `iterations`. */
export function lrFactor(s: LrSchedule | undefined, iteration: number, iterations: number): number {
  if (!s || s.kind === "constant") return 1;
  if (s.kind === "step") return s.gamma ** Math.floor(iteration / s.every);
  if (!(iterations >= 1)) throw new RangeError(`a cosine schedule needs the run's iteration count, got ${iterations}`);
  return (1 + Math.cos(Math.PI * iteration / iterations)) / 2;
}

/** What every optimizer shares: the schedule and the public step counter. */
export interface ScheduleOptions {
  lrSchedule?: LrSchedule;
  /** The run's iterations in all (a cosine schedule's horizon). */
  iterations?: number;
}

/**
 * One optimizer on shared parameters; the training step calls `step` (or
 * its twin `plainStep`) once per iteration.
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  /**
   * The iteration of the next step (public, counted from 0): the schedule's
   * iteration, and Adam's t - 1. Each step advances it; the training loop
   * sets it before each step, a resumed run to where the checkpoint stopped.
   */
  iteration: number;
  /** Replaces (and frees) each parameter in `params` that has a gradient by its update; grads are batch sums. */
  step(params: Map<string, AShare>, grads: Map<string, AShare>, batch: number): Promise<void>;
  /** The float64 twin of `step`. */
  plainStep(weights: Map<string, PlainTensor>, grads: Map<string, PlainTensor>, batch: number, fracBits: number): void;
  /** The shared state by checkpoint tensor name (`velocity.<p>`, `adam_m.<p>`, `adam_v.<p>`); still owned here. */
  state(): Map<string, AShare>;
  /** Takes (owns) a checkpoint tensor if it is this optimizer's state; false if the name is not. */
  loadState(name: string, x: AShare): boolean;
  /** Frees the shared state. */
  dispose(): void;
  /** One line for reports: the optimizer and its settings. */
  describe(): string;
}

/** The prefixes of optimizer-state tensors in checkpoints (never model parameters). */
export const STATE_PREFIXES = ["velocity.", "adam_m.", "adam_v."] as const;
export const isOptimizerState = (name: string): boolean => STATE_PREFIXES.some((p) => name.startsWith(p));

/**
 * v is kept at scale f + 6: 2^-22 at f = 16, so that (1 - beta2) g^2 of small gradients still accumulates.
 * Adam's (adam.ts); defined here, with the checkpoint format, because `storedFracBits` reads it.
 */
export const ADAM_V_EXTRA_BITS = 6;

/** The fixed-point bits a checkpoint tensor is stored at: Adam's second moment has ADAM_V_EXTRA_BITS more. */
export const storedFracBits = (name: string, fracBits: number): number =>
  name.startsWith("adam_v.") ? fracBits + ADAM_V_EXTRA_BITS : fracBits;

/** The parameters that have a gradient (in the parameters' order): the others are left alone. */
export function trainable<T>(params: Map<string, T>, grads: Map<string, unknown>): string[] {
  return [...params.keys()].filter((n) => grads.has(n));
}

export interface SgdOptions extends ScheduleOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

interface Constants {
  /** Multiplies the summed gradient (lr / batch, or 1 / batch with momentum). */
  grad: PublicScale;
  /** Multiplies W in the same sum (weight decay). */
  decay: PublicScale;
  /** Multiplies v (momentum). */
  momentum: PublicScale;
  /** Multiplies v in the update (lr). */
  lr: PublicScale;
}

/**
 * The largest learning rate. The update subtracts lr times the (summed)
 * gradient as a fixed-point product, so lr times a gradient of magnitude 1
 * must stay below the ring's safe range 2^(62 - 2f) (ranges.ts): 2^10 is
 * inside it for every f up to 26, with room for gradients up to 2^(52 - 2f)
 * (4096 at f = 20, 2^20 at f = 16); lr / batch and lr * weightDecay (both
 * at most lr) then encode as multipliers of at most 2^(10 + f), far from
 * wrapping, with their 20 bits of precision. No model trains with a rate
 * near 1024 anyway; past it the weights only diverge.
 */
export const MAX_LR = 2 ** 10;

/**
 * Refuses settings that would wrap in the ring or undo the update, with one
 * line naming the flag: 0 < lr <= MAX_LR and lr < 2^(62 - 2f), momentum and
 * weight decay in [0, 1) (at 1 or more the velocity or the decay grows
 * without bound, or flips the weights' sign). Without `fracBits` only the
 * bounds that hold at every f are checked; the command checks with the share
 * files' f before it connects.
 */
export function checkSgdOptions(options: SgdOptions, fracBits?: number): void {
  const { lr, momentum = 0, weightDecay = 0 } = options;
  if (!(lr > 0)) throw new RangeError(`--lr must be a positive number, got ${lr}`); // NaN too
  if (lr > MAX_LR) {
    throw new RangeError(
      `--lr must be at most ${MAX_LR} (larger rates only diverge, and lr times a gradient must stay in the ring), ` +
        `got ${lr}`,
    );
  }
  const ringBound = fracBits === undefined ? Infinity : 2 ** (62 - 2 * fracBits);
  if (lr >= ringBound) {
    throw new RangeError(
      `--lr must be below ${ringBound}, the largest rate whose product with a gradient of 1 stays in the ring at ` +
        `${fracBits} fractional bits, got ${lr}`,
    );
  }
  for (const [flag, v] of [["--momentum", momentum], ["--weight-decay", weightDecay]] as const) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`${flag} must be in [0, 1), got ${v}`);
  }
}

class SgdOptimizer implements Optimizer {
  readonly kind = "sgd";
  iteration = 0;
  /** Velocity by parameter name (momentum only). */
  velocity = new Map<string, AShare>();
  plainVelocity = new Map<string, Float64Array>();

  constructor(readonly options: SgdOptions) {
    checkSgdOptions(options);
  }

  /** The step's constants at the current iteration (the schedule's rate). */
  constants(batch: number, fracBits: number): Constants {
    checkSgdOptions(this.options, fracBits);
    const { momentum = 0, weightDecay = 0 } = this.options;
    const lr = this.options.lr * lrFactor(this.options.lrSchedule, this.iteration, this.options.iterations ?? 0);
    const m = momentum > 0;
    // One shift for the terms that share one truncation: the one that gives the largest constant about 2^20 (so
    // every product stays below |x| 2^(f+21) and the truncation's failure chance small, as for any fixed-point
    // product); the smaller constants then carry fewer bits, still about 2^-20 of the largest.
    const shifts = [m ? 1 / batch : lr / batch, m ? weightDecay : lr * weightDecay, momentum]
      .filter((c) => c > 0).map((c) => publicScale(c, fracBits).shift);
    const shift = shifts.length ? Math.min(...shifts) : fracBits;
    const at = (c: number): PublicScale => fixedAt(c, shift);
    return {
      grad: at(m ? 1 / batch : lr / batch),
      decay: at(m ? weightDecay : lr * weightDecay),
      momentum: at(momentum),
      lr: publicScale(lr, fracBits),
    };
  }

  /** One step: replaces (and frees) each parameter in `params` that has a gradient by its update. */
  async step(params: Map<string, AShare>, grads: Map<string, AShare>, batch: number): Promise<void> {
    const names = trainable(params, grads);
    if (!names.length) {
      this.iteration++;
      return;
    }
    const first = params.get(names[0])!, p = first.party;
    const c = this.constants(batch, p.fracBits), m = (this.options.momentum ?? 0) > 0;
    this.iteration++;
    using w = flatConcat(names.map((n) => params.get(n)!));
    using g = flatConcat(names.map((n) => grads.get(n)!));
    // t = g C_g + W C_d (+ v C_m), one truncation
    using gTerm = scaledTerm(g, c.grad), dTerm = scaledTerm(w, c.decay);
    using sum = gTerm.add(dTerm);
    let delta: AShare;
    if (m) {
      using v0 = this.velocity.size ? flatConcat(names.map((n) => this.velocity.get(n)!)) : sum.mulPublic(0n);
      using vTerm = scaledTerm(v0, c.momentum);
      using t = sum.add(vTerm);
      using v = await truncate(t, c.grad.shift);
      this.velocity.forEach((x) => x.dispose());
      this.velocity = split(v, names, params);
      using lrTerm = scaledTerm(v, c.lr);
      delta = await truncate(lrTerm, c.lr.shift);
    } else {
      delta = await truncate(sum, c.grad.shift);
    }
    using _delta = delta;
    using updated = w.sub(delta);
    for (const [n, t] of split(updated, names, params)) {
      params.get(n)!.dispose();
      params.set(n, t);
    }
  }

  /** The twin of `step` on plaintext weights, with the same rounded constants. */
  plainStep(weights: Map<string, PlainTensor>, grads: Map<string, PlainTensor>, batch: number, fracBits: number) {
    const c = this.constants(batch, fracBits), m = (this.options.momentum ?? 0) > 0;
    this.iteration++;
    for (const n of trainable(weights, grads)) {
      const w = weights.get(n)!, g = grads.get(n)!;
      const t = w.data.map((wv, i) => g.data[i] * c.grad.value + wv * c.decay.value);
      let delta = t;
      if (m) {
        const v = this.plainVelocity.get(n) ?? new Float64Array(t.length);
        const nv = t.map((tv, i) => tv + v[i] * c.momentum.value);
        this.plainVelocity.set(n, nv);
        delta = nv.map((x) => x * c.lr.value);
      }
      weights.set(n, new PlainTensor(w.shape, w.data.map((wv, i) => wv - delta[i])));
    }
  }

  state(): Map<string, AShare> {
    return new Map([...this.velocity].map(([n, v]) => [`velocity.${n}`, v]));
  }

  loadState(name: string, x: AShare): boolean {
    if (!name.startsWith("velocity.")) return false;
    this.velocity.get(name.slice("velocity.".length))?.dispose();
    this.velocity.set(name.slice("velocity.".length), x);
    return true;
  }

  dispose(): void {
    this.velocity.forEach((x) => x.dispose());
    this.velocity.clear();
  }

  describe(): string {
    const { lr, momentum = 0, weightDecay = 0, lrSchedule } = this.options;
    return `sgd (lr ${lr}, momentum ${momentum}, weight decay ${weightDecay}, schedule ${
      formatLrSchedule(lrSchedule)
    })`;
  }
}

/**
 * SGD. `Sgd` is both the class (`new Sgd(options)`) and, as a type, any
 * `Optimizer`: the training step takes any optimizer under that name.
 */
export const Sgd = SgdOptimizer;
export type Sgd = Optimizer;

/** c as C / 2^shift for a given shift. */
export function fixedAt(c: number, shift: number): PublicScale {
  const multiplier = BigInt(Math.round(c * 2 ** shift));
  return { multiplier, shift, value: Number(multiplier) / 2 ** shift };
}

/** Every tensor flattened and joined into one vector. */
export function flatConcat(xs: AShare[]): AShare {
  const flats = xs.map((x) => x.reshape([x.size]));
  try {
    return AShare.concat(flats, 0);
  } finally {
    flats.forEach((f) => f.dispose());
  }
}

/** The inverse of flatConcat, shapes taken from `like`. */
export function split(v: AShare, names: string[], like: Map<string, AShare>): Map<string, AShare> {
  const out = new Map<string, AShare>();
  let at = 0;
  for (const n of names) {
    const shape = like.get(n)!.shape, size = like.get(n)!.size;
    using part = v.slice(0, at, at + size);
    using dense = part.contiguous();
    out.set(n, dense.reshape(shape));
    at += size;
  }
  return out;
}
