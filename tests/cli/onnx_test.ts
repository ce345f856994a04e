/**
 * ONNX in and out through the command line, against ONNX Runtime as the
 * independent reference: a torch-shaped CNN shared and inferred privately,
 * trained privately and written back as ONNX, a zoo model exported, and
 * `inspect` on share and ONNX files.
 */
import assert from "node:assert/strict";
import { readTensorFile } from "../../lib/io/format.ts";
import { modelOf } from "../../lib/io/models.ts";
import { plainParams, type Weights } from "../../lib/nn/model.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { deviceAvailable, runCli } from "../helpers.ts";
import { float, OnnxBuilder } from "../io/onnx/builder.ts";
import { runOrt } from "../io/onnx/ort.ts";
import { loadEmbeddedMnist } from "../../lib/data/embedded.ts";
import { plainSource, type Schedule, trainPlain } from "../../lib/nn/training_loop.ts";

async function ok(...args: string[]) {
  const r = await runCli(args);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** Seeded values in [lo, hi) (mulberry32). */
function seeded(n: number, seed: number, lo = -0.5, hi = 0.5): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

/**
 * A digit classifier [N, 1, 28, 28] -> [N, 10] in the shapes PyTorch exports: a dynamic batch, Conv then an
 * unfolded BatchNormalization, Relu, MaxPool, a second Conv, AvgPool2d(2, padding=1) as Pad + AveragePool, Dropout
 * and Identity nodes, `x.view(x.size(0), -1)` as Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and Gemm.
 */
function digitCnn(bnEpsilon = 1e-5): Uint8Array {
  const b = new OnnxBuilder(13);
  b.input("input", ["batch", 1, 28, 28]).output("logits", ["batch", 10]);
  b.initializer("conv1.weight", [4, 1, 5, 5], seeded(100, 1));
  b.initializer("conv1.bias", [4], seeded(4, 2, -0.1, 0.1));
  b.initializer("bn.weight", [4], seeded(4, 3, 0.8, 1.2));
  b.initializer("bn.bias", [4], seeded(4, 4, -0.1, 0.1));
  b.initializer("bn.running_mean", [4], seeded(4, 5, -0.1, 0.1));
  b.initializer("bn.running_var", [4], seeded(4, 6, 0.5, 1.5));
  b.initializer("conv2.weight", [6, 4, 3, 3], seeded(216, 7, -0.3, 0.3));
  b.initializer("conv2.bias", [6], seeded(6, 8, -0.1, 0.1));
  b.initializer("fc.weight", [10, 6 * 4 * 4], seeded(960, 9, -0.2, 0.2));
  b.initializer("fc.bias", [10], seeded(10, 10, -0.1, 0.1));
  b.initializer("index0", [], [0], { type: "int64" });
  b.initializer("axes0", [1], [0], { type: "int64" });
  b.initializer("minus_one", [1], [-1], { type: "int64" });
  b.node(
    "Conv",
    ["input", "conv1.weight", "conv1.bias"],
    ["c1"],
    { kernel_shape: [5, 5], strides: [2, 2] },
    "/conv1/Conv",
  );
  b.node("BatchNormalization", ["c1", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], ["n1"], {
    epsilon: float(bnEpsilon),
  }, "/bn/BatchNormalization");
  b.node("Relu", ["n1"], ["r1"], {}, "/relu1/Relu");
  b.node("MaxPool", ["r1"], ["p1"], { kernel_shape: [2, 2], strides: [2, 2] }, "/pool1/MaxPool");
  b.node(
    "Conv",
    ["p1", "conv2.weight", "conv2.bias"],
    ["c2"],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    "/conv2/Conv",
  );
  b.node("Relu", ["c2"], ["r2"], {}, "/relu2/Relu");
  b.initializer("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], { type: "int64" });
  b.node("Pad", ["r2", "pads"], ["padded"], { mode: "constant" }, "/pool2/Pad");
  b.node("AveragePool", ["padded"], ["p2"], { kernel_shape: [2, 2], strides: [2, 2] }, "/pool2/AveragePool");
  b.node("Dropout", ["p2"], ["d"], {}, "/dropout/Dropout");
  b.node("Identity", ["d"], ["i"], {}, "/Identity");
  b.node("Shape", ["i"], ["shape"], {}, "/Shape");
  b.node("Gather", ["shape", "index0"], ["n"], { axis: 0 }, "/Gather");
  b.node("Unsqueeze", ["n", "axes0"], ["n1d"], {}, "/Unsqueeze");
  b.node("Concat", ["n1d", "minus_one"], ["target"], { axis: 0 }, "/Concat");
  b.node("Reshape", ["i", "target"], ["flat"], {}, "/Reshape");
  b.node(
    "Gemm",
    ["flat", "fc.weight", "fc.bias"],
    ["logits"],
    { transB: 1, alpha: float(1), beta: float(1) },
    "/fc/Gemm",
  );
  return b.toBytes();
}

const images = (n: number, seed: number) => seeded(n * 784, seed, 0, 1);

async function weightsOf(path: string): Promise<Weights> {
  const f = await readTensorFile(path);
  return new Map(f.header.tensors.map((t) => {
    const data = new Float64Array(f.data.slice(t.offset, t.offset + t.bytes).buffer);
    return [t.name, new PlainTensor(t.shape, data)];
  }));
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** The index of each row's largest value, and whether it leads the runner-up by more than `margin`. */
function argmaxClear(v: ArrayLike<number>, d: number, margin: number): { classes: number[]; clear: boolean } {
  const classes: number[] = [];
  let clear = true;
  for (let r = 0; r < v.length / d; r++) {
    const row = Array.from(v).slice(r * d, (r + 1) * d), best = row.indexOf(Math.max(...row));
    const second = Math.max(...row.filter((_, j) => j !== best));
    classes.push(best);
    clear &&= row[best] - second > margin;
  }
  return { classes, clear };
}

Deno.test({
  name:
    "ONNX: a torch-shaped CNN shared and inferred privately matches ONNX Runtime (logits within 1e-4, classes equal)",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-onnx-" });
    try {
      const bytes = digitCnn();
      await Deno.writeFile(`${dir}/cnn.onnx`, bytes);
      const shared = await ok("share", "--model", `${dir}/cnn.onnx`, "--out", `${dir}/w`);
      assert.match(shared.stdout, /cnn\.onnx: \d+ nodes, input \[batch, 1, 28, 28\]/);
      const x = images(3, 11);
      await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify({ shape: [3, 1, 28, 28], data: x }));
      await ok("share", "--input", `${dir}/x.json`, "--out", `${dir}/x`);
      const r = await ok(
        "local",
        "infer",
        "--model",
        `${dir}/w.p{i}.share`,
        "--input",
        `${dir}/x.p{i}.share`,
        "--json",
        "--insecure",
      );
      const got = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"), r.stdout.lastIndexOf("}") + 1));
      const want = await runOrt(bytes, { name: "input", shape: [3, 1, 28, 28], data: Float32Array.from(x) });
      assert.deepEqual(want.shape, [3, 10]);
      // f = 20: a truncation errs by 2^-20 (~1e-6), a layer sums up to 144 such errors times weights below 0.5, and
      // float32 in the reference adds ~1e-6: 1e-4 leaves a margin of 25 over the 3.6e-6 measured
      const err = maxAbs(got.logits, want.data);
      console.log(`  largest logit error against ONNX Runtime: ${err.toExponential(2)}`);
      assert.ok(err <= 1e-4, `logit error ${err}`);
      const ref = argmaxClear(want.data, 10, 4e-3);
      assert.ok(ref.clear, "the reference's classes are not clear enough to compare");
      assert.deepEqual(got.predictions, ref.classes);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "ONNX: an imported graph trains privately, and its reconstruction as ONNX runs in ONNX Runtime as our twin does",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-onnx-train-" });
    try {
      await Deno.writeFile(`${dir}/cnn.onnx`, digitCnn());
      await ok("share", "--model", `${dir}/cnn.onnx`, "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--dataset", "mnist", "--limit", "64", "--frac-bits", "16", "--out", `${dir}/d`);
      const trained = await ok(
        "local",
        "train",
        "--model",
        `${dir}/w.p{i}.share`,
        "--data",
        `${dir}/d.p{i}.share`,
        "--batch",
        "16",
        "--iterations",
        "4",
        "--lr",
        "0.05",
        "--insecure",
        "--out",
        `${dir}/t`,
      );
      assert.match(trained.stdout, /onnx:cnn: 4 iterations of batch 16/);
      await ok("reconstruct", `${dir}/w.p0.share`, `${dir}/w.p1.share`, "--out", `${dir}/before.cgtf`);
      await ok("reconstruct", `${dir}/t.p0.share`, `${dir}/t.p1.share`, "--out", `${dir}/t.cgtf`);
      await ok("reconstruct", `${dir}/t.p1.share`, `${dir}/t.p2.share`, "--out", `${dir}/t.onnx`);
      const before = await weightsOf(`${dir}/before.cgtf`), after = await weightsOf(`${dir}/t.cgtf`);
      const moved = [...after].reduce((m, [n, w]) => Math.max(m, maxAbs(w.data, before.get(n)!.data)), 0);
      assert.ok(moved > 1e-3, `training changed no weight by more than ${moved}`);
      // ONNX Runtime on the written file against the graph's float64 twin with the reconstructed weights
      const header = (await readTensorFile(`${dir}/t.cgtf`)).header;
      assert.ok(header.graph, "the trained model keeps its graph");
      const model = modelOf(header), x = images(4, 5);
      const twin = model.net.plain(new PlainTensor([4, 1, 28, 28], Float64Array.from(x)), plainParams(after));
      const ort = await runOrt(await Deno.readFile(`${dir}/t.onnx`), {
        name: "input",
        shape: [4, 1, 28, 28],
        data: Float32Array.from(x),
      });
      assert.deepEqual(ort.shape, [4, 10]);
      const err = maxAbs(ort.data, twin.data);
      assert.ok(err <= 1e-4, `ONNX Runtime vs the twin: ${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ONNX: share --batchnorm train keeps BatchNormalization: batch statistics in training against the twin, " +
    "running statistics at inference and in the ONNX written back (ONNX Runtime)",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-onnx-bn-" });
    try {
      // ONNX's default epsilon is below what batch normalization takes: raised, and said so
      await Deno.writeFile(`${dir}/small-eps.onnx`, digitCnn());
      const raised = await ok("share", "--model", `${dir}/small-eps.onnx`, "--batchnorm", "train", "--out", `${dir}/e`);
      assert.match(raised.stderr, /\/bn\/BatchNormalization.*: epsilon 0\.00001 raised to 0\.0009765625/);
      const bad = await runCli(["share", "--model", "lenet", "--batchnorm", "train", "--out", `${dir}/z`]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--batchnorm applies to an ONNX model/);

      const bytes = digitCnn(2 ** -10);
      await Deno.writeFile(`${dir}/cnn.onnx`, bytes);
      await ok("share", "--model", `${dir}/cnn.onnx`, "--batchnorm", "train", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("reconstruct", `${dir}/w.p0.share`, `${dir}/w.p1.share`, "--out", `${dir}/before.cgtf`);
      const header = (await readTensorFile(`${dir}/before.cgtf`)).header;
      const bn = header.graph!.nodes.find((n) => n.op === "batchnorm_stats");
      assert.ok(bn && bn.op === "batchnorm_stats", "BatchNormalization stays batch normalization");
      assert.deepEqual([bn.eps, bn.momentum], [2 ** -10, 0.1]);
      const before = await weightsOf(`${dir}/before.cgtf`);
      assert.equal(bn.params?.running_var, "bn.running_var", "the file's names are kept for the export");
      const [conv1, , fc] = header.graph!.nodes.filter((n) => n.op === "conv" || n.op === "linear").map((n) => n.name);
      assert.ok(
        before.has(`${bn.name}.running_var`) && before.has(`${conv1}.bias`),
        "BatchNormalization is not folded",
      );

      // inference from the running statistics, against ONNX Runtime on the same file
      const x = images(3, 11);
      await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify({ shape: [3, 1, 28, 28], data: x }));
      await ok("share", "--input", `${dir}/x.json`, "--frac-bits", "16", "--out", `${dir}/x`);
      const inferred = await ok(
        "local",
        "infer",
        ...["--model", `${dir}/w.p{i}.share`, "--input", `${dir}/x.p{i}.share`, "--json", "--insecure"],
      );
      const got = JSON.parse(inferred.stdout.slice(inferred.stdout.indexOf("{"), inferred.stdout.lastIndexOf("}") + 1));
      const want = await runOrt(bytes, { name: "input", shape: [3, 1, 28, 28], data: Float32Array.from(x) });
      // f = 16: the inverse square root errs by 2^-12 relative, truncations by 2^-16 each (measured 3.9e-5)
      const inferErr = maxAbs(got.logits, want.data);
      console.log(`  logits against ONNX Runtime: ${inferErr.toExponential(2)}`);
      assert.ok(inferErr <= 1e-3, `logits against ONNX Runtime: ${inferErr}`);

      // four private iterations against the twin of the same graph, weights and batches
      const schedule: Schedule = { batch: 16, iterations: 4, seed: 1, sgd: { lr: 0.05, momentum: 0.9 } };
      await ok("share", "--dataset", "mnist", "--limit", "64", "--frac-bits", "16", "--out", `${dir}/d`);
      await ok(
        "local",
        "train",
        ...["--model", `${dir}/w.p{i}.share`, "--data", `${dir}/d.p{i}.share`, "--batch", "16", "--iterations", "4"],
        ...["--lr", "0.05", "--momentum", "0.9", "--seed", "1", "--insecure", "--out", `${dir}/t`],
      );
      await ok("reconstruct", `${dir}/t.p0.share`, `${dir}/t.p2.share`, "--out", `${dir}/t.cgtf`);
      await ok("reconstruct", `${dir}/t.p1.share`, `${dir}/t.p2.share`, "--out", `${dir}/t.onnx`);
      const after = await weightsOf(`${dir}/t.cgtf`), model = modelOf(header);
      const twin = new Map([...before].map(([n, t]) => [n, new PlainTensor(t.shape, t.data.slice())]));
      trainPlain({
        model,
        weights: twin,
        data: plainSource(await loadEmbeddedMnist({ limit: 64 })),
        schedule,
        fracBits: 16,
      });
      const names = ["running_mean", "running_var", "weight", "bias"].map((p) => `${bn.name}.${p}`);
      for (const name of [...names, `${conv1}.weight`, `${fc}.weight`]) {
        const moved = maxAbs(twin.get(name)!.data, before.get(name)!.data);
        const err = maxAbs(after.get(name)!.data, twin.get(name)!.data);
        console.log(`  ${name}: moved ${moved.toExponential(2)}, private vs twin ${err.toExponential(2)}`);
        // measured: every error at most 1.5% of the twin's own change (conv1's weight; the others below 0.3%)
        assert.ok(moved > 1e-2 && err <= 0.05 * moved, `${name}: moved ${moved}, private vs twin ${err}`);
      }
      // the ONNX written back holds BatchNormalization with the trained running statistics
      const onnxX = images(4, 5);
      const ort = await runOrt(await Deno.readFile(`${dir}/t.onnx`), {
        name: "input",
        shape: [4, 1, 28, 28],
        data: Float32Array.from(onnxX),
      });
      const plain = model.net.plain(new PlainTensor([4, 1, 28, 28], Float64Array.from(onnxX)), plainParams(after));
      assert.ok(maxAbs(ort.data, plain.data) <= 1e-4, `ONNX Runtime vs the twin: ${maxAbs(ort.data, plain.data)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ONNX: zoo models (LeNet, a BatchNorm CNN) reconstructed as ONNX run in ONNX Runtime as the zoo's twin does",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-onnx-zoo-" });
    try {
      await ok("share", "--model", "lenet:max", "--seed", "4", "--out", `${dir}/w`);
      await ok("reconstruct", `${dir}/w.p0.share`, `${dir}/w.p2.share`, "--out", `${dir}/lenet.onnx`);
      await ok("reconstruct", `${dir}/w.p0.share`, `${dir}/w.p2.share`, "--out", `${dir}/lenet.cgtf`);
      const model = modelOf({ model: "lenet:max" }), x = images(2, 8);
      const twin = model.net.plain(
        new PlainTensor([2, 1, 28, 28], Float64Array.from(x)),
        plainParams(await weightsOf(`${dir}/lenet.cgtf`)),
      );
      const ort = await runOrt(await Deno.readFile(`${dir}/lenet.onnx`), {
        name: "input",
        shape: [2, 1, 28, 28],
        data: Float32Array.from(x),
      });
      assert.ok(maxAbs(ort.data, twin.data) <= 1e-4 * Math.max(1, ...Array.from(twin.data, Math.abs)));
      // batch normalization with statistics leaves as its inference form, and ONNX Runtime agrees with the twin
      await ok("share", "--model", "bncnn", "--seed", "2", "--out", `${dir}/b`);
      await ok("reconstruct", `${dir}/b.p1.share`, `${dir}/b.p2.share`, "--out", `${dir}/bncnn.onnx`);
      await ok("reconstruct", `${dir}/b.p1.share`, `${dir}/b.p2.share`, "--out", `${dir}/bncnn.cgtf`);
      const bn = modelOf({ model: "bncnn" });
      const bnTwin = bn.net.plain(
        new PlainTensor([2, 1, 28, 28], Float64Array.from(x)),
        plainParams(await weightsOf(`${dir}/bncnn.cgtf`)),
      );
      const bnOrt = await runOrt(await Deno.readFile(`${dir}/bncnn.onnx`), {
        name: "input",
        shape: [2, 1, 28, 28],
        data: Float32Array.from(x),
      });
      assert.ok(maxAbs(bnOrt.data, bnTwin.data) <= 1e-4 * Math.max(1, ...Array.from(bnTwin.data, Math.abs)));
      // an input or dataset has no network to write
      await ok("share", "--dataset", "mnist", "--limit", "2", "--out", `${dir}/d`);
      const bad = await runCli(["reconstruct", `${dir}/d.p0.share`, `${dir}/d.p1.share`, "--out", `${dir}/d.onnx`]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr.trim(), /^cryptgpu: error: only a model can be written as ONNX, not a dataset$/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "inspect: a share file's kind, graph, party, sharing and tensors, an ONNX file's refusals all at once; --json",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-inspect-" });
    try {
      await Deno.writeFile(`${dir}/cnn.onnx`, digitCnn());
      await ok("share", "--model", `${dir}/cnn.onnx`, "--out", `${dir}/w`);
      const text = (await ok("inspect", `${dir}/w.p1.share`)).stdout;
      assert.match(text, /model of onnx:cnn, party 1's shares \(sharing [0-9a-f-]{36}\), 20 fractional bits/);
      assert.match(text, /graph: input \[batch, 1, 28, 28\], \d+ nodes: conv 2, relu 2, maxpool 1, avgpool 1/);
      assert.match(text, /\/fc\/Gemm\.weight \[10, 96\]/);
      const json = JSON.parse((await ok("inspect", `${dir}/w.p2.share`, "--json")).stdout);
      assert.equal(json.party, 2);
      assert.equal(json.kind, "model");
      assert.equal(json.graph.input.join(), "1,28,28");
      const onnx = JSON.parse((await ok("inspect", `${dir}/cnn.onnx`, "--json")).stdout);
      assert.equal(onnx.importable, true);
      assert.equal(onnx.onnx.opset, 13);
      assert.equal(onnx.onnx.ops.Conv, 2);

      const b = new OnnxBuilder(13);
      b.input("x", ["N", 3, 8, 8]).output("y");
      b.initializer("w", [2, 3, 3, 3], seeded(54, 1));
      b.node("Conv", ["x", "w"], ["c"], { kernel_shape: [3, 3], auto_pad: "SAME_UPPER" }, "conv");
      b.node("LSTM", ["c"], ["l"], {}, "lstm");
      b.node("Relu", ["l"], ["y"], {}, "relu");
      await Deno.writeFile(`${dir}/bad.onnx`, b.toBytes());
      const refused = (await ok("inspect", `${dir}/bad.onnx`)).stdout;
      assert.match(refused, /refused: .*"conv" \(Conv\).*auto_pad/);
      assert.match(refused, /refused: .*"lstm" \(LSTM\)/);
      const share = await runCli(["share", "--model", `${dir}/bad.onnx`, "--out", `${dir}/b`]);
      assert.notEqual(share.code, 0);
      const line = share.stderr.trim();
      assert.equal(line.split("\n").length, 1, line);
      assert.match(line, /bad\.onnx: cannot import: .*auto_pad.*LSTM/);
      assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("b.")), [], "nothing written");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
