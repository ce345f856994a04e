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
 * Rounds (local truncation; D = 1 + [m not a power of two] for a division,
 * R = invSqrtRounds(range), 25 for the default range at f = 16 or 20), tested:
 * training forward D (mean) + 1 (squares) + D (variance) + R + 1 (running
 * statistics, one truncation of [2c]) + 2 (xhat) + 2 (gamma xhat): 33 when m
 * is a power of two; backward 2 (dy xhat and gamma inv in one multiplication
 * of concatenated vectors, one truncation of [dgamma, gamma inv]) + D (the two
 * means, one [2c] division) + 2 (xhat mean(dy xhat)) + 2 (times gamma inv): 7
 * (2 when dx is not needed); inference R + 2 (gamma inv) + 2 (the product): 29.
 */
import { AShare } from "../mpc/arithmetic.ts";
import { encodeFixed } from "../ring/fixed.ts";
import { mul, mulFixed, multiplyWith } from "../mpc/multiply.ts";
import { truncate } from "../mpc/truncate.ts";
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
    using d = x.sub(meanC);
    using sq = await multiplyWith(d, d, (a, b) => a.mul(b), "batchnorm square");
    using sqSum = channelSum(sq);
    const variance = await divideByCount(sqSum, m, f);
    using _v = variance;
    using varEps = variance.addPublic(encodeFixed(this.eps, f));
    const inv = tape.save("inv", await invSqrt(varEps, this.range));
    await this.#updateRunning(rm, rv, mean, variance, m);
    using invC = inv.reshape([c, 1, 1]);
    const xhat = tape.save("xhat", await mulFixed(d, invC));
    using gammaC = gamma.reshape([c, 1, 1]), betaC = beta.reshape([c, 1, 1]);
    using y = await mulFixed(xhat, gammaC);
    return y.add(betaC);
  }

  /** rm += mom (mean - rm), rv += mom (var m / (m - 1) - rv): one truncation of [2c], written in place. */
  async #updateRunning(rm: AShare, rv: AShare, mean: AShare, variance: AShare, m: number): Promise<void> {
    if (this.momentum === 0) return; // frozen statistics
    const f = mean.party.fracBits, { mom, unbiased, shift } = this.#runningConstants(m, f);
    using a = scaledTerm(mean, mom), b = scaledTerm(rm, mom);
    using dm = a.sub(b);
    using cc = scaledTerm(variance, unbiased), e = scaledTerm(rv, mom);
    using dv = cc.sub(e);
    using both = AShare.concat([dm, dv], 0);
    using delta = await truncate(both, shift);
    const c = this.channels;
    using dMean = delta.slice(0, 0, c), dVar = delta.slice(0, c, 2 * c);
    using newMean = rm.add(dMean), newVar = rv.add(dVar);
    rm.cur.assign(newMean.cur);
    rm.next.assign(newMean.next);
    rv.cur.assign(newVar.cur);
    rv.next.assign(newVar.next);
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
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
  ): Promise<AShare | null> {
    const c = this.channels, f = dy.party.fracBits, [n, , h, w] = dy.shape, m = n * h * w;
    const xhat = tape.get<AShare>("xhat"), inv = tape.get<AShare>("inv"), gamma = p.get("weight");
    const dbeta = channelSum(dy);
    grads.set("bias", dbeta);
    // one multiplication of [dy, gamma] by [xhat, inv] (flattened, concatenated), one truncation of [dgamma, k]
    using dyFlat = dy.reshape([dy.size]), xhatFlat = xhat.reshape([xhat.size]);
    using left = AShare.concat([dyFlat, gamma], 0), right = AShare.concat([xhatFlat, inv], 0);
    using prod = await mul(left, right);
    using pPart = prod.slice(0, 0, dy.size), kPart = prod.slice(0, dy.size, dy.size + c);
    using pDense = pPart.contiguous(), kDense = kPart.contiguous();
    using pShaped = pDense.reshape(dy.shape);
    using pSum = channelSum(pShaped);
    using raw = AShare.concat([pSum, kDense], 0);
    using truncated = await truncate(raw, f);
    using dgammaView = truncated.slice(0, 0, c), kView = truncated.slice(0, c, 2 * c);
    const dgamma = dgammaView.contiguous();
    grads.set("weight", dgamma);
    if (!needInput) return null;
    using k = kView.contiguous(); // gamma inv
    // mean(dy), mean(dy xhat) in one division of [2c]
    using sums = AShare.concat([dbeta, dgamma], 0);
    using means = await divideByCount(sums, m, 0);
    using meanDyView = means.slice(0, 0, c), meanPView = means.slice(0, c, 2 * c);
    using meanDy = meanDyView.contiguous(), meanP = meanPView.contiguous();
    using meanDyC = meanDy.reshape([c, 1, 1]), meanPC = meanP.reshape([c, 1, 1]), kC = k.reshape([c, 1, 1]);
    using t = await mulFixed(xhat, meanPC);
    using centred = dy.sub(meanDyC);
    using u = centred.sub(t);
    return await mulFixed(u, kC);
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
