/**
 * Batch normalization with batch statistics (training) and shared running
 * statistics (inference), beside the frozen affine `BatchNorm2d` of layers.ts.
 *
 * Parameters, per channel: `weight` (gamma), `bias` (beta), and the running
 * statistics `running_mean`, `running_var`. The running statistics are shared
 * like every parameter (saved in checkpoints, opened by `reconstruct`) but get
 * no gradient: the training forward pass overwrites them in place, as torch's
 * does (rm <- (1 - mom) rm + mom mean, rv <- (1 - mom) rv + mom var_unbiased).
 * The private pass writes both shares of the parameter's tensors (the
 * `AShare` in the parameter map stays the same object); the twin writes into
 * the `PlainTensor`'s data, so a twin must not share its weight tensors with
 * weights still to be shared or compared (copy them). The private pass applies
 * mom and mom m / (m - 1) rounded to about 2^-20 relative; the twin, exactly.
 *
 * Training (a tape): with m = n h w and per-channel
 *   mean = sum(x) / m,  var = sum((x - mean)^2) / m  (biased),
 *   inv = invSqrt(var + eps),  xhat = (x - mean) inv,  y = gamma xhat + beta;
 * backward, with dxhat = dy gamma:
 *   dx = (inv / m)(m dxhat - sum(dxhat) - xhat sum(dxhat xhat))
 *      = gamma inv (dy - mean(dy) - xhat mean(dy xhat)),
 *   dgamma = sum(dy xhat),  dbeta = sum(dy).
 * The private pass never forms xhat. With d = x - mean, k = gamma inv and
 * ki = k inv ([c]-sized; ki and q below kept with e = ceil(log2(maxVar) / 2)
 * more fractional bits, 5 by default: inv^2 goes down to about 2^-10, and d q
 * is d, up to sqrt(maxVar), times q):
 *   forward   y = d k + beta  (tape: d, inv, k, ki),
 *   backward  dgamma = inv sum(dy d),  q = ki mean(dy xhat) = k inv^2 mean(dy d),
 *             dx = k (dy - mean(dy)) - d q.
 * Full-size products: forward 2 (d d, summed before its truncation; d k),
 * backward 2 (dy d, summed before its truncation; k (dy - mean(dy)) - d q,
 * both products summed locally into one resharing and one truncation); every
 * other product is [c]-sized. (Before: 3 and 3, with xhat on the tape.)
 * Inference (no tape): y = (x - rm) (gamma invSqrt(rv + eps)) + beta: the
 * per-channel factor costs a [c]-sized inverse square root and product, then
 * one product per element.
 *
 * eps. torch's 1e-5 is below f = 16's resolution (2^-16 = 1.5e-5): it would
 * encode as 1 unit or 0, and the computed variance itself is off by a few
 * units (its truncations), so var + eps could reach 0 and the inverse square
 * root blow up. The default eps = 2^-10 (64 units at f = 16, 1024 at f = 20)
 * dominates that error, bounds inv by 32 (so xhat = (x - mean) inv stays a
 * small fixed-point product) and bounds the inverse square root's input
 * below. It changes the normalization only of channels whose variance is
 * near 1e-3 or less. The twin uses the same eps.
 *
 * Range. The inverse square root is told that var + eps lies in
 * [eps, maxVar + eps]; maxVar defaults to 2^10 (the batch variance of a
 * normalized network's pre-activations is O(1); the inverse square root
 * assumes its range, so a channel whose variance passes maxVar gets a wrong
 * inv: raise maxVar for inputs of larger scale, at about 37 bytes per
 * element and power of 4 of range, on [c]-sized tensors only). Both are
 * constructor options.
 *
 * Division by m. A sum of m values at scale 2^f is first truncated by
 * k = floor(log2 m) (exact division by the power of two), then, unless m is a
 * power of two, multiplied by round(2^20 2^k / m) and truncated by 20: two
 * truncations on [c]-sized tensors whose words stay small (m |mean| 2^f, then
 * |mean| 2^(f + 21)). The variance's sum of squares is truncated by f + k at
 * once (a single truncation on c words of size m var 2^(2f)). Under the local
 * truncation (Pi_trunc1) a word z fails with probability about |z| / 2^63, so
 * a layer's chance of a failure per step is about c m var 2^(2f - 63): 2^-10
 * for c = 64, m = 2^15, var = 1, f = 16 (2^-16 for bncnn's first layer at
 * batch 32); sessions with the corrected truncation have none.
 *
 * The other truncations' words: [mom (mean - rm), mom (var m / (m - 1) - rv),
 * gamma inv 2^(T - f)] at scale 2^(f + T), T = max(f, 24) (the momentum's
 * shift), gamma inv 2^(f + T) at most 2^(f + 29) gamma; ki 2^(2f + e) at most
 * 2^(2f + 15) gamma (inv <= 1 / sqrt(eps) = 32), c words each; the backward's
 * sum(dy d) 2^(2f) and its division, [inv sum(dy d), sum(dy) 2^f] at 2^(2f),
 * as the old sum(dy xhat); q 2^(2f + e) on [c]; per element, y 2^(2f) as
 * before, dx 2^(2f + e) (2^(2f) before): for dx of order 2^-5 (gradients are
 * small), the chance of a failure per layer and step stays about that of y,
 * N 2^(2f - 63) for N elements of order 1 (2^-10 for N = 2^21, f = 16).
 * Measured against the twin at f = 16 on [4, 3, 5, 5] (tests): relative
 * errors of y, dx, dgamma about 1-2e-5, 2-4e-5, 1-3e-5 at var ~ 2 as before;
 * at var ~ 500, 1.2e-4, 3.5e-4, 1.9e-4 (before 6.5e-5, 2.3e-4, 6.3e-5: k, a
 * truncated product, adds its rounding to inv's), bound 2^-(f-7) = 2e-3.
 *
 * Rounds (local truncation; D = 1 + [m not a power of two] for a division,
 * R = invSqrtRounds(range): 25 for the default range at f = 16, 29 at f = 20, its start being chosen by bytes),
 * tested:
 * training forward D (mean) + 1 (squares) + D (variance) + R + 1 (gamma inv)
 * + 1 (one truncation of [running statistics' update, gamma inv]) + 1 (d k and
 * k inv in one round) + 1 (one truncation of [d k, ki]): 32 when m is a power
 * of two (33 before); backward 1 (dy d) + 1 (its channel sum) + 1 (inv times
 * that) + D (mean(dy xhat) and mean(dy), one [2c] division) + 1 + 1 (q) + 1 (dx's
 * two products) + 1 (one truncation of [dx, dgamma]): 8 (7 before; a training
 * step's forward and backward together 40 as before), 4 when dx is not needed
 * (2 before; only a network's first layer); inference R + 2 (gamma inv) + 2
 * (the product): 29.
 */
