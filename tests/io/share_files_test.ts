import assert from "node:assert/strict";
import { relative } from "node:path";
import { NativeBackend } from "../../lib/native/backend.ts";
import { readTensorFile, tensorBytes } from "../../lib/io/format.ts";
import {
  reconstructFiles,
  reconstructTensors,
  sharePath,
  shareTensors,
  writePlainFile,
} from "../../lib/io/share_files.ts";
import { type CheckpointMeta, commitCheckpoint } from "../../lib/io/checkpoint.ts";
import { ADAM_V_EXTRA_BITS } from "../../lib/nn/optim.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { runParties } from "../mpc/harness.ts";
import { random, share } from "../nn/twin_helpers.ts";
import { initWeights } from "../../lib/nn/model.ts";
import { lenet } from "../../lib/nn/zoo.ts";
import { deviceAvailable, runCli } from "../helpers.ts";

async function cryptgpu(...args: string[]) {
  const r = await runCli(args);
  return { code: r.code, out: r.stdout, err: r.stderr.trim() };
}

Deno.test({
  name: "any two of three share files reconstruct the model exactly; one alone looks uniform",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const backend = new NativeBackend();
    try {
      const model = lenet();
      const weights = initWeights(model, 5);
      const paths = await shareTensors(backend, { kind: "model", model: "lenet", fracBits: 20 }, weights, `${dir}/m`);
      for (const pair of [[0, 1], [1, 2], [0, 2], [0, 1, 2]]) {
        await reconstructFiles(backend, pair.map((i) => paths[i]), `${dir}/back.cgtf`);
        const f = await readTensorFile(`${dir}/back.cgtf`);
        for (const [name, w] of weights) {
          const got = new Float64Array(tensorBytes(f, name).bytes.buffer);
          for (let i = 0; i < got.length; i++) {
            assert.ok(Math.abs(got[i] - w.data[i]) <= 2 ** -21, `${name}[${i}] from ${pair}`);
          }
        }
      }
      // one file alone: its bytes are uniform (chi-square over byte values, 255 degrees of freedom)
      const f0 = await readTensorFile(paths[0]);
      const h = new Array(256).fill(0);
      for (const b of f0.data) h[b]++;
      const e = f0.data.length / 256;
      const chi2 = h.reduce((s, o) => s + (o - e) ** 2 / e, 0);
      assert.ok(chi2 < 347, `chi2 ${chi2}`);
      // files of different sharings or the same party are refused
      const other = await shareTensors(backend, { kind: "model", model: "lenet", fracBits: 20 }, weights, `${dir}/n`);
      await assert.rejects(reconstructFiles(backend, [paths[0], other[1]], `${dir}/x`), /belongs to another sharing/);
      await assert.rejects(reconstructFiles(backend, [paths[0], paths[0]], `${dir}/x`), /same party/);
    } finally {
      backend.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reconstruct refuses its own input and a directory before writing; share and plaintext files are 0600",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const backend = new NativeBackend();
    const names = async (d: string) => (await Array.fromAsync(Deno.readDir(d))).map((e) => e.name).sort();
    try {
      const weights = new Map([["w", { shape: [2, 3], data: Float64Array.of(1, -2, 3.5, 4, 5, -6) }]]);
      const paths = await shareTensors(backend, { kind: "model", model: "any", fracBits: 20 }, weights, `${dir}/m`);
      for (const p of paths) assert.equal((await Deno.stat(p)).mode! & 0o777, 0o600, p);
      const before = await Promise.all(paths.map((p) => Deno.readFile(p)));
      await Deno.symlink(paths[1], `${dir}/link`);
      await Deno.mkdir(`${dir}/out`);
      const files = await names(dir);

      // the output is an input under another spelling: "./d/m.p0.share", "d/m.p1.share", a symlink to m.p1.share
      const d = relative(Deno.cwd(), dir);
      await assert.rejects(reconstructFiles(backend, [`${d}/m.p0.share`, `${d}/m.p1.share`], `./${d}/m.p0.share`), {
        message: `the output ./${d}/m.p0.share is the share file ${d}/m.p0.share: choose another`,
      });
      await assert.rejects(reconstructFiles(backend, [paths[0], `./${d}/m.p1.share`], `${d}/m.p1.share`), {
        message: `the output ${d}/m.p1.share is the share file ./${d}/m.p1.share: choose another`,
      });
      await assert.rejects(reconstructFiles(backend, [paths[0], paths[1]], `${dir}/link`), {
        message: `the output ${dir}/link is the share file ${paths[1]}: choose another`,
      });
      await assert.rejects(reconstructFiles(backend, [paths[0], paths[1]], `${d}/out`), {
        message: `${d}/out is a directory`,
      });
      assert.deepEqual(await names(dir), files);
      assert.deepEqual(await names(`${dir}/out`), []);
      for (let i = 0; i < 3; i++) assert.deepEqual(await Deno.readFile(paths[i]), before[i], `${paths[i]} unchanged`);

      // the CLI says so in one line and leaves no plaintext (it used to leave DIR.tmp)
      const r = await cryptgpu("reconstruct", paths[0], paths[2], "--out", `${dir}/out`);
      assert.notEqual(r.code, 0);
      assert.equal(r.err, `cryptgpu: error: ${dir}/out is a directory`);
      assert.deepEqual(await names(dir), files);
      assert.deepEqual(await names(`${dir}/out`), []);

      await reconstructFiles(backend, [paths[2], paths[0]], `${dir}/plain.cgtf`);
      assert.equal((await Deno.stat(`${dir}/plain.cgtf`)).mode! & 0o777, 0o600);
      const back = new Float64Array(tensorBytes(await readTensorFile(`${dir}/plain.cgtf`), "w").bytes.buffer);
      assert.deepEqual([...back], [1, -2, 3.5, 4, 5, -6]);
      assert.deepEqual(await names(dir), [...files, "plain.cgtf"].sort());
    } finally {
      backend.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "corrupt, truncated and foreign files give one clear error naming the file",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writePlainFile(
        `${dir}/x.cgtf`,
        { kind: "input", model: "any", fracBits: 20 },
        new Map([["input", { shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) }]]),
      );
      const good = await Deno.readFile(`${dir}/x.cgtf`);
      await Deno.writeFile(`${dir}/trunc.cgtf`, good.subarray(0, good.length - 5));
      await assert.rejects(
        readTensorFile(`${dir}/trunc.cgtf`),
        /trunc\.cgtf: truncated: the data section has 43 bytes, the header needs 48/,
      );
      const flipped = good.slice();
      flipped[flipped.length - 1] ^= 1;
      await Deno.writeFile(`${dir}/flip.cgtf`, flipped);
      await assert.rejects(readTensorFile(`${dir}/flip.cgtf`), /flip\.cgtf: checksum mismatch/);
      await Deno.writeTextFile(`${dir}/junk.cgtf`, "hello world");
      await assert.rejects(readTensorFile(`${dir}/junk.cgtf`), /junk\.cgtf: not a cryptgpu tensor file/);
      await assert.rejects(readTensorFile(`${dir}/none.cgtf`), /cannot read .*none\.cgtf/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "share, local infer and reconstruct through the CLI with three processes; bad share files fail before any protocol",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      let r = await cryptgpu("share", "--model", "lenet", "--seed", "3", "--out", `${dir}/lenet`);
      assert.equal(r.code, 0, r.err);
      const input = { shape: [2, 1, 28, 28], data: Array.from({ length: 2 * 784 }, (_, i) => (i % 17) / 17) };
      await Deno.writeTextFile(`${dir}/in.json`, JSON.stringify(input));
      r = await cryptgpu("share", "--input", `${dir}/in.json`, "--out", `${dir}/x`);
      assert.equal(r.code, 0, r.err);
      r = await cryptgpu(
        "local",
        "infer",
        "--model",
        `${dir}/lenet.p{i}.share`,
        "--input",
        `${dir}/x.p{i}.share`,
        "--json",
      );
      assert.equal(r.code, 0, r.err);
      const result = JSON.parse(r.out);
      assert.equal(result.predictions.length, 2);
      // LeNet with infer's default, the corrected truncation (2 rounds each): 46 rounds of forward pass less the last
      // layer's reshare and truncation (3), plus the 1 round that opens its product to party 0
      assert.equal(result.rounds, 44);
      // output shares, reconstructed by two of the parties' files, equal the revealed logits
      r = await cryptgpu(
        "local",
        "infer",
        "--model",
        `${dir}/lenet.p{i}.share`,
        "--input",
        `${dir}/x.p{i}.share`,
        "--out",
        `${dir}/y`,
      );
      assert.equal(r.code, 0, r.err);
      r = await cryptgpu("reconstruct", sharePath(`${dir}/y`, 2), sharePath(`${dir}/y`, 0), "--out", `${dir}/y.cgtf`);
      assert.equal(r.code, 0, r.err);
      const logits = new Float64Array(tensorBytes(await readTensorFile(`${dir}/y.cgtf`), "output").bytes.buffer);
      logits.forEach((v, i) => assert.ok(Math.abs(v - result.logits[i]) <= 1e-4, `logit ${i}`));
      // a party given another party's file stops before connecting
      r = await cryptgpu(
        "infer",
        "--party",
        "1",
        "--parties",
        `${dir}/none.json`,
        "--model",
        `${dir}/lenet.p0.share`,
        "--input",
        `${dir}/x.p1.share`,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.err, /^cryptgpu: error: .*lenet\.p0\.share is party 0's share file, not party 1's$/);
      // an input of the wrong size for the model
      await Deno.writeTextFile(
        `${dir}/bad.json`,
        JSON.stringify({ shape: [1, 1, 20, 20], data: new Array(400).fill(0) }),
      );
      await cryptgpu("share", "--input", `${dir}/bad.json`, "--out", `${dir}/bad`);
      r = await cryptgpu(
        "infer",
        "--party",
        "0",
        "--parties",
        `${dir}/none.json`,
        "--model",
        `${dir}/lenet.p0.share`,
        "--input",
        `${dir}/bad.p0.share`,
      );
      assert.match(r.err, /LeNet takes inputs of shape \[batch, 1, 28, 28\], got \[1, 1, 20, 20\]/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reconstruct of an Adam checkpoint: the second moment at its own scale (f + 6), the rest at f",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const backend = new NativeBackend();
    try {
      const F = 16, w = random([3, 4], 1), v = random([3, 4], 2, 0, 0.01);
      // vhat's ring value at scale f + 6 is 2^6 v at scale f: shared that way
      const lifted = new PlainTensor(v.shape, v.data.map((x) => x * 2 ** ADAM_V_EXTRA_BITS));
      const training = { iteration: 1, batch: 4, seed: 1, lr: 0.001, momentum: 0, weightDecay: 0, optimizer: "adam" };
      await runParties(async (p) => {
        const tensors = new Map([["0.weight", await share(p, 0, w)], ["adam_v.0.weight", await share(p, 0, lifted)]]);
        await commitCheckpoint(p, sharePath(`${dir}/ck`, p.index), {
          model: "any",
          id: "run",
          training: training as CheckpointMeta["training"],
        }, tensors);
        tensors.forEach((t) => t.dispose());
      }, { fracBits: F });
      const { tensors } = await reconstructTensors(backend, [0, 2].map((i) => sharePath(`${dir}/ck`, i)));
      for (const [name, want] of [["0.weight", w], ["adam_v.0.weight", v]] as const) {
        const got = tensors.get(name)!.data;
        want.data.forEach((x, i) => assert.ok(Math.abs(got[i] - x) <= 2 ** -F, `${name}[${i}]: ${got[i]} for ${x}`));
      }
    } finally {
      backend.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
