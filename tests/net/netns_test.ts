/**
 * Three real hosts: network namespaces with their own addresses joined by a
 * bridge (scripts/netns-hosts.sh), rate-limited to the paper's 1.25 GB/s,
 * running a subcommand through scripts/run-3hosts.sh over sealed channels. Needs
 * root and iproute2; reported as ignored elsewhere.
 */
import assert from "node:assert/strict";
import { deviceAvailable } from "../helpers.ts";
import { CLI_PERMISSIONS } from "../../cli/permissions.ts";

const root = new URL("../../", import.meta.url).pathname;

function canMakeNamespaces(): boolean {
  try {
    if (Deno.uid() !== 0) return false;
    return new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(cmd, { args, cwd: root, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout), err: new TextDecoder().decode(o.stderr) };
}

Deno.test({
  name: "three network-namespace hosts run a subcommand over sealed channels through run-3hosts.sh",
  ignore: !deviceAvailable || !canMakeNamespaces(),
  fn: async () => {
    const prefix = `cgt${Deno.pid % 1000}`;
    const dir = await Deno.makeTempDir();
    try {
      const up = await run("bash", ["scripts/netns-hosts.sh", "up", prefix, "10gbit"]);
      assert.equal(up.code, 0, up.err);
      const deno = Deno.execPath();
      const main = `${root}cli/main.ts`;
      const certs = await run(deno, [
        "run",
        "-A",
        main,
        "certs",
        "--out",
        dir,
        "--hosts",
        "10.251.0.1,10.251.0.2,10.251.0.3",
      ]);
      assert.equal(certs.code, 0, certs.err);
      const cli = `${deno} run ${CLI_PERMISSIONS.join(" ")} ${main}`;
      const r = await run("bash", [
        "scripts/run-3hosts.sh",
        "--parties",
        `${dir}/parties.json`,
        "--launcher",
        `ip netns exec ${prefix}{i}`,
        "--cli",
        `CRYPTGPU_THREADS=1 ${cli}`,
        "--",
        "bench",
        "protocols",
        "--only",
        "multiply",
        "--max-size",
        "1e3",
        "--no-write",
        "--json",
      ]);
      assert.equal(r.code, 0, r.err);
      const record = JSON.parse(r.out);
      assert.equal(record.tls, true);
      const row = record.rows.find((x: { protocol: string }) => x.protocol.startsWith("fixed-point multiply"));
      assert.equal(row.rounds, 2);
      assert.equal(row.bytesPerElementMax, 16);
    } finally {
      await run("bash", ["scripts/netns-hosts.sh", "down", prefix]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