import { AShare } from "../mpc/arithmetic.ts";
import { encodeFixed } from "../ring/fixed.ts";
import { mul, mulFixed } from "../mpc/multiply.ts";
import { truncate } from "../mpc/truncate.ts";
import { exchangeInto } from "../mpc/transfer.ts";
import { assignReplicatedProduct, localProduct } from "../mpc/local_steps.ts";
import { RingTensor } from "../ring/tensor.ts";
import { sameShape } from "../ring/shape.ts";
import { invSqrt } from "../mpc/inv_sqrt.ts";
import { PlainTensor } from "./plain.ts";
import type { Layer, Params } from "./layers.ts";
import type { Breakdown } from "./breakdown.ts";
import type { Grads, Tape } from "./tape.ts";
import { publicScale, scaledTerm } from "./scale.ts";

/** The default eps: 2^-10 (see the file's comment for why not torch's 1e-5). */
export const BN_EPS = 2 ** -10;
/** torch's default momentum of the running statistics. */
export const BN_MOMENTUM = 0.1;
/** The default public bound on a channel's batch (and running) variance. */
export const BN_MAX_VAR = 2 ** 10;

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  /** Public bound on the variances the inverse square root sees. */
  maxVar?: number;
}

const PARAMS = ["weight", "bias", "running_mean", "running_var"] as const;

