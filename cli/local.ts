/**
 * `cryptgpu local <subcommand> ...`: the three parties of a subcommand as three
 * processes on this machine, over loopback with authenticated, encrypted
 * channels (certificates made for the run) unless --insecure is among the
 * arguments. Party 0's output is
 * the command's; the others' error lines come prefixed. The native threads
 * are split between the three.
 *
 * No key stays on disk: the certificates are made in a temporary folder that
 * is read into memory and removed before any party starts, and each party
 * gets its configuration (with its own key only) on its stdin, which then
 * stays open as the sign that the launcher lives (cli/parent_watch.ts).
 */
import { Command } from "commander";
import { makeCerts } from "../lib/net/certs.ts";
import { PARENT_PIPE_ENV } from "./parent_watch.ts";
import { CLI_MAIN, CLI_PERMISSIONS, CLI_V8_FLAGS } from "./permissions.ts";

/** How long a party has to stop after SIGTERM before it gets SIGKILL. */
const GRACE_MS = 2000;

const LAUNCHER_FLAGS = ["--party", "--parties", "--session"];

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

/** The launcher sets these per party; a user's own would be silently overridden, so they are refused. */
function refuseLauncherFlags(args: string[]): void {
  const at = args.findIndex((a) => LAUNCHER_FLAGS.some((f) => a === f || a.startsWith(`${f}=`)));
  if (at < 0) return;
  const flag = args[at].split("=")[0];
  const given = args[at].includes("=") ? args[at].replace("=", " ") : `${flag} ${args[at + 1] ?? ""}`.trim();
  const command = args.slice(0, Math.max(1, args.findIndex((a) => a.startsWith("-")))).join(" ");
  throw new Error(`local sets ${flag} itself; run \`cryptgpu ${command} ${given} ...\` on a host instead`);
}

/** Each party's configuration, as one line of JSON; certificates inline, only party i's key for party i. */
async function partyConfigs(insecure: boolean, onDir: (dir: string | undefined) => void): Promise<string[]> {
  const ports = [freePort(), freePort(), freePort()] as [number, number, number];
  const hosts = ["127.0.0.1", "127.0.0.1", "127.0.0.1"] as [string, string, string];
  if (insecure) {
    const line = JSON.stringify({ parties: ports.map((port, i) => ({ host: hosts[i], port })) });
    return [line, line, line];
  }
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-local-" });
  onDir(dir);
  try {
    await makeCerts({ out: dir, hosts, ports });
    const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
    const caPem = await read("ca.crt");
    const certs = await Promise.all([0, 1, 2].map((i) => read(`p${i}.crt`)));
    const keys = await Promise.all([0, 1, 2].map((i) => read(`p${i}.key`)));
    return [0, 1, 2].map((me) =>
      JSON.stringify({
        caPem,
        parties: ports.map((port, i) => ({
          host: hosts[i],
          port,
          certPem: certs[i],
          ...(i === me ? { keyPem: keys[i] } : {}),
        })),
      })
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    onDir(undefined);
  }
}

/** The line to show for a party's failure: its last error line, without the command's own prefix. */
function causeOf(lines: string[]): string | undefined {
  const line = lines.findLast((l) => l.startsWith("cryptgpu: error: ")) ?? lines.findLast((l) => l.trim() !== "");
  return line?.replace(/^cryptgpu: error: /, "");
}

export async function runLocal(args: string[]): Promise<number> {
  refuseLauncherFlags(args);
  let interrupted: Deno.Signal | undefined;
  let dir: string | undefined;
  let children: Deno.ChildProcess[] = [];
  const exited = [false, false, false];
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stopAll = () => {
    if (killTimer !== undefined) return;
    const send = (signal: Deno.Signal) =>
      children.forEach((c, i) => {
        if (exited[i]) return;
        try {
          c.kill(signal);
        } catch {
          // it exited between the check and the signal
        }
      });
    send("SIGTERM");
    killTimer = setTimeout(() => send("SIGKILL"), GRACE_MS);
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = signals.map((signal) => () => {
    interrupted ??= signal;
    stopAll();
  });
  signals.forEach((s, k) => Deno.addSignalListener(s, onSignal[k]));
  try {
    let configs: string[];
    try {
      configs = await partyConfigs(args.includes("--insecure"), (d) => dir = d);
    } catch (e) {
      if (!interrupted) throw e;
      configs = [];
    }
    if (interrupted) return stoppedBy(interrupted);
    const session = crypto.randomUUID();
    const threads = Deno.env.get("CRYPTGPU_THREADS") ??
      String(Math.max(1, Math.floor(navigator.hardwareConcurrency / 3)));
    // where party 0's stderr is a terminal, its progress bar draws there; elsewhere its lines are read like the others'
    const party0Inherits = Deno.stderr.isTerminal();
    children = [0, 1, 2].map((i) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...CLI_PERMISSIONS, ...CLI_V8_FLAGS, CLI_MAIN, ...args, "--party", String(i), "--parties", "-"]
          .concat(["--session", session]),
        env: { CRYPTGPU_THREADS: threads, [PARENT_PIPE_ENV]: "1" },
        stdin: "piped",
        stdout: i === 0 ? "inherit" : "null",
        stderr: i === 0 && party0Inherits ? "inherit" : "piped",
      }).spawn()
    );
    // the writers stay open while the parties run: their end is the parties' sign that the launcher is gone
    const writers = children.map((c, i) => {
      const w = c.stdin.getWriter();
      w.write(new TextEncoder().encode(configs[i] + "\n")).catch(() => {}); // a party that died early reports itself
      return w;
    });
    let failure: { party: number; status: Deno.CommandStatus } | undefined;
    const lines: string[][] = [[], [], []];
    const pumps = children.map(async (child, i) => {
      if (i === 0 && party0Inherits) return;
      let rest = "";
      const show = (line: string) => {
        lines[i].push(line);
        // once stopping, the others' lines are the stop's echo (closed connections), not news
        if ((failure && failure.party !== i) || interrupted) return;
        console.error(i === 0 ? line : `[party ${i}] ${line}`);
      };
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        const split = (rest + chunk).split("\n");
        rest = split.pop()!;
        split.forEach(show);
      }
      if (rest) show(rest);
    });
    const statuses = await Promise.all(children.map(async (c, i) => {
      const status = await c.status;
      exited[i] = true;
      if (!status.success && !failure && !interrupted) {
        failure = { party: i, status };
        stopAll();
      }
      return status;
    }));
    clearTimeout(killTimer);
    await Promise.all(pumps);
    for (const w of writers) await w.close().catch(() => {});
    if (interrupted) return stoppedBy(interrupted);
    if (!failure) return 0;
    const { party, status } = failure;
    const how = status.signal ? `was killed by ${status.signal}` : `failed (exit code ${status.code})`;
    const cause = causeOf(lines[party]) ?? (party === 0 && party0Inherits ? "its error is above" : undefined);
    const others = statuses.some((s, i) => i !== party && !s.success) ? "; the other parties were stopped" : "";
    console.error(`cryptgpu: error: party ${party} ${how}${cause ? `: ${cause}` : ""}${others}`);
    return status.code || 1;
  } finally {
    clearTimeout(killTimer);
    signals.forEach((s, k) => Deno.removeSignalListener(s, onSignal[k]));
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function stoppedBy(signal: Deno.Signal): number {
  console.error(`cryptgpu: error: stopped by ${signal}; the parties were stopped`);
  return signal === "SIGINT" ? 130 : 143;
}
