/**
 * ONNX import: a model file (as PyTorch exports CNNs and MLPs, opsets 11-18)
 * becomes a GraphSpec and its weights. The importer walks the nodes in order
 * with a shape for every value, the first axis of the graph input being the
 * symbolic batch. Constants (initializers, Constant nodes and the shape
 * arithmetic that `x.view(x.size(0), -1)` exports) are folded while walking;
 * what is left are activations, each produced by a GraphSpec node.
 *
 * Some exporter patterns fold into their neighbour when the intermediate value
 * has no other use: BatchNormalization into the Conv before it, an Add of a
 * constant into the MatMul before it (as the linear's bias), a zero Pad into
 * the Conv / pooling after it. Every problem is collected, so a refused file
 * lists all its reasons at once.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { type GraphNode, GraphSpec } from "../../nn/graph_spec.ts";
import {
  type AttributeProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType as DataType,
  type ValueInfoProto,
} from "./onnx_pb.ts";

export class OnnxImportError extends Error {
  constructor(readonly problems: string[], file: string) {
    super(`${file}: cannot import: ${problems.join("; ")}`.replaceAll("\n", " "));
    this.name = "OnnxImportError";
  }
}

export interface ImportedGraph {
  spec: GraphSpec;
  weights: Map<string, { shape: number[]; data: Float64Array }>;
}

/** The opsets this importer understands; PyTorch's exports between 11 and 18 are what the tests cover. */
const MIN_OPSET = 7, MAX_OPSET = 22;

/** Every problem found, all at once (empty when importable). */
export function analyzeOnnx(bytes: Uint8Array, file: string): { graph: ImportedGraph | null; problems: string[] } {
  void file; // the file name only goes into importOnnx's error message
  const decoded = decodeModel(bytes);
  if (typeof decoded === "string") return { graph: null, problems: [decoded] };
  const importer = new Importer(decoded.model, decoded.opset);
  const graph = importer.run();
  return { graph: importer.problems.length === 0 ? graph : null, problems: importer.problems };
}

export function importOnnx(bytes: Uint8Array, file: string): ImportedGraph {
  const { graph, problems } = analyzeOnnx(bytes, file);
  if (!graph) throw new OnnxImportError(problems, file);
  return graph;
}

/** The model and its default-domain opset, or the one reason it cannot be read. */
function decodeModel(bytes: Uint8Array): { model: ModelProto; opset: number } | string {
  if (bytes.length === 0) return "the file is empty";
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    return `not an ONNX model (protobuf decoding failed: ${(e as Error).message})`;
  }
  if (!model.graph || model.graph.node.length === 0 && model.graph.output.length === 0) {
    return "not an ONNX model (no graph)";
  }
  const defaults = model.opsetImport.filter((o) => o.domain === "" || o.domain === "ai.onnx");
  if (defaults.length === 0) return "the model imports no opset for the default ONNX domain";
  const opset = Number(defaults[0].version);
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    return `opset ${opset} is outside the supported range ${MIN_OPSET}-${MAX_OPSET}`;
  }
  return { model, opset };
}

// ---------------------------------------------------------------------------
// Values

/** A dimension: a size, or the graph's symbolic batch size. */
type Dim = number | "batch";

type Value =
  /** Produced by a GraphSpec node (or the graph input). */
  | { kind: "act"; shape: Dim[] }
  | { kind: "float"; dims: number[]; data: Float64Array }
  /** Integer tensors hold shapes, axes and pads; an entry can be the symbolic batch (from Shape). */
  | { kind: "int"; dims: number[]; data: Dim[] }
  /** A value that cannot be used, with the reason (reported once, at its first use). */
  | { kind: "bad"; reason: string }
  /** The output of a refused node: its consumers stay quiet, the refusal already says why. */
  | { kind: "broken" };

type Act = Extract<Value, { kind: "act" }>;
type FloatConst = Extract<Value, { kind: "float" }>;
type IntConst = Extract<Value, { kind: "int" }>;
type Const = FloatConst | IntConst;

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const showShape = (shape: Dim[]) => `[${shape.join(", ")}]`;

/** A product of dimensions; the batch survives only alone among 1s, otherwise it merges with other axes. */
function product(dims: Dim[]): Dim | null {
  const numeric = dims.filter((d): d is number => d !== "batch");
  const batches = dims.length - numeric.length;
  const n = numeric.reduce((a, b) => a * b, 1);
  if (batches === 0) return n;
  return batches === 1 && n === 1 ? "batch" : null;
}

function strides(dims: number[]): number[] {
  const s = new Array<number>(dims.length);
  for (let i = dims.length - 1, acc = 1; i >= 0; i--) (s[i] = acc), (acc *= dims[i]);
  return s;
}

/** Reads a tensor proto as a constant value (float or integer). */
function tensorValue(t: TensorProto): Value {
  const dims = t.dims.map(Number);
  const count = size(dims);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
    return { kind: "bad", reason: `tensor "${t.name}" keeps its data in an external file, which is not supported` };
  }
  const raw = t.rawData.length > 0 ? t.rawData : null;
  // raw_data may be a view at any offset into the file: copy it before viewing it as wider numbers.
  const rawCopy = (width: number) => raw && raw.length === count * width ? raw.slice().buffer : null;
  const wrongLength = (width: number): Value => ({
    kind: "bad",
    reason: `tensor "${t.name}" has ${raw!.length} bytes of raw data for dims ${showShape(dims)} (${width} each)`,
  });
  const floats = (data: ArrayLike<number>): Value =>
    data.length === count
      ? { kind: "float", dims, data: Float64Array.from(data) }
      : { kind: "bad", reason: `tensor "${t.name}" has ${data.length} values for dims ${showShape(dims)}` };
  const ints = (data: ArrayLike<number | bigint>): Value =>
    data.length === count
      ? { kind: "int", dims, data: Array.from(data, Number) }
      : { kind: "bad", reason: `tensor "${t.name}" has ${data.length} values for dims ${showShape(dims)}` };
  switch (t.dataType) {
    case DataType.FLOAT:
      if (raw) return rawCopy(4) ? floats(new Float32Array(rawCopy(4)!)) : wrongLength(4);
      return floats(t.floatData);
    case DataType.DOUBLE:
      if (raw) return rawCopy(8) ? floats(new Float64Array(rawCopy(8)!)) : wrongLength(8);
      return floats(t.doubleData);
    case DataType.INT64:
      if (raw) return rawCopy(8) ? ints(new BigInt64Array(rawCopy(8)!)) : wrongLength(8);
      return ints(t.int64Data);
    case DataType.INT32:
      if (raw) return rawCopy(4) ? ints(new Int32Array(rawCopy(4)!)) : wrongLength(4);
      return ints(t.int32Data);
    case DataType.BOOL:
      // Booleans (Dropout's training_mode) are stored as bytes in raw_data, else in int32_data.
      if (raw) return raw.length === count ? ints(raw) : wrongLength(1);
      return ints(t.int32Data);
    default:
      return {
        kind: "bad",
        reason: `tensor "${t.name}" has data type ${DataType[t.dataType] ?? t.dataType}, which is not supported`,
      };
  }
}

// --- constant folding over any element type (shapes may hold the symbolic batch)

interface Elems<T> {
  dims: number[];
  data: ArrayLike<T>;
}

function gatherElems<T>(
  x: Elems<T>,
  axis: number,
  indices: number[],
  indexDims: number[],
): { dims: number[]; data: T[] } {
  const outer = size(x.dims.slice(0, axis)), n = x.dims[axis], inner = size(x.dims.slice(axis + 1));
  const data: T[] = [];
  for (let o = 0; o < outer; o++) {
    for (const raw of indices) {
      const i = raw < 0 ? raw + n : raw;
      for (let k = 0; k < inner; k++) data.push(x.data[(o * n + i) * inner + k]);
    }
  }
  return { dims: [...x.dims.slice(0, axis), ...indexDims, ...x.dims.slice(axis + 1)], data };
}