/** Batch normalization over (n, h, w) per channel of [n, c, h, w], trained with batch statistics. */
export class BatchNorm implements Layer {
  readonly kind = "other";
  readonly eps: number;
  readonly momentum: number;
  readonly maxVar: number;
  constructor(readonly channels: number, opts: BatchNormOptions = {}) {
    this.eps = opts.eps ?? BN_EPS;
    this.momentum = opts.momentum ?? BN_MOMENTUM;
    this.maxVar = opts.maxVar ?? BN_MAX_VAR;
    if (!(this.eps > 0) || !(this.maxVar > 0) || !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`BatchNorm: eps ${this.eps} and maxVar ${this.maxVar} must be positive, momentum in [0, 1]`);
    }
  }
  get label(): string {
    return `BatchNorm(${this.channels})`;
  }
  /** The public range of var + eps given to the inverse square root. */
  get range(): { min: number; max: number } {
    return { min: this.eps, max: this.maxVar + this.eps };
  }
  paramShapes(): [string, number[]][] {
    return PARAMS.map((n) => [n, [this.channels]]);
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 4 || s[1] !== this.channels) {
      throw new RangeError(`${this.label}: input of shape [${s}] does not fit (expected [n, ${this.channels}, h, w])`);
    }
    return [...s];
  }

  async forward(x: AShare, p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    this.outputShape(x.shape);
    const c = this.channels, f = x.party.fracBits;
    const gamma = p.get("weight"), beta = p.get("bias");
    const rm = p.get("running_mean"), rv = p.get("running_var");
    if (!tape) {
      // y = (x - rm) (gamma inv) + beta, inv = invSqrt(rv + eps) on [c]
      using rvEps = rv.addPublic(encodeFixed(this.eps, f));
      using inv = await invSqrt(rvEps, this.range);
      using factor = await mulFixed(gamma, inv);
      using rmc = rm.reshape([c, 1, 1]), fc = factor.reshape([c, 1, 1]), bc = beta.reshape([c, 1, 1]);
      using centred = x.sub(rmc);
      using y = await mulFixed(centred, fc);
      return y.add(bc);
    }
    const [n, , h, w] = x.shape, m = n * h * w;
    using sum = channelSum(x);
    using mean = await divideByCount(sum, m, 0);
    using meanC = mean.reshape([c, 1, 1]);
    const d = tape.save("d", x.sub(meanC));
    const [sq] = await productSums([[[d, d]]], "batchnorm square");
    using _sq = sq;
    using sqSum = channelSum(sq);
    const variance = await divideByCount(sqSum, m, f);
    using _v = variance;
    using varEps = variance.addPublic(encodeFixed(this.eps, f));
    const inv = tape.save("inv", await invSqrt(varEps, this.range));
    // k = gamma inv on [c], truncated with the running statistics' update
    using kRaw = await mul(gamma, inv);
    const k = tape.save("k", await this.#updateRunning(rm, rv, mean, variance, m, kRaw));
    // y = d k + beta: one full-size product, in the round (and truncation) of ki = k inv 2^e for the backward pass
    const N = x.size, e = this.#extraBits;
    using kC = k.reshape([c, 1, 1]), betaC = beta.reshape([c, 1, 1]), invUp = inv.mulPublic(1n << BigInt(e));
    const [raw] = await productSums([[[d, kC]], [[k, invUp]]], "batchnorm", { packed: true });
    using _raw = raw;
    using out = await truncate(raw, f);
    using yView = out.slice(0, 0, N), kiView = out.slice(0, N, N + c);
    tape.save("ki", kiView.map((t) => t.clone())); // a copy: a view would keep the [N + c] words alive
    using y = yView.reshape(x.shape);
    return y.add(betaC);
  }

  /**
   * rm += mom (mean - rm), rv += mom (var m / (m - 1) - rv), written in place, in one truncation of [3c] with
   * the product kRaw = gamma inv (scale 2^(2f)), which it returns truncated to scale 2^f.
   */
  async #updateRunning(
    rm: AShare,
    rv: AShare,
    mean: AShare,
    variance: AShare,
    m: number,
    kRaw: AShare,
  ): Promise<AShare> {
    const f = mean.party.fracBits, c = this.channels;
    if (this.momentum === 0) return await truncate(kRaw, f); // frozen statistics
    // the update's terms are at scale 2^(f + shift), kRaw at 2^(2f): both raised to 2^(f + T), T = max(shift, f)
    const { mom, unbiased, shift } = this.#runningConstants(m, f), T = Math.max(shift, f);
    const raise = (x: AShare, by: number) => by === 0 ? x.map((t) => t.clone()) : x.mulPublic(1n << BigInt(by));
    using a = scaledTerm(mean, mom), b = scaledTerm(rm, mom);
    using dm = a.sub(b);
    using cc = scaledTerm(variance, unbiased), e = scaledTerm(rv, mom);
    using dv = cc.sub(e);
    using dmT = raise(dm, T - shift), dvT = raise(dv, T - shift), kT = raise(kRaw, T - f);
    using all = AShare.concat([dmT, dvT, kT], 0);
    using delta = await truncate(all, T);
    using dMean = delta.slice(0, 0, c), dVar = delta.slice(0, c, 2 * c), kView = delta.slice(0, 2 * c, 3 * c);
    using newMean = rm.add(dMean), newVar = rv.add(dVar);
    rm.cur.assign(newMean.cur);
    rm.next.assign(newMean.next);
    rv.cur.assign(newVar.cur);
    rv.next.assign(newVar.next);
    return kView.contiguous();
  }

  /** The public constants of the running update, sharing one shift (about 2^-20 relative precision; momentum > 0). */
  #runningConstants(m: number, f: number) {
    const mom0 = this.momentum, unb0 = mom0 * (m > 1 ? m / (m - 1) : 1);
    const shift = publicScale(mom0, f).shift;
    const at = (v: number) => {
      const multiplier = BigInt(Math.round(v * 2 ** shift));
      return { multiplier, shift, value: Number(multiplier) / 2 ** shift };
    };
    return { mom: at(mom0), unbiased: at(unb0), shift };
  }

  async backward(
    dy: AShare,
    _p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
  ): Promise<AShare | null> {
    const c = this.channels, f = dy.party.fracBits, [n, , h, w] = dy.shape, m = n * h * w, N = dy.size;
    const d = tape.get<AShare>("d"), inv = tape.get<AShare>("inv"), k = tape.get<AShare>("k");
    const ki = tape.get<AShare>("ki"), e = this.#extraBits;
    const dbeta = channelSum(dy);
    grads.set("bias", dbeta);
    // sum(dy d): a full-size product, truncated only after the channel sum
    const [pd] = await productSums([[[dy, d]]], "batchnorm backward");
    using _pd = pd;
    using sRaw = channelSum(pd);
    using s = await truncate(sRaw, f);
    // dgamma = sum(dy xhat) = inv sum(dy d), at 2^(2f) until the last truncation
    const [gRaw] = await productSums([[[s, inv]]], "batchnorm backward");
    using _g = gRaw;
    if (!needInput) {
      grads.set("weight", await truncate(gRaw, f));
      return null;
    }
    // mean(dy xhat) and mean(dy) in one division of [2c] at scale 2^(2f)
    using dbetaUp = dbeta.mulPublic(1n << BigInt(f));
    using sums = AShare.concat([gRaw, dbetaUp], 0);
    using means = await divideByCount(sums, m, f);
    using meanP = means.slice(0, 0, c), meanDy = means.slice(0, c, 2 * c);
    // q = k inv mean(dy xhat) = ki mean(dy xhat), kept at 2^(f + e) like ki: d q is d (up to sqrt(maxVar)) times it
    const [qRaw] = await productSums([[[ki, meanP]]], "batchnorm backward");
    using _q = qRaw;
    using q = await truncate(qRaw, f);
    using qC = q.reshape([c, 1, 1]), negQC = qC.neg(), meanDyC = meanDy.reshape([c, 1, 1]);
    using kC = k.reshape([c, 1, 1]), kUp = kC.mulPublic(1n << BigInt(e)), gUp = gRaw.mulPublic(1n << BigInt(e));
    // dx = k (dy - mean(dy)) - d q: both products (2^(2f + e)) summed in one round, truncated by f + e with dgamma
    using centred = dy.sub(meanDyC);
    const [both] = await productSums([[[centred, kUp], [d, negQC]]], "batchnorm backward", {
      packed: true,
      append: gUp,
    });
    using _both = both;
    using out = await truncate(both, f + e);
    using dxView = out.slice(0, 0, N), dgammaView = out.slice(0, N, N + c);
    grads.set("weight", dgammaView.map((t) => t.clone())); // a copy: a view would keep the [N + c] words alive
    return dxView.reshape(dy.shape);
  }

  /**
   * The extra fractional bits of ki = k inv = gamma inv^2 (on the tape) and of q in the backward pass: inv >=
   * 1 / sqrt(maxVar + eps) makes inv^2 as small as 2^-10 by default, which f bits alone would hold to 2^-(f - 10)
   * relative, and d q multiplies q's rounding by |d|, up to sqrt(maxVar).
   */
  get #extraBits(): number {
    return Math.max(0, Math.ceil(Math.log2(this.maxVar) / 2));
  }

  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    this.outputShape(x.shape);
    const c = this.channels, [n, , h, w] = x.shape, hw = h * w, m = n * hw;
    const gamma = p.get("weight").data, beta = p.get("bias").data;
    const rm = p.get("running_mean").data, rv = p.get("running_var").data;
    const out = new Float64Array(x.size);
    const at = (b: number, ch: number) => (b * c + ch) * hw;
    if (!tape) {
      for (let ch = 0; ch < c; ch++) {
        const inv = 1 / Math.sqrt(rv[ch] + this.eps);
        for (let b = 0; b < n; b++) {
          for (let i = at(b, ch); i < at(b, ch) + hw; i++) out[i] = (x.data[i] - rm[ch]) * inv * gamma[ch] + beta[ch];
        }
      }
      return new PlainTensor(x.shape, out);
    }
    const xhat = new Float64Array(x.size), inv = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = 0, sq = 0;
      for (let b = 0; b < n; b++) for (let i = at(b, ch); i < at(b, ch) + hw; i++) s += x.data[i];
      const mean = s / m;
      for (let b = 0; b < n; b++) for (let i = at(b, ch); i < at(b, ch) + hw; i++) sq += (x.data[i] - mean) ** 2;
      const variance = sq / m;
      inv[ch] = 1 / Math.sqrt(variance + this.eps);
      for (let b = 0; b < n; b++) {
        for (let i = at(b, ch); i < at(b, ch) + hw; i++) {
          xhat[i] = (x.data[i] - mean) * inv[ch];
          out[i] = gamma[ch] * xhat[i] + beta[ch];
        }
      }
      // torch's update, in place (exact momentum; the private pass applies it rounded to about 2^-20)
      rm[ch] += this.momentum * (mean - rm[ch]);
      rv[ch] += this.momentum * ((m > 1 ? sq / (m - 1) : variance) - rv[ch]);
    }
    tape.save("xhat", new PlainTensor(x.shape, xhat));
    tape.save("inv", inv);
    return new PlainTensor(x.shape, out);
  }

  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const c = this.channels, [n, , h, w] = dy.shape, hw = h * w, m = n * hw;
    const xhat = tape.get<PlainTensor>("xhat").data, inv = tape.get<Float64Array>("inv");
    const gamma = p.get("weight").data;
    const dgamma = new Float64Array(c), dbeta = new Float64Array(c), dx = new Float64Array(dy.size);
    const at = (b: number, ch: number) => (b * c + ch) * hw;
    for (let ch = 0; ch < c; ch++) {
      // dxhat = dy gamma; dx = (inv / m)(m dxhat - sum(dxhat) - xhat sum(dxhat xhat))
      let sdx = 0, sdxx = 0;
      for (let b = 0; b < n; b++) {
        for (let i = at(b, ch); i < at(b, ch) + hw; i++) {
          dgamma[ch] += dy.data[i] * xhat[i];
          dbeta[ch] += dy.data[i];
          sdx += dy.data[i] * gamma[ch];
          sdxx += dy.data[i] * gamma[ch] * xhat[i];
        }
      }
      for (let b = 0; b < n; b++) {
        for (let i = at(b, ch); i < at(b, ch) + hw; i++) {
          dx[i] = (inv[ch] / m) * (m * dy.data[i] * gamma[ch] - sdx - xhat[i] * sdxx);
        }
      }
    }
    grads.set("weight", new PlainTensor([c], dgamma));
    grads.set("bias", new PlainTensor([c], dbeta));
    return new PlainTensor(dy.shape, dx);
  }

  /** The folded inference map of plaintext parameters: scale = gamma / sqrt(rv + eps), shift = beta - rm scale. */
  fold(p: Params<PlainTensor>): { scale: PlainTensor; shift: PlainTensor } {
    const gamma = p.get("weight").data, beta = p.get("bias").data;
    const rm = p.get("running_mean").data, rv = p.get("running_var").data;
    const scale = gamma.map((g, ch) => g / Math.sqrt(rv[ch] + this.eps));
    const shift = beta.map((b, ch) => b - rm[ch] * scale[ch]);
    return { scale: new PlainTensor([this.channels], scale), shift: new PlainTensor([this.channels], shift) };
  }
}

