import assert from "node:assert/strict";
import { readTensorFile } from "../../lib/io/format.ts";
import { deviceAvailable, runCli } from "../helpers.ts";

const cryptgpu = (...args: string[]) => runCli(args);

async function ok(...args: string[]) {
  const r = await cryptgpu(...args);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** Reads a reconstructed plaintext model file's tensors as float64 arrays. */
async function weightsOf(path: string): Promise<Map<string, Float64Array>> {
  const f = await readTensorFile(path);
  return new Map(
    f.header.tensors.map((t) => [t.name, new Float64Array(f.data.slice(t.offset, t.offset + t.bytes).buffer)]),
  );
}

Deno.test({
  name: "local train end to end; checkpoint then resume gives the weights of an uninterrupted run",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-train-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "2", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--dataset", "mnist", "--limit", "64", "--frac-bits", "16", "--out", `${dir}/d`);
      const common = ["--data", `${dir}/d.p{i}.share`, "--batch", "16", "--iterations", "4", "--insecure"];
      const whole = await ok("local", "train", "--model", `${dir}/w.p{i}.share`, ...common, "--out", `${dir}/a`);
      assert.match(whole.stdout, /lenet: 4 iterations of batch 16/);
      // interrupted after the first epoch (4 batches of 16 = 1 epoch of 64 here: use 2 iterations)
      await ok(
        "local",
        "train",
        "--model",
        `${dir}/w.p{i}.share`,
        ...common.slice(0, -3),
        "--iterations",
        "2",
        "--insecure",
        "--checkpoint",
        `${dir}/ck`,
      );
      const ck = await readTensorFile(`${dir}/ck.p1.share`);
      assert.equal(ck.header.training?.iteration, 2);
      assert.ok(ck.header.tensors.some((t) => t.name === "velocity.7.weight"), "the momentum is in the checkpoint");
      const resumed = await ok("local", "train", "--resume", `${dir}/ck.p{i}.share`, ...common, "--out", `${dir}/b`);
      assert.match(resumed.stdout, /lenet: 2 iterations of batch 16/);
      await ok("reconstruct", `${dir}/a.p0.share`, `${dir}/a.p2.share`, "--out", `${dir}/a.cgtf`);
      await ok("reconstruct", `${dir}/b.p1.share`, `${dir}/b.p2.share`, "--out", `${dir}/b.cgtf`);
      const [a, b] = [await weightsOf(`${dir}/a.cgtf`), await weightsOf(`${dir}/b.cgtf`)];
      assert.deepEqual([...a.keys()], [...b.keys()]);
      // the same up to the truncations' last-bit randomness (fresh keys each session): 2^-16 a step
      for (const [n, wa] of a) {
        const wb = b.get(n)!;
        const worst = wa.reduce((m, v, i) => Math.max(m, Math.abs(v - wb[i])), 0);
        assert.ok(worst <= 2e-3, `${n}: largest difference ${worst}`);
      }
      // a resumed run with other settings is refused before connecting
      const bad = await cryptgpu(
        "train",
        "--party",
        "0",
        "--parties",
        `${dir}/none.json`,
        "--resume",
        `${dir}/ck.p0.share`,
        ...common.slice(0, -1),
        "--lr",
        "0.1",
      );
      assert.notEqual(bad.code, 0);
      assert.match(
        bad.stderr.trim(),
        /^cryptgpu: error: .*ck\.p0\.share was trained with other settings \(lr 0\.05\)$/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "Adam: checkpoint (moments, step, schedule) then resume gives the weights of an uninterrupted run",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-train-adam-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "2", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--dataset", "mnist", "--limit", "64", "--frac-bits", "16", "--out", `${dir}/d`);
      const adam = ["--optimizer", "adam", "--lr", "0.002", "--beta2", "0.99", "--lr-schedule", "step:2:0.5"];
      const common = ["--data", `${dir}/d.p{i}.share`, "--batch", "16", ...adam, "--insecure"];
      const model = ["--model", `${dir}/w.p{i}.share`];
      const whole = await ok("local", "train", ...model, ...common, "--iterations", "4", "--out", `${dir}/a`);
      assert.match(
        whole.stdout,
        /lenet: 4 iterations of batch 16 .*optimizer adam \(lr 0\.002, beta1 0\.9, beta2 0\.99, /,
      );
      await ok("local", "train", ...model, ...common, "--iterations", "2", "--checkpoint", `${dir}/ck`);
      const ck = await readTensorFile(`${dir}/ck.p1.share`);
      const t = ck.header.training!;
      assert.deepEqual(
        [t.iteration, t.optimizer, t.beta1, t.beta2, t.eps, t.lrSchedule, t.step, t.momentum],
        [2, "adam", 0.9, 0.99, 1e-3, "step:2:0.5", 2, 0],
      );
      const names = ck.header.tensors.map((x) => x.name);
      assert.ok(names.includes("adam_m.7.weight") && names.includes("adam_v.7.weight"), "the moments are saved");
      assert.ok(!names.some((n) => n.startsWith("velocity.")));
      const resumed = await ok(
        "local",
        "train",
        "--resume",
        `${dir}/ck.p{i}.share`,
        ...common,
        "--iterations",
        "4",
        "--out",
        `${dir}/b`,
      );
      assert.match(resumed.stdout, /lenet: 2 iterations of batch 16/);
      await ok("reconstruct", `${dir}/a.p0.share`, `${dir}/a.p2.share`, "--out", `${dir}/a.cgtf`);
      await ok("reconstruct", `${dir}/b.p1.share`, `${dir}/b.p2.share`, "--out", `${dir}/b.cgtf`);
      const [a, b] = [await weightsOf(`${dir}/a.cgtf`), await weightsOf(`${dir}/b.cgtf`)];
      assert.deepEqual([...a.keys()], [...b.keys()]);
      // the same up to the truncations' last bits: each Adam step moves a weight by about lr = 0.002, and the
      // resumed run differs by rounding only (measured 1.1e-4 and 1.2e-4)
      let worstAll = 0;
      for (const [n, wa] of a) {
        const wb = b.get(n)!;
        const worst = wa.reduce((m, v, i) => Math.max(m, Math.abs(v - wb[i])), 0);
        worstAll = Math.max(worstAll, worst);
        assert.ok(worst <= 5e-4, `${n}: largest difference ${worst}`);
      }
      console.log(`Adam resumed vs uninterrupted: largest weight difference ${worstAll.toExponential(2)}`);
      // a resume with another optimizer or other betas is refused before connecting
      const base = ["train", "--party", "0", "--parties", `${dir}/none.json`, "--resume", `${dir}/ck.p0.share`];
      const data = ["--data", `${dir}/d.p0.share`, "--batch", "16", "--iterations", "4"];
      for (
        const [extra, want] of [
          [
            ["--lr", "0.002", "--lr-schedule", "step:2:0.5"],
            /trained with other settings \(optimizer adam, momentum 0\)$/,
          ],
          [[...adam, "--beta1", "0.8"], /trained with other settings \(beta1 0\.9\)$/],
          [[...adam.slice(0, -1), "cosine"], /trained with other settings \(lrSchedule step:2:0\.5, iterations 2\)$/],
        ] as const
      ) {
        const bad = await cryptgpu(...base, ...data, ...extra);
        assert.notEqual(bad.code, 0);
        assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
        assert.match(bad.stderr.trim(), want);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "train refuses bad files and settings with one line before connecting",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-train-bad-" });
    try {
      await ok("share", "--model", "lenet", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--model", "lenet", "--frac-bits", "20", "--out", `${dir}/w20`);
      await ok("share", "--dataset", "mnist", "--limit", "20", "--frac-bits", "16", "--out", `${dir}/d`);
      const base = ["train", "--party", "1", "--parties", `${dir}/none.json`, "--iterations", "1"];
      const cases: [string[], RegExp][] = [
        [
          ["--model", `${dir}/w.p0.share`, "--data", `${dir}/d.p1.share`],
          /w\.p0\.share is party 0's share file, not party 1's/,
        ],
        [["--model", `${dir}/d.p1.share`, "--data", `${dir}/d.p1.share`], /d\.p1\.share holds a dataset, not a model/],
        [["--model", `${dir}/w.p1.share`, "--data", `${dir}/w.p1.share`], /w\.p1\.share holds a model, not a dataset/],
        [
          ["--model", `${dir}/w20.p1.share`, "--data", `${dir}/d.p1.share`],
          /the model uses 20 fractional bits, the dataset 16/,
        ],
        [
          ["--model", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`, "--batch", "64"],
          /--batch 64 is larger than the dataset \(20 samples\)/,
        ],
        [
          ["--resume", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`],
          /w\.p1\.share is not a training checkpoint/,
        ],
        [
          ["--model", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`, "--batch", "4", "--lr", "fast"],
          /--lr must be a non-negative number, got fast/,
        ],
        [
          ["--model", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`, "--batch", "4", "--optimizer", "rmsprop"],
          /--optimizer must be one of sgd, adam, adamw, got rmsprop/,
        ],
        [
          [
            "--model",
            `${dir}/w.p1.share`,
            "--data",
            `${dir}/d.p1.share`,
            "--batch",
            "4",
            "--optimizer",
            "adam",
            "--momentum",
            "0.9",
          ],
          /--momentum applies to --optimizer sgd \(adam uses --beta1\)/,
        ],
        [
          ["--model", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`, "--batch", "4", "--beta2", "0.9"],
          /--beta2 applies to --optimizer adam and adamw, not sgd/,
        ],
        [
          [
            "--model",
            `${dir}/w.p1.share`,
            "--data",
            `${dir}/d.p1.share`,
            "--batch",
            "4",
            "--optimizer",
            "adamw",
            "--eps",
            "1e-6",
          ],
          /--eps must be at least 0\.0001220703125 \(8 units of 2\^-16\), got 0\.000001/,
        ],
        [[
          "--model",
          `${dir}/w.p1.share`,
          "--data",
          `${dir}/d.p1.share`,
          "--batch",
          "4",
          "--optimizer",
          "adam",
          "--lr",
          "3",
        ], /--lr must be at most 1 for adam/],
        [[
          "--model",
          `${dir}/w.p1.share`,
          "--data",
          `${dir}/d.p1.share`,
          "--batch",
          "4",
          "--optimizer",
          "adam",
          "--beta1",
          "1",
        ], /--beta1 must be in \[0, 1\), got 1/],
        [
          [
            "--model",
            `${dir}/w.p1.share`,
            "--data",
            `${dir}/d.p1.share`,
            "--batch",
            "4",
            "--lr-schedule",
            "step:0:0.5",
          ],
          /--lr-schedule step:EVERY:GAMMA needs EVERY a positive integer, got 0/,
        ],
        [
          ["--model", `${dir}/w.p1.share`, "--data", `${dir}/d.p1.share`, "--batch", "4", "--lr-schedule", "exp"],
          /--lr-schedule must be constant, step:EVERY:GAMMA or cosine, got exp/,
        ],
      ];
      for (const [args, want] of cases) {
        const r = await cryptgpu(...base, ...args);
        assert.notEqual(r.code, 0, args.join(" "));
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        assert.match(r.stderr, want);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
