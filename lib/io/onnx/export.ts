/**
 * GraphSpec + weights -> an ONNX model (IR version 8, default domain, opset 13
 * or the imported file's, if later). Every parameter becomes a float32
 * initializer named as the file it came from named it (`node.params`), or
 * `${node.name}.${param}`; the constants an op needs beside them (clip bounds,
 * reshape targets, pads, batch-normalization statistics) get fresh names.
 *
 * Each op is written so that ONNX's definition computes exactly the GraphSpec
 * op (up to float32 rounding), which tests/io/onnx/export_test.ts checks in
 * ONNX Runtime against the float64 twin.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { GraphNode, GraphSpec } from "../../nn/graph_spec.ts";
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
  type TensorShapeProto_Dimension,
  TensorShapeProto_DimensionSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from "./onnx_pb.ts";
import { paramShapes } from "../../nn/graph_shapes.ts";

export interface ExportTensor {
  shape: readonly number[];
  data: Float64Array;
}

/** The oldest opset we write: Softmax over one axis, Clip/Pad bounds as inputs, Split/Squeeze changes not needed. */
export const MIN_OPSET = 13;
const IR_VERSION = 8n;
const PRODUCER = "cryptgpu";
/** The symbolic name of the batch axis in the graph's input and output. */
const BATCH_PARAM = "N";

// ---------------------------------------------------------------------------
// Shape propagation. A dimension is size * N^batchPower (N the batch), or null
// when it cannot be written that way; linear needs its input's rank, reshape
// and pad their input's shape, and the graph's output is declared with it.

type Dim = { size: number; batchPower: number } | null;
type Shape = Dim[];

const fixed = (size: number): Dim => ({ size, batchPower: 0 });
const BATCH: Dim = { size: 1, batchPower: 1 };

function mulDims(a: Dim, b: Dim): Dim {
  return a && b ? { size: a.size * b.size, batchPower: a.batchPower + b.batchPower } : null;
}

function divDims(a: Dim, b: Dim): Dim {
  if (!a || !b || b.size === 0 || a.size % b.size !== 0) return null;
  return { size: a.size / b.size, batchPower: a.batchPower - b.batchPower };
}

const product = (dims: readonly Dim[]): Dim => dims.reduce(mulDims, fixed(1));
const fixedSize = (d: Dim): number | null => (d && d.batchPower === 0 ? d.size : null);

/** floor((d + padding - dilation (k - 1) - 1) / stride) + 1, for a known d. */
function windowed(d: Dim, kernel: number, stride: number, padding: number, dilation = 1): Dim {
  const n = fixedSize(d);
  return n === null ? null : fixed(Math.floor((n + padding - dilation * (kernel - 1) - 1) / stride) + 1);
}

