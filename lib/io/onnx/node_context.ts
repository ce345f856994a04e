/**
 * The view an op handler has of the ONNX node it converts: its inputs as checked values, its attributes with
 * their defaults, and where its problems, outputs and emitted GraphSpec nodes go (the Importer in import.ts).
 */
import type { GraphNode } from "../../nn/graph_spec.ts";
import type { Importer } from "./import.ts";
import type { AttributeProto, NodeProto } from "./onnx_pb.ts";
import type { Act, Const, Dim, FloatConst, Value } from "./values.ts";

export type Handler = (c: NodeContext) => void;
export type Params = Record<string, { shape: number[]; data: Float64Array; initializer?: string }>;

/** One ONNX node being imported: its inputs and attributes, and where its problems go. */
export class NodeContext {
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

/** Omit over each member of a union (GraphNode is one per op), which plain Omit would merge. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The initializer input i names, if it is one: the origin recorded for a parameter kept exactly as stored. */
export function initializerOf(c: NodeContext, i: number): string | undefined {
  const name = c.inputName(i);
  return c.imp.isInitializer(name) ? name : undefined;
}
