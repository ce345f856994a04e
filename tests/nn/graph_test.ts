/**
 * Graph models on sharings: every op's private forward and backward against
 * the float64 twin (lib/nn/plain_ops.ts and plain_windows.ts, themselves
 * tested against loops written from the definitions), residual and branching
 * graphs, values freed after their last use, and the ReLU folded into a max
 * pooling at inference.
 */
import assert from "node:assert/strict";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import {
  Model,
  plainParams,
  Residual,
  Sequential,
  sharedParams,
  shareWeights,
  type Weights,
} from "../../lib/nn/model.ts";
import { Conv2d, ReLU } from "../../lib/nn/layers.ts";
import { BatchNorm } from "../../lib/nn/batchnorm.ts";
import type { PlainTensor } from "../../lib/nn/plain.ts";
import { Grads, Tape } from "../../lib/nn/tape.ts";
import { Graph } from "../../lib/nn/graph.ts";
import type { GraphNode, GraphSpec } from "../../lib/nn/graph_spec.ts";
import { emptyBreakdown } from "../../lib/nn/breakdown.ts";
import { modelByName } from "../../lib/nn/zoo.ts";
import { sequentialToGraph } from "../../lib/nn/graph_from_sequential.ts";
import { seededWeights } from "../../lib/nn/calibrate.ts";
import { architectureDigest } from "../../lib/nn/architecture.ts";
import { deviceTest } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";
import { open, random, relativeError, share } from "./twin_helpers.ts";

/** A graph of `nodes` from "x" of the given shape (no batch) to the last node's output. */
function graph(inputShape: number[], nodes: GraphNode[]): Graph {
  const spec: GraphSpec = { input: { name: "x", shape: inputShape }, output: nodes[nodes.length - 1].output, nodes };
  return new Graph(spec);
}

/** Weights in [-0.5, 0.5), scales of batch normalization in [0.5, 1.5). */
function weightsFor(g: Graph, seed: number): Weights {
  return new Map(
    g.paramShapes().map(([name, shape], k) => {
      const t = random(shape, seed + k, -0.5, 0.5);
      return [name, name.endsWith(".scale") ? t.map((v) => v + 1) : t];
    }),
  );
}

async function compare(g: Graph, batch: number, seed: number, o: { range?: number; train?: boolean } = {}) {
  const inputShape = [batch, ...g.spec.input.shape];
  const model = new Model("graph", g, g.spec.input.shape);
  const weights = weightsFor(g, seed);
  const x = random(inputShape, seed + 100, -(o.range ?? 1), o.range ?? 1);
  const train = o.train ?? true;
  const tape = new Tape(), grads = new Grads<PlainTensor>();
  const y = g.plain(x, plainParams(weights), train ? tape : undefined);
  const dy = random(y.shape, seed + 200);
  const dx = train ? g.plainBackward(dy, plainParams(weights), tape, grads) : null;
  const [got] = await runParties(async (p) => {
    const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
    using xs = await share(p, 1, x), dys = await share(p, 2, dy);
    using t = new Tape();
    const gs = new Grads<AShare>();
    using ys = await g.forward(xs, sharedParams(w), undefined, train ? t : undefined);
    const out = {
      y: await open(ys),
      shape: ys.shape,
      dx: null as Float64Array | null,
      grads: new Map<string, Float64Array>(),
    };
    if (train) {
      using dxs = (await g.backward(dys, sharedParams(w), t, gs, true))!;
      out.dx = await open(dxs);
      for (const [n, v] of gs.map) out.grads.set(n, await open(v));
    }
    gs.map.forEach((v) => v.dispose());
    w.forEach((v) => v.dispose());
    return out;
  });
  return { got, want: { y, dx, grads: grads.map } };
}

const conv = (
  name: string,
  input: string,
  a: Partial<Extract<GraphNode, { op: "conv" }>> & { inChannels: number; outChannels: number },
): GraphNode => ({
  name,
  op: "conv",
  inputs: [input],
  output: name,
  kernel: [3, 3],
  stride: [1, 1],
  padding: [1, 1],
  dilation: [1, 1],
  groups: 1,
  bias: true,
  ...a,
});
const unary = (name: string, input: string, n: Record<string, unknown>): GraphNode =>
  ({ name, inputs: [input], output: name, ...n }) as GraphNode;