/** Numpy broadcasting of x with a constant of `shape` (right-aligned). */
function broadcast(x: Shape, shape: readonly number[]): Shape {
  const rank = Math.max(x.length, shape.length);
  return Array.from({ length: rank }, (_, i) => {
    const a = x[i - (rank - x.length)] ?? fixed(1), b = shape[i - (rank - shape.length)] ?? 1;
    return fixedSize(a) === 1 && b !== 1 ? fixed(b) : a;
  });
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** The reshape target with 0 and "batch" resolved and -1 inferred where the sizes allow. */
function reshapeShape(x: Shape, target: readonly (number | "batch")[]): Shape {
  const dims: Shape = target.map((
    t,
    i,
  ) => (t === "batch" ? BATCH : t === 0 ? x[i] ?? null : t === -1 ? null : fixed(t)));
  const inferred = target.indexOf(-1);
  if (inferred >= 0) dims[inferred] = divDims(product(x), product(dims.filter((_, i) => i !== inferred)));
  return dims;
}

function outputShape(node: GraphNode, inputs: Shape[]): Shape {
  const x = inputs[0];
  switch (node.op) {
    case "conv": {
      const [kh, kw] = node.kernel, [sh, sw] = node.stride, [ph, pw] = node.padding, [dh, dw] = node.dilation;
      return [
        x[0],
        fixed(node.outChannels),
        windowed(x[2], kh, sh, 2 * ph, dh),
        windowed(x[3], kw, sw, 2 * pw, dw),
      ];
    }
    case "maxpool":
    case "avgpool": {
      const [kh, kw] = node.kernel, [sh, sw] = node.stride, [ph, pw] = node.padding;
      return [x[0], x[1], windowed(x[2], kh, sh, 2 * ph), windowed(x[3], kw, sw, 2 * pw)];
    }
    case "globalavgpool":
      return [x[0], x[1], ...x.slice(2).map(() => fixed(1))];
    case "linear":
      return [...x.slice(0, -1), fixed(node.outFeatures)];
    case "add_const":
    case "mul_const":
      return broadcast(x, node.shape);
    case "flatten": {
      const axis = normAxis(node.axis, x.length);
      return [product(x.slice(0, axis)), product(x.slice(axis))];
    }
    case "reshape":
      return reshapeShape(x, node.shape);
    case "transpose":
      return node.perm.map((p) => x[p] ?? null);
    case "concat": {
      const axis = normAxis(node.axis, x.length);
      return x.map((d, i) => (i === axis ? sumDims(inputs.map((s) => s[i])) : d));
    }
    case "pad":
      return x.map((d, i) => {
        const [before, after] = node.pads[i] ?? [0, 0], n = fixedSize(d);
        return before + after === 0 ? d : n === null ? null : fixed(n + before + after);
      });
    case "add":
    case "neg":
    case "relu":
    case "clip":
    case "softmax":
    case "batchnorm":
    case "batchnorm_stats":
      return x;
  }
}

/** The sum of dimensions along a concatenation axis: known when all are multiples of one power of N. */
function sumDims(dims: Dim[]): Dim {
  if (dims.some((d) => d === null)) return null;
  const power = dims[0]!.batchPower;
  if (dims.some((d) => d!.batchPower !== power)) return null;
  return { size: dims.reduce((s, d) => s + d!.size, 0), batchPower: power };
}

/** Every value's shape, the graph's input being [N, ...input.shape]. */
function propagateShapes(spec: GraphSpec): Map<string, Shape> {
  const shapes = new Map<string, Shape>([[spec.input.name, [BATCH, ...spec.input.shape.map(fixed)]]]);
  for (const node of spec.nodes) {
    const inputs = node.inputs.map((name) => {
      const s = shapes.get(name);
      if (!s) throw new Error(`exportOnnx: node '${node.name}' reads '${name}', which no earlier node produces`);
      return s;
    });
    shapes.set(node.output, outputShape(node, inputs));
  }
  return shapes;
}

// ---------------------------------------------------------------------------
// Protobuf pieces.

const attrInt = (name: string, i: number | boolean): AttributeProto =>
  create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(Number(i)) });
const attrInts = (name: string, ints: readonly number[]): AttributeProto =>
  create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: ints.map(BigInt) });
const attrFloat = (name: string, f: number): AttributeProto =>
  create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f });
const attrString = (name: string, s: string): AttributeProto =>
  create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(s) });

/** A float32 tensor, its values little-endian in raw_data as ONNX requires. */
function floatTensor(name: string, shape: readonly number[], values: ArrayLike<number>): TensorProto {
  const raw = new Uint8Array(values.length * 4), view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return create(TensorProtoSchema, {
    name,
    dims: shape.map(BigInt),
    dataType: TensorProto_DataType.FLOAT,
    rawData: raw,
  });
}

function int64Tensor(name: string, values: readonly number[]): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: [BigInt(values.length)],
    dataType: TensorProto_DataType.INT64,
    int64Data: values.map(BigInt),
  });
}

function dimension(d: Dim): TensorShapeProto_Dimension {
  if (d && d.batchPower === 0) {
    return create(TensorShapeProto_DimensionSchema, { value: { case: "dimValue", value: BigInt(d.size) } });
  }
  if (d && d.batchPower === 1 && d.size === 1) {
    return create(TensorShapeProto_DimensionSchema, { value: { case: "dimParam", value: BATCH_PARAM } });
  }
  return create(TensorShapeProto_DimensionSchema, {}); // unknown: neither value nor parameter
}

