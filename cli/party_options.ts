/** The options every three-party subcommand takes, and opening the session from them. */
import { type Command, InvalidArgumentError, Option } from "commander";
import { openSession, type Session, type SessionOptions } from "../lib/mpc/session.ts";
import type { Settings } from "../lib/net/handshake.ts";
import { TRUNCATION_MODES, type TruncationMode } from "../lib/mpc/party.ts";
import { FIXED_DEFAULT_BITS } from "../lib/ring/fixed.ts";
import { MAX_FRAC_BITS, MIN_FRAC_BITS } from "../lib/io/ranges.ts";

export interface PartyFlags {
  party: string;
  parties: string;
  session?: string;
  insecure?: boolean;
  /**
   * --frac-bits, where the command offers it. Commands whose share files fix
   * f (infer, train) do not offer it; they pass the files' f to openFromFlags
   * (or, as before, set this field to it).
   */
  fracBits?: string;
  truncation: TruncationMode;
  device: "cpu" | "cuda";
  threads?: string;
  /** --connect-timeout and --round-timeout, in seconds, checked when parsed. */
  connectTimeout?: number;
  roundTimeout?: number;
}

export interface PartyOptionsConfig {
  /** Offer --frac-bits with this default: for commands that make their own data (the benches). */
  fracBits?: number;
}

/** The longest a timeout may be set to: past an hour a stalled peer is better reported than waited for. */
export const MAX_TIMEOUT_S = 3600;
export const DEFAULT_CONNECT_TIMEOUT_S = 30, DEFAULT_ROUND_TIMEOUT_S = 60;

/** A timeout flag's value in seconds, or the line that refuses it. */
function timeoutSeconds(flag: string, v: string): number | string {
  const s = Number(v);
  return s > 0 && s <= MAX_TIMEOUT_S ? s : `${flag} must be a number of seconds in (0, ${MAX_TIMEOUT_S}], got ${v}`;
}

/** For commander: refused when parsed, before the command runs. */
function seconds(flag: string): (v: string) => number {
  return (v) => {
    const s = timeoutSeconds(flag, v);
    if (typeof s === "string") throw new InvalidArgumentError(s);
    return s;
  };
}

/**
 * `truncation` is the command's default: "corrected" where a wrong activation
 * would go unnoticed in a result (inference), "local" where f = 16 keeps the
 * failure rate low and the bytes count every iteration (training).
 */
export function addPartyOptions(
  cmd: Command,
  truncation: TruncationMode = "local",
  config: PartyOptionsConfig = {},
): Command {
  cmd
    .requiredOption("--party <i>", "this party's index: 0, 1 or 2")
    .requiredOption("--parties <file>", "the parties file (hosts, ports, certificates and keys)")
    .option("--session <id>", "session id the three must share", "default")
    .option("--insecure", "plain TCP without encryption or authentication (loopback only)");
  if (config.fracBits !== undefined) {
    cmd.option("--frac-bits <f>", "fixed-point fractional bits", String(config.fracBits));
  }
  return cmd
    .addOption(
      new Option(
        "--truncation <mode>",
        "local: 1 round, fails w.p. |z|/2^63 per element; corrected: 2 rounds, never; " +
          "preprocessed: never, 1 round shared with a product's, from pairs made ahead (10 rounds a batch), " +
          "and comparisons from masks made ahead (ReLU 8 rounds instead of 10)",
      )
        .choices([...TRUNCATION_MODES])
        .default(truncation),
    )
    .addOption(new Option("--device <device>", "backend").choices(["cpu", "cuda"]).default("cpu"))
    .option("--threads <n>", "native threads (default: CRYPTGPU_THREADS or every core)")
    .addOption(
      new Option("--connect-timeout <s>", "seconds for the whole setup: TCP connect, hello, key exchange, agreement")
        .argParser(seconds("--connect-timeout"))
        .default(DEFAULT_CONNECT_TIMEOUT_S),
    )
    .addOption(
      new Option("--round-timeout <s>", "seconds one round may wait for a peer before the run stops")
        .argParser(seconds("--round-timeout"))
        .default(DEFAULT_ROUND_TIMEOUT_S),
    );
}

function int(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw new Error(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  }
  return n;
}

/**
 * The session's settings from the flags, checked (nothing is opened): what a
 * party would compare with the others'. `fracBits` is the share files' f for
 * commands that read it from them; it wins over the flags object's field.
 */
export function partySettings(f: PartyFlags, fracBits?: number): SessionOptions {
  const bits = fracBits ?? int("--frac-bits", f.fracBits, MIN_FRAC_BITS, MAX_FRAC_BITS) ?? FIXED_DEFAULT_BITS;
  if (!Number.isInteger(bits) || bits < MIN_FRAC_BITS || bits > MAX_FRAC_BITS) {
    throw new Error(`the share files' fractional bits must be in [${MIN_FRAC_BITS}, ${MAX_FRAC_BITS}], got ${bits}`);
  }
  // Objects made by hand (not by commander) may lack the timeouts: the defaults then hold.
  const ms = (flag: string, v: number | undefined, dflt: number) => {
    const s = timeoutSeconds(flag, String(v ?? dflt));
    if (typeof s === "string") throw new Error(s);
    return 1000 * s;
  };
  return {
    party: int("--party", f.party, 0, 2)!,
    partiesFile: f.parties,
    session: f.session,
    insecure: f.insecure,
    fracBits: bits,
    truncation: f.truncation,
    backend: { device: f.device, threads: int("--threads", f.threads, 0, 1024) },
    connectTimeoutMs: ms("--connect-timeout", f.connectTimeout, DEFAULT_CONNECT_TIMEOUT_S),
    recvTimeoutMs: ms("--round-timeout", f.roundTimeout, DEFAULT_ROUND_TIMEOUT_S),
  };
}

/** Opens the session; `agree` is what else the three must hold in common (file ids, model, settings). */
export function openFromFlags(f: PartyFlags, fracBits?: number, agree?: Settings): Promise<Session> {
  return openSession({ ...partySettings(f, fracBits), agree });
}
