/**
 * Dead kernel taps cut before inference (lib/nn/trim_taps.ts): which taps
 * read only padding, which zoo models have whole dead rings, the cut
 * convolution's opened product against BigInt from the full kernel's
 * definition, and a model's private forward, cut, against its float64 twin
 * uncut.
 */
import assert from "node:assert/strict";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { Conv2d, ReLU } from "../../lib/nn/layers.ts";
import {
  emptyBreakdown,
  initWeights,
  Model,
  plainParams,
  Sequential,
  sharedParams,
  shareWeights,
} from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { liveTaps, trimDeadTaps, trimShares } from "../../lib/nn/trim_taps.ts";
import { Graph } from "../../lib/nn/graph.ts";
import { sequentialToGraph } from "../../lib/nn/graph_from_sequential.ts";
import { modelByName } from "../../lib/nn/zoo.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, refConv, Rng } from "../helpers.ts";
import { runParties } from "../mpc/harness.ts";
import { fixedShares } from "../mpc/privacy_cases.ts";

Deno.test("liveTaps: the taps that read inside the input for some output", () => {
  // [size, kernel, stride, padding] -> [lo, hi)
  const cases: [number[], [number, number]][] = [
    [[1, 3, 1, 1], [1, 2]], // a 1x1 map under a 3x3 kernel: the centre only
    [[1, 5, 1, 2], [2, 3]],
    [[2, 5, 1, 2], [1, 4]], // two outputs, each reading two of the five taps' rows
    [[3, 5, 1, 2], [0, 5]], // AlexNet's conv2 on 3x3: every tap reads the input somewhere
    [[2, 3, 1, 1], [0, 3]],
    [[2, 3, 2, 1], [1, 3]], // stride 2 leaves one output, whose tap 0 reads padding
    [[32, 11, 4, 2], [0, 11]],
    [[4, 3, 1, 0], [0, 3]],
    [[3, 3, 1, 0], [0, 3]], // no padding: nothing dead
    [[1, 3, 1, 2, 2], [1, 2]], // dilation 2 on a 1x1 map: taps at -2, 0, 2
    [[3, 3, 1, 2, 2], [0, 3]],
  ];
  for (const [[size, k, s, p, d], want] of cases) {
    assert.deepEqual(liveTaps(size, k, s, p, d), want, `${[size, k, s, p, d]}`);
  }
});

Deno.test("trimDeadTaps: AlexNet CIFAR-10's three convolutions on 1x1 maps lose their outer ring; others keep all", () => {
  const alex = trimDeadTaps(modelByName("alexnet-cifar10"));
  assert.deepEqual([...alex.trims], [["6.weight", [1, 1]], ["8.weight", [1, 1]], ["10.weight", [1, 1]]]);
  const shapes = new Map(alex.model.paramShapes());
  assert.deepEqual(shapes.get("6.weight"), [384, 192, 1, 1]);
  assert.deepEqual(shapes.get("10.weight"), [256, 256, 1, 1]);
  assert.deepEqual(shapes.get("3.weight"), [192, 64, 5, 5], "conv2 on 3x3 keeps its 5x5 kernel");
  assert.deepEqual(alex.model.net.outputShape([1, 3, 32, 32]), [1, 10]);
  for (const name of ["lenet", "lenet:max", "alexnet-tinyimagenet", "vgg16-cifar10", "resnet18-cifar10"]) {
    const m = modelByName(name), t = trimDeadTaps(m);
    assert.equal(t.trims.size, 0, name);
    assert.equal(t.model, m, `${name}: the model itself`);
  }
});

// Conv 5x5 pad 2 on 2x2 (ring 1 dead), ReLU, conv 3x3 stride 2 pad 1 on 2x2 (tap 0 dead, not a ring: kept),
// ReLU, conv 3x3 pad 1 on 1x1 (ring 1 dead).
const small = () =>
  new Model(
    "trim test",
    new Sequential([
      new Conv2d(2, 3, 5, { padding: 2 }),
      new ReLU(),
      new Conv2d(3, 4, 3, { stride: 2, padding: 1 }),
      new ReLU(),
      new Conv2d(4, 5, 3, { padding: 1 }),
    ]),
    [2, 2, 2],
  );

Deno.test("trimDeadTaps: whole rings only, kernel and padding reduced together", () => {
  const t = trimDeadTaps(small());
  assert.deepEqual([...t.trims], [["0.weight", [1, 1]], ["4.weight", [1, 1]]]);
  const layers = (t.model.net as Sequential).layers as Conv2d[];
  assert.deepEqual([layers[0].kernel, layers[0].padding], [3, 1]);
  assert.deepEqual([layers[2].kernel, layers[2].padding, layers[2].stride], [3, 1, 2]);
  assert.deepEqual([layers[4].kernel, layers[4].padding], [1, 0]);
});

