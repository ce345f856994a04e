import assert from "node:assert/strict";
import process from "node:process";
import { makeCerts } from "../../lib/net/certs.ts";
import { loadParties } from "../../lib/net/config.ts";
import { runCli } from "../helpers.ts";

const hosts: [string, string, string] = ["127.0.0.1", "h1.example", "::1"];
const ports: [number, number, number] = [7400, 7401, 7402];
const names = async (dir: string) => (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;
const FILES = ["ca.crt", "ca.key", "p0.crt", "p0.key", "p1.crt", "p1.key", "p2.crt", "p2.key", "parties.json"];

Deno.test("makeCerts: keys 0600 and the folder 0700 under a permissive umask; certificates 0644; nothing else", async () => {
  const dir = await Deno.makeTempDir();
  const old = process.umask(0);
  try {
    const file = await makeCerts({ out: `${dir}/new/certs`, hosts, ports });
    assert.equal(file, `${dir}/new/certs/parties.json`);
    assert.deepEqual(await names(`${dir}/new/certs`), FILES);
    assert.equal(await modeOf(`${dir}/new/certs`), 0o700);
    for (const f of FILES) {
      assert.equal(await modeOf(`${dir}/new/certs/${f}`), f.endsWith(".key") ? 0o600 : 0o644, f);
    }
    const parties = await loadParties(file, 1);
    assert.deepEqual(parties.parties.map((p) => [p.host, p.port]), hosts.map((h, i) => [h, ports[i]]));
    assert.match(parties.tls!.keys[1]!, /BEGIN PRIVATE KEY/);
  } finally {
    process.umask(old);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeCerts: a non-empty folder is refused untouched without force, replaced with it; an empty one is used", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
    await assert.rejects(makeCerts({ out: dir, hosts, ports }), {
      message: `${dir} is not empty: pass --force to replace the certificates and keys in it`,
    });
    assert.deepEqual(await names(dir), ["notes.txt"]);

    await Deno.writeTextFile(`${dir}/notafolder`, "x");
    await assert.rejects(makeCerts({ out: `${dir}/notafolder`, hosts, ports }), {
      message: `${dir}/notafolder is not a directory`,
    });

    // with force: every file replaced (new CA), others kept, keys 0600 even where an old key was 0644
    await Deno.mkdir(`${dir}/c`);
    await makeCerts({ out: `${dir}/c`, hosts, ports }); // empty: no force needed
    const caBefore = await Deno.readTextFile(`${dir}/c/ca.crt`);
    await Deno.chmod(`${dir}/c/p0.key`, 0o644);
    await Deno.writeTextFile(`${dir}/c/notes.txt`, "mine");
    await assert.rejects(makeCerts({ out: `${dir}/c`, hosts, ports }), /is not empty: pass --force/);
    assert.equal(await Deno.readTextFile(`${dir}/c/ca.crt`), caBefore);
    await makeCerts({ out: `${dir}/c`, hosts, ports: [8000, 8001, 8002], force: true });
    assert.notEqual(await Deno.readTextFile(`${dir}/c/ca.crt`), caBefore);
    assert.deepEqual(await names(`${dir}/c`), [...FILES, "notes.txt"].sort());
    assert.equal(await modeOf(`${dir}/c/p0.key`), 0o600);
    assert.equal((await loadParties(`${dir}/c/parties.json`, 0)).parties[2].port, 8002);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cryptgpu certs: a non-empty --out is one line naming it and --force; --force replaces", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/other`, "x");
    const args = ["certs", "--out", dir, "--hosts", "10.0.0.1,10.0.0.2,10.0.0.3"];
    const r = await runCli(args);
    assert.notEqual(r.code, 0);
    assert.equal(
      r.stderr.trim(),
      `cryptgpu: error: ${dir} is not empty: pass --force to replace the certificates and keys in it`,
    );
    assert.deepEqual(await names(dir), ["other"]);
    const f = await runCli([...args, "--force"]);
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(await names(dir), [...FILES, "other"].sort());
    for (const k of ["ca.key", "p0.key", "p1.key", "p2.key"]) assert.equal(await modeOf(`${dir}/${k}`), 0o600, k);

    // openssl missing: one line, and no folder or private scratch folder left behind
    const none = await runCli(["certs", "--out", `${dir}/fresh`, "--hosts", "a,b,c"], { PATH: "/nonexistent" });
    assert.notEqual(none.code, 0);
    assert.match(
      none.stderr.trim(),
      /^cryptgpu: error: openssl is needed to make certificates \(apt-get install openssl\)/,
    );
    const again = await runCli([...args, "--force"], { PATH: "/nonexistent" });
    assert.notEqual(again.code, 0);
    assert.deepEqual(await names(dir), [...FILES, "other"].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
