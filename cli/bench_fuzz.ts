/** `cryptgpu bench fuzz`: the parsers of bytes from other parties and from files, on mutated valid inputs. */
import type { Command } from "commander";
import { fuzzMarkdown, fuzzParser, type FuzzReport, type ParserName, PARSERS } from "../bench/fuzz.ts";
import { provenance, writeResults } from "../bench/record.ts";
import { table } from "./output.ts";

interface FuzzOptions {
  cases: string;
  seed: string;
  only?: string;
  case?: string;
  write: boolean;
  json?: boolean;
}

export function addFuzzBench(bench: Command): void {
  bench.command("fuzz")
    .description("fuzz the handshake hello, channel frames, tensor/share files and the parties file; any crash fails")
    .option("--cases <n>", "mutated inputs per parser", "100000")
    .option("--seed <n>", "seed of the mutations (a case replays from the seed and its index)", "1")
    .option("--only <parsers>", `comma-separated, of ${PARSERS.join(", ")}`)
    .option("--case <i>", "replay case i alone (not recorded)")
    .option("--no-write", "do not write bench/results/")
    .option("--json", "print JSON")
    .action(async (o: FuzzOptions) => {
      await runFuzz(o);
    });
}

async function runFuzz(o: FuzzOptions): Promise<void> {
  const cases = Number(o.cases), only = o.case === undefined ? undefined : Number(o.case);
  if (!Number.isInteger(cases) || cases < 1) throw new Error(`--cases must be a positive integer, got ${o.cases}`);
  if (!/^\d+$/.test(o.seed)) throw new Error(`--seed must be a non-negative integer, got ${o.seed}`);
  if (only !== undefined && !(Number.isInteger(only) && only >= 0)) {
    throw new Error(`--case must be a non-negative integer, got ${o.case}`);
  }
  const names = (o.only?.split(",") ?? [...PARSERS]) as ParserName[];
  const unknown = names.filter((n) => !PARSERS.includes(n));
  if (unknown.length) throw new Error(`--only: no parser ${unknown.join(", ")} (there are ${PARSERS.join(", ")})`);
  const seed = BigInt(o.seed);
  const reports: FuzzReport[] = [];
  for (const name of names) {
    const progress = o.json ? undefined : (done: number) => console.error(`  ${name}: ${done} cases`);
    const r = await fuzzParser(name, { cases, seed, only, progress });
    reports.push(r);
    if (!o.json) {
      console.error(
        `  ${name}: ${r.cases} cases, ${r.accepted} accepted, ${r.crashes} crashes, slowest ${
          r.slowestMs.toFixed(1)
        } ms`,
      );
    }
  }
  const record = { suite: "fuzz", seed: o.seed, casesPerParser: cases, ...(await provenance()), reports };
  const md = fuzzMarkdown(record, reports, table);
  if (o.json) console.log(JSON.stringify(record, null, 2));
  else console.log(md);
  if (o.write && only === undefined) {
    const paths = await writeResults("fuzz", record, md);
    if (!o.json) console.log(`written: ${paths.join(", ")}`);
  }
  const crashes = reports.reduce((n, r) => n + r.crashes, 0);
  const other = reports.reduce((n, r) => n + Object.values(r.findings).reduce((a, b) => a + b, 0) - r.crashes, 0);
  if (crashes + other > 0) {
    throw new Error(`fuzzing found ${crashes} crashes and ${other} other findings (replay with --case, see above)`);
  }
}