deviceTest(
  "a cut convolution's product, opened, equals the full kernel's BigInt convolution word for word",
  async () => {
    const rng = new Rng(5),
      g = { n: 1, c: 4, h: 1, w: 1, oc: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1 };
    const xv = rng.words(4), wv = rng.words(5 * 4 * 9);
    const want = refConv(xv, wv, { ...g, groups: 1 });
    const full = new Conv2d(4, 5, 3, { padding: 1, bias: false });
    const cut = trimDeadTaps(new Model("one conv", new Sequential([new Conv2d(4, 4, 1), new ReLU(), full]), [4, 1, 1]));
    const layer = (cut.model.net as Sequential).layers[2] as Conv2d;
    const got = await runParties(async (p) => {
      using x = fixedShares(p, Array.from(xv), [1, 4, 1, 1], 11);
      const w = new Map([["2.weight", fixedShares(p, Array.from(wv), [5, 4, 3, 3], 12)]]);
      trimShares(w, cut.trims);
      try {
        assert.deepEqual(w.get("2.weight")!.shape, [5, 4, 1, 1]);
        using y = await layer.openTo!(x, { get: () => w.get("2.weight")! }, 0);
        return y?.toBigUint64Array() ?? null;
      } finally {
        w.forEach((s) => s.dispose());
      }
    });
    assertWordsEqual(got[0]!, want, "opened product");
  },
);

/** One conv of dilation 2 on a 3x1 map (see the graph test). */
const dilated = () =>
  new Model(
    "dilated",
    new Graph({
      input: { name: "x", shape: [1, 3, 1] },
      output: "y",
      nodes: [{
        op: "conv",
        name: "c",
        inputs: ["x"],
        output: "y",
        inChannels: 1,
        outChannels: 4,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 2],
        dilation: [2, 2],
        groups: 1,
        bias: false,
      }],
    }),
    [1, 3, 1],
  );

Deno.test("trimDeadTaps on a graph (as an ONNX import gives): per axis, where the padding allows", () => {
  const graph = new Model("trim test, graph", new Graph(sequentialToGraph(small())), [2, 2, 2]);
  const t = trimDeadTaps(graph);
  assert.equal(t.trims.size, 2);
  assert.deepEqual([...t.trims.values()], [[1, 1], [1, 1]]);
  const convs = (t.model.net as Graph).spec.nodes.filter((n) => n.op === "conv");
  assert.deepEqual(convs.map((n) => n.op === "conv" && [n.kernel, n.padding]), [
    [[3, 3], [1, 1]],
    [[3, 3], [1, 1]], // stride 2: tap 0 dead on one side only, kept
    [[1, 1], [0, 0]],
  ]);
  // dilation 2 on a 3x1 map: down, padding 1, taps at -1, 1, 3: the outer two are dead, but the padding cannot shrink
  // by 2, so the axis is kept; across, padding 2, taps at -2, 0, 2: cut to the centre
  assert.deepEqual([...trimDeadTaps(dilated()).trims], [["c.weight", [0, 1]]]);
});

const cases = {
  sequential: () => cutAgainstTwin(small()),
  graph: () => cutAgainstTwin(new Model("g", new Graph(sequentialToGraph(small())), [2, 2, 2])),
  "dilated graph, one axis cut": () => cutAgainstTwin(dilated(), 1),
};
for (const [kind, run] of Object.entries(cases)) {
  deviceTest(`a model's private forward with its dead taps cut agrees with the uncut float64 twin (${kind})`, run);
}

async function cutAgainstTwin(model: Model, cuts = 2): Promise<void> {
  const { model: cut, trims } = trimDeadTaps(model), f = 20;
  assert.equal(trims.size, cuts);
  const weights = initWeights(model, 3), rng = new Rng(8), shape = [1, ...model.inputShape];
  const n = shape.reduce((a, b) => a * b, 1);
  const input = new PlainTensor(
    shape,
    Float64Array.from({ length: n }, () => (rng.int(2) ? 1 : -1) * (0.5 + rng.int(501) / 1000)),
  );
  const want = model.net.plain(input, plainParams(weights)).data;
  const live = backend().liveBuffers().count;
  const got = await runParties(async (p) => {
    const w = await shareWeights(p, model, 0, p.index === 0 ? weights : null);
    trimShares(w, trims);
    const plain = p.index === 1 ? RingTensor.encode(p.backend, input.data, f, input.shape) : null;
    using x = await shareInput(p, 1, plain, input.shape);
    plain?.dispose();
    const y = await cut.net.openOutputTo(x, sharedParams(w), 0, emptyBreakdown());
    w.forEach((s) => s.dispose());
    using v = y.value;
    return v ? Array.from(v.decode(y.fracBits)) : null;
  }, { fracBits: f, truncation: "corrected" });
  assert.equal(backend().liveBuffers().count, live, "no buffer left behind (the uncut shares disposed)");
  assert.equal(got[0]!.length, want.length);
  got[0]!.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4, `output ${i}: ${v} against ${want[i]}`));
  assert.ok(want.some((v) => Math.abs(v) > 0.05), "the twin's outputs are not all near zero");
}

Deno.test("trimShares refuses a weight it does not have", () => {
  assert.throws(
    () => trimShares(new Map<string, AShare>(), new Map([["4.weight", [1, 1]]])),
    /no shared weight named 4\.weight/,
  );
});