const cases: [string, () => Graph, number, number][] = [
  // name, graph, batch, relative error bound on the output and every gradient
  [
    "conv: groups 2, dilation 2, stride [2, 1], padding [1, 0]",
    () =>
      graph([4, 9, 7], [
        conv("c", "x", {
          inChannels: 4,
          outChannels: 6,
          groups: 2,
          dilation: [2, 2],
          stride: [2, 1],
          padding: [1, 0],
          kernel: [3, 2],
        }),
      ]),
    2,
    1e-3,
  ],
  [
    "linear on a 3-D input",
    () => graph([3, 6], [unary("l", "x", { op: "linear", inFeatures: 6, outFeatures: 4, bias: true })]),
    2,
    1e-3,
  ],
  [
    "two branches added, and concatenated along the channels",
    () =>
      graph([2, 5, 5], [
        conv("a", "x", { inChannels: 2, outChannels: 3 }),
        conv("b", "x", { inChannels: 2, outChannels: 3, kernel: [1, 1], padding: [0, 0] }),
        { name: "sum", op: "add", inputs: ["a", "b"], output: "sum" },
        { name: "cat", op: "concat", inputs: ["sum", "a", "x"], output: "cat", axis: 1 },
        unary("r", "cat", { op: "relu" }),
      ]),
    2,
    2e-3,
  ],
  [
    "constants: add_const [c, 1, 1], mul_const scalar and per channel, neg",
    () =>
      graph([3, 4, 4], [
        unary("shift", "x", { op: "add_const", shape: [3, 1, 1] }),
        unary("scale", "shift", { op: "mul_const", shape: [] }),
        unary("cs", "scale", { op: "mul_const", shape: [3, 1, 1] }),
        unary("n", "cs", { op: "neg" }),
      ]),
    2,
    1e-3,
  ],
  [
    "clip: ReLU6 and a two-sided clip, then one with only a maximum",
    () =>
      graph([40], [
        unary("six", "x", { op: "clip", min: 0, max: 6 }),
        unary("band", "six", { op: "clip", min: 1, max: 4 }),
        unary("top", "x", { op: "clip", max: 2 }),
        { name: "s", op: "add", inputs: ["band", "top"], output: "s" },
      ]),
    3,
    1e-5,
  ],
  [
    "max pooling 3x2, stride [2, 1], padding [1, 0]",
    () => graph([2, 7, 6], [unary("m", "x", { op: "maxpool", kernel: [3, 2], stride: [2, 1], padding: [1, 0] })]),
    2,
    1e-6,
  ],
  [
    "average pooling without the padding in the count",
    () =>
      graph([2, 7, 7], [
        unary("a", "x", { op: "avgpool", kernel: [3, 3], stride: [2, 2], padding: [1, 1], countIncludePad: false }),
      ]),
    2,
    1e-4,
  ],
  [
    "average pooling with the padding counted, global average pooling, batch normalization",
    () =>
      graph([2, 6, 6], [
        unary("a", "x", { op: "avgpool", kernel: [2, 2], stride: [2, 2], padding: [1, 1], countIncludePad: true }),
        unary("bn", "a", { op: "batchnorm", channels: 2 }),
        unary("g", "bn", { op: "globalavgpool" }),
      ]),
    2,
    1e-4,
  ],
  [
    "pad, transpose, reshape with the batch, flatten, linear",
    () =>
      graph([2, 3, 4], [
        unary("p", "x", { op: "pad", pads: [[0, 0], [0, 0], [1, 2], [0, 1]] }),
        unary("t", "p", { op: "transpose", perm: [0, 3, 1, 2] }),
        unary("r", "t", { op: "reshape", shape: ["batch", 5, -1] }),
        unary("f", "r", { op: "flatten", axis: 1 }),
        unary("l", "f", { op: "linear", inFeatures: 60, outFeatures: 3, bias: false }),
      ]),
    2,
    1e-3,
  ],
];

cases.push([
  "a zoo-style residual block with batch statistics (batchnorm_stats), through sequentialToGraph",
  () => {
    const block = new Sequential([
      // no bias before a batch normalization: its gradient is exactly zero (the mean removes it)
      new Conv2d(2, 4, 3, { padding: 1, bias: false }),
      new BatchNorm(4),
      new ReLU(),
      new Residual(new Sequential([new Conv2d(4, 4, 3, { padding: 1, bias: false }), new BatchNorm(4)])),
      new ReLU(),
    ]);
    return new Graph(sequentialToGraph(new Model("block", block, [2, 5, 5])));
  },
  4,
  2e-3,
]);

