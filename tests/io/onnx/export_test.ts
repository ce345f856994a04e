/**
 * ONNX export checked against an independent runtime: the exported bytes run
 * in ONNX Runtime (float32) and must agree with our float64 references, the
 * zoo's plaintext twin for zoo models and export_eval.ts (written from
 * graph_spec.ts's definitions) for hand-built graphs that use every op.
 */
import assert from "node:assert/strict";
import { runOrt } from "./ort.ts";
import { fromBinary } from "@bufbuild/protobuf";
import { exportOnnx } from "../../../lib/io/onnx/export.ts";
import { ModelProtoSchema, TensorProto_DataType } from "../../../lib/io/onnx/onnx_pb.ts";
import { sequentialToGraph } from "../../../lib/nn/graph_from_sequential.ts";
import { GraphNode, GraphSpec } from "../../../lib/nn/graph_spec.ts";
import { seededWeights } from "../../../lib/nn/calibrate.ts";
import { BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, Pool2d, ReLU } from "../../../lib/nn/layers.ts";
import { Model, plainParams, Residual, Sequential } from "../../../lib/nn/model.ts";
import { argmaxRows, PlainTensor } from "../../../lib/nn/plain.ts";
import { bottleneck, modelByName } from "../../../lib/nn/zoo.ts";
import { SeededRandom } from "../../../lib/data/random.ts";
import { evaluateGraph, type Tensor } from "./export_eval.ts";

type Weights = Map<string, { shape: readonly number[]; data: Float64Array }>;

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Seeded values in [lo, hi), rounded to float32 so that both sides see the same input. */
function seeded(shape: readonly number[], seed: number, lo = 0, hi = 1): Float64Array {
  const rng = new SeededRandom(seed, 3);
  return Float64Array.from(
    Float32Array.from({ length: sizeOf(shape) }, () => lo + (hi - lo) * (rng.nextUint32() / 2 ** 32)),
  );
}

async function ortOutput(bytes: Uint8Array, input: Tensor): Promise<Tensor> {
  const out = await runOrt(bytes, { name: null, shape: input.shape, data: Float32Array.from(input.data) });
  return { shape: out.shape, data: Float64Array.from(out.data) };
}

/** float32 against float64: errors relative to the output's magnitude. */
function assertClose(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepStrictEqual(actual.shape, expected.shape, `${what}: shape`);
  let magnitude = 0, error = 0;
  for (let i = 0; i < expected.data.length; i++) {
    magnitude = Math.max(magnitude, Math.abs(expected.data[i]));
    error = Math.max(error, Math.abs(actual.data[i] - expected.data[i]));
  }
  const tolerance = 1e-4 * Math.max(1, magnitude);
  assert(error <= tolerance, `${what}: max abs error ${error} > ${tolerance} (magnitude ${magnitude})`);
}

// ---------------------------------------------------------------------------
// Zoo models: export, run in ORT, compare with model.net.plain.

/** A small ResNet-like model: stem, padded max pooling, a projecting and an identity bottleneck, dropout. */
function tinyResnet(): Model {
  return new Model(
    "tiny-resnet",
    new Sequential([
      new Conv2d(3, 8, 3, { stride: 1, padding: 1, bias: false }),
      new BatchNorm2d(8),
      new ReLU(),
      new Pool2d("max", 3, 2, 1),
      bottleneck(8, 4, 2),
      new ReLU(),
      bottleneck(16, 4, 1),
      new ReLU(),
      new Residual(new Sequential([new Conv2d(16, 16, 3, { padding: 1 }), new Pool2d("avg", 3, 1, 1)])),
      new GlobalAvgPool(),
      new Flatten(),
      new Dropout(),
      new Linear(16, 10),
    ]),
    [3, 12, 12],
  );
}

const zooCases: [string, () => Model][] = [
  ["lenet", () => modelByName("lenet")],
  ["lenet:max", () => modelByName("lenet:max")],
  ["alexnet-cifar10", () => modelByName("alexnet-cifar10")],
  ["alexnet-cifar10:max", () => modelByName("alexnet-cifar10:max")],
  ["tiny-resnet", tinyResnet],
];

