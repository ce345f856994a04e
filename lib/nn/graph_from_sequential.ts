/**
 * A zoo model (a Sequential of layers, residual blocks inside) as a GraphSpec,
 * the form the ONNX exporter writes. Node names are the Sequential parameter
 * prefixes ("0", "3.main.0", "3.shortcut.0"), so a node's `${name}.weight`
 * is the zoo's weight of the same name and the weights map needs no renaming:
 * batch normalization with statistics (`BatchNorm`, batchnorm.ts) becomes a
 * `batchnorm_stats` node with its weight, bias and running statistics, so a
 * zoo model trains through its graph as through its Sequential.
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
import { type Model, Residual, Sequential } from "./model.ts";
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
  if (layer instanceof BatchNorm2d) return list.push({ ...base, op: "batchnorm", channels: layer.channels });
  if (layer instanceof BatchNorm) {
    const { channels, eps, momentum, maxVar } = layer;
    return list.push({ ...base, op: "batchnorm_stats", channels, eps, momentum, maxVar });
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
