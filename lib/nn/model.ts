/**
 * Composite layers (a sequence, a residual block), a model with its
 * parameter list, seeded initialization, sharing of the owner's weights, and
 * the per-layer-type accounting of the paper's Table V.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { shareInput } from "../mpc/input.ts";
import type { Party } from "../mpc/party.ts";
import { revealTo } from "../mpc/reveal.ts";
import { RingTensor } from "../ring/tensor.ts";
import { type Layer, type Params, Pool2d, ReLU } from "./layers.ts";
import { add as plainAdd, PlainTensor } from "./plain.ts";
import { type Breakdown, charged } from "./breakdown.ts";
import type { Grads, Tape } from "./tape.ts";
import type { Graph } from "./graph.ts";

export { type Breakdown, emptyBreakdown } from "./breakdown.ts";

const prefixed = <T>(p: Params<T>, prefix: string): Params<T> => ({ get: (name) => p.get(`${prefix}.${name}`) });

export class Sequential implements Layer {
  readonly kind = "other";
  constructor(readonly layers: Layer[], readonly label = "Sequential") {}

  paramShapes(): [string, number[]][] {
    return this.layers.flatMap((l, i) => l.paramShapes().map(([n, s]): [string, number[]] => [`${i}.${n}`, s]));
  }

  outputShape(input: readonly number[]): number[] {
    return this.layers.reduce<number[]>((s, l) => l.outputShape(s), [...input]);
  }

  /**
   * The order layers run in privately: a ReLU followed by a max pooling without
   * padding runs after it instead (max and ReLU commute, both being monotone),
   * so the costly ReLU sees k*k times fewer elements. The result is identical.
   */
  evaluationOrder(): number[] {
    const order = [...this.layers.keys()];
    for (let i = 0; i + 1 < order.length; i++) {
      const a = this.layers[order[i]], b = this.layers[order[i + 1]];
      if (a instanceof ReLU && b instanceof Pool2d && b.op === "max" && b.padding === 0) {
        [order[i], order[i + 1]] = [order[i + 1], order[i]];
        i++;
      }
    }
    return order;
  }

  /**
   * Inference (no tape) also runs each reordered max pooling and ReLU pair as
   * one step, charged to pooling, which may fold the ReLU into the pooling's
   * comparisons (see maxPool2d).
   */
  forward(x: AShare, p: Params<AShare>, breakdown?: Breakdown, tape?: Tape): Promise<AShare> {
    return this.#run(x, p, this.evaluationOrder(), breakdown, tape);
  }

  /**
   * Inference with the output opened to party r: {value at r (null elsewhere), its fixed-point bits}. When the
   * last layer is a product plus a bias (Linear, Conv2d), it is opened without reshare or truncation (Layer.openTo:
   * 1 round instead of 4, at scale 2f); otherwise the output is revealed as it is.
   */
  async openOutputTo(
    x: AShare,
    p: Params<AShare>,
    r: number,
    breakdown?: Breakdown,
  ): Promise<{ value: RingTensor | null; fracBits: number }> {
    const order = this.evaluationOrder(), last = order.at(-1)!, layer = this.layers[last];
    const f = x.party.fracBits;
    if (!layer?.openTo || order.length < 2) {
      using y = await this.forward(x, p, breakdown);
      return { value: await revealTo(y, r), fracBits: f };
    }
    using y = await this.#run(x, p, order.slice(0, -1), breakdown);
    const value = await charged(breakdown, layer.kind, x.party, () => layer.openTo!(y, prefixed(p, String(last)), r));
    return { value, fracBits: 2 * f };
  }

  async #run(x: AShare, p: Params<AShare>, order: number[], breakdown?: Breakdown, tape?: Tape): Promise<AShare> {
    let y = x.map((t) => t.clone());
    for (let k = 0; k < order.length; k++) {
      const i = order[k], layer = this.layers[i];
      using input = y;
      if (
        !tape && layer instanceof Pool2d && layer.op === "max" && order[k + 1] === i - 1 &&
        this.layers[i - 1] instanceof ReLU
      ) {
        y = await charged(breakdown, layer.kind, x.party, () => layer.forwardWithRelu(input));
        k++;
        continue;
      }
      const params = prefixed(p, String(i)), t = tape?.child(String(i));
      y = isComposite(layer)
        ? await layer.forward(input, params, breakdown, t)
        : await charged(breakdown, layer.kind, x.party, () => layer.forward(input, params, undefined, t));
    }
    return y;
  }

  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    return this.evaluationOrder().reduce(
      (y, i) => this.layers[i].plain(y, prefixed(p, String(i)), tape?.child(String(i))),
      x,
    );
  }

  /** The layers' backward passes in the reverse of the order they ran. */
  async backward(
    dy: AShare,
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
    breakdown?: Breakdown,
  ): Promise<AShare | null> {
    const order = this.evaluationOrder().reverse();
    let g: AShare | null = dy.map((t) => t.clone());
    for (const [k, i] of order.entries()) {
      const layer = this.layers[i], key = String(i);
      using gradOut: AShare = g!;
      const need = needInput || k < order.length - 1;
      const run = (): Promise<AShare | null> =>
        layer.backward(gradOut, prefixed(p, key), tape.child(key), grads.child(key), need, breakdown);
      g = isComposite(layer) ? await run() : await charged(breakdown, layer.kind, dy.party, run);
      if (!g) break;
    }
    return g;
  }

  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    return this.evaluationOrder().reverse().reduce(
      (g, i) => this.layers[i].plainBackward(g, prefixed(p, String(i)), tape.child(String(i)), grads.child(String(i))),
      dy,
    );
  }
}

