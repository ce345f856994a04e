import assert from "node:assert/strict";
import { deviceAvailable, runCli } from "../helpers.ts";

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
    assert.equal(cpu.build.abi, 1);
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
