/**
 * Exporter patterns that fold into a neighbouring GraphSpec node when the value between them has no other use:
 * a zero Pad into the Conv or pooling after it, BatchNormalization into the Conv (or Linear) before it, and an
 * Add of a constant row into the bias-less Linear before it (how MatMul + Add export a linear with bias).
 * The handlers in ops_*.ts call these; each fold changes or removes nodes already emitted.
 */
import type { GraphNode } from "../../nn/graph_spec.ts";
import type { Importer } from "./import.ts";
import type { NodeContext } from "./node_context.ts";
import { type Act, type Const, type Dim, rowOf, size } from "./values.ts";

export const symmetric = (pads: number[]) => pads[0] === pads[2] && pads[1] === pads[3];

/**
 * A zero Pad before a Conv or pooling that can become part of its padding: the Pad's output has no other use,
 * pads only the spatial axes, and with the node's own pads is symmetric. Returns the combined pads and the Pad's
 * node (to remove), or null.
 */
export function foldablePad(
  c: NodeContext,
  input: string,
  own: number[],
): { pads: number[]; pad: GraphNode } | null {
  const pad = c.imp.soleProducer(input);
  if (!pad || pad.op !== "pad" || pad.pads.length !== 4) return null;
  const [[n0, n1], [c0, c1], [t, b], [l, r]] = pad.pads;
  if (n0 + n1 + c0 + c1 !== 0) return null;
  const pads = [own[0] + t, own[1] + l, own[2] + b, own[3] + r];
  return symmetric(pads) ? { pads, pad } : null;
}

/** What a Conv or pooling reads: the value, its (symmetric) pads and the height and width before padding. */
export interface PaddedInput {
  x: string;
  pads: number[];
  h: number;
  w: number;
}

/** Removes a foldable Pad (see foldablePad): the Conv or pooling reads the Pad's input with the combined pads. */
export function absorbPad(c: NodeContext, fold: { pads: number[]; pad: GraphNode }): PaddedInput {
  c.imp.remove(fold.pad);
  const x = fold.pad.inputs[0];
  const before = c.imp.values.get(x) as Act;
  return { x, pads: fold.pads, h: before.shape[2] as number, w: before.shape[3] as number };
}

/** Whether a value is known to be >= 0 (a ReLU's or a clip's from 0 up), so zero padding cannot win a max. */
export function nonNegative(imp: Importer, value: string): boolean {
  const node = imp.producers.get(value);
  return node?.op === "relu" || (node?.op === "clip" && (node.min ?? -1) >= 0);
}

/**
 * A conv or linear followed by y = scale x + shift per output channel is one conv or linear: the weight's rows
 * scaled, the bias scaled and shifted.
 */
export function foldScaleShift(
  c: NodeContext,
  conv: GraphNode & { op: "conv" | "linear" },
  scale: Float64Array,
  shift: Float64Array,
  shape: Dim[],
) {
  const w = c.imp.weights.get(`${conv.name}.weight`)!;
  const b = c.imp.weights.get(`${conv.name}.bias`);
  const perOut = size(w.shape.slice(1));
  const weight = new Float64Array(w.data.length);
  for (let i = 0; i < weight.length; i++) weight[i] = w.data[i] * scale[Math.floor(i / perOut)];
  const bias = new Float64Array(scale.length);
  for (let o = 0; o < bias.length; o++) bias[o] = (b ? b.data[o] : 0) * scale[o] + shift[o];
  c.imp.setParam(conv, "weight", w.shape, weight);
  c.imp.setParam(conv, "bias", [bias.length], bias);
  conv.bias = true;
  c.imp.renameOutput(conv, c.output(), shape);
}

/**
 * Add(x, k) where x (input xi) comes only from a bias-less linear and the constant k is one row of its outputs:
 * k becomes that linear's bias. Returns whether it folded (else the Add is emitted as it is).
 */
export function foldBiasIntoLinear(c: NodeContext, x: Act, k: Const, xi: number): boolean {
  const linear = c.imp.soleProducer(c.inputName(xi));
  if (linear?.op !== "linear" || linear.bias) return false;
  const t = c.asFloat(k, "the bias");
  const row = t && (t.dims.length <= 1 || t.dims.slice(0, -1).every((d) => d === 1))
    ? rowOf(t, linear.outFeatures)
    : undefined;
  if (!row) return false;
  c.imp.setParam(linear, "bias", [row.length], row);
  if (k.dims.length === 1 && c.imp.isInitializer(c.inputName(1 - xi))) {
    linear.params = { ...linear.params, bias: c.inputName(1 - xi) };
  }
  linear.bias = true;
  c.imp.renameOutput(linear, c.output(), x.shape);
  return true;
}
