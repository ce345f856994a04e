/** `cryptgpu bench <suite>`: measures and records under bench/results/. */
import { Command, Option } from "commander";
import { NativeBackend } from "../lib/native/backend.ts";
import { ringBench, type Row } from "../bench/ring.ts";
import { provenance, writeResults } from "../bench/record.ts";
import { si, table } from "./output.ts";
import { addPartyOptions, openFromFlags, type PartyFlags } from "./party_options.ts";
import { LAN, protocolBench, type ProtocolRow, TIMED_RUNS } from "../bench/protocols.ts";
import { addTrainingBench } from "./bench_training.ts";
import { addFuzzBench } from "./bench_fuzz.ts";
import { inferenceBench, inferenceMarkdown, mergeRows } from "../bench/inference.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { FIXED_DEFAULT_BITS } from "../lib/ring/fixed.ts";

interface RingOptions {
  json?: boolean;
  device: "cpu" | "cuda";
  quick?: boolean;
  threads?: string;
  write: boolean;
}

export function benchCommand(): Command {
  const bench = new Command("bench").description("run a benchmark suite and record the results under bench/results/");
  bench.command("ring")
    .description("native ring kernels: elementwise bandwidth, matmul and convolution, AES-CTR, bit compaction")
    .addOption(new Option("--device <device>", "backend").choices(["cpu", "cuda"]).default("cpu"))
    .option("--threads <n>", "native threads (default: CRYPTGPU_THREADS or every core)")
    .option("--quick", "a short run (not recorded)")
    .option("--no-write", "do not write bench/results/")
    .option("--json", "print JSON")
    .action(async (opts: RingOptions) => {
      await runRing(opts);
    });
  addPartyOptions(
    bench.command("protocols")
      .description("every protocol at sizes 1e3..1e6 (1e7 with --max-size): time, bytes, rounds; run by each party")
      .option("--max-size <n>", "largest size", "1e6")
      .option("--only <names>", "comma-separated protocol names to run")
      .option("--no-write", "do not write bench/results/")
      .option("--json", "print JSON"),
    "local",
    { fracBits: FIXED_DEFAULT_BITS },
  ).action(async (opts: PartyFlags & { maxSize: string; only?: string; write: boolean; json?: boolean }) => {
    await runProtocols(opts);
  });
  addPartyOptions(
    bench.command("inference")
      .description(
        "a private forward pass of a zoo model on a seeded batch (warm, when short), against its plaintext twin",
      )
      .requiredOption("--model <name>", "zoo model, e.g. lenet, alexnet-cifar10, vgg16-tinyimagenet, resnet50:max")
      .option("--batch <k>", "batch size", "1")
      .option("--seed <n>", "seed of the weights and the input", "1")
      .option("--rehearse", "rehearse the forward over the links on zeros at setup, before the timed forwards")
      .option("--no-write", "do not write bench/results/")
      .option("--json", "print JSON"),
    "corrected",
    { fracBits: FIXED_DEFAULT_BITS },
  ).action(async (opts: InferenceOptions) => {
    await runInference(opts);
  });
  addTrainingBench(bench);
  addFuzzBench(bench);
  return bench;
}

interface InferenceOptions extends PartyFlags {
  model: string;
  batch: string;
  seed: string;
  rehearse?: boolean;
  write: boolean;
  json?: boolean;
}

async function runInference(opts: InferenceOptions) {
  const batch = Number(opts.batch), seed = Number(opts.seed);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got ${opts.batch}`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${opts.seed}`);
  modelByName(opts.model); // an unknown name fails here, before connecting
  const session = await openFromFlags(opts);
  try {
    const p = session.party;
    const progress = !opts.json ? (line: string) => console.error(`  ${line}`) : undefined;
    const row = await inferenceBench(p, { model: opts.model, batch, seed, rehearse: opts.rehearse, progress });
    if (!row) return;
    row.provenance = await provenance();
    const record = await mergeRows(opts.device, row);
    if (opts.json) console.log(JSON.stringify(row, null, 2));
    else {
      console.log(
        `${row.model}, batch ${row.batch}: ${row.seconds.toFixed(3)} s, ${si(row.bytesTotal)}B sent in all ` +
          `(${row.bytesSent.map((b) => `${si(b)}B`).join(" / ")}), ${row.rounds} rounds, LAN comm ${
            row.lanSeconds.toFixed(3)
          } s; plaintext twin ${row.plainSeconds.toFixed(3)} s (${row.ratio.toFixed(2)}x); ` +
          `error ${row.relativeError.toExponential(2)}, argmax ${row.argmaxAgree}/${row.batch}`,
      );
      if (row.rehearsalSeconds !== undefined) {
        console.log(
          `  rehearsal at setup: ${row.rehearsalSeconds.toFixed(3)} s; cold forward after it ${
            row.coldSeconds?.toFixed(3)
          } s`,
        );
      }
      const pre = row.preprocess;
      if (pre) {
        console.log(
          `  preprocessing before it: ${pre.pairs} truncation pairs, ${pre.masks ?? 0} comparison masks and ` +
            `${pre.bits ?? 0} random bits in ` +
            `${pre.seconds.toFixed(3)} s, ` +
            `${si(pre.bytesTotal)}B sent in all, ${pre.rounds} rounds` +
            (row.rehearsalSeconds === undefined
              ? `; cold forward (made on demand) ${row.coldSeconds?.toFixed(3)} s`
              : ""),
        );
      }
    }
    if (opts.write) {
      const paths = await writeResults(`inference-${opts.device}`, record, inferenceMarkdown(record, table));
      if (!opts.json) console.log(`written: ${paths.join(", ")}`);
    }
  } finally {
    session.close();
  }
}

