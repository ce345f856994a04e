/**
 * A missing CPU library fails the test run (CI must not pass having skipped
 * every native test); a missing CUDA build leaves its tests ignored. Each case
 * runs this file again as a child `deno test` in probe mode, where it holds
 * one device test and nothing else.
 */
import assert from "node:assert/strict";
import { deviceTest } from "../helpers.ts";

const PROBE = "CRYPTGPU_LOAD_PROBE";

if (Deno.env.get(PROBE)) {
  deviceTest("probe", () => {});
} else {
  const root = new URL("../../", import.meta.url).pathname;
  const probe = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--no-check", new URL(import.meta.url).pathname],
      cwd: root,
      env: { NO_COLOR: "1", [PROBE]: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  };

  Deno.test("a CPU library that is not there fails the run, naming the path and the cause", async () => {
    const r = await probe({ CRYPTGPU_LIB: "/nonexistent.so", CRYPTGPU_DEVICE: "cpu" });
    assert.notEqual(r.code, 0, r.text);
    assert.match(r.text, /the CPU library \/nonexistent\.so cannot be used: cannot load the cpu library/);
    assert.match(r.text, /No such file or directory|cannot open shared object/, r.text); // the dlopen cause
    assert.match(r.text, /0 passed \| 1 failed \| 1 ignored/, r.text);
  });

  Deno.test("a CPU library that does not load (not a library) fails the run", async () => {
    const bad = await Deno.makeTempFile({ suffix: ".so" });
    try {
      await Deno.writeTextFile(bad, "not an ELF file\n");
      const r = await probe({ CRYPTGPU_LIB: bad, CRYPTGPU_DEVICE: "cpu" });
      assert.notEqual(r.code, 0, r.text);
      assert.ok(r.text.includes(`the CPU library ${bad} cannot be used`), r.text);
      assert.match(r.text, /0 passed \| 1 failed \| 1 ignored/, r.text);
    } finally {
      await Deno.remove(bad);
    }
  });

  Deno.test("a CUDA build that is not there leaves its tests ignored and the run passing", async () => {
    const r = await probe({ CRYPTGPU_CUDA_LIB: "/nonexistent-cuda.so", CRYPTGPU_DEVICE: "cuda" });
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /0 passed \| 0 failed \| 1 ignored/, r.text);
  });
}