function floatValueInfo(name: string, shape: Shape): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: "tensorType",
        value: { elemType: TensorProto_DataType.FLOAT, shape: { dim: shape.map(dimension) } },
      },
    },
  });
}

// ---------------------------------------------------------------------------
// The graph's nodes.

class GraphWriter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly #taken: Set<string>;

  constructor(
    readonly spec: GraphSpec,
    readonly weights: ReadonlyMap<string, ExportTensor>,
    readonly shapes: Map<string, Shape>,
  ) {
    // every value and parameter initializer name, so that invented names never shadow one
    this.#taken = new Set([spec.input.name, ...spec.nodes.map((n) => n.output)]);
    for (const n of spec.nodes) for (const [p] of paramShapes(n)) this.#taken.add(initializerName(n, p));
  }

  /** A name not used yet, from a readable hint. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.#taken.has(name); i++) name = `${hint}_${i}`;
    this.#taken.add(name);
    return name;
  }

  op(opType: string, node: GraphNode, inputs: string[], output: string, attribute: AttributeProto[] = []): void {
    const name = output === node.output ? node.name : this.fresh(`${node.name}/${opType}`);
    this.nodes.push(create(NodeProtoSchema, { name, opType, input: inputs, output: [output], attribute }));
  }

  /** The parameter's values, checked against the shape the op needs. */
  parameter(node: GraphNode, param: string, shape: readonly number[]): Float64Array {
    const key = `${node.name}.${param}`, w = this.weights.get(key);
    if (!w) throw new Error(`exportOnnx: no weight '${key}' for node '${node.name}' (${node.op})`);
    const want = shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== want) {
      throw new RangeError(`exportOnnx: weight '${key}' has ${w.data.length} values, ${node.op} needs [${shape}]`);
    }
    return w.data;
  }

  /** Writes the parameter as its initializer (values optionally rearranged) and returns its name. */
  initializer(node: GraphNode, param: string, shape: readonly number[], values?: ArrayLike<number>): string {
    const name = initializerName(node, param);
    const tensor = floatTensor(name, shape, values ?? this.parameter(node, param, shape));
    // an imported file may feed one initializer to several nodes (tied weights): written once
    const earlier = this.initializers.find((t) => t.name === name);
    if (!earlier) this.initializers.push(tensor);
    else if (!sameTensor(earlier, tensor)) {
      throw new RangeError(`exportOnnx: nodes give initializer '${name}' different values or shapes`);
    }
    return name;
  }

  floatConstant(hint: string, shape: readonly number[], values: ArrayLike<number>): string {
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, shape, values));
    return name;
  }

  int64Constant(hint: string, values: readonly number[]): string {
    const name = this.fresh(hint);
    this.initializers.push(int64Tensor(name, values));
    return name;
  }

  shapeOf(value: string): Shape {
    return this.shapes.get(value)!;
  }
}

function sameTensor(a: TensorProto, b: TensorProto): boolean {
  return a.dims.join() === b.dims.join() && a.rawData.length === b.rawData.length &&
    a.rawData.every((v, i) => v === b.rawData[i]);
}

const initializerName = (node: GraphNode, param: string) => node.params?.[param] ?? `${node.name}.${param}`;

