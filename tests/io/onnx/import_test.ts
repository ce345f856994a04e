/**
 * ONNX import: fixtures built like PyTorch's exports, checked for the GraphSpec and weights they become, and
 * evaluated (float64, tests/io/onnx/spec_eval.ts) against ONNX Runtime on random inputs, which shows the import
 * keeps the model's function. Refusals list every problem at once.
 */
import assert from "node:assert/strict";
import { analyzeOnnx, type ImportedGraph, importOnnx, OnnxImportError } from "../../../lib/io/onnx/import.ts";
import type { GraphNode } from "../../../lib/nn/graph_spec.ts";
import { atOddOffset, float, OnnxBuilder, tensor } from "./builder.ts";
import { runOrt } from "./ort.ts";
import { evalSpec } from "./spec_eval.ts";

const assertEquals = (actual: unknown, expected: unknown, message?: string) =>
  assert.deepStrictEqual(actual, expected, message);
const assertMatch = (text: string, pattern: RegExp) => assert.match(text, pattern);
function assertThrows<E extends Error>(f: () => unknown, kind: new (...args: never[]) => E): E {
  try {
    f();
  } catch (e) {
    assert(e instanceof kind, `threw ${e}`);
    return e;
  }
  throw new Error("did not throw");
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
function random(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  });
}

let seed = 1;
const rnd = (dims: number[]) => random(dims.reduce((a, b) => a * b, 1), seed++);
const positive = (dims: number[]) => rnd(dims).map((v) => Math.abs(v) + 0.5);

