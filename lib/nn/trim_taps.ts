/**
 * Dead kernel taps, cut before inference. A convolution's tap (ki, kj) that
 * reads padding for every output it computes adds zero to each of them, so a
 * kernel whose outer rings are all dead gives the same outputs, word for
 * word, as the inner kernel with the padding reduced by the rings cut. The
 * input's size is public (it is the model's), so which taps are dead is too,
 * and the weights' shares are cut locally, once, when they are loaded.
 *
 * It matters where a feature map shrinks below its kernel: AlexNet on CIFAR-10
 * runs its last three 3x3 convolutions on 1x1 maps, where only the centre tap
 * reads the input. Cut, they read 1/9 of their weights each forward (at batch 1
 * a convolution's time is the pass over its weights).
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { Conv2d, type Layer } from "./layers.ts";
import { Model, Sequential } from "./model.ts";

/**
 * The taps [lo, hi) of a kernel of size k along an axis of `size` inputs (stride s, padding p on both sides) that
 * read inside the input for at least one output.
 */
export function liveTaps(size: number, k: number, s: number, p: number): [number, number] {
  const outputs = Math.floor((size + 2 * p - k) / s) + 1;
  const live = (t: number) => {
    for (let o = 0; o < outputs; o++) {
      const i = o * s + t - p;
      if (i >= 0 && i < size) return true;
    }
    return false;
  };
  let lo = 0, hi = k;
  while (lo < hi && !live(lo)) lo++;
  while (hi > lo && !live(hi - 1)) hi--;
  return [lo, hi];
}

/** The rings cut from a weight's kernel: [o, i, k, k] -> [o, i, k - 2 ring, k - 2 ring]. */
export type TapTrims = Map<string, number>;

/**
 * The model with every convolution of a Sequential net (nested ones included) that has dead outer rings on its
 * input replaced by its inner kernel, and the rings cut per weight name. A graph net, and a convolution whose dead
 * taps are not whole rings (the same on every side of both axes), are left as they are.
 */
export function trimDeadTaps(model: Model): { model: Model; trims: TapTrims } {
  if (!(model.net instanceof Sequential)) return { model, trims: new Map() };
  const trims: TapTrims = new Map();
  const net = trimSequential(model.net, [1, ...model.inputShape], "", trims);
  return { model: trims.size === 0 ? model : new Model(model.name, net, model.inputShape), trims };
}

function trimSequential(net: Sequential, input: readonly number[], prefix: string, trims: TapTrims): Sequential {
  let shape = [...input];
  const layers = net.layers.map((layer, i): Layer => {
    const name = `${prefix}${i}.`;
    let out: Layer = layer;
    if (layer instanceof Sequential) out = trimSequential(layer, shape, name, trims);
    else if (layer instanceof Conv2d) {
      const ring = deadRing(layer, shape);
      if (ring > 0) {
        trims.set(`${name}weight`, ring);
        out = new Conv2d(layer.inChannels, layer.outChannels, layer.kernel - 2 * ring, {
          ...layer.opts,
          padding: layer.padding - ring,
        });
      }
    }
    shape = layer.outputShape(shape);
    return out;
  });
  return new Sequential(layers, net.label);
}

/** How many whole outer rings of the kernel read only padding for this input (0 when none, or not whole rings). */
function deadRing(conv: Conv2d, shape: readonly number[]): number {
  const k = conv.kernel, [h, w] = [shape[2], shape[3]];
  const [ylo, yhi] = liveTaps(h, k, conv.stride, conv.padding), [xlo, xhi] = liveTaps(w, k, conv.stride, conv.padding);
  const ring = ylo;
  return ring > 0 && yhi === k - ring && xlo === ring && xhi === k - ring ? ring : 0;
}

/** Cuts the named weights' rings, in place in the map (the uncut shares are disposed). */
export function trimShares(weights: Map<string, AShare>, trims: TapTrims): void {
  for (const [name, ring] of trims) {
    const w = weights.get(name);
    if (!w) throw new Error(`no shared weight named ${name}`);
    const k = w.shape[3];
    using rows = w.slice(2, ring, k - ring);
    using inner = rows.slice(3, ring, k - ring);
    weights.set(name, inner.contiguous());
    w.dispose();
  }
}
