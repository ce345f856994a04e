/**
 * A graph model: a DAG of nodes (lib/nn/graph_spec.ts) run in topological
 * order, each value freed after its last use. It is a Layer, so a Model holds
 * a Graph where it holds a Sequential, and inference, training, the twin and
 * the Table V breakdown work the same on both.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import type { Breakdown } from "./breakdown.ts";
import { charged } from "./breakdown.ts";
import type { Layer, Params } from "./layers.ts";
import { type GraphNode, GraphSpec } from "./graph_spec.ts";
import { outputShape, paramShapes } from "./graph_shapes.ts";
import { opOf } from "./graph_ops.ts";
import { maxPool2d } from "../mpc/pool.ts";
import { revealTo } from "../mpc/reveal.ts";
import type { RingTensor } from "../ring/tensor.ts";
import type { PlainTensor } from "./plain.ts";
import { add as plainAdd } from "./plain.ts";
import type { Grads, Tape } from "./tape.ts";

const prefixed = <T>(p: Params<T>, prefix: string): Params<T> => ({ get: (name) => p.get(`${prefix}.${name}`) });

export class GraphError extends Error {}

/** One step of an inference run: a node, or a max pooling that also applies the ReLU it replaced. */
interface Step {
  node: GraphNode;
  inputs: string[];
  reluFused: boolean;
}

export class Graph implements Layer {
  readonly kind = "other";
  readonly label = "Graph";
  readonly spec: GraphSpec;

  constructor(spec: GraphSpec) {
    this.spec = GraphSpec.parse(spec);
    const defined = new Set([this.spec.input.name]), names = new Set<string>();
    for (const n of this.spec.nodes) {
      if (names.has(n.name)) throw new GraphError(`two nodes are named ${JSON.stringify(n.name)}`);
      names.add(n.name);
      const missing = n.inputs.find((i) => !defined.has(i));
      if (missing !== undefined) {
        throw new GraphError(`node ${JSON.stringify(n.name)} reads ${JSON.stringify(missing)} before it is computed`);
      }
      if (defined.has(n.output)) throw new GraphError(`value ${JSON.stringify(n.output)} is computed twice`);
      defined.add(n.output);
    }
    if (!defined.has(this.spec.output)) {
      throw new GraphError(`the output ${JSON.stringify(this.spec.output)} is never computed`);
    }
  }

  paramShapes(): [string, number[]][] {
    return this.spec.nodes.flatMap((n) => paramShapes(n).map(([p, s]): [string, number[]] => [`${n.name}.${p}`, s]));
  }

  /** Every value's shape for an input of this shape (batch first), checked node by node. */
  shapes(input: readonly number[]): Map<string, number[]> {
    const want = this.spec.input.shape;
    if (input.length !== want.length + 1 || input.slice(1).join() !== want.join()) {
      throw new RangeError(`the graph takes inputs of shape [batch, ${want.join(", ")}], got [${input.join(", ")}]`);
    }
    const shapes = new Map<string, number[]>([[this.spec.input.name, [...input]]]);
    for (const n of this.spec.nodes) shapes.set(n.output, outputShape(n, n.inputs.map((i) => shapes.get(i)!)));
    return shapes;
  }

  outputShape(input: readonly number[]): number[] {
    return this.shapes(input).get(this.spec.output)!;
  }

  /** How many times each value is read (the output once more: it is returned). */
  #uses(steps: readonly Step[]): Map<string, number> {
    const uses = new Map<string, number>([[this.spec.output, 1]]);
    for (const s of steps) for (const i of s.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    return uses;
  }

  /**
   * The steps of a run. At inference a ReLU read only by a max pooling without
   * padding runs inside it (max and ReLU commute), so the costly ReLU sees k*k
   * times fewer elements, as Sequential.evaluationOrder does for the zoo.
   */
  #plan(inference: boolean): Step[] {
    const steps: Step[] = this.spec.nodes.map((node) => ({ node, inputs: [...node.inputs], reluFused: false }));
    if (!inference) return steps;
    const readers = new Map<string, GraphNode[]>();
    for (const n of this.spec.nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
    const fused = new Set<string>();
    for (const s of steps) {
      const r = s.node;
      const only = readers.get(r.output);
      if (r.op !== "relu" || r.output === this.spec.output || only?.length !== 1) continue;
      const pool = only[0];
      if (pool.op !== "maxpool" || pool.padding[0] !== 0 || pool.padding[1] !== 0 || pool.inputs.length !== 1) continue;
      fused.add(r.name);
      const poolStep = steps.find((t) => t.node === pool)!;
      poolStep.inputs = [...r.inputs];
      poolStep.reluFused = true;
    }
    return steps.filter((s) => !fused.has(s.node.name));
  }

  async forward(x: AShare, p: Params<AShare>, breakdown?: Breakdown, tape?: Tape): Promise<AShare> {
    const { values } = await this.#run(x, p, this.#plan(!tape), breakdown, tape);
    const out = values.get(this.spec.output)!;
    values.delete(this.spec.output);
    values.forEach((v) => v.dispose());
    return out;
  }

