/**
 * The launcher, with real processes: a failing party stops the others, the
 * launcher's own SIGTERM, SIGINT and SIGKILL end the parties, no key file is
 * on disk while they run, and the flags it sets itself are refused.
 */
import assert from "node:assert/strict";
import { PAIR_ROUNDS } from "../../lib/mpc/truncation_pairs.ts";
import { MASK_ROUNDS, RANDOM_BIT_ROUNDS } from "../../lib/mpc/comparison_masks.ts";
import { CLI_MAIN, CLI_PERMISSIONS } from "../../cli/permissions.ts";
import { deviceAvailable, runCli } from "../helpers.ts";

/** A long run (about 30 s on 2 cores): the signal tests stop it after a few seconds. */
const LONG = ["bench", "protocols", "--max-size", "1e6", "--no-write"];

interface Launch {
  child: Deno.ChildProcess;
  /** stdout and stderr so far, together. */
  output(): string;
  done: Promise<Deno.CommandStatus>;
}

function launch(args: string[], env: Record<string, string> = {}): Launch {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, "local", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  let text = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  return { child, output: () => text, done: reading.then(() => child.status) };
}

/**
 * Process state through `ps`: the test task's permissions do not let Deno read /proc/<pid> (it asks for
 * --allow-all), and a check that cannot see the processes would pass vacuously.
 */
function ps(args: string[]): string {
  const out = new Deno.Command("ps", { args, stdout: "piped", stderr: "null" }).outputSync();
  return new TextDecoder().decode(out.stdout);
}

/** Whether a process is running: a zombie waiting for a parent that does not reap it has ended. */
function alive(pid: number): boolean {
  const state = ps(["-o", "stat=", "-p", String(pid)]).trim();
  return state !== "" && !/^[ZX]/.test(state);
}

/** The launcher's party processes (not the openssl it runs while making certificates). */
function partiesOf(launcher: number): number[] {
  return ps(["-o", "pid=,args=", "--ppid", String(launcher)]).split("\n").filter((l) => / --party \d/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!(await ok())) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a long run and waits until its three parties compute (their first results are out). */
async function running(args: string[], env: Record<string, string> = {}): Promise<{ run: Launch; pids: number[] }> {
  const run = launch(args, env);
  let pids: number[] = [];
  await until("three parties", () => (pids = partiesOf(run.child.pid)).length === 3);
  await until("the first results", () => /elements: [\d.]+ s/.test(run.output()) || !alive(run.child.pid));
  assert.ok(alive(run.child.pid), run.output());
  return { run, pids };
}

/** Stops what a failed test left running. */
function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      if (alive(pid)) Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await listAll(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
  }
  return out;
}

/** A temporary folder as TMPDIR of the launcher, checked to be where Deno.makeTempDir makes its folders. */
async function privateTmp(): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "cryptgpu-local-test-" });
  const probe = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "console.log(await Deno.makeTempDir())"],
    env: { TMPDIR: tmp },
    stdout: "piped",
  }).output();
  const made = new TextDecoder().decode(probe.stdout).trim();
  assert.ok(made.startsWith(`${tmp}/`), made);
  await Deno.remove(made);
  return tmp;
}

