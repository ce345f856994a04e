/**
 * Adam and AdamW on shared parameters (class `Adam`, see its comment for
 * the rounds and scales): their defaults and bounds (ADAM_*), the options
 * check (`checkAdamOptions`) and a step's public constants
 * (`AdamConstants`). The interface, schedules, state names (and
 * ADAM_V_EXTRA_BITS, which the checkpoint format reads) and flat-vector
 * helpers come from optim.ts.
 */
import { AShare } from "../mpc/arithmetic.ts";
import { invSqrt } from "../mpc/inv_sqrt.ts";
import { mul } from "../mpc/multiply.ts";
import { truncate } from "../mpc/truncate.ts";
import { encodeFixed } from "../ring/fixed.ts";
import {
  ADAM_V_EXTRA_BITS,
  fixedAt,
  flatConcat,
  formatLrSchedule,
  lrFactor,
  type Optimizer,
  type OptimizerKind,
  type ScheduleOptions,
  split,
  trainable,
} from "./optim.ts";
import { PlainTensor } from "./plain.ts";
import { type PublicScale, scaledTerm } from "./scale.ts";

export interface AdamOptions extends ScheduleOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adam: L2 (added to the gradient); AdamW: decoupled (W <- W - lr weightDecay W). */
  weightDecay?: number;
  /** AdamW's decoupled weight decay instead of Adam's L2 term. */
  decoupled?: boolean;
}

export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-3 } as const;

/**
 * The bound on the batch-mean gradient's magnitude that Adam is sized for:
 * vhat stays below ADAM_GRAD_BOUND^2 = 64, the top of the range given to
 * the inverse square root. Training gradients are far below it.
 */
export const ADAM_GRAD_BOUND = 8;
/** The largest beta2 (1 - beta2 keeps 8 bits at v's constants' 2^-18). */
export const ADAM_MAX_BETA2 = 0.9999;

/**
 * Refuses Adam settings with one line naming the flag: 0 < lr <= 1 (each
 * step moves a weight by about lr), beta1 in [0, 1), beta2 in [0, 0.9999],
 * weight decay in [0, 1), eps in (0, 1] and, given f, eps >= 8 2^-f (the
 * inverse square root's input is rounded to 2^-f: at 8 units its relative
 * error is at most 1/16) and f >= 8.
 */