function writeNode(g: GraphWriter, node: GraphNode): void {
  const x = node.inputs[0], y = node.output;
  switch (node.op) {
    case "conv":
      return writeConv(g, node);
    case "linear":
      return writeLinear(g, node);
    case "add":
      return g.op("Add", node, node.inputs, y);
    case "add_const":
      return g.op("Add", node, [x, g.initializer(node, "value", node.shape)], y);
    case "mul_const":
      return g.op("Mul", node, [x, g.initializer(node, "value", node.shape)], y);
    case "neg":
      return g.op("Neg", node, [x], y);
    case "relu":
      return g.op("Relu", node, [x], y);
    case "clip":
      return writeClip(g, node);
    case "maxpool":
      return g.op("MaxPool", node, [x], y, poolAttributes(node));
    case "avgpool":
      return g.op("AveragePool", node, [x], y, [
        ...poolAttributes(node),
        attrInt("count_include_pad", node.countIncludePad),
      ]);
    case "globalavgpool":
      return g.op("GlobalAveragePool", node, [x], y);
    case "batchnorm":
      return writeBatchNorm(g, node);
    case "batchnorm_stats":
      return writeBatchNormStats(g, node);
    case "flatten":
      return g.op("Flatten", node, [x], y, [attrInt("axis", node.axis)]);
    case "reshape":
      return g.op("Reshape", node, [x, g.int64Constant(`${node.name}.shape`, onnxReshapeTarget(node))], y);
    case "transpose":
      return g.op("Transpose", node, [x], y, [attrInts("perm", node.perm)]);
    case "concat":
      return g.op("Concat", node, node.inputs, y, [attrInt("axis", node.axis)]);
    case "softmax":
      return g.op("Softmax", node, [x], y, [attrInt("axis", node.axis)]);
    case "pad":
      return writePad(g, node);
  }
}

type Node<O extends GraphNode["op"]> = Extract<GraphNode, { op: O }>;

/** ONNX pads list every axis' beginning, then every axis' end. */
const symmetricPads = ([ph, pw]: readonly [number, number]) => [ph, pw, ph, pw];

function writeConv(g: GraphWriter, node: Node<"conv">): void {
  const [[, wShape], bias] = paramShapes(node);
  const inputs = [node.inputs[0], g.initializer(node, "weight", wShape)];
  if (bias) inputs.push(g.initializer(node, "bias", bias[1]));
  g.op("Conv", node, inputs, node.output, [
    attrInts("kernel_shape", node.kernel),
    attrInts("strides", node.stride),
    attrInts("pads", symmetricPads(node.padding)),
    attrInts("dilations", node.dilation),
    attrInt("group", node.groups),
  ]);
}

function poolAttributes(node: Node<"maxpool" | "avgpool">): AttributeProto[] {
  return [
    attrInts("kernel_shape", node.kernel),
    attrInts("strides", node.stride),
    attrInts("pads", symmetricPads(node.padding)),
  ];
}

/**
 * Gemm computes x W^T + b straight from torch's [out, in] layout, but only on 2-D
 * inputs; on others MatMul broadcasts over the leading axes and needs W^T [in, out].
 */
function writeLinear(g: GraphWriter, node: Node<"linear">): void {
  const x = node.inputs[0], rank = g.shapeOf(x).length;
  const wShape = [node.outFeatures, node.inFeatures], bShape = [node.outFeatures];
  if (rank === 2) {
    const inputs = [x, g.initializer(node, "weight", wShape)];
    if (node.bias) inputs.push(g.initializer(node, "bias", bShape));
    return g.op("Gemm", node, inputs, node.output, [attrInt("transB", 1)]);
  }
  const w = g.parameter(node, "weight", wShape), transposed = new Float64Array(w.length);
  for (let o = 0; o < node.outFeatures; o++) {
    for (let i = 0; i < node.inFeatures; i++) transposed[i * node.outFeatures + o] = w[o * node.inFeatures + i];
  }
  const weight = g.initializer(node, "weight", [node.inFeatures, node.outFeatures], transposed);
  if (!node.bias) return g.op("MatMul", node, [x, weight], node.output);
  const product = g.fresh(`${node.name}/matmul`);
  g.op("MatMul", node, [x, weight], product);
  g.op("Add", node, [product, g.initializer(node, "bias", bShape)], node.output);
}

/**
 * BatchNormalization with mean 0, variance 1 and epsilon 0 is exactly
 * scale * x + shift: 1 / sqrt(1 + 0) is 1 in every float format, where the
 * default epsilon would scale by 1 / sqrt(1 + 1e-5) and a variance of
 * 1 - 1e-5 is not exact in float32. It keeps the op a batch normalization for
 * whoever reads the file.
 */