const isComposite = (l: Layer) => l instanceof Sequential || l instanceof Residual;

/** y = main(x) + shortcut(x), the shortcut being the identity when absent. */
export class Residual implements Layer {
  readonly kind = "other";
  readonly label = "Residual";
  constructor(readonly main: Sequential, readonly shortcut: Sequential | null = null) {}

  paramShapes(): [string, number[]][] {
    const m = this.main.paramShapes().map(([n, s]): [string, number[]] => [`main.${n}`, s]);
    const s = this.shortcut?.paramShapes().map(([n, sh]): [string, number[]] => [`shortcut.${n}`, sh]) ?? [];
    return [...m, ...s];
  }

  outputShape(input: readonly number[]): number[] {
    const m = this.main.outputShape(input), s = this.shortcut?.outputShape(input) ?? [...input];
    if (m.join() !== s.join()) throw new RangeError(`Residual: branches give [${m}] and [${s}]`);
    return m;
  }

  async forward(x: AShare, p: Params<AShare>, breakdown?: Breakdown, tape?: Tape): Promise<AShare> {
    using m = await this.main.forward(x, prefixed(p, "main"), breakdown, tape?.child("main"));
    if (!this.shortcut) return m.add(x);
    using s = await this.shortcut.forward(x, prefixed(p, "shortcut"), breakdown, tape?.child("shortcut"));
    return m.add(s);
  }

  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    const m = this.main.plain(x, prefixed(p, "main"), tape?.child("main"));
    return plainAdd(m, this.shortcut ? this.shortcut.plain(x, prefixed(p, "shortcut"), tape?.child("shortcut")) : x);
  }

  /** dx = main'(dy) + shortcut'(dy), the identity shortcut passing dy through. */
  async backward(
    dy: AShare,
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
    breakdown?: Breakdown,
  ): Promise<AShare | null> {
    const main = await this.main.backward(
      dy,
      prefixed(p, "main"),
      tape.child("main"),
      grads.child("main"),
      true,
      breakdown,
    );
    using m = main!;
    const side = this.shortcut
      ? await this.shortcut.backward(
        dy,
        prefixed(p, "shortcut"),
        tape.child("shortcut"),
        grads.child("shortcut"),
        true,
        breakdown,
      )
      : null;
    using s = side;
    return needInput ? m.add(s ?? dy) : null;
  }

  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const m = this.main.plainBackward(dy, prefixed(p, "main"), tape.child("main"), grads.child("main"));
    const s = this.shortcut?.plainBackward(
      dy,
      prefixed(p, "shortcut"),
      tape.child("shortcut"),
      grads.child("shortcut"),
    );
    return plainAdd(m, s ?? dy);
  }
}