const ops = (g: ImportedGraph) => g.spec.nodes.map((n) => n.op);
function nodeOf<O extends GraphNode["op"]>(g: ImportedGraph, op: O, index = 0): Extract<GraphNode, { op: O }> {
  const found = g.spec.nodes.filter((n) => n.op === op);
  assert(found[index], `no ${op} node #${index} in ${ops(g)}`);
  return found[index] as Extract<GraphNode, { op: O }>;
}
const weight = (g: ImportedGraph, node: GraphNode, param: string) => {
  const w = g.weights.get(`${node.name}.${param}`);
  assert(w, `no weight ${node.name}.${param}`);
  return w;
};

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-9): void {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]));
    assert(Math.abs(actual[i] - expected[i]) <= tolerance * scale, `at ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Imports the model and compares our float64 evaluation of the GraphSpec with ONNX Runtime on random inputs. */
async function importAndCompare(bytes: Uint8Array, inputShape: number[], inputName = "input"): Promise<ImportedGraph> {
  const graph = importOnnx(bytes, "fixture.onnx");
  for (let trial = 0; trial < 2; trial++) {
    const data = Float32Array.from(rnd(inputShape).map((v) => 3 * v));
    const reference = await runOrt(bytes, { name: inputName, shape: inputShape, data });
    const ours = evalSpec(graph.spec, graph.weights, { shape: inputShape, data: Float64Array.from(data) });
    assertEquals(ours.shape, reference.shape);
    const magnitude = Math.max(1, ...Array.from(reference.data, Math.abs));
    const error = Math.max(...Array.from(ours.data, (v, i) => Math.abs(v - reference.data[i])));
    assert(error < 1e-4 * magnitude, `max abs error ${error} (magnitude ${magnitude})`);
  }
  return graph;
}

// ---------------------------------------------------------------------------
// Conv, BatchNormalization, pooling

/** A torch CNN block: Conv -> BatchNorm -> ReLU -> MaxPool -> Flatten -> Linear. */
function convBnNet(opts: { bnUsedTwice?: boolean } = {}) {
  const b = new OnnxBuilder(13).input("input", ["batch_size", 3, 8, 8]).output("logits", ["batch_size", 5]);
  const bn = { gamma: positive([4]), beta: rnd([4]), mean: rnd([4]), var: positive([4]) };
  const conv = { weight: rnd([4, 3, 3, 3]), bias: rnd([4]) };
  b.initializer("conv.weight", [4, 3, 3, 3], conv.weight)
    .initializer("conv.bias", [4], conv.bias)
    .initializer("bn.weight", [4], bn.gamma)
    .initializer("bn.bias", [4], bn.beta)
    .initializer("bn.running_mean", [4], bn.mean)
    .initializer("bn.running_var", [4], bn.var)
    .initializer("fc.weight", [5, 64], rnd([5, 64]))
    .initializer("fc.bias", [5], rnd([5]))
    .node(
      "Conv",
      ["input", "conv.weight", "conv.bias"],
      ["c"],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
      "/conv/Conv",
    )
    .node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], ["n"], {
      epsilon: float(1e-5),
      momentum: float(0.9),
    }, "/bn/BatchNormalization");
  let relu = "n";
  if (opts.bnUsedTwice) {
    b.node("Add", ["n", "c"], ["sum"], {}, "/Add");
    relu = "sum";
  }
  b.node("Relu", [relu], ["r"], {}, "/relu/Relu")
    .node("MaxPool", ["r"], ["p"], { kernel_shape: [2, 2], strides: [2, 2] }, "/pool/MaxPool")
    .node("Flatten", ["p"], ["f"], { axis: 1 }, "/Flatten")
    .node(
      "Gemm",
      ["f", "fc.weight", "fc.bias"],
      ["logits"],
      { alpha: float(1), beta: float(1), transB: 1 },
      "/fc/Gemm",
    );
  return { bytes: b.toBytes(), bn, conv };
}

Deno.test("import: Conv + BatchNormalization folds into the conv's weight and bias", async () => {
  const { bytes, bn, conv: original } = convBnNet();
  const g = await importAndCompare(bytes, [2, 3, 8, 8]);
  assertEquals(ops(g), ["conv", "relu", "maxpool", "flatten", "linear"]);
  const conv = nodeOf(g, "conv");
  assertEquals(conv.name, "/conv/Conv");
  assertEquals(conv.output, "n");
  assertEquals({ ...conv, params: undefined }, {
    name: "/conv/Conv",
    op: "conv",
    inputs: ["input"],
    output: "n",
    inChannels: 3,
    outChannels: 4,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
    dilation: [1, 1],
    groups: 1,
    bias: true,
    params: undefined,
  });
  assertEquals(conv.params, undefined, "folded parameters are no longer the initializers");
  // Float32 parameters, folded in float64: w' = w * scale[out], b' = b * scale + shift.
  const f = Math.fround;
  const scale = bn.gamma.map((gm, i) => f(gm) / Math.sqrt(f(bn.var[i]) + f(1e-5)));
  const w = weight(g, conv, "weight");
  assertEquals(w.shape, [4, 3, 3, 3]);
  assertClose(w.data, original.weight.map((v, i) => f(v) * scale[Math.floor(i / 27)]), 1e-12);
  const shift = bn.beta.map((bt, i) => f(bt) - f(bn.mean[i]) * scale[i]);
  assertClose(weight(g, conv, "bias").data, original.bias.map((v, i) => f(v) * scale[i] + shift[i]), 1e-12);
  const linear = nodeOf(g, "linear");
  assertEquals([linear.inFeatures, linear.outFeatures, linear.bias], [64, 5, true]);
  assertEquals(linear.params, { weight: "fc.weight", bias: "fc.bias" });
  assertEquals(g.spec.input, { name: "input", shape: [3, 8, 8] });
  assertEquals(g.spec.output, "logits");
  assertEquals(g.spec.onnx, { opset: 13, producer: "pytorch 2.5.0", graphName: "main_graph" });
  assertEquals([...g.weights.keys()].sort(), [
    "/conv/Conv.bias",
    "/conv/Conv.weight",
    "/fc/Gemm.bias",
    "/fc/Gemm.weight",
  ]);
});

Deno.test("import with batchNorm train: batch normalization with statistics, the file's names, ONNX's momentum", () => {
  const { bytes, bn } = convBnNet();
  const g = importOnnx(bytes, "cnn.onnx", { batchNorm: "train" });
  assertEquals(ops(g), ["conv", "batchnorm_stats", "relu", "maxpool", "flatten", "linear"]);
  const node = nodeOf(g, "batchnorm_stats");
  assertEquals([node.channels, node.momentum, node.maxVar], [4, 0.1, 2 ** 10]);
  assertEquals(node.params, {
    weight: "bn.weight",
    bias: "bn.bias",
    running_mean: "bn.running_mean",
    running_var: "bn.running_var",
  });
  assertClose(weight(g, node, "running_var").data, bn.var, 1e-6);
  assertEquals(g.notes, [
    'node "/bn/BatchNormalization" (BatchNormalization): epsilon 0.00001 raised to 0.0009765625 ' +
    "(2^-10, the smallest batch normalization takes)",
  ]);
  // running variances in the thousands (a first layer on 0-255 pixels): the inverse square root's range follows
  const big = new OnnxBuilder(13).input("x", ["n", 1, 4, 4]).output("y", ["n", 1, 4, 4])
    .initializer("g", [1], [1]).initializer("b", [1], [0]).initializer("m", [1], [100]).initializer("v", [1], [3000])
    .node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], { epsilon: float(0.001) }, "bn").toBytes();
  const wide = nodeOf(importOnnx(big, "big.onnx", { batchNorm: "train" }), "batchnorm_stats");
  assertEquals([wide.maxVar, wide.eps], [2 ** 16, Math.fround(0.001)]);
});

Deno.test("import: BatchNormalization stays a batchnorm node when the conv's output has another use", async () => {
  const { bytes, bn } = convBnNet({ bnUsedTwice: true });
  const g = await importAndCompare(bytes, [2, 3, 8, 8]);
  assertEquals(ops(g), ["conv", "batchnorm", "add", "relu", "maxpool", "flatten", "linear"]);
  const norm = nodeOf(g, "batchnorm");
  assertEquals(norm.channels, 4);
  const scale = bn.gamma.map((gm, i) => Math.fround(gm) / Math.sqrt(Math.fround(bn.var[i]) + Math.fround(1e-5)));
  assertClose(weight(g, norm, "scale").data, scale, 1e-6);
  const shift = bn.beta.map((bt, i) => Math.fround(bt) - Math.fround(bn.mean[i]) * scale[i]);
  assertClose(weight(g, norm, "shift").data, shift, 1e-6);
  assertEquals(nodeOf(g, "conv").params, { weight: "conv.weight", bias: "conv.bias" });
});

Deno.test("import: BatchNorm1d after a Linear folds into it; on the graph input it is a batchnorm node", async () => {
  const stats = (name: string, n: number, b: OnnxBuilder) =>
    b.initializer(`${name}.g`, [n], positive([n])).initializer(`${name}.b`, [n], rnd([n]))
      .initializer(`${name}.m`, [n], rnd([n])).initializer(`${name}.v`, [n], positive([n]));
  const b = new OnnxBuilder(15).input("input", ["N", 6]).output("y").initializer("w", [4, 6], rnd([4, 6]));
  stats("bn0", 6, b);
  stats("bn1", 4, b);
  b.node("BatchNormalization", ["input", "bn0.g", "bn0.b", "bn0.m", "bn0.v"], ["n0"], { epsilon: float(1e-3) })
    .node("Gemm", ["n0", "w"], ["h"], { transB: 1 })
    .node("BatchNormalization", ["h", "bn1.g", "bn1.b", "bn1.m", "bn1.v"], ["y"]);
  const g = await importAndCompare(b.toBytes(), [3, 6]);
  assertEquals(ops(g), ["batchnorm", "linear"]);
  assertEquals(nodeOf(g, "batchnorm").channels, 6);
  assertEquals([nodeOf(g, "linear").bias, nodeOf(g, "linear").output], [true, "y"]);
});

Deno.test("import: Conv geometry (stride, dilation, groups, no bias) and asymmetric pads as a pad node", async () => {
  const b = new OnnxBuilder(17).input("input", ["N", 4, 9, 9]).output("y")
    .initializer("w1", [6, 2, 3, 3], rnd([6, 2, 3, 3]))
    .initializer("w2", [3, 6, 2, 2], rnd([3, 6, 2, 2]))
    .node("Conv", ["input", "w1"], ["a"], { strides: [2, 1], pads: [1, 2, 1, 2], dilations: [1, 2], group: 2 }, "c1")
    .node("Conv", ["a", "w2"], ["y"], { pads: [0, 0, 1, 1] }, "c2");
  const g = await importAndCompare(b.toBytes(), [2, 4, 9, 9]);
  assertEquals(ops(g), ["conv", "pad", "conv"]);
  const c1 = nodeOf(g, "conv");
  assertEquals([c1.stride, c1.padding, c1.dilation, c1.groups, c1.bias, c1.inChannels], [
    [2, 1],
    [1, 2],
    [1, 2],
    2,
    false,
    4,
  ]);
  assertEquals(nodeOf(g, "pad").pads, [[0, 0], [0, 0], [0, 1], [0, 1]]);
  assertEquals(nodeOf(g, "conv", 1).padding, [0, 0]);
});

Deno.test("import: Pad + AveragePool (torch's AvgPool2d with padding) folds into one avgpool counting the pad", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 2, 7, 7]).output("y")
    .initializer("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], { type: "int64" })
    .initializer("zero", [], [0])
    .node("Pad", ["input", "pads", "zero"], ["padded"], { mode: "constant" }, "/pool/Pad")
    .node(
      "AveragePool",
      ["padded"],
      ["y"],
      { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0] },
      "/pool/AveragePool",
    );
  const g = await importAndCompare(b.toBytes(), [2, 2, 7, 7]);
  assertEquals(ops(g), ["avgpool"]);
  const pool = nodeOf(g, "avgpool");
  assertEquals([pool.inputs, pool.kernel, pool.stride, pool.padding, pool.countIncludePad], [
    ["input"],
    [3, 3],
    [2, 2],
    [1, 1],
    true,
  ]);
});

Deno.test("import: Pad before opset 11 (attributes), asymmetric Pad kept as a pad node", async () => {
  const b = new OnnxBuilder(10).input("input", ["N", 2, 6, 6]).output("y")
    .node("Pad", ["input"], ["padded"], { pads: [0, 0, 0, 1, 0, 0, 1, 0] })
    .node("AveragePool", ["padded"], ["y"], { kernel_shape: [2, 2], strides: [2, 2] });
  const g = await importAndCompare(b.toBytes(), [2, 2, 6, 6]);
  assertEquals(ops(g), ["pad", "avgpool"]);
  assertEquals(nodeOf(g, "pad").pads, [[0, 0], [0, 0], [0, 1], [1, 0]]);
  assertEquals(nodeOf(g, "pad").name, "Pad_0");
});

Deno.test("import: AveragePool with its own pads, count_include_pad 0 and 1", async () => {
  for (const countIncludePad of [0, 1]) {
    const b = new OnnxBuilder(13).input("input", ["N", 3, 5, 5]).output("y")
      .node("AveragePool", ["input"], ["y"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        count_include_pad: countIncludePad,
      });
    const g = await importAndCompare(b.toBytes(), [2, 3, 5, 5]);
    assertEquals(nodeOf(g, "avgpool").countIncludePad, countIncludePad === 1);
  }
});

Deno.test("import: MaxPool pads and ceil_mode; a zero Pad folds into it only after a ReLU", async () => {
  const fixed = new OnnxBuilder(13).input("input", ["N", 2, 8, 8]).output("y")
    .initializer("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], { type: "int64" })
    .node("MaxPool", ["input"], ["m"], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] })
    .node("MaxPool", ["m"], ["m2"], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })
    .node("Pad", ["m2", "pads"], ["p1"])
    .node("MaxPool", ["p1"], ["m3"], { kernel_shape: [3, 3], strides: [1, 1] })
    .node("Relu", ["m3"], ["r"])
    .node("Pad", ["r", "pads"], ["p2"])
    .node("MaxPool", ["p2"], ["y"], { kernel_shape: [3, 3], strides: [2, 2] });
  const g = await importAndCompare(fixed.toBytes(), [2, 2, 8, 8]);
  assertEquals(ops(g), ["maxpool", "maxpool", "pad", "maxpool", "relu", "maxpool"]);
  assertEquals(nodeOf(g, "maxpool", 0).padding, [1, 1]);
  assertEquals(nodeOf(g, "maxpool", 3).padding, [1, 1]);
  assertEquals(nodeOf(g, "maxpool", 3).inputs, ["r"]);
});

Deno.test("import: GlobalAveragePool, Flatten, Gemm with transB 0, alpha, beta and a [1, out] bias; Softmax", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 3, 4, 4]).output("y")
    .initializer("B", [3, 6], rnd([3, 6]))
    .initializer("C", [1, 6], rnd([1, 6]))
    .node("GlobalAveragePool", ["input"], ["g"])
    .node("Flatten", ["g"], ["f"])
    .node("Gemm", ["f", "B", "C"], ["z"], { alpha: float(0.5), beta: float(2) })
    .node("Softmax", ["z"], ["y"], { axis: -1 });
  const g = await importAndCompare(b.toBytes(), [3, 3, 4, 4]);
  assertEquals(ops(g), ["globalavgpool", "flatten", "linear", "softmax"]);
  assertEquals(nodeOf(g, "softmax").axis, 1);
  const linear = nodeOf(g, "linear");
  assertEquals(weight(g, linear, "weight").shape, [6, 3]);
  assertEquals(linear.params, undefined);
});

Deno.test("import: Softmax before opset 13 on the last axis", async () => {
  const b = new OnnxBuilder(11).input("input", ["N", 7]).output("y").node("Softmax", ["input"], ["y"], { axis: 1 });
  const g = await importAndCompare(b.toBytes(), [2, 7]);
  assertEquals(nodeOf(g, "softmax").axis, 1);
});

// ---------------------------------------------------------------------------
// Shapes: Reshape, the dynamic batch chain, Flatten, Unsqueeze/Squeeze, Transpose, Concat

/** What `x.view(x.size(0), -1)` exports with a dynamic batch (opset 11: Unsqueeze takes axes as an attribute). */
function viewChain(opset: number, withCastAndSlice = false) {
  const b = new OnnxBuilder(opset).input("input", ["batch_size", 2, 4, 4]).output("y")
    .initializer("w", [3, 2, 1, 1], rnd([3, 2, 1, 1]))
    .initializer("fc", [4, 48], rnd([4, 48]))
    .node("Conv", ["input", "w"], ["c"], { kernel_shape: [1, 1] })
    .node("Relu", ["c"], ["r"])
    .node("Shape", ["r"], ["shape"]);
  if (withCastAndSlice) {
    b.initializer("starts", [1], [0], { type: "int64" })
      .initializer("ends", [1], [1], { type: "int64" })
      .node("Slice", ["shape", "starts", "ends"], ["n1"])
      .node("Cast", ["n1"], ["n"], { to: 7 });
  } else {
    b.node("Constant", [], ["zero"], { value: { tensor: tensor("", [], [0], { type: "int64" }) } })
      .node("Gather", ["shape", "zero"], ["n0"], { axis: 0 });
    if (opset < 13) b.node("Unsqueeze", ["n0"], ["n"], { axes: [0] });
    else {
      b.node("Constant", [], ["axes"], { value: { tensor: tensor("", [1], [0], { type: "int64" }) } })
        .node("Unsqueeze", ["n0", "axes"], ["n"]);
    }
  }
  b.node("Constant", [], ["minus1"], { value_ints: [-1] })
    .node("Concat", ["n", "minus1"], ["target"], { axis: 0 })
    .node("Reshape", ["r", "target"], ["flat"])
    .node("Gemm", ["flat", "fc"], ["y"], { transB: 1 });
  return b.toBytes();
}

Deno.test("import: the dynamic view chain Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds to a batch reshape", async () => {
  for (const opset of [11, 13, 18]) {
    const g = await importAndCompare(viewChain(opset), [2, 2, 4, 4]);
    assertEquals(ops(g), ["conv", "relu", "reshape", "linear"]);
    assertEquals(nodeOf(g, "reshape").shape, ["batch", 48]);
  }
  const g = await importAndCompare(viewChain(13, true), [3, 2, 4, 4]);
  assertEquals(nodeOf(g, "reshape").shape, ["batch", 48]);
});

Deno.test("import: constant Reshape targets: a fixed batch of 1, 0 and -1", async () => {
  const b = new OnnxBuilder(13).input("input", [1, 2, 3, 4]).output("y")
    .initializer("s1", [2], [1, -1], { type: "int64" })
    .initializer("s2", [3], [0, 4, -1], { type: "int64" })
    .node("Reshape", ["input", "s1"], ["a"])
    .node("Reshape", ["a", "s2"], ["y"]);
  const g = await importAndCompare(b.toBytes(), [1, 2, 3, 4]);
  assertEquals(g.spec.nodes.map((n) => n.op === "reshape" && n.shape), [["batch", 24], ["batch", 4, 6]]);
});

Deno.test("import: Unsqueeze/Squeeze of activations, Transpose, Concat of activations, Constant nodes", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 6]).output("y")
    .initializer("ax", [1], [1], { type: "int64" })
    .node("Unsqueeze", ["input", "ax"], ["u"])
    .node("Squeeze", ["u", "ax"], ["s"])
    .node("Constant", [], ["k"], { value_float: float(0.25) })
    .node("Constant", [], ["row"], { value: { tensor: tensor("", [6], rnd([6]), { encoding: "typed" }) } })
    .node("Mul", ["s", "k"], ["m"])
    .node("Add", ["row", "m"], ["a"])
    .node("Concat", ["a", "s"], ["cat"], { axis: 1 })
    .node("Constant", [], ["shape3"], { value_ints: [0, 3, 4] })
    .node("Reshape", ["cat", "shape3"], ["r"])
    .node("Transpose", ["r"], ["y"], { perm: [0, 2, 1] });
  const g = await importAndCompare(b.toBytes(), [2, 6]);
  assertEquals(ops(g), ["reshape", "reshape", "mul_const", "add_const", "concat", "reshape", "transpose"]);
  assertEquals(nodeOf(g, "reshape", 0).shape, ["batch", 1, 6]);
  assertEquals(nodeOf(g, "concat").axis, 1);
  assertEquals(nodeOf(g, "transpose").perm, [0, 2, 1]);
  assertEquals(nodeOf(g, "mul_const").shape, []);
  assertEquals(weight(g, nodeOf(g, "mul_const"), "value").data, Float64Array.of(0.25));
});

// ---------------------------------------------------------------------------
// Linear layers, elementwise ops

Deno.test("import: MatMul + Add (3-D Linear) folds the bias; a bias-free MatMul stays a linear without bias", async () => {
  const b = new OnnxBuilder(14).input("input", ["N", 5, 8]).output("y")
    .initializer("W1", [8, 6], rnd([8, 6]))
    .initializer("b1", [6], rnd([6]))
    .initializer("W2", [6, 3], rnd([6, 3]))
    .node("MatMul", ["input", "W1"], ["mm"], {}, "/fc1/MatMul")
    .node("Add", ["b1", "mm"], ["h"], {}, "/fc1/Add")
    .node("Relu", ["h"], ["r"])
    .node("MatMul", ["r", "W2"], ["y"], {}, "/fc2/MatMul");
  const g = await importAndCompare(b.toBytes(), [2, 5, 8]);
  assertEquals(ops(g), ["linear", "relu", "linear"]);
  const [fc1, fc2] = [nodeOf(g, "linear", 0), nodeOf(g, "linear", 1)];
  assertEquals([fc1.name, fc1.output, fc1.inFeatures, fc1.outFeatures, fc1.bias], ["/fc1/MatMul", "h", 8, 6, true]);
  assertEquals(fc1.params, { bias: "b1" });
  assertEquals([fc2.inFeatures, fc2.outFeatures, fc2.bias], [6, 3, false]);
  assertEquals(weight(g, fc2, "weight").shape, [3, 6]);
});

Deno.test("import: Identity and Dropout are removed (their outputs renamed to their inputs)", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 4]).output("out")
    .initializer("w", [4, 4], rnd([4, 4]))
    .initializer("ratio", [], [0.5])
    .node("Identity", ["w"], ["w_shared"])
    .node("Gemm", ["input", "w_shared"], ["a"], { transB: 1 })
    .node("Dropout", ["a", "ratio"], ["d"])
    .node("Relu", ["d"], ["r"])
    .node("Identity", ["r"], ["out"]);
  const g = await importAndCompare(b.toBytes(), [2, 4]);
  assertEquals(ops(g), ["linear", "relu"]);
  assertEquals(nodeOf(g, "relu").inputs, ["a"]);
  assertEquals(g.spec.output, "r");
  assertEquals(nodeOf(g, "linear").params, { weight: "w" });
});

Deno.test("import: Sub, Mul, Div with a constant side, Neg, residual Add", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 3, 2, 2]).output("y")
    .initializer("mean", [1, 3, 1, 1], rnd([1, 3, 1, 1]))
    .initializer("std", [3, 1, 1], positive([3, 1, 1]))
    .initializer("two", [], [2])
    .initializer("c", [2], rnd([2]))
    .node("Sub", ["input", "mean"], ["a"])
    .node("Div", ["a", "std"], ["b"])
    .node("Sub", ["two", "b"], ["c1"])
    .node("Mul", ["c", "c1"], ["d"])
    .node("Neg", ["d"], ["e"])
    .node("Add", ["e", "b"], ["f"])
    .node("Sub", ["f", "input"], ["y"]);
  const g = await importAndCompare(b.toBytes(), [2, 3, 2, 2]);
  assertEquals(ops(g), ["add_const", "mul_const", "neg", "add_const", "mul_const", "neg", "add", "neg", "add"]);
  assertEquals(nodeOf(g, "add_const").shape, [3, 1, 1]);
  assertEquals(nodeOf(g, "add_const").params, undefined, "the value is -mean, not the initializer");
  assertEquals(nodeOf(g, "add_const", 1).params, { value: "two" });
});

Deno.test("import: Clip from inputs (opset 13), attributes (opset 6-10), one bound, ReLU", async () => {
  const b = new OnnxBuilder(13).input("input", ["N", 8]).output("y")
    .initializer("zero", [], [0])
    .initializer("six", [], [6])
    .initializer("lo", [], [-1])
    .node("Clip", ["input", "zero", "six"], ["a"], {}, "relu6")
    .node("Mul", ["input", "six"], ["big"])
    .node("Clip", ["big", "zero"], ["b"], {}, "asRelu")
    .node("Clip", ["big", "", "six"], ["c"], {}, "maxOnly")
    .node("Clip", ["big", "lo"], ["d"], {}, "minOnly")
    .node("Add", ["a", "b"], ["ab"])
    .node("Add", ["c", "d"], ["cd"])
    .node("Add", ["ab", "cd"], ["y"]);
  const g = await importAndCompare(b.toBytes(), [2, 8]);
  assertEquals(ops(g), ["clip", "mul_const", "relu", "clip", "clip", "add", "add", "add"]);
  const clips = g.spec.nodes.filter((n) => n.op === "clip").map((n) => n.op === "clip" && [n.min, n.max]);
  assertEquals(clips, [[0, 6], [undefined, 6], [-1, undefined]]);

  const old = new OnnxBuilder(10).input("input", ["N", 8]).output("y")
    .node("Clip", ["input"], ["y"], { min: float(-0.5), max: float(0.5) });
  const g2 = await importAndCompare(old.toBytes(), [2, 8]);
  assertEquals(nodeOf(g2, "clip").min, -0.5);
});

// ---------------------------------------------------------------------------
// Initializer encodings

Deno.test("import: initializers as float_data, int64_data, doubles and raw data at odd offsets", async () => {
  const w = rnd([4, 3]);
  const b = new OnnxBuilder(13).input("input", ["N", 3]).output("y")
    .initializer("w", [4, 3], w, { encoding: "typed" })
    .initializer("b64", [4], rnd([4]), { type: "double" })
    .initializer("w2", [2, 4], rnd([2, 4]))
    .initializer("shape", [2], [0, -1], { type: "int64", encoding: "typed" })
    .node("Cast", ["b64"], ["b"], { to: 1 })
    .node("Gemm", ["input", "w", "b"], ["h"], { transB: 1 })
    .node("Reshape", ["h", "shape"], ["r"])
    .node("Gemm", ["r", "w2"], ["y"], { transB: 1 });
  const bytes = atOddOffset(b.toBytes());
  assertEquals(bytes.byteOffset % 2, 1);
  const g = await importAndCompare(bytes, [2, 3]);
  assertClose(weight(g, nodeOf(g, "linear"), "weight").data, w.map(Math.fround));
});

Deno.test("import: node names are kept when usable and unique, else op_index", () => {
  // ONNX Runtime refuses repeated node names, so this one is only imported.
  const b = new OnnxBuilder(13).input("input", ["N", 4]).output("y")
    .initializer("w", [4, 4], rnd([4, 4]))
    .node("Gemm", ["input", "w"], ["a"], { transB: 1 }, "fc")
    .node("Gemm", ["a", "w"], ["b"], { transB: 1 }, "fc")
    .node("Relu", ["b"], ["y"], {}, "has space");
  const g = importOnnx(b.toBytes(), "names.onnx");
  assertEquals(g.spec.nodes.map((n) => n.name), ["fc", "Gemm_1", "Relu_2"]);
  assertEquals([...g.weights.keys()], ["fc.weight", "Gemm_1.weight"]);
});

Deno.test("import: initializers also listed as graph inputs (older exporters) are not inputs", async () => {
  const b = new OnnxBuilder(11).input("input", ["N", 4]).output("y")
    .initializer("w", [3, 4], rnd([3, 4]), { alsoInput: true })
    .node("Gemm", ["input", "w"], ["y"], { transB: 1 });
  const g = await importAndCompare(b.toBytes(), [2, 4]);
  assertEquals(g.spec.input, { name: "input", shape: [4] });
});

// ---------------------------------------------------------------------------
// Refusals

function problemsOf(bytes: Uint8Array): string[] {
  const { graph, problems } = analyzeOnnx(bytes, "model.onnx");
  assertEquals(graph, null);
  return problems;
}

Deno.test("import refusal: an unsupported op, an unsupported attribute and a dynamic shape, all in one error", () => {
  const b = new OnnxBuilder(13).input("input", ["N", 3, 8, 8]).output("a")
    .initializer("w", [4, 3, 3, 3], rnd([4, 3, 3, 3]))
    .node("Conv", ["input", "w"], ["a"], { auto_pad: "SAME_UPPER" }, "/features/Conv_3")
    .node("LSTM", ["input"], ["b"], {}, "x")
    .node("Reshape", ["input", "input"], ["c"])
    .node("Relu", ["b"], ["d"]);
  const error = assertThrows(() => importOnnx(b.toBytes(), "model.onnx"), OnnxImportError);
  assertEquals(error.problems, [
    `node "/features/Conv_3" (Conv): auto_pad SAME_UPPER is not supported`,
    `node "x" (LSTM): op LSTM is not supported`,
    `node "#2" (Reshape): the target shape ("input") is computed from the input (a dynamic shape)`,
  ]);
  assert(error.message.startsWith('model.onnx: cannot import: node "/features/Conv_3" (Conv): auto_pad'));
  assert(!error.message.includes("\n"));
});

Deno.test("import refusal: empty, corrupt and truncated files", () => {
  assertEquals(problemsOf(new Uint8Array()), ["the file is empty"]);
  assertMatch(problemsOf(Uint8Array.of(0xff, 0xff, 0xff, 0xff))[0], /^not an ONNX model/);
  const bytes = convBnNet().bytes;
  assertMatch(problemsOf(bytes.subarray(0, bytes.length - 100))[0], /^not an ONNX model \(protobuf decoding failed/);
  assertMatch(problemsOf(new TextEncoder().encode("hello world, not a model"))[0], /^not an ONNX model/);
  const error = assertThrows(() => importOnnx(new Uint8Array(), "x.onnx"), OnnxImportError);
  assertEquals(error.message, "x.onnx: cannot import: the file is empty");
});

Deno.test("import refusal: opsets, domains, inputs and outputs", () => {
  const base = () => new OnnxBuilder(13).input("input", ["N", 4]).output("y").node("Relu", ["input"], ["y"]);
  assertEquals(
    problemsOf(new OnnxBuilder(5).input("input", ["N", 4]).output("y").node("Relu", ["input"], ["y"]).toBytes()),
    [
      "opset 5 is outside the supported range 7-22",
    ],
  );
  assertEquals(problemsOf(base().withoutDefaultOpset().opsetImport("com.example", 1).toBytes()), [
    "the model imports no opset for the default ONNX domain",
  ]);
  assertEquals(problemsOf(base().input("mask", ["N", 4]).toBytes()), [
    `graph input "mask" is not an initializer (only one input is supported)`,
  ]);
  assertEquals(problemsOf(base().output("input").toBytes()), ["the graph has 2 outputs; exactly one is supported"]);
  assertEquals(
    problemsOf(
      new OnnxBuilder(13).opsetImport("com.microsoft", 1).input("input", ["N", 4]).output("y")
        .node("FusedGelu", ["input"], ["y"], {}, "g", "com.microsoft").toBytes(),
    ),
    [`node "g" (FusedGelu): domain "com.microsoft" is not supported`],
  );
  assertEquals(
    problemsOf(new OnnxBuilder(13).input("input", ["N", "C"]).output("y").node("Relu", ["input"], ["y"]).toBytes()),
    [
      `graph input "input": axis 1 ("C") is dynamic; only the first (batch) axis may be`,
    ],
  );
});

Deno.test("import refusal: external data, training BatchNorm, Div by an activation, old Softmax on an inner axis", () => {
  const b = new OnnxBuilder(11).input("input", ["N", 2, 3, 3]).output("y")
    .initializer("w", [2, 2, 1, 1], rnd([4]), { external: true })
    .initializer("one", [2], [1, 1])
    .node("Conv", ["input", "w"], ["a"], {}, "conv")
    .node("BatchNormalization", ["input", "one", "one", "one", "one"], ["bn", "mean_out"], {}, "bn")
    .node("Relu", ["mean_out"], ["r"])
    .node("Div", ["input", "input"], ["d"], {}, "div")
    .node("Softmax", ["input"], ["y"], { axis: 1 }, "sm");
  assertEquals(problemsOf(b.toBytes()), [
    `node "conv" (Conv): tensor "w" keeps its data in an external file, which is not supported`,
    `node "bn" (BatchNormalization): the running statistics outputs are not supported (inference only)`,
    `node "div" (Div): division by an activation is not supported`,
    `node "sm" (Softmax): axis 1 of a 4-D input: before opset 13 this normalizes over all axes from 1 on, which is not supported`,
  ]);
});

Deno.test("import refusal: ceil_mode that changes the size, reshape merging the batch, MatMul of activations", () => {
  const b = new OnnxBuilder(13).input("input", ["N", 2, 5, 5]).output("y")
    .initializer("s", [1], [-1], { type: "int64" })
    .node("MaxPool", ["input"], ["p"], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, "pool")
    .node("Reshape", ["input", "s"], ["flat"], {}, "flat")
    .node("MatMul", ["input", "input"], ["y"], {}, "mm");
  assertEquals(problemsOf(b.toBytes()), [
    `node "pool" (MaxPool): ceil_mode 1 is not supported (it changes the output size here)`,
    `node "flat" (Reshape): reshaping [batch, 2, 5, 5] to [-1] moves the batch into other axes`,
    `node "mm" (MatMul): only activation x constant [in, out] is supported`,
  ]);
});

Deno.test("import refusal: corrupted files give problems, never exceptions", () => {
  const bytes = viewChain(13);
  const noise = random(3 * 3000, 99);
  for (let trial = 0; trial < 3000; trial++) {
    const mutated = bytes.slice();
    for (let k = 0; k < 3; k++) {
      const at = Math.floor(((noise[3 * trial + k] + 1) / 2) * mutated.length);
      mutated[at] ^= 1 + (trial % 255);
    }
    const { graph, problems } = analyzeOnnx(mutated, "mutated.onnx");
    assert(graph !== null || problems.length > 0);
  }
});

Deno.test("import refusal: names and op types from the file cannot break the one-line message or drive a terminal", () => {
  const b = new OnnxBuilder(13).input("x", ["N", 4]).output("y");
  b.node("Relu", ["x"], ["r"], {}, "evil\n\u001b[31mred\u202eflip");
  b.node("LS\rTM\u0085", ["r"], ["y"], {}, "second");
  const { problems } = analyzeOnnx(b.toBytes(), "evil.onnx");
  assert.equal(problems.length, 1, problems.join(" | "));
  assert.match(problems[0], /LS\\u000dTM\\u0085/);
  // deno-lint-ignore no-control-regex -- the point is that none is left
  for (const p of problems) assert.doesNotMatch(p, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  assert.throws(
    () => importOnnx(b.toBytes(), "evil.onnx"),
    // deno-lint-ignore no-control-regex -- the point is that none is left
    (err: unknown) => err instanceof OnnxImportError && !/[\u0000-\u001f\u007f-\u009f]/.test(err.message),
  );
});
