/**
 * SGD with a public learning rate, momentum and weight decay, on shared
 * parameters:
 *   v <- momentum v + g / batch + weightDecay W,   W <- W - lr v
 * (without momentum: W <- W - lr (g / batch + weightDecay W)). Every public
 * constant is applied as x C >> k (scale.ts) and all parameters go through
 * one concatenated truncation: 1 round a step, 2 with momentum.
 * The twin applies the same rounded constants.
 */
import { AShare } from "../mpc/arithmetic.ts";
import { truncate } from "../mpc/truncate.ts";
import { PlainTensor } from "./plain.ts";
import { type PublicScale, publicScale, scaledTerm } from "./scale.ts";

export interface SgdOptions {
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

export class Sgd {
  /** Velocity by parameter name (momentum only). */
  velocity = new Map<string, AShare>();
  plainVelocity = new Map<string, Float64Array>();

  constructor(readonly options: SgdOptions) {
    checkSgdOptions(options);
  }

  constants(batch: number, fracBits: number): Constants {
    checkSgdOptions(this.options, fracBits);
    const { lr, momentum = 0, weightDecay = 0 } = this.options;
    const m = momentum > 0;
    // One shift for the terms that share one truncation: the one that gives the largest constant about 2^20 (so
    // every product stays below |x| 2^(f+21) and the truncation's failure chance small, as for any fixed-point
    // product); the smaller constants then carry fewer bits, still about 2^-20 of the largest.
    const shifts = [m ? 1 / batch : lr / batch, m ? weightDecay : lr * weightDecay, momentum]
      .filter((c) => c > 0).map((c) => publicScale(c, fracBits).shift);
    const shift = shifts.length ? Math.min(...shifts) : fracBits;
    const at = (c: number): PublicScale => {
      const multiplier = BigInt(Math.round(c * 2 ** shift));
      return { multiplier, shift, value: Number(multiplier) / 2 ** shift };
    };
    return {
      grad: at(m ? 1 / batch : lr / batch),
      decay: at(m ? weightDecay : lr * weightDecay),
      momentum: at(momentum),
      lr: publicScale(lr, fracBits),
    };
  }

  /** One step: replaces (and frees) each parameter in `params` by its update. */
  async step(params: Map<string, AShare>, grads: Map<string, AShare>, batch: number): Promise<void> {
    const names = [...params.keys()];
    const first = params.get(names[0])!, p = first.party;
    for (const n of names) if (!grads.has(n)) throw new Error(`SGD: no gradient for ${n}`);
    const c = this.constants(batch, p.fracBits), m = (this.options.momentum ?? 0) > 0;
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
    for (const [n, w] of weights) {
      const g = grads.get(n);
      if (!g) throw new Error(`SGD: no gradient for ${n}`);
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
}

/** Every tensor flattened and joined into one vector. */
function flatConcat(xs: AShare[]): AShare {
  const flats = xs.map((x) => x.reshape([x.size]));
  try {
    return AShare.concat(flats, 0);
  } finally {
    flats.forEach((f) => f.dispose());
  }
}

/** The inverse of flatConcat, shapes taken from `like`. */
function split(v: AShare, names: string[], like: Map<string, AShare>): Map<string, AShare> {
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
