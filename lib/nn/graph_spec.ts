/**
 * A graph model's description: the DAG that an imported ONNX file (or a zoo
 * model, for export) becomes. It is plain JSON, kept in every share file of
 * the model's weights, so the three parties run the same network and its
 * digest goes into the handshake.
 *
 * Values are named; the graph's one input is `input.name`, its first axis
 * the batch. Nodes are in topological order, each with one output. A node's
 * parameters (secret, shared like every weight) are named `${node.name}.${param}`
 * in the weight files; `node.params` maps each to the initializer it came
 * from (or goes to, on export). Everything here is public: shapes, kernel
 * geometry, clip bounds, permutations. Constants that are part of the
 * model's function (weights, biases, a normalization's mean and scale) are
 * parameters, so they are shared, never written here.
 */
import { z } from "zod";

const int = z.number().int();
const pos = int.min(1);
const nonneg = int.min(0);
const pair = (v: z.ZodNumber) => z.tuple([v, v]);

/** A reshape target: sizes, -1 (inferred, at most once), 0 (the input's size on that axis) or "batch". */
const ReshapeDim = z.union([int.min(-1), z.literal("batch")]);

const node = <O extends string, A extends z.ZodRawShape>(op: O, attrs: A) =>
  z.object({
    name: z.string().min(1),
    op: z.literal(op),
    inputs: z.array(z.string().min(1)),
    output: z.string().min(1),
    /** Parameter (relative name) -> the ONNX initializer's name; absent for zoo models. */
    params: z.record(z.string(), z.string()).optional(),
    ...attrs,
  });

export const GraphNode = z.discriminatedUnion("op", [
  /** y = conv(x, weight [out, in/groups, kh, kw]) + bias [out]: symmetric padding (asymmetric is a `pad` before). */
  node("conv", {
    inChannels: pos,
    outChannels: pos,
    kernel: pair(pos),
    stride: pair(pos),
    padding: pair(nonneg),
    dilation: pair(pos),
    groups: pos,
    bias: z.boolean(),
  }),
  /** y = x . weight^T + bias over the last axis (weight [out, in], as torch stores it): Gemm, MatMul(+Add). */
  node("linear", { inFeatures: pos, outFeatures: pos, bias: z.boolean() }),
  /** The sum of two activations of one shape (a residual add). */
  node("add", {}),
  /**
   * x + value, x * value: `value` is a parameter (shared) of `shape`, which broadcasts against x from the right
   * (a scalar [], a per-channel [c, 1, 1], a row [d]). Sub and Div by constants are imported as these.
   */
  node("add_const", { shape: z.array(nonneg) }),
  node("mul_const", { shape: z.array(nonneg) }),
  /** -x (for c - x, imported as add_const(neg(x))): exact, no truncation. */
  node("neg", {}),
  node("relu", {}),
  /** min(max(x, min), max) with public bounds (ReLU6: 0 and 6): one comparison a bound; an absent bound is none. */
  node("clip", { min: z.number().optional(), max: z.number().optional() }),
  node("maxpool", { kernel: pair(pos), stride: pair(pos), padding: pair(nonneg) }),
  /** Average pooling; countIncludePad false divides by the number of window elements inside the input. */
  node("avgpool", { kernel: pair(pos), stride: pair(pos), padding: pair(nonneg), countIncludePad: z.boolean() }),
  node("globalavgpool", {}),
  /** Inference batch normalization as y = scale[c] x + shift[c] (parameters scale and shift). */
  node("batchnorm", { channels: pos }),
  /**
   * Batch normalization with batch statistics (lib/nn/batchnorm.ts): parameters weight, bias and the shared
   * running statistics running_mean, running_var, which a training forward updates; inference uses them.
   */
  node("batchnorm_stats", {
    channels: pos,
    eps: z.number().positive(),
    momentum: z.number().min(0).max(1),
    maxVar: z.number().positive(),
  }),
  /** [d0, ..., d_{axis-1}, rest] -> [d0 * ... * d_{axis-1}, rest]; axis 1 keeps the batch. */
  node("flatten", { axis: int }),
  node("reshape", { shape: z.array(ReshapeDim) }),
  node("transpose", { perm: z.array(nonneg) }),
  /** Concatenation of two or more activations along `axis`. */
  node("concat", { axis: int }),
  /** Softmax along `axis` (the last, for logits). */
  node("softmax", { axis: int }),
  /** Zero padding: [before, after] per axis. */
  node("pad", { pads: z.array(pair(nonneg)) }),
]);

export type GraphNode = z.infer<typeof GraphNode>;
export type GraphOp = GraphNode["op"];

export const GraphSpec = z.object({
  /** The graph's input: its name and its shape without the batch axis. */
  input: z.object({ name: z.string().min(1), shape: z.array(pos) }),
  output: z.string().min(1),
  nodes: z.array(GraphNode),
  /** Where the graph came from, kept for export: the ONNX file's opset, producer and graph name. */
  onnx: z.object({ opset: pos, producer: z.string(), graphName: z.string() }).optional(),
});

export type GraphSpec = z.infer<typeof GraphSpec>;
