/**
 * The public side of a graph's ops: each node's parameter shapes and its
 * output shape for given input shapes, checked, with a one-line error that
 * names the node. Shapes include the batch axis.
 */
import type { GraphNode } from "./graph_spec.ts";

type Shape = readonly number[];
type NodeOf<K extends GraphNode["op"]> = Extract<GraphNode, { op: K }>;

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
const fmt = (s: Shape) => `[${s.join(", ")}]`;

export class GraphShapeError extends RangeError {}

const fail = (n: GraphNode, why: string): never => {
  throw new GraphShapeError(`node ${JSON.stringify(n.name)} (${n.op}): ${why}`);
};

/** An axis in [-rank, rank) as a non-negative index. */
export function normAxis(n: GraphNode, axis: number, rank: number): number {
  if (axis < -rank || axis >= rank) fail(n, `axis ${axis} is outside a rank-${rank} input`);
  return axis < 0 ? axis + rank : axis;
}

/** Whether `small` broadcasts against `big` from the right (numpy rules, the result being `big`'s shape). */
export function broadcastsInto(small: Shape, big: Shape): boolean {
  if (small.length > big.length) return small.slice(0, small.length - big.length).every((d) => d === 1);
  const off = big.length - small.length;
  return small.every((d, i) => d === 1 || d === big[off + i]);
}

/** The output size of a sliding window along one axis (floor mode, as ONNX and PyTorch). */
export const windowOut = (input: number, k: number, s: number, p: number, d = 1) =>
  Math.floor((input + 2 * p - d * (k - 1) - 1) / s) + 1;

/** Parameter names (relative to the node) and shapes. */
export function paramShapes(n: GraphNode): [string, number[]][] {
  switch (n.op) {
    case "conv": {
      const w: [string, number[]] = ["weight", [n.outChannels, n.inChannels / n.groups, ...n.kernel]];
      return n.bias ? [w, ["bias", [n.outChannels]]] : [w];
    }
    case "linear": {
      const w: [string, number[]] = ["weight", [n.outFeatures, n.inFeatures]];
      return n.bias ? [w, ["bias", [n.outFeatures]]] : [w];
    }
    case "add_const":
    case "mul_const":
      return [["value", [...n.shape]]];
    case "batchnorm":
      return [["scale", [n.channels]], ["shift", [n.channels]]];
    case "batchnorm_stats":
      return ["weight", "bias", "running_mean", "running_var"].map((p) => [p, [n.channels]]);
    default:
      return [];
  }
}

function spatial(
  n: GraphNode,
  x: Shape,
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number] = [1, 1],
): [number, number] {
  const oh = windowOut(x[2], kernel[0], stride[0], padding[0], dilation[0]);
  const ow = windowOut(x[3], kernel[1], stride[1], padding[1], dilation[1]);
  if (oh < 1 || ow < 1) fail(n, `a ${kernel.join("x")} window does not fit the input ${fmt(x)}`);
  return [oh, ow];
}

function conv(n: NodeOf<"conv">, x: Shape): number[] {
  if (n.inChannels % n.groups || n.outChannels % n.groups) {
    fail(n, `${n.groups} groups do not divide ${n.inChannels} input and ${n.outChannels} output channels`);
  }
  if (x.length !== 4 || x[1] !== n.inChannels) fail(n, `input ${fmt(x)} is not [n, ${n.inChannels}, h, w]`);
  return [x[0], n.outChannels, ...spatial(n, x, n.kernel, n.stride, n.padding, n.dilation)];
}

function reshape(n: NodeOf<"reshape">, x: Shape): number[] {
  const dims = n.shape.map((d, i) => {
    if (d === "batch") return x[0];
    if (d === 0) return i < x.length ? x[i] : fail(n, `0 at position ${i} of a rank-${x.length} input`);
    return d;
  });
  const unknown = dims.filter((d) => d === -1).length;
  if (unknown > 1) fail(n, "more than one -1 in the target shape");
  const known = size(dims.filter((d) => d !== -1));
  const out = dims.map((d) => (d === -1 ? size(x) / known : d));
  if (out.some((d) => !Number.isInteger(d) || d < 0) || size(out) !== size(x)) {
    fail(n, `cannot view ${fmt(x)} as ${fmt(n.shape.map((d) => (d === "batch" ? "batch" as unknown as number : d)))}`);
  }
  return out;
}

