/**
 * Handlers of the elementwise ops (Add, Sub, Mul, Div, Neg) and activations (Relu, Clip, Softmax). An op on
 * constants only is folded; an activation with a constant operand becomes add_const / mul_const, the constant
 * a parameter.
 */
import { broadcastDims, broadcastIndex } from "./constant_tensors.ts";
import { foldBiasIntoLinear } from "./fusions.ts";
import type { Handler, NodeContext } from "./node_context.ts";
import { type Act, type Const, showShape, size } from "./values.ts";

const ELEMENTWISE: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
};

/** Elementwise ops on two constants fold (numpy broadcasting); integer division truncates as ONNX's does. */
export function foldBinary(c: NodeContext, a: Const, b: Const): void {
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

export const add: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind === "act" && b.kind === "act") return addActivations(c, a, b);
  const [x, k, xi]: [Act, Const, number] = a.kind === "act" ? [a, b as Const, 0] : [b as Act, a as Const, 1];
  if (foldBiasIntoLinear(c, x, k, xi)) return;
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

export const sub: Handler = (c) => {
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

export const mul: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind === "act" && b.kind === "act") return c.problem("the product of two activations is not supported");
  const [x, k, xi]: [Act, Const, number] = a.kind === "act" ? [a, b as Const, 0] : [b as Act, a as Const, 1];
  emitConstOp(c, "mul_const", x, c.inputName(xi), k, 1 - xi);
};

export const div: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (b.kind === "act") return c.problem("division by an activation is not supported");
  emitConstOp(c, "mul_const", a as Act, c.inputName(0), b, 1, (v) => 1 / v);
};

export const neg: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  if (x.kind === "float") return c.setConst({ ...x, data: x.data.map((v) => -v) });
  if (x.kind === "int") return c.problem("negating an integer constant is not supported");
  c.emit({ op: "neg", inputs: [c.inputName(0)], output: c.output() });
  c.setAct(x.shape);
};

export const relu: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  if (x.kind === "float") return c.setConst({ ...x, data: x.data.map((v) => Math.max(v, 0)) });
  if (x.kind !== "act") return c.problem("ReLU of an integer constant is not supported");
  c.emit({ op: "relu", inputs: [c.inputName(0)], output: c.output() });
  c.setAct(x.shape);
};

/** Float32's largest value: what Clip's bounds default to before opset 11 (no bound at all). */
const FLOAT_MAX = 3.4028234663852886e38;

export const clip: Handler = (c) => {
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

export const softmax: Handler = (c) => {
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
