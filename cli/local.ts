/**
 * `cryptgpu local <subcommand> ...`: the three parties of a subcommand as three
 * processes on this machine, over loopback with mutual TLS (certificates made
 * for the run) unless --insecure is among the arguments. Party 0's output is
 * the command's; the others' error lines come prefixed. The native threads
 * are split between the three.
 */
import { Command } from "commander";
import { makeCerts } from "../lib/net/certs.ts";

import { CLI_MAIN, CLI_PERMISSIONS } from "./permissions.ts";

export function localCommand(): Command {
  return new Command("local")
    .description("run a three-party subcommand as three local processes (e.g. `local bench protocols`)")
    .argument("<subcommand...>", "the subcommand and its arguments")
    .allowUnknownOption()
    .helpOption(false)
    .action(async (args: string[]) => {
      const code = await runLocal(args);
      if (code !== 0) Deno.exit(code);
    });
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function runLocal(args: string[]): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-local-" });
  try {
    const ports = [freePort(), freePort(), freePort()] as [number, number, number];
    const insecure = args.includes("--insecure");
    let file = `${dir}/parties.json`;
    if (insecure) {
      await Deno.writeTextFile(file, JSON.stringify({ parties: ports.map((port) => ({ host: "127.0.0.1", port })) }));
    } else {
      file = await makeCerts({ out: dir, hosts: ["127.0.0.1", "127.0.0.1", "127.0.0.1"], ports });
    }
    const session = crypto.randomUUID();
    const threads = Deno.env.get("CRYPTGPU_THREADS") ??
      String(Math.max(1, Math.floor(navigator.hardwareConcurrency / 3)));
    const children = [0, 1, 2].map((i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...CLI_PERMISSIONS,
          CLI_MAIN,
          ...args,
          "--party",
          String(i),
          "--parties",
          file,
          "--session",
          session,
        ],
        env: { CRYPTGPU_THREADS: threads },
        // party 0 speaks for the run (its progress bar draws on the terminal); the others' errors are prefixed
        stdout: i === 0 ? "inherit" : "null",
        stderr: i === 0 ? "inherit" : "piped",
      }).spawn()
    );
    const pumps = children.map(async (child, i) => {
      if (i === 0) return;
      const decoder = new TextDecoderStream();
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(decoder)) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) console.error(`[party ${i}] ${line}`);
      }
      if (rest) console.error(`[party ${i}] ${rest}`);
    });
    const statuses = await Promise.all(children.map((c) => c.status));
    await Promise.all(pumps);
    const failed = statuses.findIndex((s) => !s.success);
    return failed < 0 ? 0 : statuses[failed].code || 1;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
