/**
 * Batch-normalization statistics for seeded weights. A trained network's
 * BatchNorm2d folds its running mean and variance into the affine map, which
 * keeps every block's output near unit scale. Seeded weights have no such
 * statistics, and a deep ResNet then grows by a factor per block: with
 * `initWeights` ResNet-101's logits reach 1.6e7 and ResNet-152's 2.8e10, far
 * outside what 64-bit fixed point at f = 20 can multiply. This sets each
 * BatchNorm2d, in evaluation order, to
 *   scale = gamma / sqrt(var + eps),  shift = beta - mean * scale
 * from its input's per-channel statistics on a calibration batch, (gamma,
 * beta) being the seeded scale and shift: the form a trained network's weights
 * take. Plaintext, by the model owner, before sharing.
 */
import { BatchNorm2d, type Layer, type Params } from "./layers.ts";
import { initWeights, type Model, Residual, Sequential, type Weights } from "./model.ts";
import { BatchNorm } from "./batchnorm.ts";
import { SeededRandom } from "../data/random.ts";
import { add, PlainTensor } from "./plain.ts";

const EPS = 1e-5;

/**
 * The zoo's seeded weights (`initWeights`), with batch normalization, where
 * the model has any, calibrated on one seeded pixel-like image (values in
 * [0, 1)): what `share --model NAME` and the benchmarks use.
 */
export function seededWeights(model: Model, seed: number): Weights {
  const weights = initWeights(model, seed);
  if (!model.paramShapes().some(([name]) => name.endsWith(".scale") || name.endsWith(".running_var"))) return weights;
  const shape = [1, ...model.inputShape], n = shape.reduce((a, b) => a * b, 1);
  const rng = new SeededRandom(seed, 1);
  const image = Float64Array.from({ length: n }, () => rng.nextUint32() / 2 ** 32);
  calibrateBatchNorm(model, weights, new PlainTensor(shape, image));
  return weights;
}

/** Updates the BatchNorm2d (and BatchNorm running statistics) entries of `weights` in place; returns how many layers it set. */
export function calibrateBatchNorm(model: Model, weights: Weights, x: PlainTensor): number {
  model.checkInput(x.shape);
  let count = 0;
  const params = (prefix: string): Params<PlainTensor> => ({
    get: (name) => {
      const w = weights.get(prefix + name);
      if (!w) throw new Error(`calibration: no weight ${prefix + name}`);
      return w;
    },
  });
  const run = (layer: Layer, x: PlainTensor, prefix: string): PlainTensor => {
    if (layer instanceof Sequential) return layer.layers.reduce((y, l, i) => run(l, y, `${prefix}${i}.`), x);
    if (layer instanceof Residual) {
      const m = run(layer.main, x, `${prefix}main.`);
      return add(m, layer.shortcut ? run(layer.shortcut, x, `${prefix}shortcut.`) : x);
    }
    if (layer instanceof BatchNorm2d) {
      const [scale, shift] = fold(x, params(prefix).get("scale"), params(prefix).get("shift"));
      weights.set(`${prefix}scale`, scale);
      weights.set(`${prefix}shift`, shift);
      count++;
    }
    if (layer instanceof BatchNorm) {
      const { mean, variance } = channelStats(x);
      weights.set(`${prefix}running_mean`, mean);
      weights.set(`${prefix}running_var`, variance);
      count++;
    }
    return layer.plain(x, params(prefix));
  };
  run(model.net, x, "");
  return count;
}

/** Per-channel mean and biased variance of [n, c, h, w]. */
function channelStats(x: PlainTensor): { mean: PlainTensor; variance: PlainTensor } {
  const [n, c, h, w] = x.shape, hw = h * w, count = n * hw;
  const mean = new Float64Array(c), variance = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0, sq = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += x.data[(b * c + ch) * hw + i];
    const m = s / count;
    for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) sq += (x.data[(b * c + ch) * hw + i] - m) ** 2;
    mean[ch] = m;
    variance[ch] = sq / count;
  }
  return { mean: new PlainTensor([c], mean), variance: new PlainTensor([c], variance) };
}

/** The folded (scale, shift) that normalize x per channel, then apply (gamma, beta). */
function fold(x: PlainTensor, gamma: PlainTensor, beta: PlainTensor): [PlainTensor, PlainTensor] {
  const [n, c, h, w] = x.shape, hw = h * w, count = n * hw;
  const mean = new Float64Array(c), sq = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (b * c + ch) * hw;
      for (let i = 0; i < hw; i++) {
        const v = x.data[base + i];
        mean[ch] += v;
        sq[ch] += v * v;
      }
    }
  }
  const scale = new Float64Array(c), shift = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const m = mean[ch] / count, variance = Math.max(sq[ch] / count - m * m, 0);
    scale[ch] = gamma.data[ch] / Math.sqrt(variance + EPS);
    shift[ch] = beta.data[ch] - m * scale[ch];
  }
  return [new PlainTensor([c], scale), new PlainTensor([c], shift)];
}