/** The node's output shape for its inputs' shapes. */
export function outputShape(n: GraphNode, inputs: readonly Shape[]): number[] {
  const arity = n.op === "add" ? 2 : n.op === "concat" ? -1 : 1;
  if (arity > 0 && inputs.length !== arity) fail(n, `${inputs.length} inputs, ${arity} expected`);
  if (arity < 0 && inputs.length < 1) fail(n, "no inputs");
  const x = inputs[0];
  switch (n.op) {
    case "conv":
      return conv(n, x);
    case "linear":
      if (x.length < 2 || x[x.length - 1] !== n.inFeatures) fail(n, `input ${fmt(x)} is not [..., ${n.inFeatures}]`);
      return [...x.slice(0, -1), n.outFeatures];
    case "add":
      if (fmt(inputs[1]) !== fmt(x)) fail(n, `adds ${fmt(x)} and ${fmt(inputs[1])}: the shapes differ`);
      return [...x];
    case "add_const":
    case "mul_const":
      if (!broadcastsInto(n.shape, x) || n.shape.length > x.length) {
        fail(n, `a constant of shape ${fmt(n.shape)} does not broadcast against ${fmt(x)}`);
      }
      return [...x];
    case "neg":
    case "relu":
      return [...x];
    case "clip":
      if (n.min === undefined && n.max === undefined) fail(n, "neither a minimum nor a maximum");
      if (n.min !== undefined && n.max !== undefined && !(n.min < n.max)) {
        fail(n, `min ${n.min} is not below max ${n.max}`);
      }
      return [...x];
    case "softmax":
      if (normAxis(n, n.axis, x.length) !== x.length - 1) {
        fail(n, `softmax along axis ${n.axis}: only the last axis is supported`);
      }
      return [...x];
    case "maxpool":
    case "avgpool":
      if (x.length !== 4) fail(n, `input ${fmt(x)} is not [n, c, h, w]`);
      return [x[0], x[1], ...spatial(n, x, n.kernel, n.stride, n.padding)];
    case "globalavgpool":
      if (x.length !== 4) fail(n, `input ${fmt(x)} is not [n, c, h, w]`);
      return [x[0], x[1], 1, 1];
    case "batchnorm":
    case "batchnorm_stats":
      if (x.length !== 4 || x[1] !== n.channels) fail(n, `input ${fmt(x)} is not [n, ${n.channels}, h, w]`);
      return [...x];
    case "flatten": {
      const a = n.axis < 0 ? n.axis + x.length : n.axis;
      if (a < 0 || a > x.length) fail(n, `axis ${n.axis} is outside a rank-${x.length} input`);
      return [size(x.slice(0, a)), size(x.slice(a))];
    }
    case "reshape":
      return reshape(n, x);
    case "transpose": {
      const sorted = [...n.perm].sort((a, b) => a - b);
      if (n.perm.length !== x.length || sorted.some((v, i) => v !== i)) {
        fail(n, `perm [${n.perm}] is not a permutation of a rank-${x.length} input's axes`);
      }
      return n.perm.map((a) => x[a]);
    }
    case "concat": {
      const a = normAxis(n, n.axis, x.length);
      for (const s of inputs) {
        if (s.length !== x.length || s.some((d, i) => i !== a && d !== x[i])) {
          fail(n, `cannot concatenate ${fmt(s)} with ${fmt(x)} along axis ${a}`);
        }
      }
      const out = [...x];
      out[a] = inputs.reduce((t, s) => t + s[a], 0);
      return out;
    }
    case "pad":
      if (n.pads.length !== x.length) fail(n, `${n.pads.length} pad pairs for a rank-${x.length} input`);
      return x.map((d, i) => d + n.pads[i][0] + n.pads[i][1]);
  }
}