/** What a model runs: the zoo's layer sequences, or a graph (imported from ONNX). */
export type Net = Sequential | Graph;

export class Model {
  constructor(readonly name: string, readonly net: Net, readonly inputShape: readonly number[]) {}

  paramShapes(): [string, number[]][] {
    return this.net.paramShapes();
  }

  /** The output shape for a batch, or a clear error for an input the model cannot take. */
  checkInput(shape: readonly number[]): number[] {
    if (shape.length !== this.inputShape.length + 1 || shape.slice(1).join() !== this.inputShape.join()) {
      throw new RangeError(
        `${this.name} takes inputs of shape [batch, ${this.inputShape.join(", ")}], got [${shape.join(", ")}]`,
      );
    }
    return this.net.outputShape(shape);
  }
}

/** Weights keyed by parameter name. */
export type Weights = Map<string, PlainTensor>;

/** Kaiming-uniform weights and small biases from a seeded generator (public, for tests and benchmarks). */
export function initWeights(model: Model, seed: number): Weights {
  let s = BigInt(seed) & 0xffffffffffffffffn;
  const next = () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  };
  const w: Weights = new Map();
  const shapes = model.paramShapes(), names = new Set(shapes.map(([name]) => name));
  // batch normalization with running statistics (batchnorm.ts): gamma 1, beta 0, mean 0, variance 1, as torch;
  // recognized by the sibling `running_var`, and drawing nothing, so other layers' weights are unchanged
  const bnInit = (name: string): number | null => {
    const dot = name.lastIndexOf("."), prefix = name.slice(0, dot + 1), last = name.slice(dot + 1);
    if (!names.has(`${prefix}running_var`)) return null;
    return ({ weight: 1, bias: 0, running_mean: 0, running_var: 1 } as Record<string, number>)[last] ?? null;
  };
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const constant = bnInit(name);
    if (constant !== null) {
      w.set(name, new PlainTensor(shape, new Float64Array(n).fill(constant)));
      continue;
    }
    const fanIn = shape.length > 1 ? n / shape[0] : shape[0];
    const bound = name.endsWith("scale") ? 0 : Math.sqrt(6 / fanIn);
    const data = Float64Array.from(
      { length: n },
      () =>
        name.endsWith("scale")
          ? 0.5 + next()
          : name.endsWith("bias") || name.endsWith("shift")
          ? (next() - 0.5) * 0.1
          : (2 * next() - 1) * bound,
    );
    w.set(name, new PlainTensor(shape, data));
  }
  return w;
}

export function plainParams(w: Weights): Params<PlainTensor> {
  return {
    get: (name) => {
      const t = w.get(name);
      if (!t) throw new Error(`no weight named ${name}`);
      return t;
    },
  };
}

/** Shares the owner's weights (every party calls this; only the owner passes them). */
export async function shareWeights(
  p: Party,
  model: Model,
  owner: number,
  weights: Weights | null,
): Promise<Map<string, AShare>> {
  const out = new Map<string, AShare>();
  for (const [name, shape] of model.paramShapes()) {
    const w = weights?.get(name);
    if (p.index === owner && (!w || w.shape.join() !== shape.join())) {
      throw new RangeError(`weight ${name}: expected shape [${shape}], got ${w ? `[${w.shape}]` : "none"}`);
    }
    const value = p.index === owner ? RingTensor.encode(p.backend, w!.data, p.fracBits, shape) : null;
    out.set(name, await shareInput(p, owner, value, shape));
    value?.dispose();
  }
  return out;
}

export function sharedParams(m: Map<string, AShare>): Params<AShare> {
  return {
    get: (name) => {
      const t = m.get(name);
      if (!t) throw new Error(`no shared weight named ${name}`);
      return t;
    },
  };
}