function concatElems<T>(parts: Elems<T>[], axis: number): { dims: number[]; data: T[] } {
  const outer = size(parts[0].dims.slice(0, axis));
  const data: T[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = size(p.dims.slice(axis));
      for (let k = 0; k < chunk; k++) data.push(p.data[o * chunk + k]);
    }
  }
  const dims = [...parts[0].dims];
  dims[axis] = parts.reduce((a, p) => a + p.dims[axis], 0);
  return { dims, data };
}

function transposeElems<T>(x: Elems<T>, perm: number[]): { dims: number[]; data: T[] } {
  const dims = perm.map((p) => x.dims[p]);
  const inStrides = strides(x.dims);
  const data: T[] = new Array(size(dims));
  const index = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < data.length; flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) src += index[a] * inStrides[perm[a]];
    data[flat] = x.data[src];
    for (let a = dims.length - 1; a >= 0 && ++index[a] === dims[a]; a--) index[a] = 0;
  }
  return { dims, data };
}

/** Slicing with ONNX's clamping rules, over the given axes (starts/ends/steps already per axis). */
function sliceElems<T>(
  x: Elems<T>,
  starts: number[],
  ends: number[],
  axes: number[],
  steps: number[],
): { dims: number[]; data: T[] } {
  const ranges = x.dims.map((n) => ({ start: 0, step: 1, count: n }));
  axes.forEach((axis, j) => {
    const n = x.dims[axis], step = steps[j];
    const clampIndex = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
    const start = step > 0 ? clampIndex(starts[j], 0, n) : clampIndex(starts[j], -1, n - 1);
    const end = step > 0 ? clampIndex(ends[j], 0, n) : clampIndex(ends[j], -1, n - 1);
    const count = Math.max(0, Math.ceil((end - start) / step));
    ranges[axis] = { start, step, count };
  });
  const dims = ranges.map((r) => r.count);
  const inStrides = strides(x.dims);
  const data: T[] = [];
  const index = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < size(dims); flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) src += (ranges[a].start + index[a] * ranges[a].step) * inStrides[a];
    data.push(x.data[src]);
    for (let a = dims.length - 1; a >= 0 && ++index[a] === dims[a]; a--) index[a] = 0;
  }
  return { dims, data };
}