  /**
   * Inference with the output opened to party r, as Sequential.openOutputTo: when the output node is a conv or linear
   * (the last step, read by nothing else), it is opened without reshare or truncation, at scale 2f.
   */
  async openOutputTo(
    x: AShare,
    p: Params<AShare>,
    r: number,
    breakdown?: Breakdown,
  ): Promise<{ value: RingTensor | null; fracBits: number }> {
    const steps = this.#plan(true), last = steps.at(-1)!, f = x.party.fracBits;
    const op = opOf(last.node);
    if (!op.openTo || last.node.output !== this.spec.output || last.reluFused || steps.length < 2) {
      using y = await this.forward(x, p, breakdown);
      return { value: await revealTo(y, r), fracBits: f };
    }
    const { values } = await this.#run(x, p, steps.slice(0, -1), breakdown, undefined, last.inputs);
    try {
      const xs = last.inputs.map((i) => values.get(i)!);
      const value = await charged(
        breakdown,
        op.kind,
        x.party,
        () => op.openTo!(last.node, xs, prefixed(p, last.node.name), r),
      );
      return { value, fracBits: 2 * f };
    } finally {
      values.forEach((v) => v.dispose());
    }
  }

  /** Runs the steps; returns the values still to be read (by `keep`, or the graph's output). */
  async #run(
    x: AShare,
    p: Params<AShare>,
    steps: Step[],
    breakdown?: Breakdown,
    tape?: Tape,
    keep: string[] = [],
  ): Promise<{ values: Map<string, AShare> }> {
    const uses = this.#uses(steps);
    for (const k of keep) uses.set(k, (uses.get(k) ?? 0) + 1);
    const values = new Map<string, AShare>([[this.spec.input.name, x.map((t) => t.clone())]]);
    const release = (name: string) => {
      const left = uses.get(name)! - 1;
      uses.set(name, left);
      if (left === 0) {
        values.get(name)!.dispose();
        values.delete(name);
      }
    };
    try {
      for (const { node, inputs, reluFused } of steps) {
        const xs = inputs.map((i) => values.get(i)!), op = opOf(node);
        const run = reluFused && node.op === "maxpool"
          ? async () => (await maxPool2d(xs[0], node.kernel, { stride: node.stride, relu: true })).y
          : () => op.forward(node, xs, prefixed(p, node.name), tape?.child(node.name));
        const y = await charged(breakdown, op.kind, x.party, run);
        inputs.forEach(release);
        if (uses.get(node.output)) values.set(node.output, y);
        else y.dispose(); // read by nothing
      }
      return { values };
    } catch (e) {
      values.forEach((v) => v.dispose());
      throw e;
    }
  }

  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    const values = new Map<string, PlainTensor>([[this.spec.input.name, x]]);
    for (const n of this.spec.nodes) {
      const xs = n.inputs.map((i) => values.get(i)!);
      values.set(n.output, opOf(n).plain(n, xs, prefixed(p, n.name), tape?.child(n.name)));
    }
    return values.get(this.spec.output)!;
  }

  /**
   * The nodes' backward passes in reverse order. A value read by several
   * nodes gets the sum of their gradients; a node whose output does not reach
   * the graph's output is skipped.
   */
  async backward(
    dy: AShare,
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
    breakdown?: Breakdown,
  ): Promise<AShare | null> {
    const pending = new Map<string, AShare>([[this.spec.output, dy.map((t) => t.clone())]]);
    const accumulate = (name: string, g: AShare) => {
      const before = pending.get(name);
      if (!before) return void pending.set(name, g);
      pending.set(name, before.add(g));
      before.dispose();
      g.dispose();
    };
    try {
      for (const n of [...this.spec.nodes].reverse()) {
        using g = pending.get(n.output) ?? null;
        if (!g) continue;
        pending.delete(n.output);
        const op = opOf(n), need = n.inputs.map((i) => needInput || i !== this.spec.input.name);
        const run = () => op.backward(n, g, prefixed(p, n.name), tape.child(n.name), grads.child(n.name), need);
        const dxs = await charged(breakdown, op.kind, dy.party, run);
        dxs.forEach((dx, k) => dx && accumulate(n.inputs[k], dx));
      }
      const dx = pending.get(this.spec.input.name) ?? null;
      pending.delete(this.spec.input.name);
      return needInput ? dx : (dx?.dispose(), null);
    } finally {
      pending.forEach((v) => v.dispose());
    }
  }

  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const pending = new Map<string, PlainTensor>([[this.spec.output, dy]]);
    for (const n of [...this.spec.nodes].reverse()) {
      const g = pending.get(n.output);
      if (!g) continue;
      const dxs = opOf(n).plainBackward(n, g, prefixed(p, n.name), tape.child(n.name), grads.child(n.name));
      dxs.forEach((dx, k) => {
        const name = n.inputs[k], before = pending.get(name);
        pending.set(name, before ? plainAdd(before, dx) : dx);
      });
    }
    const dx = pending.get(this.spec.input.name);
    if (!dx) throw new GraphError("the graph's output does not depend on its input");
    return dx;
  }
}
