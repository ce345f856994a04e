/** The options every three-party subcommand takes, and opening the session from them. */
import { type Command, Option } from "commander";
import { openSession, type Session } from "../lib/mpc/session.ts";
import { TRUNCATION_MODES, type TruncationMode } from "../lib/mpc/party.ts";

export interface PartyFlags {
  party: string;
  parties: string;
  session?: string;
  insecure?: boolean;
  fracBits: string;
  truncation: TruncationMode;
  device: "cpu" | "cuda";
  threads?: string;
}

/**
 * `truncation` is the command's default: "corrected" where a wrong activation
 * would go unnoticed in a result (inference), "local" where f = 16 keeps the
 * failure rate low and the bytes count every iteration (training).
 */
export function addPartyOptions(cmd: Command, truncation: TruncationMode = "local"): Command {
  return cmd
    .requiredOption("--party <i>", "this party's index: 0, 1 or 2")
    .requiredOption("--parties <file>", "the parties file (hosts, ports, TLS material)")
    .option("--session <id>", "session id the three must share", "default")
    .option("--insecure", "plain TCP instead of TLS (loopback only)")
    .option("--frac-bits <f>", "fixed-point fractional bits", "20")
    .addOption(
      new Option("--truncation <mode>", "local: 1 round, fails w.p. |z|/2^63 per element; corrected: 2 rounds, never")
        .choices([...TRUNCATION_MODES])
        .default(truncation),
    )
    .addOption(new Option("--device <device>", "backend").choices(["cpu", "cuda"]).default("cpu"))
    .option("--threads <n>", "native threads (default: CRYPTGPU_THREADS or every core)");
}

function int(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw new Error(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  }
  return n;
}

export function openFromFlags(f: PartyFlags): Promise<Session> {
  return openSession({
    party: int("--party", f.party, 0, 2)!,
    partiesFile: f.parties,
    session: f.session,
    insecure: f.insecure,
    fracBits: int("--frac-bits", f.fracBits, 8, 32),
    truncation: f.truncation,
    backend: { device: f.device, threads: int("--threads", f.threads, 0, 1024) },
  });
}