/** Numpy broadcasting of two shapes, or null when they do not broadcast. */
function broadcastDims(a: number[], b: number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1, y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

/** Element index in a tensor of `dims` broadcast to `outDims`, for each output element. */
function broadcastIndex(dims: number[], outDims: number[]): Int32Array {
  const out = new Int32Array(size(outDims));
  const inStrides = strides(dims);
  const offset = outDims.length - dims.length;
  const index = new Array<number>(outDims.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    let src = 0;
    for (let a = 0; a < dims.length; a++) if (dims[a] !== 1) src += index[a + offset] * inStrides[a];
    out[flat] = src;
    for (let a = outDims.length - 1; a >= 0 && ++index[a] === outDims[a]; a--) index[a] = 0;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The walk over the graph

type Handler = (c: NodeContext) => void;
type Params = Record<string, { shape: number[]; data: Float64Array; initializer?: string }>;

/** One ONNX node being imported: its inputs and attributes, and where its problems go. */
class NodeContext {
  failed = false;
  constructor(readonly imp: Importer, readonly node: NodeProto, readonly index: number) {}

  get label(): string {
    return `node "${this.node.name || `#${this.index}`}" (${this.node.opType})`;
  }
  get opset(): number {
    return this.imp.opset;
  }

  problem(message: string): void {
    this.imp.problems.push(`${this.label}: ${message}`);
    this.failed = true;
  }

  /** The name of input i after Identity/Dropout renaming; "" when absent. */
  inputName(i: number): string {
    const name = this.node.input[i] ?? "";
    return name === "" ? "" : this.imp.resolve(name);
  }
  has(i: number): boolean {
    return this.inputName(i) !== "";
  }

  /** Input i as a value; undefined (after reporting why, unless a refused node made it) when unusable. */
  value(i: number): Exclude<Value, { kind: "bad" } | { kind: "broken" }> | undefined {
    const name = this.inputName(i);
    if (name === "") return void this.problem(`input ${i} is missing`);
    const v = this.imp.values.get(name);
    if (!v) return void this.problem(`input "${name}" is not defined before this node`);
    if (v.kind === "broken") return void (this.failed = true);
    if (v.kind === "bad") {
      this.problem(v.reason);
      this.imp.values.set(name, { kind: "broken" }); // reported once, at its first use
      return undefined;
    }
    return v;
  }

  act(i: number): Act | undefined {
    const v = this.value(i);
    if (v && v.kind !== "act") {
      return void this.problem(`input ${i} ("${this.inputName(i)}") must be an activation, not a constant`);
    }
    return v;
  }

  floatConst(i: number, what: string): FloatConst | undefined {
    const v = this.value(i);
    if (!v) return undefined;
    if (v.kind === "act") {
      return void this.problem(`${what} ("${this.inputName(i)}") must be a constant, not computed from the input`);
    }
    return this.asFloat(v, what);
  }

  asFloat(v: Const, what: string): FloatConst | undefined {
    if (v.kind === "float") return v;
    if (v.data.includes("batch")) return void this.problem(`${what} depends on the batch size (a dynamic shape)`);
    return { kind: "float", dims: v.dims, data: Float64Array.from(v.data as number[]) };
  }

  /** An integer constant input (a shape, axes, pads); `symbolic` allows the batch among its entries. */
  intConst(i: number, what: string, symbolic = false): Dim[] | undefined {
    const v = this.value(i);
    if (!v) return undefined;
    if (v.kind === "act") {
      return void this.problem(`${what} ("${this.inputName(i)}") is computed from the input (a dynamic shape)`);
    }
    if (v.kind === "float") {
      if (!v.data.every(Number.isInteger)) return void this.problem(`${what} must hold integers`);
      return Array.from(v.data);
    }
    if (!symbolic && v.data.includes("batch")) {
      return void this.problem(`${what} depends on the batch size (a dynamic shape)`);
    }
    return v.data;
  }

  attr(name: string): AttributeProto | undefined {
    return this.node.attribute.find((a) => a.name === name);
  }
  int(name: string, fallback: number): number {
    const a = this.attr(name);
    return a ? Number(a.i) : fallback;
  }
  ints(name: string): number[] | undefined {
    const a = this.attr(name);
    return a ? a.ints.map(Number) : undefined;
  }
  float(name: string, fallback: number): number {
    const a = this.attr(name);
    return a ? a.f : fallback;
  }
  string(name: string, fallback: string): string {
    const a = this.attr(name);
    return a ? new TextDecoder().decode(a.s) : fallback;
  }

  /** The node's single output; other outputs must be unused (mask, indices, running statistics). */
  output(): string {
    return this.node.output[0];
  }
  extraOutputsUsed(): string[] {
    return this.node.output.slice(1).filter((o) => o !== "" && this.imp.uses(o) > 0);
  }

  setAct(shape: Dim[], name = this.output()): void {
    this.imp.values.set(name, { kind: "act", shape });
  }
  setConst(v: Const, name = this.output()): void {
    this.imp.values.set(name, v);
  }

  /** Adds a GraphSpec node; parameters become weights named after it. */
  emit(spec: DistributiveOmit<GraphNode, "name" | "params">, params: Params = {}, suffix = ""): GraphNode {
    return this.imp.emit(this, spec, params, suffix);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

class Importer {
  readonly problems: string[] = [];
  readonly values = new Map<string, Value>();
  /** Values renamed away (Identity, Dropout): name -> the name it stands for. */
  readonly #aliases = new Map<string, string>();
  readonly #useCount = new Map<string, number>();
  readonly #initializers = new Set<string>();
  /** Every value name of the file, so that generated names do not collide with them. */
  readonly #valueNames = new Set<string>();
  readonly #nodeNames = new Set<string>();
  readonly nodes: GraphNode[] = [];
  readonly removed = new Set<GraphNode>();
  readonly producers = new Map<string, GraphNode>();
  readonly weights = new Map<string, { shape: number[]; data: Float64Array }>();
  /** The graph input's first axis when the file declares it as a number (it still means "the batch"). */
  declaredBatch: number | undefined;

  constructor(readonly model: ModelProto, readonly opset: number) {}

  resolve(name: string): string {
    for (let seen = 0; this.#aliases.has(name) && seen < 1000; seen++) name = this.#aliases.get(name)!;
    return name;
  }
  uses(name: string): number {
    return this.#useCount.get(this.resolve(name)) ?? 0;
  }
  isInitializer(name: string): boolean {
    return this.#initializers.has(name);
  }

  run(): ImportedGraph | null {
    const graph = this.model.graph!;
    this.#collectNames();
    for (const t of graph.initializer) {
      this.#initializers.add(t.name);
      this.values.set(t.name, tensorValue(t));
    }
    for (const t of graph.sparseInitializer) {
      if (t.values) {
        this.values.set(t.values.name, {
          kind: "bad",
          reason: `sparse initializer "${t.values.name}" is not supported`,
        });
      }
    }
    const input = this.#graphInput(graph.input);
    this.#renameAliases(graph.node);
    this.#countUses(graph.node, graph.output);
    graph.node.forEach((node, index) => this.#importNode(node, index));
    const output = this.#graphOutput(graph.output);
    if (!input || !output || this.problems.length > 0) return null;
    return this.#finish(input, output);
  }

  #collectNames(): void {
    const g = this.model.graph!;
    for (const v of [...g.input, ...g.output, ...g.initializer]) this.#valueNames.add(v.name);
    for (const n of g.node) for (const o of [...n.input, ...n.output]) this.#valueNames.add(o);
  }

  /** The one graph input that is not an initializer (older exporters list initializers as inputs too). */
  #graphInput(inputs: ValueInfoProto[]): { name: string; shape: number[] } | null {
    const real = inputs.filter((i) => !this.#initializers.has(i.name));
    if (real.length === 0) {
      this.problems.push("the graph has no input");
      return null;
    }
    for (const extra of real.slice(1)) {
      this.problems.push(`graph input "${extra.name}" is not an initializer (only one input is supported)`);
    }
    const info = real[0];
    const tensorType = info.type?.value.case === "tensorType" ? info.type.value.value : undefined;
    const where = `graph input "${info.name}"`;
    if (!tensorType) {
      this.problems.push(`${where} is not a tensor`);
      return null;
    }
    if (tensorType.elemType !== DataType.FLOAT) {
      this.problems.push(
        `${where} has element type ${DataType[tensorType.elemType] ?? tensorType.elemType}; only FLOAT is supported`,
      );
    }
    const dims = tensorType.shape?.dim;
    if (!dims || dims.length < 2) {
      this.problems.push(`${where} needs a declared shape with a batch axis and at least one more`);
      return null;
    }
    const shape: number[] = [];
    dims.slice(1).forEach((d, i) => {
      if (d.value.case === "dimValue" && d.value.value > 0n) shape.push(Number(d.value.value));
      else {
        const symbol = d.value.case === "dimParam" ? ` ("${d.value.value}")` : "";
        this.problems.push(`${where}: axis ${i + 1}${symbol} is dynamic; only the first (batch) axis may be`);
      }
    });
    if (dims[0].value.case === "dimValue") this.declaredBatch = Number(dims[0].value.value);
    this.values.set(info.name, { kind: "act", shape: ["batch", ...shape] });
    return { name: info.name, shape };
  }

  /** Identity and Dropout (inference) compute nothing: their outputs are renamed to their inputs. */
  #renameAliases(nodes: NodeProto[]): void {
    for (const n of nodes) {
      if ((n.opType === "Identity" || n.opType === "Dropout") && isDefaultDomain(n) && n.input[0] && n.output[0]) {
        this.#aliases.set(n.output[0], n.input[0]);
      }
    }
  }

  #countUses(nodes: NodeProto[], outputs: ValueInfoProto[]): void {
    const use = (name: string) => {
      if (name === "") return;
      const r = this.resolve(name);
      this.#useCount.set(r, (this.#useCount.get(r) ?? 0) + 1);
    };
    for (const n of nodes) {
      if (this.#aliases.has(n.output[0] ?? "")) continue;
      n.input.forEach(use);
    }
    outputs.forEach((o) => use(o.name));
  }

  #importNode(node: NodeProto, index: number): void {
    const c = new NodeContext(this, node, index);
    if (!isDefaultDomain(node)) c.problem(`domain "${node.domain}" is not supported`);
    else if (node.output.length === 0 || node.output[0] === "") c.problem("the node has no output");
    else {
      const handler = HANDLERS[node.opType];
      if (!handler) c.problem(`op ${node.opType} is not supported`);
      else handler(c);
    }
    // Outputs nobody computed are refused; a refused node's outputs are marked, so that its consumers do not
    // repeat the refusal. Renamed outputs (Identity, Dropout) stand for their inputs and are left alone.
    const own = node.output.filter((o) => o !== "" && !this.#aliases.has(o));
    for (const o of own) {
      if (!c.failed && !this.values.has(o) && (o === node.output[0] || this.uses(o) > 0)) {
        c.problem(`output "${o}" is not supported`);
      }
    }
    if (c.failed) { for (const o of own) this.values.set(o, { kind: "broken" }); }
  }

  #graphOutput(outputs: ValueInfoProto[]): string | null {
    if (outputs.length !== 1) {
      this.problems.push(`the graph has ${outputs.length} outputs; exactly one is supported`);
      return null;
    }
    const name = this.resolve(outputs[0].name);
    const v = this.values.get(name);
    const problem = !v
      ? `graph output "${outputs[0].name}" is not computed by any node`
      : v.kind === "float" || v.kind === "int" || v.kind === "bad"
      ? `graph output "${outputs[0].name}" is a constant, not computed from the input`
      : undefined;
    if (problem) this.problems.push(problem);
    return problem || v?.kind === "broken" ? null : name;
  }

  /** A GraphSpec node name: the ONNX node name when usable as a weight-name prefix and unique, else op_index. */
  #nodeName(c: NodeContext, suffix: string): string {
    const fromFile = c.node.name;
    let name = fromFile && /^[A-Za-z0-9_.\/:-]+$/.test(fromFile)
      ? fromFile + suffix
      : `${c.node.opType}_${c.index}${suffix}`;
    if (this.#nodeNames.has(name)) name = `${c.node.opType}_${c.index}${suffix}`;
    for (let k = 2; this.#nodeNames.has(name); k++) name = `${c.node.opType}_${c.index}${suffix}_${k}`;
    this.#nodeNames.add(name);
    return name;
  }

  /** A fresh value name for an intermediate that one ONNX node becomes several GraphSpec nodes through. */
  freshValue(base: string): string {
    let name = base;
    for (let k = 2; this.#valueNames.has(name); k++) name = `${base}_${k}`;
    this.#valueNames.add(name);
    return name;
  }

  emit(
    c: NodeContext,
    spec: DistributiveOmit<GraphNode, "name" | "params">,
    params: Params,
    suffix: string,
  ): GraphNode {
    const name = this.#nodeName(c, suffix);
    const node = { name, ...spec } as GraphNode;
    const origins: Record<string, string> = {};
    for (const [param, p] of Object.entries(params)) {
      this.weights.set(`${name}.${param}`, { shape: p.shape, data: p.data });
      if (p.initializer) origins[param] = p.initializer;
    }
    if (Object.keys(origins).length > 0) node.params = origins;
    this.nodes.push(node);
    this.producers.set(node.output, node);
    return node;
  }

  /** Replaces a node's parameter (a fold changed it): it no longer is the initializer it came from. */
  setParam(node: GraphNode, param: string, shape: number[], data: Float64Array): void {
    this.weights.set(`${node.name}.${param}`, { shape, data });
    if (node.params) {
      delete node.params[param];
      if (Object.keys(node.params).length === 0) delete node.params;
    }
  }

  /** The GraphSpec node producing `value` when nothing else uses that value (so a fold may change it). */
  soleProducer(value: string): GraphNode | undefined {
    const node = this.producers.get(value);
    return node && !this.removed.has(node) && this.uses(value) === 1 ? node : undefined;
  }

  /** Renames a node's output (the node a fold merged into now computes the folding node's value). */
  renameOutput(node: GraphNode, to: string, shape: Dim[]): void {
    this.producers.delete(node.output);
    this.values.delete(node.output);
    node.output = to;
    this.producers.set(to, node);
    this.values.set(to, { kind: "act", shape });
  }

  remove(node: GraphNode): void {
    this.removed.add(node);
    this.producers.delete(node.output);
    for (const param of ["weight", "bias", "value", "scale", "shift"]) this.weights.delete(`${node.name}.${param}`);
  }

  /** The nodes the output depends on, in order; the others (dead branches, folded nodes) are dropped. */
  #finish(input: { name: string; shape: number[] }, output: string): ImportedGraph | null {
    const live = new Set<string>([output]);
    const kept: GraphNode[] = [];
    for (const node of [...this.nodes].reverse()) {
      if (this.removed.has(node) || !live.has(node.output)) continue;
      kept.push(node);
      node.inputs.forEach((i) => live.add(i));
    }
    kept.reverse();
    const keptNames = new Set(kept.map((n) => n.name));
    for (const key of [...this.weights.keys()]) {
      if (!keptNames.has(key.slice(0, key.lastIndexOf(".")))) this.weights.delete(key);
    }
    const producer = this.model.producerName + (this.model.producerVersion ? ` ${this.model.producerVersion}` : "");
    const spec = {
      input,
      output,
      nodes: kept,
      onnx: { opset: this.opset, producer, graphName: this.model.graph!.name },
    };
    const parsed = GraphSpec.safeParse(spec);
    if (!parsed.success) {
      this.problems.push(`the imported graph is not a valid GraphSpec (an importer bug): ${parsed.error.message}`);
      return null;
    }
    return { spec: parsed.data, weights: this.weights };
  }
}

function isDefaultDomain(n: NodeProto): boolean {
  return n.domain === "" || n.domain === "ai.onnx";
}

// ---------------------------------------------------------------------------
// Op handlers

/** Spatial attributes of Conv and pooling, checked; pads as [top, left, bottom, right]. */
function spatialAttrs(c: NodeContext, kernel: [number, number]) {
  const autoPad = c.string("auto_pad", "NOTSET");
  if (autoPad !== "NOTSET" && autoPad !== "VALID") c.problem(`auto_pad ${autoPad} is not supported`);
  const strides = c.ints("strides") ?? [1, 1];
  const pads = autoPad === "VALID" ? [0, 0, 0, 0] : c.ints("pads") ?? [0, 0, 0, 0];
  const dilations = c.ints("dilations") ?? [1, 1];
  if (strides.length !== 2 || pads.length !== 4 || dilations.length !== 2) {
    c.problem("only 2-D kernels are supported (strides, pads, dilations of 2-D)");
  }
  if (pads.some((p) => p < 0)) c.problem(`negative pads [${pads}] are not supported`);
  return {
    kernel,
    stride: [strides[0], strides[1]] as [number, number],
    pads,
    dilation: [dilations[0], dilations[1]] as [number, number],
  };
}

function spatialInput(c: NodeContext): { x: Act; n: Dim; ch: number; h: number; w: number } | undefined {
  const x = c.act(0);
  if (!x) return undefined;
  if (x.shape.length !== 4) {
    return void c.problem(`input of shape ${showShape(x.shape)}: only 4-D (N, C, H, W) is supported`);
  }
  const [n, ch, h, w] = x.shape;
  if (ch === "batch" || h === "batch" || w === "batch") return void c.problem("the batch axis must be the first");
  return { x, n, ch, h, w };
}

const outSize = (n: number, pad: number, k: number, s: number, d: number, ceil = false) =>
  (ceil ? Math.ceil : Math.floor)((n + pad - d * (k - 1) - 1) / s) + 1;

const symmetric = (pads: number[]) => pads[0] === pads[2] && pads[1] === pads[3];

/**
 * A zero Pad before a Conv or pooling that can become part of its padding: the Pad's output has no other use,
 * pads only the spatial axes, and with the node's own pads is symmetric. Returns the combined pads and the Pad's
 * node (to remove), or null.
 */
function foldablePad(c: NodeContext, input: string, own: number[]): { pads: number[]; pad: GraphNode } | null {
  const pad = c.imp.soleProducer(input);
  if (!pad || pad.op !== "pad" || pad.pads.length !== 4) return null;
  const [[n0, n1], [c0, c1], [t, b], [l, r]] = pad.pads;
  if (n0 + n1 + c0 + c1 !== 0) return null;
  const pads = [own[0] + t, own[1] + l, own[2] + b, own[3] + r];
  return symmetric(pads) ? { pads, pad } : null;
}

/** Emits a zero `pad` node before a node whose own pads are asymmetric; returns the padded value. */
function padBefore(c: NodeContext, x: string, shape: Dim[], pads: number[]): { name: string; shape: Dim[] } {
  const name = c.imp.freshValue(`${c.output()}_pad`);
  const [n, ch, h, w] = shape;
  c.emit(
    { op: "pad", inputs: [x], output: name, pads: [[0, 0], [0, 0], [pads[0], pads[2]], [pads[1], pads[3]]] },
    {},
    "_pad",
  );
  const padded = [n, ch, (h as number) + pads[0] + pads[2], (w as number) + pads[1] + pads[3]];
  c.setAct(padded, name);
  return { name, shape: padded };
}

const conv: Handler = (c) => {
  const input = spatialInput(c);
  const w = c.floatConst(1, "the weight");
  const b = c.has(2) ? c.floatConst(2, "the bias") : undefined;
  if (!input || !w || c.failed) return;
  if (w.dims.length !== 4) {
    return c.problem(`weight of shape ${showShape(w.dims)}: only 2-D convolutions are supported`);
  }
  const [outC, inPerGroup, kh, kw] = w.dims;
  const declared = c.ints("kernel_shape");
  if (declared && (declared[0] !== kh || declared[1] !== kw)) {
    c.problem(`kernel_shape [${declared}] does not match the weight`);
  }
  const groups = c.int("group", 1);
  const a = spatialAttrs(c, [kh, kw]);
  if (input.ch !== inPerGroup * groups) {
    c.problem(`input has ${input.ch} channels, the weight expects ${inPerGroup} x ${groups} groups`);
  }
  if (b && size(b.dims) !== outC) c.problem(`bias of shape ${showShape(b.dims)} for ${outC} output channels`);
  if (c.failed) return;
  let x = c.inputName(0), pads = a.pads, h = input.h, wd = input.w;
  const fold = foldablePad(c, x, pads);
  if (fold) {
    c.imp.remove(fold.pad);
    x = fold.pad.inputs[0];
    pads = fold.pads;
    const before = c.imp.values.get(x) as Act;
    h = before.shape[2] as number;
    wd = before.shape[3] as number;
  } else if (!symmetric(pads)) {
    const padded = padBefore(c, x, input.x.shape, pads);
    x = padded.name;
    h = padded.shape[2] as number;
    wd = padded.shape[3] as number;
    pads = [0, 0, 0, 0];
  }
  const oh = outSize(h, 2 * pads[0], kh, a.stride[0], a.dilation[0]);
  const ow = outSize(wd, 2 * pads[1], kw, a.stride[1], a.dilation[1]);
  if (oh < 1 || ow < 1) return c.problem(`the kernel does not fit the ${h}x${wd} input`);
  const params: Params = { weight: { shape: w.dims, data: w.data, initializer: initializerOf(c, 1) } };
  if (b) params.bias = { shape: [outC], data: b.data, initializer: initializerOf(c, 2) };
  c.emit({
    op: "conv",
    inputs: [x],
    output: c.output(),
    inChannels: input.ch,
    outChannels: outC,
    kernel: [kh, kw],
    stride: a.stride,
    padding: [pads[0], pads[1]],
    dilation: a.dilation,
    groups,
    bias: b !== undefined,
  }, params);
  c.setAct([input.n, outC, oh, ow]);
};

function initializerOf(c: NodeContext, i: number): string | undefined {
  const name = c.inputName(i);
  return c.imp.isInitializer(name) ? name : undefined;
}

/** Max and average pooling: kernel, strides, pads (a foldable zero Pad before them included), ceil_mode. */
function pool(kind: "max" | "avg"): Handler {
  return (c) => {
    const input = spatialInput(c);
    const kernel = c.ints("kernel_shape");
    if (!input) return;
    if (!kernel || kernel.length !== 2) return c.problem("kernel_shape must be given, 2-D");
    const a = spatialAttrs(c, [kernel[0], kernel[1]]);
    if (a.dilation[0] !== 1 || a.dilation[1] !== 1) c.problem(`dilations [${a.dilation}] are not supported`);
    if (c.int("storage_order", 0) !== 0) c.problem("storage_order 1 is not supported");
    if (c.extraOutputsUsed().length > 0) c.problem("the indices output is not supported");
    let countIncludePad = c.int("count_include_pad", 0) === 1;
    let x = c.inputName(0), pads = a.pads, h = input.h, w = input.w;
    // Zero padding counts as values; for max pooling it may be dropped only where the input cannot be negative.
    const fold = foldablePad(c, x, pads);
    const zerosAllowed = kind === "avg"
      ? countIncludePad || a.pads.every((p) => p === 0)
      : fold !== null && nonNegative(c.imp, fold.pad.inputs[0]);
    if (fold && zerosAllowed) {
      c.imp.remove(fold.pad);
      x = fold.pad.inputs[0];
      pads = fold.pads;
      if (kind === "avg") countIncludePad = true;
      const before = c.imp.values.get(x) as Act;
      h = before.shape[2] as number;
      w = before.shape[3] as number;
    } else if (!symmetric(pads)) {
      if (kind === "max" || !countIncludePad) return c.problem(`asymmetric pads [${pads}] are not supported here`);
      const padded = padBefore(c, x, input.x.shape, pads);
      x = padded.name;
      h = padded.shape[2] as number;
      w = padded.shape[3] as number;
      pads = [0, 0, 0, 0];
    }
    if (c.failed) return;
    const oh = outSize(h, 2 * pads[0], kernel[0], a.stride[0], 1);
    const ow = outSize(w, 2 * pads[1], kernel[1], a.stride[1], 1);
    if (c.int("ceil_mode", 0) === 1) {
      const ceilH = outSize(h, 2 * pads[0], kernel[0], a.stride[0], 1, true);
      const ceilW = outSize(w, 2 * pads[1], kernel[1], a.stride[1], 1, true);
      if (ceilH !== oh || ceilW !== ow) {
        return c.problem("ceil_mode 1 is not supported (it changes the output size here)");
      }
    }
    if (oh < 1 || ow < 1) return c.problem(`the kernel does not fit the ${h}x${w} input`);
    const geometry = { kernel: a.kernel, stride: a.stride, padding: [pads[0], pads[1]] as [number, number] };
    if (kind === "max") c.emit({ op: "maxpool", inputs: [x], output: c.output(), ...geometry });
    else c.emit({ op: "avgpool", inputs: [x], output: c.output(), ...geometry, countIncludePad });
    c.setAct([input.n, input.ch, oh, ow]);
  };
}

/** Whether a value is known to be >= 0 (a ReLU's or a clip's from 0 up), so zero padding cannot win a max. */
function nonNegative(imp: Importer, value: string): boolean {
  const node = imp.producers.get(value);
  return node?.op === "relu" || (node?.op === "clip" && (node.min ?? -1) >= 0);
}

const globalAveragePool: Handler = (c) => {
  const input = spatialInput(c);
  if (!input) return;
  c.emit({ op: "globalavgpool", inputs: [c.inputName(0)], output: c.output() });
  c.setAct([input.n, input.ch, 1, 1]);
};

const batchNormalization: Handler = (c) => {
  const x = c.act(0);
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => c.floatConst(i, ["", "scale", "B", "mean", "var"][i]));
  if (c.int("training_mode", 0) === 1) c.problem("training_mode 1 is not supported (inference only)");
  if (c.extraOutputsUsed().length > 0) c.problem("the running statistics outputs are not supported (inference only)");
  if (!x || !gamma || !beta || !mean || !variance || c.failed) return;
  const channels = x.shape[1];
  if (typeof channels !== "number") return c.problem(`input of shape ${showShape(x.shape)} has no channel axis`);
  if ([gamma, beta, mean, variance].some((t) => size(t.dims) !== channels)) {
    return c.problem(`parameters do not have ${channels} entries (one per channel)`);
  }
  const eps = c.float("epsilon", 1e-5);
  const scale = new Float64Array(channels), shift = new Float64Array(channels);
  for (let i = 0; i < channels; i++) {
    scale[i] = gamma.data[i] / Math.sqrt(variance.data[i] + eps);
    shift[i] = beta.data[i] - mean.data[i] * scale[i];
  }
  const producer = c.imp.soleProducer(c.inputName(0));
  if (producer?.op === "conv") return foldScaleShift(c, producer, scale, shift, x.shape);
  // BatchNorm1d after a Linear on [N, features]: the channel axis is the linear's output axis.
  if (producer?.op === "linear" && x.shape.length === 2) return foldScaleShift(c, producer, scale, shift, x.shape);
  c.emit({ op: "batchnorm", inputs: [c.inputName(0)], output: c.output(), channels }, {
    scale: { shape: [channels], data: scale },
    shift: { shape: [channels], data: shift },
  });
  c.setAct(x.shape);
};

/**
 * A conv or linear followed by y = scale x + shift per output channel is one conv or linear: the weight's rows
 * scaled, the bias scaled and shifted.
 */
function foldScaleShift(
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

const gemm: Handler = (c) => {
  const a = c.act(0);
  const b = c.floatConst(1, "B");
  const bias = c.has(2) ? c.floatConst(2, "C") : undefined;
  if (c.int("transA", 0) !== 0) c.problem("transA 1 is not supported");
  if (!a || !b || c.failed) return;
  if (a.shape.length !== 2 || b.dims.length !== 2) return c.problem("A and B must be 2-D");
  const transB = c.int("transB", 0) === 1;
  const [outF, inF] = transB ? b.dims : [b.dims[1], b.dims[0]];
  if (a.shape[1] !== inF) {
    return c.problem(`input of shape ${showShape(a.shape)} does not match B ${showShape(b.dims)}`);
  }
  const alpha = c.float("alpha", 1), beta = c.float("beta", 1);
  const weight = transB ? b.data.map((v) => v * alpha) : transpose2d(b.data, inF, outF, alpha);
  let biasData: Float64Array | undefined;
  if (bias) {
    const row = rowOf(bias, outF);
    if (!row) return c.problem(`C of shape ${showShape(bias.dims)} is not a bias of ${outF} entries`);
    biasData = row.map((v) => v * beta);
  }
  emitLinear(c, a.shape, {
    inF,
    outF,
    weight,
    bias: biasData,
    // Only parameters kept exactly as stored still are their initializers.
    weightFrom: alpha === 1 && transB ? initializerOf(c, 1) : undefined,
    biasFrom: beta === 1 && bias?.dims.length === 1 ? initializerOf(c, 2) : undefined,
  });
};

/** B [rows, cols] -> B^T * factor (torch's [out, in] from ONNX's [in, out]). */
function transpose2d(data: Float64Array, rows: number, cols: number, factor = 1): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j] * factor;
  return out;
}

/** A constant that broadcasts as one row of n entries (a scalar, [n], [1, n], ...), as n values. */
function rowOf(t: FloatConst, n: number): Float64Array | undefined {
  const count = size(t.dims);
  if (count === 1) return new Float64Array(n).fill(t.data[0]);
  if (count === n && t.dims[t.dims.length - 1] === n) return Float64Array.from(t.data);
  return undefined;
}

function emitLinear(
  c: NodeContext,
  shape: Dim[],
  p: { inF: number; outF: number; weight: Float64Array; bias?: Float64Array; weightFrom?: string; biasFrom?: string },
): void {
  const params: Params = { weight: { shape: [p.outF, p.inF], data: p.weight, initializer: p.weightFrom } };
  if (p.bias) params.bias = { shape: [p.outF], data: p.bias, initializer: p.biasFrom };
  const spec = { inFeatures: p.inF, outFeatures: p.outF, bias: p.bias !== undefined };
  c.emit({ op: "linear", inputs: [c.inputName(0)], output: c.output(), ...spec }, params);
  c.setAct([...shape.slice(0, -1), p.outF]);
}

const matMul: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind !== "act" || b.kind === "act") return c.problem("only activation x constant [in, out] is supported");
  const w = c.asFloat(b, "the right side");
  if (!w) return;
  if (w.dims.length !== 2) return c.problem(`the right side of shape ${showShape(w.dims)} must be 2-D`);
  if (a.shape.length < 2) return c.problem(`input of shape ${showShape(a.shape)} must have at least 2 axes`);
  const [inF, outF] = w.dims;
  if (a.shape[a.shape.length - 1] !== inF) {
    return c.problem(`input of shape ${showShape(a.shape)} does not match ${showShape(w.dims)}`);
  }
  emitLinear(c, a.shape, { inF, outF, weight: transpose2d(w.data, inF, outF) });
};

const ELEMENTWISE: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
};