for (const [name, build] of zooCases) {
  Deno.test(`export: ${name} in ONNX Runtime matches the plaintext twin`, async () => {
    const model = build(), spec = GraphSpec.parse(sequentialToGraph(model));
    const weights = seededWeights(model, 11);
    // the graph's parameters are the zoo's, by name
    const graphParams = spec.nodes.flatMap((n) => paramNames(n).map((p) => `${n.name}.${p}`)).sort();
    assert.deepStrictEqual(graphParams, model.paramShapes().map(([n]) => n).sort());

    const shape = [2, ...model.inputShape], x = seeded(shape, 5);
    const expected = model.net.plain(new PlainTensor(shape, x), plainParams(weights));
    const actual = await ortOutput(exportOnnx(spec, weights), { shape, data: x });
    assertClose(actual, { shape: [...expected.shape], data: expected.data }, name);
    const classes = expected.shape[1];
    assert.deepStrictEqual(argmaxRows(actual.data, classes), argmaxRows(expected.data, classes), `${name}: argmax`);
  });
}

Deno.test("export: sequentialToGraph agrees with the twin under the reference evaluator", () => {
  for (const model of [modelByName("lenet:max"), tinyResnet()]) {
    const spec = sequentialToGraph(model), weights = seededWeights(model, 3);
    const shape = [1, ...model.inputShape], x = seeded(shape, 9);
    const twin = model.net.plain(new PlainTensor(shape, x), plainParams(weights));
    assertClose(
      evaluateGraph(spec, weights, { shape, data: x }),
      { shape: [...twin.shape], data: twin.data },
      model.name,
    );
  }
});

Deno.test("export: sequentialToGraph names nodes by Sequential position and drops dropout", () => {
  const spec = sequentialToGraph(tinyResnet());
  const names = spec.nodes.map((n) => n.name);
  assert.deepStrictEqual(new Set(names).size, names.length);
  for (const expected of ["0", "4.main.0", "4.shortcut.0", "4.add", "6.add", "8.main.0", "12"]) {
    assert(names.includes(expected), `no node ${expected} in ${names}`);
  }
  assert(!spec.nodes.some((n) => n.name === "11"), "dropout became a node");
  assert.deepStrictEqual(spec.input, { name: "input", shape: [3, 12, 12] });
  assert.deepStrictEqual(spec.nodes.at(-1)!.output, "output");
  assert.deepStrictEqual(spec.output, "output");
  const avg = spec.nodes.find((n) => n.name === "8.main.1");
  assert.deepStrictEqual(avg?.op === "avgpool" && avg.countIncludePad, true);
});

// ---------------------------------------------------------------------------
// Hand-built graphs covering every op, against the reference evaluator.

/** Parameter names and shapes of a node, from graph_spec.ts. */
function paramShapes(n: GraphNode): [string, number[]][] {
  switch (n.op) {
    case "conv":
      return [
        ["weight", [n.outChannels, n.inChannels / n.groups, ...n.kernel]],
        ...(n.bias ? [["bias", [n.outChannels]] as [string, number[]]] : []),
      ];
    case "linear":
      return [
        ["weight", [n.outFeatures, n.inFeatures]],
        ...(n.bias ? [["bias", [n.outFeatures]] as [string, number[]]] : []),
      ];
    case "add_const":
    case "mul_const":
      return [["value", n.shape]];
    case "batchnorm":
      return [["scale", [n.channels]], ["shift", [n.channels]]];
    default:
      return [];
  }
}
const paramNames = (n: GraphNode) => paramShapes(n).map(([p]) => p);

function randomWeights(spec: GraphSpec, seed: number): Weights {
  const w: Weights = new Map();
  spec.nodes.forEach((n, i) => {
    for (const [p, shape] of paramShapes(n)) {
      w.set(`${n.name}.${p}`, { shape, data: seeded(shape, seed * 1000 + i, -1, 1) });
    }
  });
  return w;
}

type NodeInit = Record<string, unknown> & { op: GraphNode["op"] };

/** A chain of nodes named n0, n1, ... each reading the previous one unless it names its inputs. */
function chain(inputShape: number[], nodes: NodeInit[], extra: Partial<GraphSpec> = {}): GraphSpec {
  let prev = "x";
  const built = nodes.map((init, i) => {
    const name = (init.name as string | undefined) ?? `n${i}`;
    const node = { inputs: [prev], output: `v${i}`, ...init, name };
    prev = node.output;
    return node;
  });
  return GraphSpec.parse({ input: { name: "x", shape: inputShape }, output: prev, nodes: built, ...extra });
}

const pair = (a: number, b: number) => [a, b];

