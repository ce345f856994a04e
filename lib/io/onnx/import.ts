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
 *
 * This file holds the public API and the walk (Importer). The rest of the importer:
 * - values.ts: what a value is while walking (activation, constant, unusable) and reading tensor protos;
 * - constant_tensors.ts: Gather, Concat, Transpose, Slice and broadcasting on constants;
 * - node_context.ts: a handler's view of its node (inputs, attributes, problems, emitting GraphSpec nodes);
 * - ops.ts: the table from ONNX op type to handler, the handlers being in ops_spatial.ts (Conv, pooling, Pad),
 *   ops_linear.ts (Gemm, MatMul, BatchNormalization), ops_arithmetic.ts (elementwise ops and activations) and
 *   ops_shape.ts (reshaping and the shape arithmetic on constants);
 * - fusions.ts: the folds of one node into its neighbour listed above.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { printable } from "../format.ts";
import { type GraphNode, GraphSpec } from "../../nn/graph_spec.ts";
import { type DistributiveOmit, NodeContext, type Params } from "./node_context.ts";
import { HANDLERS } from "./ops.ts";
import {
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  TensorProto_DataType as DataType,
  type ValueInfoProto,
} from "./onnx_pb.ts";
import { type Dim, tensorValue, type Value } from "./values.ts";

export class OnnxImportError extends Error {
  constructor(readonly problems: string[], file: string) {
    super(`${file}: cannot import: ${problems.join("; ")}`.replaceAll("\n", " "));
    this.name = "OnnxImportError";
  }
}

export interface ImportedGraph {
  spec: GraphSpec;
  weights: Map<string, { shape: number[]; data: Float64Array }>;
  /** What the import changed that a user should know (one line each), e.g. a raised BatchNormalization epsilon. */
  notes: string[];
}

export interface ImportOptions {
  /**
   * "fold" (the default): BatchNormalization becomes the affine map of its running statistics, folded into the
   * Conv or Gemm before it where there is one; it trains as that map. "train": it stays batch normalization
   * (`batchnorm_stats`), which training computes from each batch's statistics and whose running statistics it
   * updates; inference then spends a private inverse square root per channel.
   */
  batchNorm?: "fold" | "train";
}

/** The opsets this importer understands; PyTorch's exports between 11 and 18 are what the tests cover. */
const MIN_OPSET = 7, MAX_OPSET = 22;

/** Every problem found, all at once (empty when importable). */
export function analyzeOnnx(
  bytes: Uint8Array,
  file: string,
  options: ImportOptions = {},
): { graph: ImportedGraph | null; problems: string[] } {
  void file; // the file name only goes into importOnnx's error message
  const decoded = decodeModel(bytes);
  if (typeof decoded === "string") return { graph: null, problems: [printable(decoded)] };
  const importer = new Importer(decoded.model, decoded.opset, { batchNorm: options.batchNorm ?? "fold" });
  const graph = importer.run();
  // names and op types come from the file: one line each, whatever they hold
  return { graph: importer.problems.length === 0 ? graph : null, problems: importer.problems.map(printable) };
}

export function importOnnx(bytes: Uint8Array, file: string, options: ImportOptions = {}): ImportedGraph {
  const { graph, problems } = analyzeOnnx(bytes, file, options);
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
// The walk over the graph

/** The state of one import; exported only as a type for node_context.ts (handlers reach it as `c.imp`). */
export class Importer {
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

  readonly notes: string[] = [];

  constructor(readonly model: ModelProto, readonly opset: number, readonly options: Required<ImportOptions>) {}

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
    return { spec: parsed.data, weights: this.weights, notes: this.notes.map(printable) };
  }
}

function isDefaultDomain(n: NodeProto): boolean {
  return n.domain === "" || n.domain === "ai.onnx";
}