/** Elementwise ops on two constants fold (numpy broadcasting); integer division truncates as ONNX's does. */
function foldBinary(c: NodeContext, a: Const, b: Const): void {
  const f = ELEMENTWISE[c.node.opType];
  const isInt = a.kind === "int" && b.kind === "int";
  if (!f) return c.problem("a matrix product of two constants is not supported");
  if ((isInt && (a.data.includes("batch") || b.data.includes("batch")))) {
    return c.problem("arithmetic on the batch size (a dynamic shape) is not supported");
  }
  const dims = broadcastDims(a.dims, b.dims);
  if (!dims) return c.problem(`shapes ${showShape(a.dims)} and ${showShape(b.dims)} do not broadcast`);
  const ia = broadcastIndex(a.dims, dims), ib = broadcastIndex(b.dims, dims);
  const values = Array.from(ia, (_, k) => f(Number(a.data[ia[k]]), Number(b.data[ib[k]])));
  if (isInt) c.setConst({ kind: "int", dims, data: values.map(Math.trunc) });
  else c.setConst({ kind: "float", dims, data: Float64Array.from(values) });
}

/**
 * A constant operand of an elementwise op on activation x, as a parameter of `shape` (leading 1s dropped) that
 * broadcasts against x from the right without changing x's shape.
 */
