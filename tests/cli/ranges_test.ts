/**
 * Values refused before they are shared (ranges.ts, `share`), and the flags
 * the share files decide (--frac-bits on infer and train) or that bound the
 * session (--connect-timeout, --round-timeout).
 */
import assert from "node:assert/strict";
import { Command } from "commander";
import { deviceAvailable, runCli } from "../helpers.ts";
import { readTensorFile, tensorBytes, writeTensorFile } from "../../lib/io/format.ts";
import { checkValues, fracBitsFor, sumWarning, valueBound } from "../../lib/io/ranges.ts";
import { encodeFixed } from "../../lib/ring/fixed.ts";
import { addPartyOptions, partySettings } from "../../cli/party_options.ts";
import { benchCommand } from "../../cli/bench.ts";

const cli = (...args: string[]) => runCli(args);
const native = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !deviceAvailable, fn, sanitizeResources: false });

/** Runs fn in a fresh temporary directory. */
async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-ranges-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const shareFiles = async (prefix: string) =>
  (await Promise.all([0, 1, 2].map((i) => Deno.stat(`${prefix}.p${i}.share`).then(() => 1, () => 0))))
    .reduce((a: number, b) => a + b, 0);

/** A plain tensor file of float64 values. */
async function writePlain(
  path: string,
  kind: "model" | "input",
  model: string,
  tensors: [string, number[], number[]][],
) {
  await writeTensorFile(
    path,
    { kind, model, fracBits: 20 },
    tensors.map(([name, shape, data]) => ({
      name,
      shape,
      dtype: "f64" as const,
      bytes: new Uint8Array(Float64Array.from(data).buffer),
    })),
  );
}

Deno.test("the bound is 2^(62 - 2f), and the suggested f is the largest at which a value fits", () => {
  assert.equal(valueBound(20), 2 ** 22);
  assert.equal(valueBound(16), 2 ** 30);
  assert.equal(fracBitsFor(1e8), 17); // 2^28 = 2.68e8 > 1e8 >= 2^26 = 6.7e7 (f = 18)
  assert.equal(fracBitsFor(4e6), 20);
  assert.equal(fracBitsFor(2 ** 46), null); // not even at f = 8 (bound 2^46)
  assert.equal(checkValues("t", "input", "x", [0.5, -3, 2], 20), 3);
  assert.throws(
    () => checkValues("t", "input", "x", [0, 2 ** 22], 20),
    /^Error: t: input value 4194304 at index 1 of tensor x exceeds 4.19e\+6, .* at 20 fractional bits; use --frac-bits 19 \(bound 1.68e\+7\)$/,
  );
  assert.throws(() => checkValues("t", "input", "x", [2 ** 47], 20), /no --frac-bits from 8 up fits it/);
  assert.throws(
    () => checkValues("t", "weight", "w", [1, -Infinity], 20),
    /weight value -Infinity at index 1 .*finite/,
  );
  // A weight tensor [out, fanIn]: 1e5 over a fan-in of 100 sums to 1e7, past 2^22 but not past 2^30.
  const tensors = new Map([["0.weight", { shape: [2, 100], data: new Float64Array(200).fill(1e5) }]]);
  const maxima = new Map([["0.weight", 1e5]]);
  assert.match(sumWarning("m", tensors, maxima, 20)!, /^m: warning: 0.weight .* fan-in of 100, .* reach 1.00e\+7/);
  assert.equal(sumWarning("m", tensors, maxima, 16), null);
});

Deno.test("encodeFixed's refusal names the value, the bound and the fractional bits", () => {
  assert.throws(
    () => encodeFixed(2 ** 43, 20),
    /the constant 8796093022208 does not fit the ring at 20 fractional bits: .*below 2\^63, so \|x\| below 8.80e\+12/,
  );
  assert.throws(() => encodeFixed(Number.NaN, 16), /the constant NaN does not fit the ring at 16 fractional bits/);
  assert.equal(encodeFixed(-1, 20), (1n << 64n) - (1n << 20n));
});

