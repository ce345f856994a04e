/**
 * Handlers of the ops that move elements without computing: Flatten, Reshape, (Un)Squeeze, Transpose, Concat,
 * Cast, and the shape arithmetic PyTorch exports for `x.view(x.size(0), -1)` (Shape, Gather, Slice, Constant),
 * which folds to constants here; a shape entry may be the symbolic batch.
 */
import { concatElems, gatherElems, sliceElems, transposeElems } from "./constant_tensors.ts";
import type { Handler, NodeContext } from "./node_context.ts";
import { TensorProto_DataType as DataType } from "./onnx_pb.ts";
import {
  type Const,
  type Dim,
  type FloatConst,
  type IntConst,
  product,
  showShape,
  tensorValue,
  type Value,
} from "./values.ts";

export const flatten: Handler = (c) => {
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

export const reshape: Handler = (c) => {
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

export const unsqueeze: Handler = (c) => {
  const x = c.value(0);
  const axes = axesOf(c);
  if (!x || c.failed) return;
  if (!axes) return c.problem("axes must be given");
  const shape: Dim[] = [...(x.kind === "act" ? x.shape : x.dims)];
  const rank = shape.length + axes.length;
  for (const a of axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q)) shape.splice(a, 0, 1);
  reshapeTo(c, x, shape);
};

export const squeeze: Handler = (c) => {
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

export const transpose: Handler = (c) => {
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

export const concat: Handler = (c) => {
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

export const constant: Handler = (c) => {
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

export const shape: Handler = (c) => {
  const x = c.value(0);
  if (!x) return;
  const dims: Dim[] = x.kind === "act" ? x.shape : x.dims;
  const rank = dims.length;
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = norm(c.int("start", 0)), end = norm(c.int("end", rank));
  const data = dims.slice(start, Math.max(start, end));
  c.setConst({ kind: "int", dims: [data.length], data });
};

export const gather: Handler = (c) => {
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

export const cast: Handler = (c) => {
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

export const slice: Handler = (c) => {
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
