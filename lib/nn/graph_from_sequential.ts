/**
 * A zoo model (a Sequential of layers, residual blocks inside) as a GraphSpec,
 * the form the ONNX exporter writes. Node names are the Sequential parameter
 * prefixes ("0", "3.main.0", "3.shortcut.0"), so a node's `${name}.weight`
 * is the zoo's weight of the same name and the weights map needs no renaming,
 * except for batch normalization with running statistics (`BatchNorm`,
 * batchnorm.ts): its graph node is the folded `batchnorm` (scale, shift), and
 * `sequentialWeights` folds its gamma, beta and running statistics into them.
 */
import type { GraphNode, GraphSpec } from "./graph_spec.ts";
import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  GlobalAvgPool,
  type Layer,
  Linear,
  Pool2d,
  ReLU,
  Softmax,
} from "./layers.ts";
import { type Model, plainParams, Residual, Sequential, type Weights } from "./model.ts";
import { BatchNorm } from "./batchnorm.ts";

export const GRAPH_INPUT = "input";
export const GRAPH_OUTPUT = "output";

/** Collects nodes in order; each node's output value is named after the node. */
class NodeList {
  readonly nodes: GraphNode[] = [];
  push(node: GraphNode): string {
    this.nodes.push(node);
    return node.output;
  }
}

/**
 * Appends the nodes of one layer reading `input` (its prefix being `name`) and
 * returns the value it produces. Dropout adds nothing: it is the identity at inference.
 */
function appendLayer(list: NodeList, layer: Layer, name: string, input: string): string {
  const base = { name, inputs: [input], output: name };
  if (layer instanceof Sequential) return appendSequential(list, layer, name, input);
  if (layer instanceof Residual) return appendResidual(list, layer, name, input);
  if (layer instanceof Dropout) return input;
  if (layer instanceof Conv2d) {
    const k = layer.kernel, s = layer.stride, p = layer.padding;
    return list.push({
      ...base,
      op: "conv",
      inChannels: layer.inChannels,
      outChannels: layer.outChannels,
      kernel: [k, k],
      stride: [s, s],
      padding: [p, p],
      dilation: [1, 1],
      groups: 1,
      bias: layer.opts.bias !== false,
    });
  }
  if (layer instanceof Linear) {
    return list.push({
      ...base,
      op: "linear",
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
      bias: layer.bias,
    });
  }
  if (layer instanceof ReLU) return list.push({ ...base, op: "relu" });
  if (layer instanceof Pool2d) {
    const geometry = {
      kernel: [layer.kernel, layer.kernel] as [number, number],
      stride: [layer.stride, layer.stride] as [number, number],
      padding: [layer.padding, layer.padding] as [number, number],
    };
    // our average pooling divides by k*k, padding counted as zeros
    return list.push(
      layer.op === "max"
        ? { ...base, op: "maxpool", ...geometry }
        : { ...base, op: "avgpool", ...geometry, countIncludePad: true },
    );
  }
  if (layer instanceof GlobalAvgPool) return list.push({ ...base, op: "globalavgpool" });
  if (layer instanceof BatchNorm2d || layer instanceof BatchNorm) {
    return list.push({ ...base, op: "batchnorm", channels: layer.channels });
  }
  if (layer instanceof Flatten) return list.push({ ...base, op: "flatten", axis: 1 });
  // the zoo's softmax normalizes logits [n, d] along the last axis
  if (layer instanceof Softmax) return list.push({ ...base, op: "softmax", axis: -1 });
  throw new TypeError(`sequentialToGraph: no graph form for layer ${layer.label} at '${name}'`);
}

/**
 * Layers in their written order (not evaluationOrder: its ReLU/max-pool swap gives
 * the same result, and the written order is what a reader of the file expects).
 */
function appendSequential(list: NodeList, seq: Sequential, prefix: string, input: string): string {
  return seq.layers.reduce((x, layer, i) => appendLayer(list, layer, join(prefix, String(i)), x), input);
}

/** main(x) + shortcut(x), the shortcut being x itself when the block has none. */
function appendResidual(list: NodeList, block: Residual, prefix: string, input: string): string {
  const main = appendSequential(list, block.main, join(prefix, "main"), input);
  const side = block.shortcut ? appendSequential(list, block.shortcut, join(prefix, "shortcut"), input) : input;
  const name = join(prefix, "add");
  return list.push({ name, op: "add", inputs: [main, side], output: name });
}

const join = (prefix: string, name: string) => (prefix === "" ? name : `${prefix}.${name}`);

/** The model (a zoo Sequential) as a graph from "input" to "output", parameters named as the zoo names them. */
export function sequentialToGraph(model: Model): GraphSpec {
  const net: Layer = model.net;
  if (!(net instanceof Sequential)) {
    // a model that runs a graph (one imported from ONNX) carries its spec already
    const spec = (net as { spec?: GraphSpec }).spec;
    if (spec) return spec;
    throw new TypeError(`sequentialToGraph: ${model.name} is neither a Sequential nor a graph`);
  }
  const list = new NodeList();
  const last = appendSequential(list, net, "", GRAPH_INPUT);
  const nodes = list.nodes;
  if (nodes.length === 0 || last !== nodes[nodes.length - 1].output) {
    // a graph of identities only: its output still needs a node that produces it
    throw new RangeError(`sequentialToGraph: ${model.name} has no node whose output is the network's output`);
  }
  // the last node's output becomes the graph's output; nothing else reads it by its old name
  const final = nodes[nodes.length - 1];
  nodes[nodes.length - 1] = { ...final, output: GRAPH_OUTPUT };
  return { input: { name: GRAPH_INPUT, shape: [...model.inputShape] }, output: GRAPH_OUTPUT, nodes };
}

/**
 * The weights of `model` as its graph (`sequentialToGraph`) names them: every
 * `BatchNorm` at prefix P has its P.weight, P.bias, P.running_mean and
 * P.running_var (plaintext, as `reconstruct` opens them) replaced by the folded
 *   P.scale = gamma / sqrt(running_var + eps),  P.shift = beta - running_mean P.scale
 * (the layer's own eps): the map its inference computes. Every other weight
 * is passed through; the order is the graph's parameter order. A model with
 * no such layer (or a graph model) gets its weights back unchanged.
 */
export function sequentialWeights(model: Model, weights: Weights): Weights {
  const prefixes = new Map<string, BatchNorm>();
  const walk = (layer: Layer, prefix: string): void => {
    if (layer instanceof Sequential) layer.layers.forEach((l, i) => walk(l, `${prefix}${i}.`));
    else if (layer instanceof Residual) {
      walk(layer.main, `${prefix}main.`);
      if (layer.shortcut) walk(layer.shortcut, `${prefix}shortcut.`);
    } else if (layer instanceof BatchNorm) prefixes.set(prefix, layer);
  };
  if (model.net instanceof Sequential) walk(model.net, "");
  if (prefixes.size === 0) return weights;
  const out: Weights = new Map();
  for (const [name, w] of weights) {
    const dot = name.lastIndexOf("."), prefix = name.slice(0, dot + 1), layer = prefixes.get(prefix);
    if (!layer) {
      out.set(name, w);
      continue;
    }
    if (name.slice(dot + 1) !== "weight") continue; // the layer's four weights give its two, at the first's place
    const all = plainParams(weights), { scale, shift } = layer.fold({ get: (n) => all.get(prefix + n) });
    out.set(`${prefix}scale`, scale);
    out.set(`${prefix}shift`, shift);
  }
  return out;
}