native(
  "share refuses an input of 1e8 at f = 20 with the bound and the flag, and shares it at the f it names",
  async () => {
    await inDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify({ shape: [1, 4], data: [0.5, 1, 2, 1e8] }));
      const r = await cli("share", "--input", `${dir}/x.json`, "--out", `${dir}/x`);
      assert.notEqual(r.code, 0);
      const line = r.stderr.trim();
      assert.equal(line.split("\n").length, 1, line);
      assert.equal(
        line,
        `cryptgpu: error: ${dir}/x.json: input value 100000000 at index 3 of tensor input exceeds 4.19e+6, the ` +
          "largest magnitude whose product with a weight of 1 stays in the ring at 20 fractional bits; " +
          "use --frac-bits 17 (bound 2.68e+8)",
      );
      assert.equal(await shareFiles(`${dir}/x`), 0, "nothing written");

      const ok = await cli("share", "--input", `${dir}/x.json`, "--frac-bits", "17", "--out", `${dir}/x`);
      assert.equal(ok.code, 0, ok.stderr);
      const back = await cli("reconstruct", `${dir}/x.p0.share`, `${dir}/x.p2.share`, "--out", `${dir}/y.cgtf`);
      assert.equal(back.code, 0, back.stderr);
      const y = await readTensorFile(`${dir}/y.cgtf`);
      assert.equal(y.header.fracBits, 17);
      assert.deepEqual(Array.from(new Float64Array(tensorBytes(y, "input").bytes.buffer)), [0.5, 1, 2, 1e8]);
    });
  },
);

native("share refuses NaN in a tensor file and Infinity (1e999) in JSON, naming the index", async () => {
  await inDir(async (dir) => {
    await writePlain(`${dir}/x.cgtf`, "input", "any", [["input", [3], [1, Number.NaN, 2]]]);
    const r = await cli("share", "--input", `${dir}/x.cgtf`, "--out", `${dir}/x`);
    assert.notEqual(r.code, 0);
    assert.equal(
      r.stderr.trim(),
      `cryptgpu: error: ${dir}/x.cgtf: input value NaN at index 1 of tensor input is not a finite number`,
    );
    await Deno.writeTextFile(`${dir}/i.json`, '{"shape": [2], "data": [1, -1e999]}');
    const j = await cli("share", "--input", `${dir}/i.json`, "--out", `${dir}/x`);
    assert.notEqual(j.code, 0);
    assert.match(
      j.stderr.trim(),
      /^cryptgpu: error: .*i\.json: input value -Infinity at index 1 .*not a finite number$/,
    );
    assert.equal(await shareFiles(`${dir}/x`), 0);
  });
});

native("share refuses a model file with a huge weight and warns where a layer's sum may leave the ring", async () => {
  await inDir(async (dir) => {
    await writePlain(`${dir}/m.cgtf`, "model", "lenet", [
      ["0.weight", [2, 3], [0.1, -0.2, 0.3, 0.1, -5e6, 0]],
      ["0.bias", [2], [0, 0]],
    ]);
    const r = await cli("share", "--model", `${dir}/m.cgtf`, "--out", `${dir}/m`);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr.trim(),
      /^cryptgpu: error: .*m\.cgtf: weight value -5000000 at index 4 of tensor 0\.weight exceeds 4\.19e\+6, the largest magnitude whose product with an activation of 1 stays in the ring at 20 fractional bits; use --frac-bits 19 \(bound 1\.68e\+7\)$/,
    );
    assert.equal(await shareFiles(`${dir}/m`), 0);

    // every weight fits, but 100 products of 1e5 sum to 1e7: shared, with one warning line
    await writePlain(`${dir}/w.cgtf`, "model", "lenet", [["0.weight", [1, 100], new Array(100).fill(1e5)]]);
    const w = await cli("share", "--model", `${dir}/w.cgtf`, "--out", `${dir}/w`);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(await shareFiles(`${dir}/w`), 3);
    const warning = w.stderr.trim();
    assert.equal(warning.split("\n").length, 1, warning);
    assert.match(warning, /w\.cgtf: warning: 0\.weight has weights up to 1\.00e\+5 over a fan-in of 100/);
    const quiet = await cli("share", "--model", `${dir}/w.cgtf`, "--frac-bits", "16", "--out", `${dir}/w`);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr.trim(), "");
  });
});