for (const [name, make, batch, bound] of cases) {
  deviceTest(`graph: ${name}, forward and backward against the twin`, async () => {
    const { got, want } = await compare(make(), batch, 7, { range: name.startsWith("clip") ? 8 : 1 });
    assert.deepEqual(got.shape, want.y.shape);
    const yErr = relativeError(got.y, want.y.data);
    assert.ok(yErr <= bound, `${name}: forward error ${yErr}`);
    const dxErr = relativeError(got.dx!, want.dx!.data);
    assert.ok(dxErr <= bound, `${name}: dx error ${dxErr}`);
    assert.deepEqual([...got.grads.keys()].sort(), [...want.grads.keys()].sort());
    for (const [n, g] of want.grads) {
      const e = relativeError(got.grads.get(n)!, g.data);
      assert.ok(e <= bound, `${name}: gradient of ${n} error ${e}`);
    }
  });
}

deviceTest("graph: a ReLU read only by a max pooling runs inside it at inference, with the same result", async () => {
  const g = graph([2, 6, 6], [
    conv("c", "x", { inChannels: 2, outChannels: 3 }),
    unary("r", "c", { op: "relu" }),
    unary("m", "r", { op: "maxpool", kernel: [2, 2], stride: [2, 2], padding: [0, 0] }),
    unary("s", "m", { op: "softmax", axis: -1 }),
  ]);
  const { got, want } = await compare(g, 2, 3, { train: false });
  assert.ok(relativeError(got.y, want.y.data) <= 1e-3);
  // the fused run makes one comparison tree per window instead of a ReLU on every input: fewer rounds than apart
  const weights = weightsFor(g, 3), x = random([2, 2, 6, 6], 9);
  const model = new Model("graph", g, g.spec.input.shape);
  const [rounds] = await runParties(async (p) => {
    const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
    using xs = await share(p, 1, x);
    const inference = emptyBreakdown();
    using _y = await g.forward(xs, sharedParams(w), inference);
    using t = new Tape();
    const training = emptyBreakdown();
    using _z = await g.forward(xs, sharedParams(w), training, t);
    w.forEach((v) => v.dispose());
    return {
      inference: inference.relu.rounds + inference.pool.rounds,
      training: training.relu.rounds + training.pool.rounds,
      relu: inference.relu.rounds,
    };
  });
  assert.equal(rounds.relu, 0, "no separate ReLU at inference");
  assert.ok(rounds.inference < rounds.training, `${rounds.inference} rounds fused, ${rounds.training} apart`);
});

Deno.test("graph: malformed graphs are refused by name", () => {
  const relu = (name: string, input: string): GraphNode => ({ name, op: "relu", inputs: [input], output: name });
  assert.throws(() => graph([3], [relu("a", "b"), relu("b", "x")]), /reads "b" before it is computed/);
  assert.throws(() => graph([3], [relu("a", "x"), relu("a", "a")]), /two nodes are named "a"/);
  assert.throws(
    () => new Graph({ input: { name: "x", shape: [3] }, output: "y", nodes: [relu("a", "x")] }),
    /the output "y" is never computed/,
  );
  const g = graph([2, 4, 4], [conv("c", "x", { inChannels: 3, outChannels: 1 })]);
  assert.throws(() => g.outputShape([1, 2, 4, 4]), /node "c" \(conv\): input \[1, 2, 4, 4\] is not \[n, 3, h, w\]/);
  assert.throws(() => g.outputShape([1, 3, 4, 4]), /takes inputs of shape \[batch, 2, 4, 4\]/);
});

deviceTest("graph: a zoo model run as a graph gives the Sequential's result, rounds and bytes", async () => {
  const seq = modelByName("lenet:max"), g = new Graph(sequentialToGraph(seq));
  const asGraph = new Model("lenet:max", g, seq.inputShape);
  assert.deepEqual(g.paramShapes(), seq.paramShapes(), "the same weight names and shapes");
  const weights = seededWeights(seq, 5), x = random([2, 1, 28, 28], 6, 0, 1);
  const results = await runParties(async (p) => {
    const w = await shareWeights(p, seq, 0, p.index === 0 ? weights : null);
    using xs = await share(p, 1, x);
    const run = async (m: Model) => {
      const s0 = p.mesh.stats();
      using y = await m.net.forward(xs, sharedParams(w));
      const s1 = p.mesh.stats();
      return { y: await open(y), rounds: s1.rounds - s0.rounds, bytes: s1.bytesSent - s0.bytesSent };
    };
    const out = { seq: await run(seq), graph: await run(asGraph) };
    w.forEach((v) => v.dispose());
    return out;
  });
  const { seq: a, graph: b } = results[0];
  assert.equal(b.rounds, a.rounds);
  assert.equal(b.bytes, a.bytes);
  assert.ok(relativeError(b.y, a.y) <= 1e-4, `graph vs Sequential: ${relativeError(b.y, a.y)}`);
  const twin = seq.net.plain(x, plainParams(weights));
  assert.ok(relativeError(b.y, twin.data) <= 1e-3);
});

