import assert from "node:assert/strict";
import { deviceAvailable, runCli } from "../helpers.ts";
import { MSB_BITS } from "../../lib/mpc/msb.ts";
import { RELU_ROUNDS } from "../../lib/mpc/relu.ts";
import { injectWords } from "../../lib/mpc/bitinject.ts";

const cryptgpu = (...args: string[]) => runCli(args);

Deno.test({
  name: "cryptgpu info --json names the CPU build, its features and the host",
  ignore: !deviceAvailable,
  fn: async () => {
    const r = await cryptgpu("info", "--json");
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    const cpu = info.backends.find((b: { device: string }) => b.device === "cpu");
    assert.equal(cpu.available, true);
    assert.equal(cpu.build.abi, 3);
    assert.equal(cpu.build.backend, "cpu");
    assert.equal(typeof cpu.build.features.aesni, "boolean");
    assert.equal(cpu.devices.length, 1);
    assert.ok(cpu.devices[0].cores >= 1);
    const text = await cryptgpu("info");
    assert.match(text.stdout, /cpu: .*libcryptgpu_cpu\.so/);
  },
});

Deno.test({
  name: "cryptgpu bench ring --quick --json measures every group with positive rates",
  ignore: !deviceAvailable,
  fn: async () => {
    const r = await cryptgpu("bench", "ring", "--quick", "--json", "--threads", "1");
    assert.equal(r.code, 0, r.stderr);
    const rec = JSON.parse(r.stdout);
    assert.equal(rec.suite, "ring");
    assert.equal(rec.threads, 1);
    for (const g of ["elementwise", "matmul", "conv2d", "aes", "bits"]) {
      assert.ok(rec.rows.some((row: { group: string }) => row.group === g), `group ${g}`);
    }
    for (const row of rec.rows) assert.ok(row.rate > 0 && row.seconds > 0, row.name);
  },
});

Deno.test("bad arguments give one line on stderr and a non-zero exit", async () => {
  const r = await cryptgpu("bench", "ring", "--threads", "two", "--quick");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr.trim(), /^cryptgpu: error: --threads must be a non-negative integer, got two$/);
  const u = await cryptgpu("frobnicate");
  assert.notEqual(u.code, 0);
  assert.match(u.stderr, /unknown command 'frobnicate'/);
});

Deno.test("a missing native library is one clear line, not a stack trace", async () => {
  const out = await runCli(["bench", "ring", "--quick"], { CRYPTGPU_LIB: "/nonexistent/lib.so" });
  const err = out.stderr.trim();
  assert.notEqual(out.code, 0);
  assert.equal(err.split("\n").length, 1, err);
  assert.match(err, /^cryptgpu: error: cannot load the cpu library \/nonexistent\/lib\.so: check the path/);
});

Deno.test({
  name: "local bench protocols --json: ReLU and msb bytes and rounds equal their formulas; the time is the median run",
  ignore: !deviceAvailable,
  fn: async () => {
    const r = await cryptgpu(
      "local",
      "bench",
      "protocols",
      "--only",
      "ReLU,msb",
      "--max-size",
      "1e4",
      "--json",
      "--no-write",
      "--insecure",
    );
    assert.equal(r.code, 0, r.stderr);
    const record = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"), r.stdout.lastIndexOf("}") + 1));
    const rows: {
      protocol: string;
      elements: number;
      seconds: number;
      secondsRange: [number, number];
      bytesPerElementMax: number;
      rounds: number;
    }[] = record.rows;
    assert.deepEqual(rows.map((x) => `${x.protocol} ${x.elements}`), [
      "msb 1000",
      "msb 10000",
      "msb, carry-save front end 1000",
      "msb, carry-save front end 10000",
      "ReLU 1000",
      "ReLU 10000",
    ]);
    const formula: Record<string, [number, number]> = {
      "msb": [8, MSB_BITS.input[0] / 8],
      "msb, carry-save front end": [8, MSB_BITS["carry-save"][0] / 8],
      "ReLU": [RELU_ROUNDS, MSB_BITS.input[0] / 8 + 8 * injectWords(1)],
    };
    for (const row of rows) {
      const [rounds, bytes] = formula[row.protocol];
      assert.equal(row.rounds, rounds, row.protocol);
      // packed streams round up to whole words, thirds differ by one element: within 0.2 byte per element at 10^3
      assert.ok(
        Math.abs(row.bytesPerElementMax - bytes) < 0.2,
        `${row.protocol}: ${row.bytesPerElementMax} vs ${bytes}`,
      );
      assert.ok(row.secondsRange[0] <= row.seconds && row.seconds <= row.secondsRange[1]);
    }
  },
});