export function checkAdamOptions(o: AdamOptions, fracBits?: number): void {
  const { lr, beta1 = ADAM_DEFAULTS.beta1, beta2 = ADAM_DEFAULTS.beta2, eps = ADAM_DEFAULTS.eps } = o;
  const name = o.decoupled ? "adamw" : "adam";
  if (!(lr > 0)) throw new RangeError(`--lr must be a positive number, got ${lr}`);
  if (lr > 1) {
    throw new RangeError(`--lr must be at most 1 for ${name} (each step moves a weight by about lr), got ${lr}`);
  }
  if (!(beta1 >= 0 && beta1 < 1)) throw new RangeError(`--beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 <= ADAM_MAX_BETA2)) {
    throw new RangeError(`--beta2 must be in [0, ${ADAM_MAX_BETA2}], got ${beta2}`);
  }
  const wd = o.weightDecay ?? 0;
  if (!(wd >= 0 && wd < 1)) throw new RangeError(`--weight-decay must be in [0, 1), got ${wd}`);
  if (!(eps > 0 && eps <= 1)) throw new RangeError(`--eps must be in (0, 1], got ${eps}`);
  if (fracBits === undefined) return;
  if (fracBits < 8) throw new RangeError(`${name} needs at least 8 fractional bits, got ${fracBits}`);
  if (eps < 8 * 2 ** -fracBits) {
    throw new RangeError(`--eps must be at least ${8 * 2 ** -fracBits} (8 units of 2^-${fracBits}), got ${eps}`);
  }
}

/** Adam's public constants of one step (t = iteration + 1); see `Adam` for where each one goes. */
export interface AdamConstants {
  /** [g; m; mu] = [G grad + W l2; m b1 + G mGrad + W mL2; the same times lr_t 2^e] >> grad.shift. */
  grad: PublicScale;
  l2: PublicScale;
  b1: PublicScale;
  mGrad: PublicScale;
  mL2: PublicScale;
  muB1: PublicScale;
  muGrad: PublicScale;
  muL2: PublicScale;
  /** e: mu = lr_t 2^e m is about m's size; the update is (mu r) >> (f + e). */
  e: number;
  /**
   * vhat = (vhat b2 + g^2 vGrad) >> b2.shift (vhat and g^2 at scale f + 6): the bias-corrected second moment's
   * own recurrence, b2 = beta2 (1 - beta2^(t-1)) / (1 - beta2^t), vGrad = (1 - beta2) / (1 - beta2^t).
   */
  b2: PublicScale;
  vGrad: PublicScale;
  /** AdamW's lr weightDecay W, at mu r's scale 2f + e - 3. */
  decay: PublicScale;
  /** The step's rate (the schedule's), lr_t = rate / (1 - beta1^t), and t. */
  rate: number;
  lrT: number;
  t: number;
}

/** The shift that makes the largest constant about 2^20 (as SGD's): the products stay near |x| 2^(f + 20). */
function shiftFor(cs: number[]): number {
  const top = Math.max(...cs.map(Math.abs));
  return top > 0 ? Math.max(0, Math.ceil(20 - Math.log2(top))) : 0;
}

/** The sum of x C over the terms whose C is not 0 (all at one scale); a zero sharing if none. */
function linear(like: AShare, terms: [AShare | null, PublicScale][]): AShare {
  let sum: AShare | null = null;
  for (const [x, c] of terms) {
    if (!x || c.multiplier === 0n) continue;
    const t = scaledTerm(x, c);
    if (sum) {
      const s: AShare = sum.add(t);
      sum.dispose();
      t.dispose();
      sum = s;
    } else sum = t;
  }
  return sum ?? like.mulPublic(0n);
}

/**
 * Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter) on shared parameters,
 * with g the batch-mean gradient (plus weightDecay W for Adam's L2 form):
 *
 *   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2,
 *   W <- W - lr_i mhat / sqrt(vhat + eps)   (- lr_i weightDecay W for AdamW),
 *
 * mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t), t = iteration + 1,
 * lr_i the schedule's rate: eps inside the square root (the 1/sqrt(vhat +
 * eps) form; eps of 1e-3 by default, at least 8 2^-f, where PyTorch's 1e-8
 * sits outside it: fixed point at f = 16 cannot resolve smaller). Every
 * constant is public; the bias corrections fold into them.
 *
 * All trainable parameters go through one flat vector, 6 rounds besides
 * one inverse square root (SGD: 1, or 2 with momentum):
 *   1  truncate [g; m; mu] in one call, mu = lr_t 2^e m (2^e a public power
 *      of two that makes lr_t 2^e about 1, lr_t = lr_i / (1 - beta1^t)),
 *   1  g g (a product), 1 truncate it to v's scale f + 6,
 *   1  truncate vhat = a_t vhat + (1 - a_t) g^2, the bias-corrected second
 *      moment's own recurrence (a_t = beta2 (1 - beta2^(t-1)) / (1 - beta2^t)):
 *      kept corrected, it is never the tiny (1 - beta2) g^2 of the first
 *      steps that the correction would multiply by up to 1 / (1 - beta2),
 *      rounding included; the state, at scale f + 6 (2^-22 at f = 16),
 *      r' = invSqrt(2^6 (vhat + eps)): vhat's word read at scale f, no
 *      truncation, over [2^6 eps, 2^6 (ADAM_GRAD_BOUND^2 + eps)] (as many
 *      powers of 4 as [eps, 64 + eps]); r = 8 r',
 *   1  mu r' (a product), 1 truncate (mu r' + lr_i weightDecay 2^(f+e-3) W)
 *      >> (f + e - 3): the update.
 * Every truncated value is at most about |x| 2^(f + 24) (the state vhat at
 * 2^(f + 6 + 18)), so each fails (Pi_trunc1) about as rarely as SGD's.
 * State: m at scale f, vhat (not v) at scale f + 6 (adam_m.*, adam_v.*).
 */
export class Adam implements Optimizer {
  readonly kind: OptimizerKind;
  iteration = 0;
  m = new Map<string, AShare>();
  /** vhat, the bias-corrected second moment, at scale f + ADAM_V_EXTRA_BITS. */
  v = new Map<string, AShare>();
  plainM = new Map<string, Float64Array>();
  plainV = new Map<string, Float64Array>();

  constructor(readonly options: AdamOptions) {
    checkAdamOptions(options);
    this.kind = options.decoupled ? "adamw" : "adam";
  }

  get beta1(): number {
    return this.options.beta1 ?? ADAM_DEFAULTS.beta1;
  }
  get beta2(): number {
    return this.options.beta2 ?? ADAM_DEFAULTS.beta2;
  }
  get eps(): number {
    return this.options.eps ?? ADAM_DEFAULTS.eps;
  }

  /** The rate of the current iteration (the schedule's). */
  rate(): number {
    return this.options.lr * lrFactor(this.options.lrSchedule, this.iteration, this.options.iterations ?? 0);
  }

  constants(batch: number, fracBits: number): AdamConstants {
    checkAdamOptions(this.options, fracBits);
    const f = fracBits, k = ADAM_V_EXTRA_BITS, b1 = this.beta1, b2 = this.beta2, t = this.iteration + 1;
    const rate = this.rate(), lrT = rate / (1 - b1 ** t);
    const wd = this.options.weightDecay ?? 0, l2 = this.options.decoupled ? 0 : wd;
    // mu = lr_t 2^e m with lr_t 2^e in [0.7, 1.4); the update is (mu r') >> (f + e - k/2), at most 62 bits
    const e = Math.max(k / 2 - f, Math.min(62 - 2 * f, Math.round(-Math.log2(lrT)))), mu = lrT * 2 ** e;
    const c1 = [1 / batch, l2, b1, (1 - b1) / batch, (1 - b1) * l2].map((c, i) => i < 2 ? [c] : [c, c * mu]).flat();
    const s1 = shiftFor(c1);
    const at1 = (c: number) => fixedAt(c, s1);
    // vhat at scale f + k, constants at 2^-18 ((1 - beta2) / (1 - beta2^t) keeps 8 bits or more); they add up to 1
    const s3 = 18, vGrad = (1 - b2) / (1 - b2 ** t);
    return {
      grad: at1(1 / batch),
      l2: at1(l2),
      b1: at1(b1),
      mGrad: at1((1 - b1) / batch),
      mL2: at1((1 - b1) * l2),
      muB1: at1(b1 * mu),
      muGrad: at1((1 - b1) / batch * mu),
      muL2: at1((1 - b1) * l2 * mu),
      e,
      b2: fixedAt(1 - vGrad, s3),
      vGrad: fixedAt(vGrad, s3),
      decay: fixedAt(this.options.decoupled ? rate * wd : 0, f + e - k / 2),
      rate,
      lrT,
      t,
    };
  }

  async step(params: Map<string, AShare>, grads: Map<string, AShare>, batch: number): Promise<void> {
    const names = trainable(params, grads);
    if (!names.length) {
      this.iteration++;
      return;
    }
    const p = params.get(names[0])!.party, f = p.fracBits;
    const c = this.constants(batch, f);
    this.iteration++;
    using w = flatConcat(names.map((n) => params.get(n)!));
    using g0 = flatConcat(names.map((n) => grads.get(n)!));
    const n = w.size;
    using m0 = this.m.size ? flatConcat(names.map((k) => this.m.get(k)!)) : null;
    using v0 = this.v.size ? flatConcat(names.map((k) => this.v.get(k)!)) : null;
    // [g; m; mu], one truncation
    using gT = linear(w, [[g0, c.grad], [w, c.l2]]);
    using mT = linear(w, [[m0, c.b1], [g0, c.mGrad], [w, c.mL2]]);
    using muT = linear(w, [[m0, c.muB1], [g0, c.muGrad], [w, c.muL2]]);
    using joined1 = AShare.concat([gT, mT, muT], 0);
    using gm = await truncate(joined1, c.grad.shift);
    using gView = gm.slice(0, 0, n), mView = gm.slice(0, n, 2 * n), muView = gm.slice(0, 2 * n, 3 * n);
    using g = gView.contiguous(), m = mView.contiguous(), mu = muView.contiguous();
    // g^2 at v's scale f + k
    using gg = await mul(g, g);
    using g2 = await truncate(gg, f - ADAM_V_EXTRA_BITS);
    // vhat at scale f + k
    using vT = linear(w, [[v0, c.b2], [g2, c.vGrad]]);
    using v = await truncate(vT, c.b2.shift);
    // x = 2^k (vhat + eps) read at scale f: r' = 1/sqrt(x) = 2^(-k/2) / sqrt(vhat + eps), no truncation
    const k = ADAM_V_EXTRA_BITS, lift = 2 ** k;
    using x = v.addPublic(encodeFixed(this.eps, f + k));
    using r = await invSqrt(x, { min: lift * this.eps, max: lift * (ADAM_GRAD_BOUND ** 2 + this.eps) });
    // the update: (mu r' 2^(k/2) + lr weightDecay 2^(f+e) W) >> (f + e), as (mu r' + ... 2^(-k/2)) >> (f + e - k/2)
    using mur = await mul(mu, r);
    using dT = linear(w, [[mur, { multiplier: 1n, shift: 0, value: 1 }], [w, c.decay]]);
    using delta = await truncate(dT, f + c.e - k / 2);
    using updated = w.sub(delta);
    this.m.forEach((x) => x.dispose());
    this.v.forEach((x) => x.dispose());
    this.m = split(m, names, params);
    this.v = split(v, names, params);
    for (const [k, t] of split(updated, names, params)) {
      params.get(k)!.dispose();
      params.set(k, t);
    }
  }

  /** The twin: the definition in float64 with the exact constants (no fixed point). */
  plainStep(weights: Map<string, PlainTensor>, grads: Map<string, PlainTensor>, batch: number, _fracBits: number) {
    const b1 = this.beta1, b2 = this.beta2, eps = this.eps, t = this.iteration + 1, rate = this.rate();
    const wd = this.options.weightDecay ?? 0, l2 = this.options.decoupled ? 0 : wd;
    const decay = this.options.decoupled ? wd : 0;
    this.iteration++;
    for (const n of trainable(weights, grads)) {
      const w = weights.get(n)!, gs = grads.get(n)!;
      const m = this.plainM.get(n) ?? new Float64Array(w.data.length);
      const v = this.plainV.get(n) ?? new Float64Array(w.data.length);
      const out = new Float64Array(w.data.length);
      for (let i = 0; i < out.length; i++) {
        const g = gs.data[i] / batch + l2 * w.data[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        const mhat = m[i] / (1 - b1 ** t), vhat = v[i] / (1 - b2 ** t);
        out[i] = w.data[i] - rate * (mhat / Math.sqrt(vhat + eps) + decay * w.data[i]);
      }
      this.plainM.set(n, m);
      this.plainV.set(n, v);
      weights.set(n, new PlainTensor(w.shape, out));
    }
  }

  state(): Map<string, AShare> {
    const out = new Map<string, AShare>();
    for (const [n, x] of this.m) out.set(`adam_m.${n}`, x);
    for (const [n, x] of this.v) out.set(`adam_v.${n}`, x);
    return out;
  }

  loadState(name: string, x: AShare): boolean {
    for (const [prefix, map] of [["adam_m.", this.m], ["adam_v.", this.v]] as const) {
      if (!name.startsWith(prefix)) continue;
      const k = name.slice(prefix.length);
      map.get(k)?.dispose();
      map.set(k, x);
      return true;
    }
    return false;
  }

  dispose(): void {
    this.m.forEach((x) => x.dispose());
    this.v.forEach((x) => x.dispose());
    this.m.clear();
    this.v.clear();
  }

  describe(): string {
    const { lr, weightDecay = 0, lrSchedule } = this.options;
    return `${this.kind} (lr ${lr}, beta1 ${this.beta1}, beta2 ${this.beta2}, eps ${this.eps}, ` +
      `weight decay ${weightDecay}, schedule ${formatLrSchedule(lrSchedule)})`;
  }
}