function constOperand(c: NodeContext, x: Act, v: Const): { shape: number[]; data: Float64Array } | undefined {
  const t = c.asFloat(v, "the constant operand");
  if (!t) return undefined;
  let shape = t.dims;
  while (shape.length > 0 && shape[0] === 1) shape = shape.slice(1);
  const fits = shape.length <= x.shape.length &&
    shape.every((d, i) => d === 1 || d === x.shape[x.shape.length - shape.length + i]);
  if (!fits) {
    return void c.problem(`constant of shape ${showShape(t.dims)} does not broadcast onto ${showShape(x.shape)}`);
  }
  return { shape, data: t.data };
}

const add: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind === "act" && b.kind === "act") return addActivations(c, a, b);
  const [x, k, xi]: [Act, Const, number] = a.kind === "act" ? [a, b as Const, 0] : [b as Act, a as Const, 1];
  const linear = c.imp.soleProducer(c.inputName(xi));
  if (linear?.op === "linear" && !linear.bias) {
    const t = c.asFloat(k, "the bias");
    const row = t && (t.dims.length <= 1 || t.dims.slice(0, -1).every((d) => d === 1))
      ? rowOf(t, linear.outFeatures)
      : undefined;
    if (row) {
      c.imp.setParam(linear, "bias", [row.length], row);
      if (k.dims.length === 1 && c.imp.isInitializer(c.inputName(1 - xi))) {
        linear.params = { ...linear.params, bias: c.inputName(1 - xi) };
      }
      linear.bias = true;
      return c.imp.renameOutput(linear, c.output(), x.shape);
    }
  }
  emitConstOp(c, "add_const", x, c.inputName(xi), k, 1 - xi);
};