/** Whether this checkout's GraphSpec lets clip leave a bound out (a newer schema does). */
const clipBoundsOptional = GraphNode.safeParse({ name: "c", op: "clip", inputs: ["x"], output: "y", max: 1 }).success;

const handBuilt: [string, GraphSpec][] = [
  [
    "pad, grouped dilated strided conv, clip, pools, constants, neg, batchnorm, concat, softmax",
    chain([4, 9, 9], [
      { op: "pad", pads: [[0, 0], [0, 0], [1, 2], [2, 1]] },
      {
        op: "conv",
        inChannels: 4,
        outChannels: 6,
        kernel: pair(3, 2),
        stride: pair(2, 1),
        padding: pair(1, 0),
        dilation: pair(2, 1),
        groups: 2,
        bias: true,
      },
      { op: "clip", min: -0.5, max: 0.7 },
      { op: "avgpool", kernel: pair(3, 2), stride: pair(2, 1), padding: pair(1, 1), countIncludePad: false },
      { op: "maxpool", kernel: pair(2, 3), stride: pair(1, 2), padding: pair(1, 1) },
      { op: "add_const", shape: [6, 1, 1] },
      { op: "mul_const", shape: [] },
      { op: "batchnorm", channels: 6 },
      { op: "neg" },
      { op: "relu", inputs: ["v7"] },
      { op: "concat", inputs: ["v8", "v9", "v5"], axis: 1 },
      { op: "softmax", axis: 1 },
    ]),
  ],
  [
    "linear on 3-D input (MatMul + Add), transpose, reshape with batch, Gemm without bias, row constant, softmax",
    chain([3, 8], [
      { op: "linear", inFeatures: 8, outFeatures: 5, bias: true, params: { weight: "fc1.weight", bias: "fc1.bias" } },
      { op: "transpose", perm: [0, 2, 1] },
      { op: "reshape", shape: ["batch", 15] },
      { op: "linear", inFeatures: 15, outFeatures: 6, bias: false, params: { weight: "fc2.w" } },
      { op: "mul_const", shape: [6] },
      { op: "add_const", shape: [6], params: { value: "row_offset" } },
      { op: "softmax", axis: -1 },
    ], { onnx: { opset: 17, producer: "pytorch", graphName: "seq-model" } }),
  ],
  [
    "batch off axis 0 in reshape, linear 3-D without bias, flatten, two-branch add, globalavgpool",
    chain([2, 3, 4], [
      { op: "transpose", perm: [1, 0, 2, 3] },
      { op: "reshape", shape: [2, "batch", 0, 4] },
      { op: "transpose", perm: [1, 0, 2, 3] },
      {
        op: "conv",
        inChannels: 2,
        outChannels: 3,
        kernel: pair(1, 3),
        stride: pair(1, 1),
        padding: pair(0, 1),
        dilation: pair(1, 1),
        groups: 1,
        bias: false,
      },
      {
        op: "conv",
        inputs: ["v2"],
        inChannels: 2,
        outChannels: 3,
        kernel: pair(3, 1),
        stride: pair(1, 1),
        padding: pair(1, 0),
        dilation: pair(1, 1),
        groups: 1,
        bias: true,
      },
      { op: "add", inputs: ["v3", "v4"] },
      { op: "linear", inFeatures: 4, outFeatures: 4, bias: false },
      { op: "globalavgpool" },
      { op: "flatten", axis: 1 },
      { op: "reshape", shape: [-1, 3] },
    ]),
  ],
  [
    "flatten at axis 2, reshape with 0 and -1, linear 3-D, clip as ReLU6",
    chain([2, 3, 5], [
      { op: "flatten", axis: 2 },
      { op: "reshape", shape: [0, -1, 5] },
      { op: "linear", inFeatures: 5, outFeatures: 7, bias: true },
      { op: "clip", min: 0, max: 6 },
      { op: "mul_const", shape: [1, 7] },
      ...(clipBoundsOptional ? [{ op: "clip", max: 1.5 } as NodeInit, { op: "clip", min: -0.25 } as NodeInit] : []),
    ]),
  ],
];

for (const [what, spec] of handBuilt) {
  Deno.test(`export: ${what} in ONNX Runtime matches the reference`, async () => {
    const weights = randomWeights(spec, 21);
    const shape = [2, ...spec.input.shape], x = seeded(shape, 13, -2, 2);
    const expected = evaluateGraph(spec, weights, { shape, data: x });
    const actual = await ortOutput(exportOnnx(spec, weights), { shape, data: x });
    assertClose(actual, expected, what);
  });
}