/**
 * openOutputTo (what `infer` runs to reveal): the last Linear's product opened straight to the party, untruncated at
 * 2f, in 3 rounds fewer than forward + truncation + reveal (corrected truncation), in both runtimes; a graph whose
 * output is not a product (a ReLU after the last linear) is revealed as forward leaves it.
 */
deviceTest(
  "openOutputTo: the logits' product opened to one party, 3 rounds fewer, Sequential and graph alike",
  async () => {
    const seq = modelByName("lenet:max"), spec = sequentialToGraph(seq);
    const asGraph = new Model("lenet:max", new Graph(spec), seq.inputShape);
    const last = spec.nodes.at(-1)!;
    const withRelu = new Model(
      "relu-out",
      new Graph({
        ...spec,
        nodes: [...spec.nodes, { name: "out_relu", op: "relu", inputs: [last.output], output: "relu_out" }],
        output: "relu_out",
      }),
      seq.inputShape,
    );
    const weights = seededWeights(seq, 5), x = random([2, 1, 28, 28], 6, 0, 1);
    const [at0, , got] = await runParties(async (p) => {
      const w = await shareWeights(p, seq, 0, p.index === 0 ? weights : null);
      using xs = await share(p, 1, x);
      const counted = async <T>(fn: () => Promise<T>) => {
        const r0 = p.mesh.rounds, value = await fn();
        return { value, rounds: p.mesh.rounds - r0 };
      };
      const opened = async (m: Model) => {
        const { value: o, rounds } = await counted(() => m.net.openOutputTo(xs, sharedParams(w), 2));
        const value = o.value ? Array.from(o.value.decode(o.fracBits)) : null;
        o.value?.dispose();
        return { value, fracBits: o.fracBits, rounds };
      };
      const revealed = await counted(async () => {
        using y = await seq.net.forward(xs, sharedParams(w));
        return await open(y);
      });
      const out = { seq: await opened(seq), graph: await opened(asGraph), relu: await opened(withRelu), revealed };
      w.forEach((v) => v.dispose());
      return out;
    }, { truncation: "corrected" });
    assert.deepEqual([at0.seq.value, at0.graph.value, at0.relu.value], [null, null, null], "party 0 learns nothing");
    const twin = seq.net.plain(x, plainParams(weights)).data;
    // the opened logits against the twin, and against the reshared, truncated and revealed ones (f = 20)
    assert.ok(relativeError(got.seq.value!, twin) <= 1e-4, `opened vs twin: ${relativeError(got.seq.value!, twin)}`);
    assert.ok(relativeError(got.seq.value!, got.revealed.value) <= 1e-4);
    assert.ok(relativeError(got.graph.value!, got.seq.value!) <= 1e-4);
    // another run's truncations: within a few units of 2^-20
    got.relu.value!.forEach((v, i) => assert.ok(Math.abs(v - Math.max(0, got.revealed.value[i])) <= 2 ** -17));
    assert.equal(got.seq.fracBits, 40);
    assert.equal(got.relu.fracBits, 20);
    assert.equal(
      got.seq.rounds,
      got.revealed.rounds - 3,
      "the reshare, the two rounds of truncation and the reveal: 1",
    );
    assert.equal(got.graph.rounds, got.seq.rounds);
    assert.equal(got.relu.rounds, got.revealed.rounds + 10, "forward, the ReLU's 10 rounds and the reveal");
  },
);

Deno.test("graph: the architecture digest tells two graphs apart by one attribute", () => {
  const make = (stride: number) =>
    new Model("g", graph([2, 6, 6], [conv("c", "x", { inChannels: 2, outChannels: 3, stride: [stride, stride] })]), [
      2,
      6,
      6,
    ]);
  assert.equal(architectureDigest(make(1)), architectureDigest(make(1)));
  assert.notEqual(architectureDigest(make(1)), architectureDigest(make(2)));
});