function addActivations(c: NodeContext, a: Act, b: Act): void {
  if (showShape(a.shape) !== showShape(b.shape)) {
    return c.problem(
      `shapes ${showShape(a.shape)} and ${showShape(b.shape)} differ (broadcasting two activations is not supported)`,
    );
  }
  c.emit({ op: "add", inputs: [c.inputName(0), c.inputName(1)], output: c.output() });
  c.setAct(a.shape);
}

function emitConstOp(
  c: NodeContext,
  op: "add_const" | "mul_const",
  x: Act,
  xName: string,
  k: Const,
  kIndex: number,
  transform = (v: number) => v,
  suffix = "",
  output = c.output(),
): void {
  const operand = constOperand(c, x, k);
  if (!operand) return;
  const data = operand.data.map(transform);
  const unchanged = data.every((v, i) => v === operand.data[i]) && c.imp.isInitializer(c.inputName(kIndex));
  c.emit({ op, inputs: [xName], output, shape: operand.shape }, {
    value: { shape: operand.shape, data, initializer: unchanged ? c.inputName(kIndex) : undefined },
  }, suffix);
  c.setAct(x.shape, output);
}

const sub: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind === "act" && b.kind !== "act") return emitConstOp(c, "add_const", a, c.inputName(0), b, 1, (v) => -v);
  // c - x and x - y go through -x.
  const x = b as Act;
  const negated = c.imp.freshValue(`${c.output()}_neg`);
  c.emit({ op: "neg", inputs: [c.inputName(1)], output: negated }, {}, "_neg");
  c.setAct(x.shape, negated);
  if (a.kind === "act") {
    if (showShape(a.shape) !== showShape(x.shape)) {
      return c.problem(`shapes ${showShape(a.shape)} and ${showShape(x.shape)} differ`);
    }
    c.emit({ op: "add", inputs: [c.inputName(0), negated], output: c.output() });
    return c.setAct(a.shape);
  }
  emitConstOp(c, "add_const", x, negated, a, 0);
};

const mul: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind === "act" && b.kind === "act") return c.problem("the product of two activations is not supported");
  const [x, k, xi]: [Act, Const, number] = a.kind === "act" ? [a, b as Const, 0] : [b as Act, a as Const, 1];
  emitConstOp(c, "mul_const", x, c.inputName(xi), k, 1 - xi);
};

const div: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (b.kind === "act") return c.problem("division by an activation is not supported");
  emitConstOp(c, "mul_const", a as Act, c.inputName(0), b, 1, (v) => 1 / v);
};

const neg: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  if (x.kind === "float") return c.setConst({ ...x, data: x.data.map((v) => -v) });
  if (x.kind === "int") return c.problem("negating an integer constant is not supported");
  c.emit({ op: "neg", inputs: [c.inputName(0)], output: c.output() });
  c.setAct(x.shape);
};

const relu: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  if (x.kind === "float") return c.setConst({ ...x, data: x.data.map((v) => Math.max(v, 0)) });
  if (x.kind !== "act") return c.problem("ReLU of an integer constant is not supported");
  c.emit({ op: "relu", inputs: [c.inputName(0)], output: c.output() });
  c.setAct(x.shape);
};

/** Float32's largest value: what Clip's bounds default to before opset 11 (no bound at all). */
const FLOAT_MAX = 3.4028234663852886e38;