// ---------------------------------------------------------------------------
// The file itself.

Deno.test("export: round trip keeps initializer names, opset, shapes and float32 values", () => {
  const spec = handBuilt[1][1], weights = randomWeights(spec, 21);
  const model = fromBinary(ModelProtoSchema, exportOnnx(spec, weights));
  assert.deepStrictEqual(model.irVersion, 8n);
  assert.deepStrictEqual(model.producerName, "cryptgpu");
  assert.deepStrictEqual(model.opsetImport.map((o) => [o.domain, o.version]), [["", 17n]]);
  const graph = model.graph!;
  assert.deepStrictEqual(graph.name, "seq-model");
  const names = graph.initializer.map((t) => t.name);
  for (const kept of ["fc1.weight", "fc1.bias", "fc2.w", "row_offset", "n4.value"]) {
    assert(names.includes(kept), `no initializer ${kept} in ${names}`);
  }
  assert.deepStrictEqual(new Set(names).size, names.length);
  // Gemm keeps torch's [out, in] layout; the 3-D linear's MatMul takes the transpose
  const fc2 = graph.initializer.find((t) => t.name === "fc2.w")!,
    fc1 = graph.initializer.find((t) => t.name === "fc1.weight")!;
  assert.deepStrictEqual(fc2.dims, [6n, 15n]);
  assert.deepStrictEqual(fc1.dims, [8n, 5n]);
  assert.deepStrictEqual(fc2.dataType, TensorProto_DataType.FLOAT);
  const raw = fc2.rawData, values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  assert.deepStrictEqual(Array.from(values), Array.from(Float32Array.from(weights.get("n3.weight")!.data)));
  assert.deepStrictEqual(graph.node.map((n) => n.opType), [
    "MatMul",
    "Add",
    "Transpose",
    "Reshape",
    "Gemm",
    "Mul",
    "Add",
    "Softmax",
  ]);
  const dims = (v: typeof graph.input[number]) =>
    v.type!.value.case === "tensorType" ? v.type!.value.value.shape!.dim.map((d) => d.value.value) : [];
  assert.deepStrictEqual(dims(graph.input[0]), ["N", 3n, 8n]);
  assert.deepStrictEqual(dims(graph.output[0]), ["N", 6n]);
  assert.deepStrictEqual(graph.input.map((v) => v.name), ["x"]);
});

Deno.test("export: default opset 13, and an older imported opset is raised to 13", () => {
  const spec = handBuilt[3][1], weights = randomWeights(spec, 1);
  const opsetOf = (s: GraphSpec) => fromBinary(ModelProtoSchema, exportOnnx(s, weights)).opsetImport[0].version;
  assert.deepStrictEqual(opsetOf(spec), 13n);
  assert.deepStrictEqual(opsetOf({ ...spec, onnx: { opset: 9, producer: "old", graphName: "g" } }), 13n);
});

Deno.test("export: clear errors for a missing weight, a wrong size, and batch off axis 0 beside -1", () => {
  const spec = handBuilt[3][1], weights = randomWeights(spec, 1);
  const missing = new Map(weights);
  missing.delete("n2.bias");
  assert.throws(() => exportOnnx(spec, missing), /no weight 'n2.bias'/);
  const wrong = new Map(weights).set("n2.weight", { shape: [3], data: new Float64Array(3) });
  assert.throws(() => exportOnnx(spec, wrong), /n2\.weight/);
  const both = chain([2, 3], [{ op: "reshape", shape: [-1, "batch", 3] }]);
  assert.throws(() => exportOnnx(both, new Map()), /"batch" at axis 1 and a -1/);
});

Deno.test("export: an initializer that two nodes share is written once, and only when they agree", () => {
  const spec = chain([4], [
    { op: "linear", inFeatures: 4, outFeatures: 4, bias: false, params: { weight: "tied" } },
    { op: "linear", inFeatures: 4, outFeatures: 4, bias: false, params: { weight: "tied" } },
  ]);
  const weights = randomWeights(spec, 2);
  assert.throws(() => exportOnnx(spec, weights), /'tied' different values/);
  weights.set("n1.weight", weights.get("n0.weight")!);
  const graph = fromBinary(ModelProtoSchema, exportOnnx(spec, weights)).graph!;
  assert.deepStrictEqual(graph.initializer.map((t) => t.name), ["tied"]);
});
