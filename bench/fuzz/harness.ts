/**
 * Runs a parser on mutated inputs and sorts every case into: accepted (with
 * the harness's own consistency checks), refused with an expected error class
 * and a one-line message, or a finding: a crash (any other throw), a refusal
 * whose message is not one printable line, a slow case, an allocation past
 * the parser's cap, or an accepted result that is inconsistent.
 */
import { Rng } from "./rng.ts";

// deno-lint-ignore no-explicit-any
export type ErrorClass = new (...args: any[]) => Error;

export type FindingKind = "crash" | "multi-line" | "slow" | "over-allocation" | "inconsistent";

export interface Finding {
  kind: FindingKind;
  case: number;
  detail: string;
  /** The input, base64 (first 3 KiB), to replay it without the seed. */
  input: string;
}

export interface FuzzReport {
  parser: string;
  seed: string;
  cases: number;
  accepted: number;
  /** What accepted cases were, by the harness's note (e.g. "hello", "altered payload (plain link)"). */
  acceptedAs: Record<string, number>;
  refused: Record<string, number>;
  crashes: number;
  findings: Record<FindingKind, number>;
  /** The first few findings of each kind. */
  examples: Finding[];
  /** The slowest case as timed in the run (a garbage collection or a busy core can land on any case). */
  slowestMs: number;
  slowestCase: number;
  /** The run's 30 slowest cases replayed alone, 3 times each: the worst of their best times, what the parser costs. */
  slowestReplayMs: number;
  slowestReplayCase: number;
  /** The largest allocation the harness observed that a length field could drive, in bytes. */
  largestAllocation: number;
  /** What bounds it. */
  allocationCap: string;
  longestMessage: number;
  seconds: number;
}

/** What a case reports besides its outcome: allocations against their cap, and inconsistencies. */
export class Probe {
  largest = 0;
  over: string[] = [];
  wrong: string[] = [];
  alloc(bytes: number, cap: number, what: string): void {
    this.largest = Math.max(this.largest, bytes);
    if (bytes > cap) this.over.push(`${what}: ${bytes} bytes, cap ${cap}`);
  }
  inconsistent(why: string): void {
    this.wrong.push(why);
  }
}

export interface Target<I> {
  parser: string;
  expected: readonly ErrorClass[];
  allocationCap: string;
  /** The unmutated inputs: each must be accepted (a refusal there fails the run before any mutation). */
  valid: readonly I[];
  mutate(rng: Rng, index: number): I | Promise<I>;
  /** Resolves with a note on what was accepted, or throws the parser's refusal. */
  run(input: I, probe: Probe): Promise<string>;
  bytesOf(input: I): Uint8Array;
}

export interface RunOptions {
  cases: number;
  seed: bigint;
  /**
   * A case slower than this, in the run and again when replayed alone, is a finding (an unbounded wait shows up
   * as the test's timeout instead).
   */
  slowMs?: number;
  progress?: (done: number) => void;
  /** Run only this case (a replay of a finding). */
  only?: number;
}

/** One printable line: no line breaks or other control characters, which a log or a terminal would act on. */
export function oneLine(message: string): boolean {
  // deno-lint-ignore no-control-regex -- control characters are what it looks for
  return message.length > 0 && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(message);
}

const MAX_EXAMPLES = 3;
/** How many of the run's slowest cases are replayed alone: enough that cases slow by themselves are among them. */
const REPLAYED = 30;

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes.subarray(0, 3072)) s += String.fromCharCode(b);
  return btoa(s);
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.message.slice(0, 300)}`;
  return `non-Error throw: ${String(e).slice(0, 300)}`;
}

/** Throws if a valid input is refused: a fuzzer whose seeds fail tests nothing past the first check. */
export async function checkValid<I>(t: Target<I>): Promise<void> {
  for (const [i, input] of t.valid.entries()) {
    const probe = new Probe();
    try {
      await t.run(input, probe);
    } catch (e) {
      throw new Error(`${t.parser}: valid input ${i} was refused: ${describe(e)}`);
    }
    const bad = [...probe.over, ...probe.wrong];
    if (bad.length) throw new Error(`${t.parser}: valid input ${i}: ${bad.join("; ")}`);
  }
}

export async function fuzz<I>(t: Target<I>, o: RunOptions): Promise<FuzzReport> {
  await checkValid(t);
  const slowMs = o.slowMs ?? 2000;
  const r: FuzzReport = {
    parser: t.parser,
    seed: o.seed.toString(),
    cases: 0,
    accepted: 0,
    acceptedAs: {},
    refused: {},
    crashes: 0,
    findings: { "crash": 0, "multi-line": 0, "slow": 0, "over-allocation": 0, "inconsistent": 0 },
    examples: [],
    slowestMs: 0,
    slowestCase: -1,
    slowestReplayMs: 0,
    slowestReplayCase: -1,
    largestAllocation: 0,
    allocationCap: t.allocationCap,
    longestMessage: 0,
    seconds: 0,
  };
  // The slowest cases so far (and any over slowMs), replayed after the run.
  const slow: { i: number; ms: number; input: I }[] = [], over = new Map<number, I>();
  const start = performance.now();
  for (let i = o.only ?? 0; i < (o.only === undefined ? o.cases : o.only + 1); i++) {
    const input = await t.mutate(Rng.forCase(o.seed, i), i);
    const probe = new Probe();
    const found = (kind: FindingKind, detail: string) => {
      r.findings[kind]++;
      if (kind === "crash") r.crashes++;
      if (r.examples.filter((f) => f.kind === kind).length < MAX_EXAMPLES) {
        r.examples.push({ kind, case: i, detail, input: b64(t.bytesOf(input)) });
      }
    };
    const t0 = performance.now();
    try {
      const note = await t.run(input, probe);
      r.accepted++;
      r.acceptedAs[note] = (r.acceptedAs[note] ?? 0) + 1;
    } catch (e) {
      if (t.expected.some((k) => e instanceof k)) {
        const name = (e as Error).constructor.name, message = (e as Error).message;
        r.refused[name] = (r.refused[name] ?? 0) + 1;
        r.longestMessage = Math.max(r.longestMessage, message.length);
        if (!oneLine(message)) found("multi-line", describe(e));
      } else found("crash", describe(e));
    }
    const ms = performance.now() - t0;
    if (ms > r.slowestMs) r.slowestMs = ms, r.slowestCase = i;
    if (slow.length < REPLAYED || ms > slow[slow.length - 1].ms) {
      slow.push({ i, ms, input });
      slow.sort((a, b) => b.ms - a.ms);
      slow.length = Math.min(slow.length, REPLAYED);
    }
    if (ms > slowMs && over.size < 20) over.set(i, input);
    for (const over of probe.over) found("over-allocation", over);
    for (const wrong of probe.wrong) found("inconsistent", wrong);
    r.largestAllocation = Math.max(r.largestAllocation, probe.largest);
    r.cases++;
    if (o.progress && (i + 1) % 10000 === 0) o.progress(i + 1);
  }
  r.seconds = (performance.now() - start) / 1000;
  for (const c of slow) over.set(c.i, c.input);
  for (const [i, input] of over) {
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      try {
        await t.run(input, new Probe());
      } catch { /* its outcome was counted in the run */ }
      best = Math.min(best, performance.now() - t0);
    }
    if (best > r.slowestReplayMs) r.slowestReplayMs = best, r.slowestReplayCase = i;
    if (best > slowMs) {
      r.findings.slow++;
      r.examples.push({ kind: "slow", case: i, detail: `${best.toFixed(0)} ms alone`, input: b64(t.bytesOf(input)) });
    }
  }
  return r;
}