const clip: Handler = (c) => {
  const x = c.act(0);
  let min: number | undefined, max: number | undefined;
  if (c.opset < 11) {
    min = c.attr("min") ? c.float("min", 0) : undefined;
    max = c.attr("max") ? c.float("max", 0) : undefined;
  } else {
    const bound = (i: number, what: string) => {
      if (!c.has(i)) return undefined;
      const t = c.floatConst(i, what);
      if (t && size(t.dims) !== 1) return void c.problem(`${what} must be a scalar`);
      return t?.data[0];
    };
    min = bound(1, "min");
    max = bound(2, "max");
  }
  if (min !== undefined && min <= -FLOAT_MAX) min = undefined;
  if (max !== undefined && max >= FLOAT_MAX) max = undefined;
  if (!x || c.failed) return;
  const xName = c.inputName(0);
  if (min === undefined && max === undefined) return c.problem("Clip without bounds is not supported");
  if (min !== undefined && max !== undefined && min > max) return c.problem(`min ${min} is above max ${max}`);
  // Clip from 0 with no upper bound is a ReLU; an absent bound is none (GraphSpec's clip allows either absent).
  if (min === 0 && max === undefined) c.emit({ op: "relu", inputs: [xName], output: c.output() });
  else {c.emit({
      op: "clip",
      inputs: [xName],
      output: c.output(),
      ...(min !== undefined && { min }),
      ...(max !== undefined && { max }),
    });}
  c.setAct(x.shape);
};

const flatten: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  const shape = x.kind === "act" ? x.shape : x.dims;
  let axis = c.int("axis", 1);
  if (axis < 0) axis += shape.length;
  const outer = product(shape.slice(0, axis)), inner = product(shape.slice(axis));
  if (outer === null || inner === null || inner === "batch") {
    return c.problem(`axis ${axis} merges the batch axis with others`);
  }
  if (x.kind !== "act") return c.setConst({ ...x, dims: [outer as number, inner] } as Const);
  c.emit({ op: "flatten", inputs: [c.inputName(0)], output: c.output(), axis });
  c.setAct([outer, inner]);
};

/**
 * The shape a reshape produces. Target entries: 0 copies the input's axis (unless allowzero), -1 is inferred,
 * "batch" (from Shape) is the batch; an entry equal to a fixed declared batch size at axis 0 is the batch too.
 */
function reshapeTarget(c: NodeContext, input: Dim[], target: Dim[], allowZero: boolean): Dim[] | undefined {
  const out = target.map((t, i): Dim => {
    if (t === 0 && !allowZero) return input[i];
    if (i === 0 && t === c.imp.declaredBatch && input[0] === "batch") return "batch";
    return t;
  });
  if (out.some((d) => d === undefined)) {
    return void c.problem(`target ${showShape(target)} copies an axis the input lacks`);
  }
  const batchIn = input.filter((d) => d === "batch").length, batchOut = out.filter((d) => d === "batch").length;
  // x.view(-1, n): the -1 is the batch when the other axes hold exactly the input's non-batch elements.
  if (batchIn === 1 && batchOut === 0 && out.filter((d) => d === -1).length === 1) {
    const rest = out.filter((d): d is number => d !== -1).reduce((a, b) => a * b, 1);
    const total = input.filter((d): d is number => d !== "batch").reduce((a, b) => a * b, 1);
    if (rest === total) return out.map((d) => (d === -1 ? "batch" : d));
  }
  if (batchIn !== batchOut) {
    return void c.problem(`reshaping ${showShape(input)} to ${showShape(target)} moves the batch into other axes`);
  }
  const known = out.filter((d): d is number => d !== "batch" && d !== -1).reduce((a, b) => a * b, 1);
  const total = input.filter((d): d is number => d !== "batch").reduce((a, b) => a * b, 1);
  const inferred = out.filter((d) => d === -1).length;
  if (inferred > 1) return void c.problem(`target ${showShape(target)} has more than one -1`);
  if (inferred === 1 ? known === 0 || total % known !== 0 : known !== total) {
    return void c.problem(`cannot reshape ${showShape(input)} to ${showShape(target)}`);
  }
  return out.map((d) => (d === -1 ? total / known : d));
}

/** Emits a reshape of an activation, or folds one of a constant. */
function reshapeTo(
  c: NodeContext,
  x: Exclude<Value, { kind: "bad" | "broken" }>,
  target: Dim[],
  allowZero = false,
): void {
  const input = x.kind === "act" ? x.shape : x.dims;
  const shape = reshapeTarget(c, input, target, allowZero);
  if (!shape) return;
  if (x.kind !== "act") {
    if (shape.includes("batch")) return c.problem("a constant reshaped by the batch size is not supported");
    return c.setConst({ ...x, dims: shape as number[] } as Const);
  }
  c.emit({ op: "reshape", inputs: [c.inputName(0)], output: c.output(), shape });
  c.setAct(shape);
}

const reshape: Handler = (c) => {
  const x = c.value(0);
  const target = c.has(1) ? c.intConst(1, "the target shape", true) : c.ints("shape");
  if (!x || !target || c.failed) return;
  reshapeTo(c, x, target, c.int("allowzero", 0) === 1);
};

/** Axes of Unsqueeze/Squeeze: an attribute before opset 13, an input from 13 on. */
function axesOf(c: NodeContext): number[] | undefined {
  if (c.opset < 13) return c.ints("axes");
  return c.has(1) ? c.intConst(1, "axes") as number[] | undefined : undefined;
}

const unsqueeze: Handler = (c) => {
  const x = c.value(0);
  const axes = axesOf(c);
  if (!x || c.failed) return;
  if (!axes) return c.problem("axes must be given");
  const shape: Dim[] = [...(x.kind === "act" ? x.shape : x.dims)];
  const rank = shape.length + axes.length;
  for (const a of axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q)) shape.splice(a, 0, 1);
  reshapeTo(c, x, shape);
};

const squeeze: Handler = (c) => {
  const x = c.value(0);
  const axes = axesOf(c);
  if (!x || c.failed) return;
  const shape = x.kind === "act" ? x.shape : x.dims;
  const drop = new Set(
    (axes ?? shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + shape.length : a)),
  );
  if ([...drop].some((a) => shape[a] !== 1)) {
    return c.problem(`axes [${[...drop]}] of ${showShape(shape)} are not all 1`);
  }
  reshapeTo(c, x, shape.filter((_, i) => !drop.has(i)));
};

const transpose: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  const shape = x.kind === "act" ? x.shape : x.dims;
  const perm = c.ints("perm") ?? shape.map((_, i) => shape.length - 1 - i);
  if (perm.length !== shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    return c.problem(`perm [${perm}] is not a permutation of ${shape.length} axes`);
  }
  if (x.kind === "float") {
    const t = transposeElems(x, perm);
    return c.setConst({ kind: "float", dims: t.dims, data: Float64Array.from(t.data) });
  }
  if (x.kind === "int") return c.setConst({ kind: "int", ...transposeElems(x, perm) });
  c.emit({ op: "transpose", inputs: [c.inputName(0)], output: c.output(), perm });
  c.setAct(perm.map((p) => shape[p]));
};

const concat: Handler = (c) => {
  const parts = c.node.input.map((_, i) => c.value(i));
  if (c.failed) return;
  const values = parts as Exclude<Value, { kind: "bad" | "broken" }>[];
  const shapes = values.map((v) => (v.kind === "act" ? v.shape : v.dims));
  let axis = c.int("axis", 0);
  if (axis < 0) axis += shapes[0].length;
  const agree = shapes.every((s) =>
    s.length === shapes[0].length && s.every((d, i) => i === axis || d === shapes[0][i])
  );
  if (!agree) return c.problem(`shapes ${shapes.map(showShape).join(", ")} do not agree off axis ${axis}`);
  if (values.every((v) => v.kind === "int")) {
    return c.setConst({ kind: "int", ...concatElems(values as IntConst[], axis) });
  }
  if (values.every((v) => v.kind !== "act")) {
    const floats = values.map((v) => c.asFloat(v as Const, "a constant input"));
    if (c.failed) return;
    const t = concatElems(floats as FloatConst[], axis);
    return c.setConst({ kind: "float", dims: t.dims, data: Float64Array.from(t.data) });
  }
  if (values.some((v) => v.kind !== "act")) {
    return c.problem("concatenating activations with constants is not supported");
  }
  if (shapes.some((s) => s[axis] === "batch")) return c.problem("concatenation along the batch axis is not supported");
  const out = [...shapes[0]];
  out[axis] = shapes.reduce((a, s) => a + (s[axis] as number), 0);
  c.emit({ op: "concat", inputs: c.node.input.map((_, i) => c.inputName(i)), output: c.output(), axis });
  c.setAct(out);
};