function writeBatchNorm(g: GraphWriter, node: Node<"batchnorm">): void {
  const c = [node.channels];
  g.op(
    "BatchNormalization",
    node,
    [
      node.inputs[0],
      g.initializer(node, "scale", c),
      g.initializer(node, "shift", c),
      g.floatConstant(`${node.name}.mean`, c, new Float64Array(node.channels)),
      g.floatConstant(`${node.name}.var`, c, new Float64Array(node.channels).fill(1)),
    ],
    node.output,
    [attrFloat("epsilon", 0)],
  );
}

/** Batch normalization with statistics is ONNX's own at inference: (x - mean) / sqrt(var + epsilon) * scale + B. */
function writeBatchNormStats(g: GraphWriter, node: Node<"batchnorm_stats">): void {
  const c = [node.channels];
  const inputs = ["weight", "bias", "running_mean", "running_var"].map((p) => g.initializer(node, p, c));
  g.op("BatchNormalization", node, [node.inputs[0], ...inputs], node.output, [attrFloat("epsilon", node.eps)]);
}

/**
 * Since opset 11 the bounds are scalar inputs; an absent bound (no limit on that
 * side) is the empty name ONNX uses for a missing optional input.
 */
function writeClip(g: GraphWriter, node: Node<"clip">): void {
  const bound = (side: "min" | "max", value: number | undefined) =>
    value === undefined ? "" : g.floatConstant(`${node.name}.${side}`, [], [value]);
  const inputs = [node.inputs[0], bound("min", node.min), bound("max", node.max)];
  while (inputs.at(-1) === "") inputs.pop();
  g.op("Clip", node, inputs, node.output);
}

/**
 * ONNX's 0 copies the input's size on that axis, so "batch" at axis 0 (where the
 * batch is) becomes 0. Elsewhere it becomes -1, which the other sizes then
 * determine, unless a -1 is already there.
 */
function onnxReshapeTarget(node: Node<"reshape">): number[] {
  const hasInferred = node.shape.includes(-1);
  return node.shape.map((d, i) => {
    if (d !== "batch") return d;
    if (i === 0) return 0;
    if (hasInferred) {
      throw new RangeError(
        `exportOnnx: reshape '${node.name}' has "batch" at axis ${i} and a -1; ONNX can express only one of them`,
      );
    }
    return -1;
  });
}

/** Pad takes [begins..., ends...] over every axis as an int64 input (opset 11+); the value defaults to 0. */
function writePad(g: GraphWriter, node: Node<"pad">): void {
  const x = node.inputs[0], rank = g.shapeOf(x).length;
  if (node.pads.length > rank) {
    throw new RangeError(`exportOnnx: pad '${node.name}' has ${node.pads.length} pairs for a rank-${rank} input`);
  }
  // axes without a pair are not padded, as RingTensor.pad reads it
  const pairs = Array.from({ length: rank }, (_, i) => node.pads[i] ?? [0, 0]);
  const pads = [...pairs.map(([before]) => before), ...pairs.map(([, after]) => after)];
  g.op("Pad", node, [x, g.int64Constant(`${node.name}.pads`, pads)], node.output, [attrString("mode", "constant")]);
}

/** The ONNX model of `spec` with `weights` (named `${node.name}.${param}`) as float32 initializers. */
export function exportOnnx(spec: GraphSpec, weights: ReadonlyMap<string, ExportTensor>): Uint8Array {
  const shapes = propagateShapes(spec);
  const writer = new GraphWriter(spec, weights, shapes);
  for (const node of spec.nodes) writeNode(writer, node);
  const output = shapes.get(spec.output);
  if (!output) throw new Error(`exportOnnx: the graph's output '${spec.output}' is not produced by any node`);
  const opset = Math.max(MIN_OPSET, spec.onnx?.opset ?? MIN_OPSET);
  const model = create(ModelProtoSchema, {
    irVersion: IR_VERSION,
    producerName: PRODUCER,
    opsetImport: [{ domain: "", version: BigInt(opset) }],
    graph: {
      name: spec.onnx?.graphName ?? "cryptgpu",
      node: writer.nodes,
      initializer: writer.initializers,
      input: [floatValueInfo(spec.input.name, shapes.get(spec.input.name)!)],
      output: [floatValueInfo(spec.output, output)],
    },
  });
  return toBinary(ModelProtoSchema, model);
}