type Pair = readonly [AShare, AShare];

/**
 * One multiplication round with several results, each a sum of elementwise products of sharings (broadcasting as
 * RingTensor.mul does; a result has its first pair's left shape): P_i computes
 *   z_i = sum_j x_j,i (y_j,i + y_j,next) + x_j,next y_j,i + a_i
 * (a_i a zero-share) and sends it to P_prev, as `multiplyWith` does, every result in the same round. The results
 * are at the products' scale, untruncated. `packed` (implied by `append`): they come back as one flat sharing, one
 * after another, with `append` (a sharing already held, copied, not sent) after them, to be truncated together
 * without a full-size concatenation.
 */
async function productSums(
  results: Pair[][],
  step: string,
  opts: { packed?: boolean; append?: AShare } = {},
): Promise<AShare[]> {
  const p = results[0][0][0].party, before = p.setStep(step);
  const sizes = results.map((terms) => terms[0][0].size), total = sizes.reduce((a, b) => a + b, 0);
  const extra = opts.append?.size ?? 0, packed = (opts.packed ?? false) || opts.append !== undefined;
  const zs: RingTensor[] = [], nexts: RingTensor[] = [];
  if (packed) {
    zs.push(RingTensor.empty(p.backend, [total + extra]));
    nexts.push(RingTensor.empty(p.backend, [total + extra]));
  }
  try {
    let at = 0;
    for (const terms of results) {
      const shape = terms[0][0].shape, size = terms[0][0].size;
      if (!packed) zs.push(RingTensor.empty(p.backend, shape)), nexts.push(RingTensor.empty(p.backend, shape));
      using slot = packed ? zs[0].slice(0, at, at + size) : zs.at(-1)!.reshape(shape);
      using target = slot.reshape(shape);
      at += size;
      if (terms.length === 1 && sameShape(terms[0][0].shape, terms[0][1].shape)) {
        // the fused kernel: x0 (y0 + y1) + x1 y0 + (r0 - r1)
        const [x, y] = terms[0], [r0, r1] = p.rand.zeroShareParts(shape);
        using _r0 = r0, _r1 = r1;
        assignReplicatedProduct(target, "ring", [x.cur, x.next], [y.cur, y.next], [r0, r1]);
        continue;
      }
      let acc: RingTensor = p.rand.zeroShare(shape);
      try {
        for (const [x, y] of terms) {
          using t = localProduct([x.cur, x.next], [y.cur, y.next], (a, b) => a.mul(b));
          const sum = acc.add(t);
          acc.dispose();
          acc = sum;
        }
        target.assign(acc);
      } finally {
        acc.dispose();
      }
    }
    if (opts.append) {
      using zTail = zs[0].slice(0, total, total + extra), nTail = nexts[0].slice(0, total, total + extra);
      using ac = opts.append.cur.reshape([extra]), an = opts.append.next.reshape([extra]);
      zTail.assign(ac);
      nTail.assign(an);
    }
    const sends = packed ? [zs[0].slice(0, 0, total)] : zs, recvs = packed ? [nexts[0].slice(0, 0, total)] : nexts;
    try {
      await exchangeInto(
        p.mesh,
        sends.map((z) => ({ to: p.prev, tensor: z })),
        recvs.map((r) => ({ from: p.next, into: r })),
      );
    } finally {
      if (packed) sends.forEach((t) => t.dispose()), recvs.forEach((t) => t.dispose());
    }
    return zs.map((z, i) => new AShare(p, z, nexts[i]));
  } catch (err) {
    zs.forEach((t) => t.dispose());
    nexts.forEach((t) => t.dispose());
    throw err;
  } finally {
    p.setStep(before);
  }
}

/** Sum over every axis but 1 of [n, c, ...], as a [c] sharing. */
function channelSum(x: AShare): AShare {
  const [n, c] = x.shape;
  using r = x.reshape([n, c, x.size / (n * c)]);
  using s = r.sum(2);
  return s.sum(0);
}

/**
 * sum / m for a [c]-sized sum at scale 2^(f + extra): a truncation by extra + floor(log2 m), then (m not a power
 * of two) a product by round(2^20 2^k / m) truncated by 20.
 */
export async function divideByCount(sum: AShare, m: number, extra: number): Promise<AShare> {
  const k = Math.floor(Math.log2(m)), r = m / 2 ** k;
  const first = extra + k === 0 ? sum.map((t) => t.clone()) : await truncate(sum, extra + k);
  if (r === 1) return first;
  using _first = first;
  using scaled = first.mulPublic(BigInt(Math.round(2 ** 20 / r)));
  return await truncate(scaled, 20);
}