const softmax: Handler = (c) => {
  const x = c.act(0);
  if (!x) return;
  const rank = x.shape.length;
  let axis = c.int("axis", c.opset < 13 ? 1 : -1);
  if (axis < 0) axis += rank;
  // Before opset 13 Softmax flattens to 2-D around the axis: the same as ours only for the last axis.
  if (c.opset < 13 && axis !== rank - 1) {
    return c.problem(
      `axis ${axis} of a ${rank}-D input: before opset 13 this normalizes over all axes from ${axis} on, which is not supported`,
    );
  }
  c.emit({ op: "softmax", inputs: [c.inputName(0)], output: c.output(), axis });
  c.setAct(x.shape);
};

/** Identity and Dropout were renamed away before the walk; here only what could make that wrong is checked. */
const passThrough: Handler = (c) => {
  if (c.node.opType === "Dropout") {
    if (c.extraOutputsUsed().length > 0) c.problem("the mask output is not supported");
    if (c.has(2)) {
      const training = c.intConst(2, "training_mode");
      if (training && training[0] !== 0) c.problem("training_mode true is not supported (inference only)");
    }
  }
  c.value(0);
};

const constant: Handler = (c) => {
  const a = c.node.attribute[0];
  if (!a || c.node.attribute.length !== 1) return c.problem("expects exactly one value attribute");
  switch (a.name) {
    case "value":
      if (!a.t) return c.problem("value has no tensor");
      return c.setConst(tensorValue(a.t) as Const);
    case "value_float":
      return c.setConst({ kind: "float", dims: [], data: Float64Array.of(a.f) });
    case "value_floats":
      return c.setConst({ kind: "float", dims: [a.floats.length], data: Float64Array.from(a.floats) });
    case "value_int":
      return c.setConst({ kind: "int", dims: [], data: [Number(a.i)] });
    case "value_ints":
      return c.setConst({ kind: "int", dims: [a.ints.length], data: a.ints.map(Number) });
    default:
      return c.problem(`attribute ${a.name} is not supported`);
  }
};

const shape: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  const dims: Dim[] = x.kind === "act" ? x.shape : x.dims;
  const rank = dims.length;
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = norm(c.int("start", 0)), end = norm(c.int("end", rank));
  const data = dims.slice(start, Math.max(start, end));
  c.setConst({ kind: "int", dims: [data.length], data });
};

const gather: Handler = (c) => {
  const x = c.value(0);
  const indices = c.value(1);
  if (!x || !indices) return;
  if (x.kind === "act") return c.problem("gathering from an activation is not supported");
  if (indices.kind === "act") return c.problem("indices computed from the input are not supported");
  const idx = c.asFloat(indices, "the indices");
  if (!idx) return;
  let axis = c.int("axis", 0);
  if (axis < 0) axis += x.dims.length;
  const n = x.dims[axis];
  if (idx.data.some((i) => i < -n || i >= n || !Number.isInteger(i))) {
    return c.problem(`indices out of range for axis ${axis} of ${n}`);
  }
  const t = gatherElems<number | Dim>(x, axis, Array.from(idx.data), idx.dims);
  if (x.kind === "int") return c.setConst({ kind: "int", dims: t.dims, data: t.data });
  c.setConst({ kind: "float", dims: t.dims, data: Float64Array.from(t.data as number[]) });
};

const cast: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  const to = c.int("to", DataType.FLOAT);
  const toFloat = to === DataType.FLOAT || to === DataType.DOUBLE;
  const toInt = to === DataType.INT64 || to === DataType.INT32;
  if (!toFloat && !toInt) return c.problem(`cast to ${DataType[to] ?? to} is not supported`);
  if (x.kind === "act") {
    if (!toFloat) return c.problem("casting an activation to integers is not supported");
    c.emit({ op: "reshape", inputs: [c.inputName(0)], output: c.output(), shape: x.shape });
    return c.setAct(x.shape);
  }
  if (toInt) {
    return c.setConst({ kind: "int", dims: x.dims, data: x.kind === "int" ? x.data : Array.from(x.data, Math.trunc) });
  }
  const f = c.asFloat(x, "the input");
  if (f) c.setConst(f);
};

const slice: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  if (x.kind === "act") return c.problem("slicing an activation is not supported");
  const fromInputs = c.opset >= 10;
  const get = (i: number, attr: string, what: string) =>
    fromInputs ? (c.has(i) ? c.intConst(i, what) as number[] | undefined : undefined) : c.ints(attr);
  const starts = get(1, "starts", "starts"), ends = get(2, "ends", "ends");
  if (!starts || !ends) return void (c.failed || c.problem("starts and ends must be given"));
  const axes = (get(3, "axes", "axes") ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + x.dims.length : a));
  const steps = fromInputs ? get(4, "", "steps") ?? starts.map(() => 1) : starts.map(() => 1);
  if (c.failed) return;
  if (steps.some((s) => s === 0)) return c.problem("a step of 0");
  const t = sliceElems<number | Dim>(x, starts, ends, axes, steps);
  if (x.kind === "int") return c.setConst({ kind: "int", dims: t.dims, data: t.data });
  c.setConst({ kind: "float", dims: t.dims, data: Float64Array.from(t.data as number[]) });
};

const pad: Handler = (c) => {
  const x = c.act(0);
  const mode = c.string("mode", "constant");
  if (mode !== "constant") c.problem(`mode ${mode} is not supported`);
  let pads: number[] | undefined, value = 0;
  if (c.opset < 11) {
    pads = c.ints("pads");
    value = c.float("value", 0);
  } else {
    pads = c.intConst(1, "pads") as number[] | undefined;
    if (c.has(2)) {
      const v = c.floatConst(2, "constant_value");
      if (v) value = v.data[0] ?? 0;
    }
  }
  if (!x || !pads || c.failed) return;
  if (value !== 0) return c.problem(`padding value ${value} is not supported (only 0)`);
  const rank = x.shape.length;
  let axes = x.shape.map((_, i) => i);
  if (c.opset >= 18 && c.has(3)) {
    const given = c.intConst(3, "axes") as number[] | undefined;
    if (!given) return;
    axes = given.map((a) => (a < 0 ? a + rank : a));
  }
  if (pads.length !== 2 * axes.length) return c.problem(`pads [${pads}] do not match ${axes.length} axes`);
  if (pads.some((p) => p < 0)) return c.problem(`negative pads [${pads}] (cropping) are not supported`);
  const perAxis: [number, number][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, j) => (perAxis[a] = [pads![j], pads![j + axes.length]]));
  if (x.shape.some((d, i) => d === "batch" && perAxis[i][0] + perAxis[i][1] > 0)) {
    return c.problem("padding the batch axis is not supported");
  }
  c.emit({ op: "pad", inputs: [c.inputName(0)], output: c.output(), pads: perAxis });
  c.setAct(x.shape.map((d, i) => (d === "batch" ? d : d + perAxis[i][0] + perAxis[i][1])));
};

const HANDLERS: Record<string, Handler> = {
  Conv: conv,
  Gemm: gemm,
  MatMul: matMul,
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Neg: neg,
  Relu: relu,
  Clip: clip,
  MaxPool: pool("max"),
  AveragePool: pool("avg"),
  GlobalAveragePool: globalAveragePool,
  BatchNormalization: batchNormalization,
  Flatten: flatten,
  Reshape: reshape,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Transpose: transpose,
  Concat: concat,
  Softmax: softmax,
  Dropout: passThrough,
  Identity: passThrough,
  Constant: constant,
  Shape: shape,
  Gather: gather,
  Cast: cast,
  Slice: slice,
  Pad: pad,
};
