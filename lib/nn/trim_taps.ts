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
import { Graph } from "./graph.ts";
import type { GraphSpec } from "./graph_spec.ts";

/**
 * The taps [lo, hi) of a kernel of size k along an axis of `size` inputs (stride s, padding p on both sides, taps
 * `dilation` apart) that read inside the input for at least one output.
 */
export function liveTaps(size: number, k: number, s: number, p: number, dilation = 1): [number, number] {
  const outputs = Math.floor((size + 2 * p - dilation * (k - 1) - 1) / s) + 1;
  const live = (t: number) => {
    for (let o = 0; o < outputs; o++) {
      const i = o * s + t * dilation - p;
      if (i >= 0 && i < size) return true;
    }
    return false;
  };
  let lo = 0, hi = k;
  while (lo < hi && !live(lo)) lo++;
  while (hi > lo && !live(hi - 1)) hi--;
  return [lo, hi];
}

/** The rings cut from a weight's kernel, per axis: [o, i, kh, kw] -> [o, i, kh - 2 ring_h, kw - 2 ring_w]. */
export type TapTrims = Map<string, [number, number]>;

/**
 * The model with every convolution that has dead outer rings on its input replaced by its inner kernel, and the rings
 * cut per weight name: in a Sequential net (nested ones included) square rings, the same on both axes; in a graph
 * (an ONNX import) each axis's own, where cutting them leaves the padding non-negative. A convolution whose dead
 * taps are not on both sides of an axis alike is left as it is.
 */
export function trimDeadTaps(model: Model): { model: Model; trims: TapTrims } {
  const trims: TapTrims = new Map(), input = [1, ...model.inputShape];
  const net = model.net instanceof Sequential
    ? trimSequential(model.net, input, "", trims)
    : new Graph(trimGraph(model.net.spec, model.net.shapes(input), trims));
  return { model: trims.size === 0 ? model : new Model(model.name, net, model.inputShape), trims };
}

/** The graph's conv nodes with their dead rings cut (per axis), recorded in `trims`. */
function trimGraph(spec: GraphSpec, shapes: Map<string, number[]>, trims: TapTrims): GraphSpec {
  const nodes = spec.nodes.map((n) => {
    if (n.op !== "conv") return n;
    const shape = shapes.get(n.inputs[0])!;
    const rings = [0, 1].map((a) => {
      const k = n.kernel[a], [lo, hi] = liveTaps(shape[2 + a], k, n.stride[a], n.padding[a], n.dilation[a]);
      return lo > 0 && hi === k - lo && n.padding[a] - lo * n.dilation[a] >= 0 ? lo : 0;
    }) as [number, number];
    if (rings[0] === 0 && rings[1] === 0) return n;
    trims.set(`${n.name}.weight`, rings);
    const cut = (a: number) => n.kernel[a] - 2 * rings[a], pad = (a: number) => n.padding[a] - rings[a] * n.dilation[a];
    return { ...n, kernel: [cut(0), cut(1)] as [number, number], padding: [pad(0), pad(1)] as [number, number] };
  });
  return { ...spec, nodes };
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
        trims.set(`${name}weight`, [ring, ring]);
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
  for (const [name, [rh, rw]] of trims) {
    const w = weights.get(name);
    if (!w) throw new Error(`no shared weight named ${name}`);
    const [kh, kw] = [w.shape[2], w.shape[3]];
    using rows = w.slice(2, rh, kh - rh);
    using inner = rows.slice(3, rw, kw - rw);
    weights.set(name, inner.contiguous());
    w.dispose();
  }
}