async function runProtocols(opts: PartyFlags & { maxSize: string; only?: string; write: boolean; json?: boolean }) {
  const max = Number(opts.maxSize);
  if (!(max >= 1e3)) throw new Error(`--max-size must be at least 1e3, got ${opts.maxSize}`);
  const sizes = [1e3, 1e4, 1e5, 1e6, 1e7].filter((s) => s <= max);
  const session = await openFromFlags(opts);
  try {
    const p = session.party;
    const progress = p.index === 0 && !opts.json ? (line: string) => console.error(`  ${line}`) : undefined;
    const rows = await protocolBench(p, { sizes, only: opts.only?.split(","), progress });
    if (p.index !== 0) return;
    const record = {
      suite: "protocols",
      device: opts.device,
      threads: p.backend.threads,
      truncation: p.truncation,
      tls: p.mesh.secure,
      lan: LAN,
      ...(await provenance()),
      rows,
    };
    const md = protocolsMarkdown(record, rows);
    if (opts.json) console.log(JSON.stringify(record, null, 2));
    else console.log(md);
    if (opts.write) {
      const paths = await writeResults(`protocols-${opts.device}`, record, md);
      if (!opts.json) console.log(`\nwritten: ${paths.join(", ")}`);
    }
  } finally {
    session.close();
  }
}

function protocolsMarkdown(
  record: {
    device: string;
    threads: number;
    truncation?: string;
    tls: boolean;
    date: string;
    commit: string;
    dirty: boolean;
    machine: { cpu: string; cores: number };
  },
  rows: ProtocolRow[],
): string {
  const head = `# Protocol benchmark, three parties, ${record.device} build\n\n` +
    `${record.machine.cpu}, ${record.machine.cores} cores shared by the three parties (${record.threads} native threads each); ` +
    `${record.tls ? "sealed channels (signed X25519, AES-128-GCM)" : "plain TCP"} on loopback; commit ${record.commit}${
      record.dirty ? " (uncommitted changes)" : ""
    }; ${record.date}.\n` +
    `Truncation: ${record.truncation ?? "local"}` +
    (record.truncation === "preprocessed"
      ? " (each timed run's pairs made before its clock starts; their own row)"
      : "") +
    `. Each time is the median of ${TIMED_RUNS} runs after an untimed run of the same operation, with the fastest and ` +
    `slowest beside it. ` +
    `Bytes are payload bytes sent per element per party (most / mean over the parties). ` +
    `"LAN" is what those rounds and the busiest party's bytes take on the paper's LAN (1.25 GB/s, 0.2 ms a round), communication only.\n\n`;
  const body = rows.map((r) => [
    r.protocol,
    r.elements.toExponential(0).replace("e+", "e"),
    r.seconds.toFixed(4),
    r.secondsRange ? `${r.secondsRange[0].toFixed(4)} - ${r.secondsRange[1].toFixed(4)}` : "",
    r.bytesPerElementMax.toFixed(1),
    r.bytesPerElementMean.toFixed(1),
    String(r.rounds),
    r.lanSeconds.toFixed(4),
  ]);
  return head +
    table(
      ["protocol", "elements", "time (s)", "range (s)", "bytes/elem max", "bytes/elem mean", "rounds", "LAN (s)"],
      body,
    ) + "\n";
}

export async function runRing(opts: RingOptions): Promise<void> {
  const threads = opts.threads === undefined ? undefined : Number(opts.threads);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 0)) {
    throw new Error(`--threads must be a non-negative integer, got ${opts.threads}`);
  }
  const backend = new NativeBackend({ device: opts.device, threads });
  try {
    const progress = opts.json ? undefined : (line: string) => console.error(`  ${line}`);
    const rows = await ringBench(backend, { quick: opts.quick, progress });
    const record = {
      suite: "ring",
      device: opts.device,
      threads: backend.threads,
      quick: !!opts.quick,
      ...(await provenance()),
      rows,
    };
    const md = ringMarkdown(record, rows);
    if (opts.json) console.log(JSON.stringify(record, null, 2));
    else console.log(md);
    if (opts.write && !opts.quick) {
      const paths = await writeResults(`ring-${opts.device}`, record, md);
      if (!opts.json) console.log(`\nwritten: ${paths.join(", ")}`);
    }
  } finally {
    backend.dispose();
  }
}

function ringMarkdown(
  record: {
    device: string;
    threads: number;
    date: string;
    commit: string;
    dirty: boolean;
    machine: { cpu: string; cores: number };
  },
  rows: Row[],
): string {
  const head = `# Ring benchmark, ${record.device} build\n\n` +
    `${record.machine.cpu}, ${record.machine.cores} cores, ${record.threads} native threads; ` +
    `commit ${record.commit}${record.dirty ? " (uncommitted changes)" : ""}; ${record.date}\n`;
  const sections = (["elementwise", "matmul", "conv2d", "aes", "bits"] as const).map((group) => {
    const rs = rows.filter((r) => r.group === group);
    if (rs.length === 0) return "";
    const body = rs.map((r) => [
      r.name + (r.method && group === "matmul" ? `, ${r.method}` : ""),
      r.size,
      `${(r.seconds * 1000).toFixed(2)} ms`,
      `${si(r.rate)}${r.unit}`,
      r.vsReference === undefined ? "" : `${r.vsReference.toFixed(2)}x`,
    ]);
    return `\n## ${group}\n\n${table(["case", "size", "time (median)", "rate", "vs reference"], body)}\n`;
  });
  return head + sections.join("");
}