Deno.test({
  name: "local: a party failing before it connects stops the others at once, with its error shown",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-local-fail-" });
    try {
      let r = await runCli(["share", "--model", "lenet", "--seed", "3", "--out", `${dir}/w`]);
      assert.equal(r.code, 0, r.stderr);
      const input = { shape: [1, 1, 28, 28], data: Array.from({ length: 784 }, (_, i) => (i % 13) / 13) };
      await Deno.writeTextFile(`${dir}/in.json`, JSON.stringify(input));
      r = await runCli(["share", "--input", `${dir}/in.json`, "--out", `${dir}/x`]);
      assert.equal(r.code, 0, r.stderr);
      await Deno.remove(`${dir}/w.p1.share`);
      const t0 = performance.now();
      const run = launch(["infer", "--model", `${dir}/w.p{i}.share`, "--input", `${dir}/x.p{i}.share`]);
      const status = await run.done;
      const seconds = (performance.now() - t0) / 1000;
      console.log(`  local exited after ${seconds.toFixed(2)} s`);
      assert.notEqual(status.code, 0, run.output());
      // the connect timeout is 30 s: the others did not wait for it
      assert.ok(seconds < 10, `${seconds} s`);
      const lines = run.output().trim().split("\n");
      assert.match(lines.at(-1)!, /^cryptgpu: error: party 1 failed \(exit code 1\): .*w\.p1\.share/, run.output());
      const left = await new Deno.Command("pgrep", { args: ["-f", dir], stdout: "piped" }).output();
      const pids = new TextDecoder().decode(left.stdout).split("\n").filter(Boolean).map(Number);
      killAll(pids);
      assert.deepEqual(pids, [], "party processes left running");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test({
    name: `local: ${signal} of the launcher stops the three parties; no key file on disk while they run, nor after`,
    ignore: !deviceAvailable,
    fn: async () => {
      const tmp = await privateTmp();
      let left: number[] = [];
      try {
        const { run, pids } = await running(LONG, { TMPDIR: tmp });
        left = [run.child.pid, ...pids];
        // TLS: the certificates were made under TMPDIR and are gone before the parties started
        assert.deepEqual(await listAll(tmp), []);
        const t0 = performance.now();
        run.child.kill(signal);
        await until("the parties to stop", () => !pids.some(alive), 10_000);
        const ms = performance.now() - t0;
        console.log(`  parties stopped ${ms.toFixed(0)} ms after ${signal}`);
        const status = await run.done;
        assert.equal(status.code, code, run.output());
        assert.match(run.output(), new RegExp(`stopped by ${signal}`));
        assert.deepEqual(await listAll(tmp), []);
      } finally {
        killAll(left);
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "local: after SIGKILL of the launcher the parties see their stdin end and stop by themselves",
  ignore: !deviceAvailable,
  fn: async () => {
    const { run, pids } = await running([...LONG, "--insecure"]);
    try {
      const t0 = performance.now();
      run.child.kill("SIGKILL");
      await until("the parties to stop", () => !pids.some(alive), 10_000);
      const ms = performance.now() - t0;
      console.log(`  parties stopped ${ms.toFixed(0)} ms after SIGKILL of the launcher`);
      await run.done;
    } finally {
      killAll(pids);
    }
  },
});

Deno.test("local refuses the flags it sets itself, with one line", async () => {
  for (
    const [args, flag] of [
      [["infer", "--party", "3", "--model", "m", "--input", "x"], "--party"],
      [["train", "--model", "m", "--parties=p.json"], "--parties"],
      [["bench", "protocols", "--session", "s"], "--session"],
    ] as const
  ) {
    const r = await runCli(["local", ...args]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^cryptgpu: error: local sets ${flag} itself; run \`cryptgpu `));
  }
  const r = await runCli(["local", "infer", "--party", "3", "--model", "m", "--input", "x"]);
  assert.match(r.stderr, /run `cryptgpu infer --party 3 \.\.\.` on a host instead/);
});

/** One party reading its parties file from stdin, as `local` starts it; stdin ends after `closeMs` if it still runs. */
async function stdinParty(doc: string, closeMs = 10_000): Promise<{ code: number; stderr: string; seconds: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, "bench", "protocols", "--party", "0", "--parties", "-", "--insecure"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", CRYPTGPU_PARENT_PIPE: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(doc + "\n"));
  const timer = setTimeout(() => w.close().catch(() => {}), closeMs);
  const out = await child.output();
  clearTimeout(timer);
  await w.close().catch(() => {});
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr), seconds: (performance.now() - t0) / 1000 };
}

Deno.test({
  name: "a party reads its parties from stdin (checked like a file) and stops when that pipe ends",
  ignore: !deviceAvailable,
  fn: async () => {
    const at = (port: number, extra = {}) => ({ host: "127.0.0.1", port, ...extra });
    let r = await stdinParty(JSON.stringify({ parties: [at(1), at(2)] }));
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr.trim(),
      "cryptgpu: error: parties file on stdin: parties: a parties file names exactly three parties",
    );
    r = await stdinParty(JSON.stringify({ caPem: "ca", parties: [at(1), at(2), at(3)] }));
    assert.match(r.stderr.trim(), /^cryptgpu: error: parties file on stdin: caPem: not PEM text$/);
    const pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    r = await stdinParty(JSON.stringify({ parties: [at(1, { cert: "a.crt", certPem: pem }), at(2), at(3)] }));
    assert.match(r.stderr.trim(), /^cryptgpu: error: parties file on stdin: parties\.0: give a path or the PEM text/);
    // a valid document, then the pipe ends while the party waits for peers that never come (connect timeout: 30 s)
    const [p0, p1, p2] = [freePort(), freePort(), freePort()];
    r = await stdinParty(JSON.stringify({ parties: [at(p0), at(p1), at(p2)] }), 1500);
    console.log(`  the party stopped ${(r.seconds - 1.5).toFixed(2)} s after its stdin ended`);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), "cryptgpu: the launcher is gone; stopping");
    assert.ok(r.seconds < 6, `${r.seconds} s`);
  },
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "infer reports where the time from the process's start to the answer goes; the phases add up to the total",
  ignore: !deviceAvailable,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-latency-" });
    try {
      let r = await runCli(["share", "--model", "lenet:max", "--seed", "3", "--out", `${dir}/w`]);
      assert.equal(r.code, 0, r.stderr);
      const input = { shape: [1, 1, 28, 28], data: Array.from({ length: 784 }, (_, i) => (i % 11) / 11) };
      await Deno.writeTextFile(`${dir}/in.json`, JSON.stringify(input));
      r = await runCli(["share", "--input", `${dir}/in.json`, "--out", `${dir}/x`]);
      assert.equal(r.code, 0, r.stderr);
      const args = ["local", "infer", "--model", `${dir}/w.p{i}.share`, "--input", `${dir}/x.p{i}.share`];
      r = await runCli([...args, "--json", "--insecure"]);
      assert.equal(r.code, 0, r.stderr);
      const { latency, seconds } = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"), r.stdout.lastIndexOf("}") + 1));
      const phases = ["startup", "checks", "connect", "rehearsal", "preprocess", "load", "inference", "output"];
      assert.deepEqual(Object.keys(latency), [...phases, "total"]);
      for (const k of phases) assert.ok(latency[k] >= 0, `${k}: ${latency[k]}`);
      const sum = phases.reduce((s, k) => s + latency[k], 0);
      assert.ok(Math.abs(sum - latency.total) < 1e-6, `${sum} vs ${latency.total}`);
      assert.ok(latency.inference >= seconds - 1e-6, "the inference phase holds the forward pass");
      assert.ok(latency.rehearsal < 0.005, `no rehearsal asked: ${latency.rehearsal} s`);
      r = await runCli([...args, "--verbose", "--insecure"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /from the process's start to the answer: startup [\d.]+ s, checks [\d.]+ s, connect [\d.]+ s, rehearsal/,
      );
      // a rehearsal after connecting: the same answer, and under preprocessed truncation every pair and mask made
      // before the forward, which then takes 32 rounds (none for material made on demand)
      const plain = JSON.parse(
        (await runCli([...args, "--json", "--insecure", "--truncation", "preprocessed"])).stdout.replace(/^[^{]*/, ""),
      );
      r = await runCli([...args, "--json", "--insecure", "--truncation", "preprocessed", "--rehearse"]);
      assert.equal(r.code, 0, r.stderr);
      const rehearsed = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"), r.stdout.lastIndexOf("}") + 1));
      assert.ok(rehearsed.latency.rehearsal > 0 && rehearsed.latency.preprocess > 0, JSON.stringify(rehearsed.latency));
      assert.equal(rehearsed.rounds, 32);
      // three truncated layers and three comparison layers, each making its pairs or masks on the spot, and the two
      // max poolings their random bits
      assert.equal(plain.rounds, 32 + 3 * PAIR_ROUNDS + 3 * MASK_ROUNDS + 2 * RANDOM_BIT_ROUNDS);
      assert.deepEqual(rehearsed.predictions, plain.predictions);
      rehearsed.logits.forEach((v: number, i: number) => assert.ok(Math.abs(v - plain.logits[i]) < 1e-3, `${i}`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
