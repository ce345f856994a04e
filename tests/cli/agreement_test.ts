/**
 * The three parties refuse, before any protocol, to compute on files or
 * settings that differ between them (wrong results with exit 0 must be
 * impossible), and training checkpoints stay consistent across the three
 * whatever moment a party dies at. Real processes over loopback.
 */
import assert from "node:assert/strict";
import { readTensorFile } from "../../lib/io/format.ts";
import { CLI_MAIN, CLI_PERMISSIONS } from "../../cli/permissions.ts";
import { deviceAvailable, runCli } from "../helpers.ts";
import { freePorts } from "../net/fault_helpers.ts";

async function ok(...args: string[]) {
  const r = await runCli(args);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

async function partiesFile(dir: string): Promise<string> {
  // free ports below Linux's ephemeral range (32768-60999), where an outgoing connection can hold any port
  const [base] = freePorts(3);
  const file = `${dir}/parties-${base}.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({ parties: [0, 1, 2].map((i) => ({ host: "127.0.0.1", port: base + i })) }),
  );
  return file;
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** The three parties as three processes, party i with args(i); plain TCP on loopback, short timeouts. */
async function runThree(dir: string, args: (i: number) => string[]): Promise<Outcome[]> {
  const file = await partiesFile(dir);
  const t0 = performance.now();
  return await Promise.all([0, 1, 2].map(async (i) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...CLI_PERMISSIONS,
        CLI_MAIN,
        ...args(i),
        "--party",
        String(i),
        "--parties",
        file,
        "--insecure",
        "--connect-timeout",
        "10",
        "--round-timeout",
        "10",
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", CRYPTGPU_THREADS: "1" },
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      seconds: (performance.now() - t0) / 1000,
    };
  }));
}

function assertRefused(outs: Outcome[], pattern: RegExp) {
  const all = outs.map((o, i) => `party ${i} (exit ${o.code}): ${o.stderr.trim()}`).join("\n");
  for (const o of outs) {
    assert.notEqual(o.code, 0, all);
    assert.equal(o.stdout.trim(), "", `no result may be printed:\n${all}`);
  }
  assert.ok(outs.some((o) => pattern.test(o.stderr)), `expected ${pattern}:\n${all}`);
  // well inside the connect timeout (10 s) plus process start; a loaded machine (load 12 on 2 cores) has taken 12.6 s
  for (const o of outs) assert.ok(o.seconds < 20, `a refusal at setup took ${o.seconds} s`);
}

Deno.test({
  name: "infer: a share file of another sharing, another model or another disclosure on one party is refused at setup",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-agree-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "3", "--out", `${dir}/a`);
      await ok("share", "--model", "lenet", "--seed", "3", "--out", `${dir}/b`); // same weights, another sharing
      await ok("share", "--model", "lenet:max", "--seed", "3", "--out", `${dir}/m`);
      const x = { shape: [1, 1, 28, 28], data: Array.from({ length: 784 }, (_, k) => (k % 7) / 7) };
      await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify(x));
      await ok("share", "--input", `${dir}/x.json`, "--out", `${dir}/x`);
      const infer = (model: (i: number) => string, extra: (i: number) => string[] = () => []) => (i: number) => [
        "infer",
        "--model",
        model(i),
        "--input",
        `${dir}/x.p${i}.share`,
        ...extra(i),
      ];

      // the same weights in another sharing: decrypting with mixed shares would give garbage
      assertRefused(
        await runThree(dir, infer((i) => `${dir}/${i === 1 ? "b" : "a"}.p${i}.share`)),
        /disagree on modelSharing: party \d has [0-9a-f-]+, party \d has [0-9a-f-]+/,
      );
      // lenet against lenet:max (their weights have the same shapes)
      assertRefused(
        await runThree(dir, infer((i) => `${dir}/${i === 2 ? "m" : "a"}.p${i}.share`)),
        /disagree on model: party \d has lenet(:max)?, party \d has lenet(:max)?/,
      );
      // who learns the result
      assertRefused(
        await runThree(dir, infer((i) => `${dir}/a.p${i}.share`, (i) => ["--reveal-to", i === 0 ? "1" : "0"])),
        /disagree on output: party \d has revealed to party [01], party \d has revealed to party [01]/,
      );
      // and the same files agree: the run completes with the result at party 0
      const good = await runThree(dir, infer((i) => `${dir}/a.p${i}.share`));
      assert.deepEqual(good.map((o) => o.code), [0, 0, 0], good.map((o) => o.stderr).join("\n"));
      assert.match(good[0].stdout, /lenet: predicted classes \d/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "train: one party's other seed, learning rate, data or checkpoint run is refused at setup; checkpoints commit together",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-agree-train-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "2", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--dataset", "mnist", "--limit", "32", "--frac-bits", "16", "--out", `${dir}/d`);
      await ok("share", "--dataset", "mnist", "--limit", "32", "--frac-bits", "16", "--out", `${dir}/e`);
      const train = (extra: (i: number) => string[]) => (i: number) => [
        "train",
        "--data",
        `${dir}/d.p${i}.share`,
        "--batch",
        "16",
        ...extra(i),
      ];
      const fresh = (i: number) => ["--model", `${dir}/w.p${i}.share`, "--iterations", "2"];

      assertRefused(
        await runThree(dir, train((i) => [...fresh(i), "--seed", i === 2 ? "9" : "1"])),
        /disagree on seed: party \d has [19], party \d has [19]/,
      );
      assertRefused(
        await runThree(dir, train((i) => [...fresh(i), "--lr", i === 1 ? "0.1" : "0.05"])),
        /disagree on lr: party \d has 0\.(1|05), party \d has 0\.(1|05)/,
      );
      assertRefused(
        await runThree(
          dir,
          (i) => train(fresh)(i).map((a) => (i === 0 && a === `${dir}/d.p0.share` ? `${dir}/e.p0.share` : a)),
        ),
        /disagree on dataSharing/,
      );

      // two runs checkpointed at the same iteration: resuming from a mix is refused
      for (const run of ["r1", "r2"]) {
        const outs = await runThree(dir, train((i) => [...fresh(i), "--checkpoint", `${dir}/${run}`]));
        assert.deepEqual(outs.map((o) => o.code), [0, 0, 0], outs.map((o) => o.stderr).join("\n"));
      }
      await Deno.copyFile(`${dir}/r2.p1.share`, `${dir}/r1.p1.share`);
      assertRefused(
        await runThree(dir, train((i) => ["--resume", `${dir}/r1.p${i}.share`, "--iterations", "4"])),
        /disagree on checkpointRun/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "train: a party killed at any step of a checkpoint leaves one state the three resume from",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-ckpt-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "2", "--frac-bits", "16", "--out", `${dir}/w`);
      await ok("share", "--dataset", "mnist", "--limit", "32", "--frac-bits", "16", "--out", `${dir}/d`);
      const train = (extra: (i: number) => string[]) => (i: number) => [
        "train",
        "--data",
        `${dir}/d.p${i}.share`,
        "--batch",
        "16",
        ...extra(i),
      ];
      // one run's checkpoints at iterations 2 and 4 (the resumed run keeps the run's id)
      const first = await runThree(
        dir,
        train((i) => ["--model", `${dir}/w.p${i}.share`, "--iterations", "2", "--checkpoint", `${dir}/ck`]),
      );
      assert.deepEqual(first.map((o) => o.code), [0, 0, 0], first.map((o) => o.stderr).join("\n"));
      for (let i = 0; i < 3; i++) await Deno.copyFile(`${dir}/ck.p${i}.share`, `${dir}/it2.p${i}.share`);
      const second = await runThree(
        dir,
        train((i) => ["--resume", `${dir}/ck.p${i}.share`, "--iterations", "4", "--checkpoint", `${dir}/ck`]),
      );
      assert.deepEqual(second.map((o) => o.code), [0, 0, 0], second.map((o) => o.stderr).join("\n"));
      for (let i = 0; i < 3; i++) await Deno.copyFile(`${dir}/ck.p${i}.share`, `${dir}/it4.p${i}.share`);
      const iterationOf = async (path: string) => (await readTensorFile(path)).header.training!.iteration;
      assert.equal(await iterationOf(`${dir}/it2.p0.share`), 2);
      assert.equal(await iterationOf(`${dir}/it4.p0.share`), 4);
      assert.equal(
        (await readTensorFile(`${dir}/it2.p0.share`)).header.share!.id,
        (await readTensorFile(`${dir}/it4.p0.share`)).header.share!.id,
      );

      // The files a kill leaves at each step of committing iteration 4 over iteration 2, party by party:
      // what the three must then resume from.
      type Files = { committed?: 2 | 4; prev?: 2; next?: 4 | "torn" };
      const states: [string, Files[], number][] = [
        // party 1 killed while writing its staged file (step 1): nobody has passed "ready"
        ["killed in step 1", [{ committed: 2, next: 4 }, { committed: 2, next: "torn" }, { committed: 2, next: 4 }], 2],
        // party 0 killed after "ready", before renaming (step 3); the others renamed
        ["killed in step 3", [{ committed: 2, next: 4 }, { committed: 4, prev: 2 }, { committed: 4, prev: 2 }], 4],
        // party 2 killed between its two renames
        ["killed mid-rename", [{ committed: 4 }, { committed: 4 }, { prev: 2, next: 4 }], 4],
      ];
      for (const [what, files, expected] of states) {
        for (let i = 0; i < 3; i++) {
          const base = `${dir}/s.p${i}.share`;
          for (const s of ["", ".prev", ".next"]) await Deno.remove(base + s).catch(() => {});
          const f = files[i], src = (it: number) => `${dir}/it${it}.p${i}.share`;
          if (f.committed) await Deno.copyFile(src(f.committed), base);
          if (f.prev) await Deno.copyFile(src(f.prev), `${base}.prev`);
          if (f.next === "torn") {
            const bytes = await Deno.readFile(src(4));
            await Deno.writeFile(`${base}.next`, bytes.subarray(0, bytes.length >> 1));
          } else if (f.next) await Deno.copyFile(src(f.next), `${base}.next`);
        }
        const outs = await runThree(
          dir,
          train((i) => ["--resume", `${dir}/s.p${i}.share`, "--iterations", "6", "--json"]),
        );
        assert.deepEqual(outs.map((o) => o.code), [0, 0, 0], `${what}:\n${outs.map((o) => o.stderr).join("\n")}`);
        const report = JSON.parse(outs[0].stdout);
        assert.equal(report.startedAt, expected, what);
        for (let i = 0; i < 3; i++) {
          assert.equal(await iterationOf(`${dir}/s.p${i}.share`), expected, `${what}: party ${i}'s committed file`);
          if (expected === 2) await assert.rejects(Deno.stat(`${dir}/s.p${i}.share.next`), Deno.errors.NotFound);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "train: kill -9 of a party while the three checkpoint every iteration; the three then resume together",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-ckpt-kill-" });
    try {
      await ok("share", "--model", "lenet", "--seed", "2", "--frac-bits", "16", "--out", `${dir}/w`);
      // 16 samples in batches of 16: every iteration ends an epoch, so every iteration commits a checkpoint
      await ok("share", "--dataset", "mnist", "--limit", "16", "--frac-bits", "16", "--out", `${dir}/d`);
      const file = await partiesFile(dir);
      const args = (i: number, extra: string[]) => [
        "run",
        ...CLI_PERMISSIONS,
        CLI_MAIN,
        "train",
        "--data",
        `${dir}/d.p${i}.share`,
        "--batch",
        "16",
        "--iterations",
        "40",
        "--checkpoint",
        `${dir}/ck`,
        ...extra,
        "--party",
        String(i),
        "--parties",
        file,
        "--insecure",
        "--connect-timeout",
        "10",
        "--round-timeout",
        "5",
      ];
      const spawn = (i: number, extra: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: args(i, extra),
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1", CRYPTGPU_THREADS: "1" },
        }).spawn();
      const children = [0, 1, 2].map((i) => spawn(i, ["--model", `${dir}/w.p${i}.share`]));
      // let a few checkpoints land, then kill party 1 at an arbitrary point of an iteration or a commit
      const t0 = Date.now();
      while (Date.now() - t0 < 60_000) {
        const done = await Promise.all(
          [0, 1, 2].map((i) =>
            readTensorFile(`${dir}/ck.p${i}.share`).then((f) => f.header.training!.iteration, () => 0)
          ),
        );
        if (Math.min(...done) >= 3) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 137));
      children[1].kill("SIGKILL");
      const killed = await Promise.all(children.map(async (c) => (await c.output()).code));
      assert.notEqual(killed[0], 0);
      assert.notEqual(killed[2], 0);

      // what the kill left: each party holds some of PATH, .prev, .next; they resume from one common iteration
      const resumed = await Promise.all([0, 1, 2].map(async (i) => {
        const out = await spawn(i, ["--resume", `${dir}/ck.p${i}.share`, "--json"]).output();
        return {
          code: out.code,
          stdout: new TextDecoder().decode(out.stdout),
          stderr: new TextDecoder().decode(out.stderr),
        };
      }));
      assert.deepEqual(resumed.map((r) => r.code), [0, 0, 0], resumed.map((r) => r.stderr).join("\n"));
      const report = JSON.parse(resumed[0].stdout);
      assert.ok(report.startedAt >= 3, `resumed from ${report.startedAt}`);
      assert.equal(report.iterations, 40);
      const final = await Promise.all(
        [0, 1, 2].map(async (i) => (await readTensorFile(`${dir}/ck.p${i}.share`)).header),
      );
      assert.deepEqual(final.map((h) => h.training!.iteration), [40, 40, 40]);
      assert.equal(new Set(final.map((h) => h.share!.id)).size, 1, "one run's checkpoints");
      const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^ck\./.test(n) || n.includes(".tmp-"));
      assert.deepEqual(
        left.sort(),
        ["ck.p0.share", "ck.p1.share", "ck.p2.share"],
        "no staged, previous or temporary file left",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