native("share checks seeded zoo weights: LeNet's fit at 20 bits, not at 32 (bound 0.25)", async () => {
  await inDir(async (dir) => {
    const ok = await cli("share", "--model", "lenet", "--out", `${dir}/w`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr.trim(), "");
    const r = await cli("share", "--model", "lenet", "--frac-bits", "32", "--out", `${dir}/v`);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr.trim(),
      /^cryptgpu: error: lenet \(seed 1\): weight value \S+ at index \d+ of tensor \S+ exceeds 0\.250, .* at 32 fractional bits; use --frac-bits 3[01] /,
    );
  });
});

const required = {
  infer: ["--model", "m.p{i}.share", "--input", "x.p{i}.share"],
  train: ["--model", "m.p{i}.share", "--data", "d.p{i}.share", "--iterations", "1"],
};

Deno.test("infer and train refuse --frac-bits (the share files decide it) with one line", async () => {
  for (const [command, args] of Object.entries(required)) {
    for (const f of ["0", "63", "abc", "20"]) {
      const r = await cli(command, "--party", "0", "--parties", "p.json", ...args, "--frac-bits", f);
      assert.notEqual(r.code, 0, `${command} --frac-bits ${f}`);
      assert.equal(r.stderr.trim(), "error: unknown option '--frac-bits'", `${command} --frac-bits ${f}`);
    }
  }
});

Deno.test("--connect-timeout and --round-timeout take seconds in (0, 3600], refused with one line", async () => {
  const bench = ["bench", "protocols", "--party", "0", "--parties", "/nonexistent/parties.json"];
  for (const [flag, v] of [["--connect-timeout", "0"], ["--connect-timeout", "abc"], ["--round-timeout", "3601"]]) {
    const r = await cli(...bench, flag, v);
    assert.notEqual(r.code, 0);
    assert.equal(
      r.stderr.trim(),
      `error: option '${flag} <s>' argument '${v}' is invalid. ${flag} must be a number of seconds in (0, 3600], got ${v}`,
    );
  }
  // accepted, the command goes on to read the parties file
  const r = await cli(...bench, "--connect-timeout", "0.5", "--round-timeout", "3600");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot read parties file \/nonexistent\/parties\.json/);
  const t = await cli("infer", "--party", "0", "--parties", "p.json", ...required.infer, "--round-timeout", "-1");
  assert.match(t.stderr.trim(), /^error: .*--round-timeout must be a number of seconds in \(0, 3600\], got -1$/);
});

Deno.test("partySettings: the parsed session settings, with the files' f winning over the flags", () => {
  const cmd = addPartyOptions(new Command("x").exitOverride(), "local", { fracBits: 20 }).action(() => {});
  cmd.parse(["--party", "1", "--parties", "p.json", "--connect-timeout", "2.5", "--frac-bits", "16"], { from: "user" });
  const o = cmd.opts<Parameters<typeof partySettings>[0]>();
  const s = partySettings(o);
  assert.deepEqual(
    { party: s.party, fracBits: s.fracBits, connect: s.connectTimeoutMs, recv: s.recvTimeoutMs, trunc: s.truncation },
    { party: 1, fracBits: 16, connect: 2500, recv: 60_000, trunc: "local" },
  );
  assert.equal(partySettings(o, 20).fracBits, 20);
  assert.equal(partySettings({ ...o, fracBits: "12" }).fracBits, 12); // the form infer and train use today
  assert.throws(() => partySettings({ ...o, fracBits: "abc" }), /--frac-bits must be an integer in \[8, 32\], got abc/);
  assert.throws(() => partySettings(o, 40), /fractional bits must be in \[8, 32\], got 40/);
  assert.throws(() => partySettings({ ...o, roundTimeout: 0 }), /--round-timeout must be a number of seconds/);

  const plain = addPartyOptions(new Command("y"));
  assert.ok(!plain.options.some((x) => x.long === "--frac-bits"), "not offered by default");
  const training = benchCommand().commands.find((c) => c.name() === "training")!;
  assert.equal(training.options.find((x) => x.long === "--frac-bits")?.defaultValue, "16");
  const inference = benchCommand().commands.find((c) => c.name() === "inference")!;
  assert.equal(inference.options.find((x) => x.long === "--frac-bits")?.defaultValue, "20");
});
