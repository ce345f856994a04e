/**
 * The private inference benchmark, run by each of the three parties: a timed
 * private forward of a batch through a zoo model, with seeded weights shared by party 0 (the model
 * owner) and a seeded input shared by party 1 (the data owner) before the
 * clock starts. A first forward that takes under WARM_LIMIT seconds is run
 * again and the second is the row's time, as a serving process would see it
 * (JIT compiled, buffers cached); the first stays as `coldSeconds`. Party 0 then runs the float64 plaintext twin on the same
 * machine and compares. Results accumulate in bench/results/inference-<device>
 * keyed by model and batch, next to the paper's Table I.
 */
import { RingTensor } from "../lib/ring/tensor.ts";
import { shareInput } from "../lib/mpc/input.ts";
import type { Party, TruncationMode } from "../lib/mpc/party.ts";
import { type Breakdown, emptyBreakdown, plainParams, sharedParams, shareWeights } from "../lib/nn/model.ts";
import { argmaxRows } from "../lib/nn/plain.ts";
import { seededWeights } from "../lib/nn/calibrate.ts";
import { modelByName, modelNames } from "../lib/nn/zoo.ts";
import { trimDeadTaps, trimShares } from "../lib/nn/trim_taps.ts";
import { rehearseForward } from "../lib/nn/rehearsal.ts";
import { madeOnDemand, preprocessFor, resetDemand } from "../lib/mpc/demand.ts";
import { LAN } from "./protocols.ts";
import { allGather, barrier, gatherToZero, refillPairs, seededInput } from "./parties.ts";
import { type Provenance, resultsDir } from "./record.ts";

const kinds = ["linear", "pool", "relu", "softmax", "other"] as const;

/** First forwards shorter than this are repeated, and the repeat timed. */
const WARM_LIMIT = 5;

export interface InferenceRow {
  model: string;
  batch: number;
  /** The slowest party's time for the private forward pass (the second one, if `warm`). */
  seconds: number;
  /** The slowest party's time for the first forward pass (absent in rows recorded before the warm run). */
  coldSeconds?: number;
  /**
   * The slowest party's rehearsal of the forward at setup, before the inputs were shared (absent without one): the
   * cold forward came after it, and under preprocessed truncation with its pairs made ahead as well.
   */
  rehearsalSeconds?: number;
  /** Whether `seconds` is a second forward pass, after one that took under WARM_LIMIT seconds. */
  warm?: boolean;
  /** Payload bytes each party sent during the forward pass, and their sum. */
  bytesSent: number[];
  bytesTotal: number;
  rounds: number;
  /** Rounds and the busiest party's bytes on the paper's LAN (communication only). */
  lanSeconds: number;
  /** Per layer type: party 0's time, bytes summed over the parties, rounds. */
  breakdown: Breakdown;
  plainSeconds: number;
  /** seconds / plainSeconds. */
  ratio: number;
  /** sum |private - plaintext| / sum |plaintext| over the output logits. */
  relativeError: number;
  /** Rows whose private argmax equals the plaintext argmax, of `batch`. */
  argmaxAgree: number;
  parameters: number;
  fracBits: number;
  /** The truncation protocol (absent in rows recorded before there was a choice: "local"). */
  truncation?: TruncationMode;
  /**
   * Preprocessed truncation: making the truncation pairs and comparison masks the timed forward took, before it (the
   * slowest party's seconds, bytes sent by all, rounds, pairs, masks, random bits). The cold forward made its own as it went,
   * inside its time unless rehearsed.
   */
  preprocess?: { seconds: number; bytesTotal: number; rounds: number; pairs: number; masks?: number; bits?: number };
  threads: number;
  tls: boolean;
  provenance?: Provenance;
}

export interface InferenceBenchOptions {
  model: string;
  batch: number;
  seed: number;
  /** Rehearse the forward over the links on zeros first (lib/nn/rehearsal.ts), outside the forward's clock. */
  rehearse?: boolean;
  progress?: (line: string) => void;
}

/** Every party runs this; party 0 gets the row, the others null. */
export async function inferenceBench(p: Party, o: InferenceBenchOptions): Promise<InferenceRow | null> {
  const model = modelByName(o.model);
  const shape = [o.batch, ...model.inputShape];
  const outShape = model.checkInput(shape);
  const parameters = model.paramShapes().reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
  const say = p.index === 0 ? o.progress : undefined;

  // The private forward runs the model with its dead kernel taps cut (exact); the twin runs the model as defined.
  const { model: served, trims } = trimDeadTaps(model);
  // A rehearsal happens at setup, before the inputs exist: two forwards over the links on zeros (lib/nn/rehearsal.ts).
  const rehearsal = o.rehearse ? await rehearseForward(p, served, shape, 0) : null;
  // Only the owners hold the clear values; the others wait in the sharing rounds
  // (making the weights of a 60M-parameter model takes party 0 about 20 s).
  say?.(`${o.model}: ${(parameters / 1e6).toFixed(2)}M parameters, making and sharing weights`);
  let weights = p.index === 0 ? seededWeights(model, o.seed) : null;
  const w = await shareWeights(p, model, 0, weights);
  trimShares(w, trims);
  const input = p.index === 0 || p.index === 1 ? seededInput(shape, o.seed + 1) : null;
  using x = await shareInput(
    p,
    1,
    p.index === 1 ? RingTensor.encode(p.backend, input!.data, p.fracBits, shape) : null,
    shape,
  );

  // With a rehearsal's count, the first forward's pairs and masks are made before it too, as a server's would be.
  if (rehearsal && p.truncation === "preprocessed") await preprocessFor(p, rehearsal.demand);
  resetDemand(p);
  say?.(`private forward of a batch of ${o.batch}`);
  const forward = async () => {
    await barrier(p);
    const breakdown = emptyBreakdown();
    const s0 = p.mesh.stats(), t0 = performance.now();
    // as `infer` reveals: the output opened to party 0, the last layer's product straight from its shares
    const y = await served.net.openOutputTo(x, sharedParams(w), 0, breakdown);
    await p.backend.sync();
    const seconds = (performance.now() - t0) / 1000, s1 = p.mesh.stats();
    return { y, seconds, breakdown, bytes: s1.bytesSent - s0.bytesSent, rounds: s1.rounds - s0.rounds };
  };
  let run = await forward();
  const coldSeconds = run.seconds;
  const coldShort = madeOnDemand(p);
  if (rehearsal && coldShort > 0) {
    throw new Error(`inference bench: ${coldShort} preprocessed elements made on demand after a rehearsal`);
  }
  // every party must agree on a second run: the slowest one's time decides
  const warm = Math.max(...(await allGather(p, [coldSeconds])).flat()) < WARM_LIMIT;
  let preprocess: number[] = [0, 0, 0, 0, 0, 0];
  if (warm) {
    run.y.value?.dispose();
    // The first forward made its truncation pairs as it went; the second finds them made ahead, as a server
    // that prepares between queries would (a forward takes the same pairs every time: the shapes are the model's).
    if (p.truncation === "preprocessed") preprocess = await refillPairs(p);
    run = await forward();
    const short = madeOnDemand(p);
    if (short > 0) throw new Error(`inference bench: the second forward made ${short} preprocessed elements on demand`);
  }
  const { y, seconds, breakdown } = run;
  w.forEach((s) => s.dispose());
  using out = y.value;

  const mine = [seconds, run.bytes, run.rounds, coldSeconds, rehearsal?.seconds ?? -1];
  for (const k of kinds) mine.push(breakdown[k].seconds, breakdown[k].bytes, breakdown[k].rounds);
  mine.push(...preprocess);
  const stats = await gatherToZero(p, mine);
  if (!stats || !out) return null;

  say?.(`private forward: ${seconds.toFixed(2)} s; plaintext twin`);
  const got = out.decode(y.fracBits);
  const twin = () => {
    const t = performance.now();
    return { want: model.net.plain(input!, plainParams(weights!)), seconds: (performance.now() - t) / 1000 };
  };
  // A second run where it is cheap, so that a small model's twin is timed after
  // its JIT warm-up rather than mostly compiling.
  let { want, seconds: plainSeconds } = twin();
  if (plainSeconds < 2) ({ want, seconds: plainSeconds } = twin());
  weights = null;

  let diff = 0, mag = 0;
  for (let i = 0; i < got.length; i++) {
    diff += Math.abs(got[i] - want.data[i]);
    mag += Math.abs(want.data[i]);
  }
  const classes = outShape[outShape.length - 1];
  const a = argmaxRows(got, classes), b = argmaxRows(want.data, classes);
  const bytesSent = stats.map((s) => s[1]);
  const rounds = Math.max(...stats.map((s) => s[2]));
  const slowest = Math.max(...stats.map((s) => s[0]));
  const perKind = emptyBreakdown();
  kinds.forEach((k, j) => {
    perKind[k] = {
      seconds: stats[0][5 + 3 * j],
      bytes: stats.reduce((sum, s) => sum + s[6 + 3 * j], 0),
      rounds: stats[0][7 + 3 * j],
    };
  });
  return {
    model: o.model,
    batch: o.batch,
    seconds: slowest,
    coldSeconds: Math.max(...stats.map((s) => s[3])),
    ...(rehearsal && { rehearsalSeconds: Math.max(...stats.map((s) => s[4])) }),
    warm,
    bytesSent,
    bytesTotal: bytesSent.reduce((s, v) => s + v, 0),
    rounds,
    lanSeconds: rounds * LAN.roundSeconds + Math.max(...bytesSent) / LAN.bytesPerSecond,
    breakdown: perKind,
    plainSeconds,
    ratio: slowest / plainSeconds,
    relativeError: diff / mag,
    argmaxAgree: a.filter((v, i) => v === b[i]).length,
    parameters,
    fracBits: p.fracBits,
    truncation: p.truncation,
    ...(p.truncation === "preprocessed" && warm && { preprocess: preprocessRow(stats, 5 + 3 * kinds.length) }),
    threads: p.backend.threads,
    tls: p.mesh.secure,
  };
}

function preprocessRow(stats: number[][], at: number): NonNullable<InferenceRow["preprocess"]> {
  return {
    seconds: Math.max(...stats.map((s) => s[at])),
    bytesTotal: stats.reduce((sum, s) => sum + s[at + 1], 0),
    rounds: Math.max(...stats.map((s) => s[at + 2])),
    pairs: stats[0][at + 3],
    masks: stats[0][at + 4],
    bits: stats[0][at + 5],
  };
}

export interface InferenceRecord {
  suite: "inference";
  device: string;
  lan: typeof LAN;
  rows: InferenceRow[];
  /** Free-text notes kept across runs (e.g. a model that did not fit, and why). */
  notes: string[];
}

/** The recorded rows with `row` in place of any earlier one for the same model, batch and f, in zoo order. */
export async function mergeRows(device: string, row: InferenceRow): Promise<InferenceRecord> {
  let rows: InferenceRow[] = [], notes: string[] = [];
  try {
    const old = JSON.parse(await Deno.readTextFile(new URL(`inference-${device}.json`, resultsDir)));
    if (Array.isArray(old?.rows)) rows = old.rows;
    if (Array.isArray(old?.notes)) notes = old.notes;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`bench/results/inference-${device}.json`, { cause: e });
  }
  // keyed by model, batch, precision and truncation: a run at another f or with the other truncation (see the
  // notes) is a row of its own
  const same = (r: InferenceRow) =>
    r.model === row.model && r.batch === row.batch && r.fracBits === row.fracBits && trunc(r) === trunc(row);
  rows = rows.filter((r) => !same(r));
  rows.push(row);
  const rank = (m: string) => {
    const [name, ...opts] = m.split(":");
    return 2 * modelNames.indexOf(name) + (opts.includes("max") ? 1 : 0);
  };
  rows.sort((a, b) =>
    rank(a.model) - rank(b.model) || a.batch - b.batch || b.fracBits - a.fracBits ||
    trunc(a).localeCompare(trunc(b))
  );
  return { suite: "inference", device, lan: LAN, rows, notes };
}

/**
 * The paper's Table I (batch 1, average pooling, three V100 GPUs on a LAN) and
 * Tables II/III (batches 64 and 8): seconds and total communication in bytes.
 * FALCON on CPUs, CRYPTFLOW figures as the paper quotes them.
 */
const paper: Record<
  string,
  { batch: number; cryptgpu: [number, number]; other?: [string, number, number]; plain?: number }[]
> = {
  "lenet": [{ batch: 1, cryptgpu: [0.38, 3.00e6], other: ["FALCON", 0.038, 2.29e6], plain: 0.0007 }],
  "alexnet-cifar10": [
    { batch: 1, cryptgpu: [0.91, 2.43e6], other: ["FALCON", 0.11, 4.02e6], plain: 0.0012 },
    { batch: 64, cryptgpu: [1.09, 0.16e9] },
  ],
  "vgg16-cifar10": [
    { batch: 1, cryptgpu: [2.14, 56.2e6], other: ["FALCON", 1.44, 40.45e6], plain: 0.0024 },
    { batch: 64, cryptgpu: [11.76, 3.60e9] },
  ],
  "alexnet-tinyimagenet": [{ batch: 1, cryptgpu: [0.95, 13.97e6], other: ["FALCON", 0.34, 16.23e6], plain: 0.0012 }],
  "vgg16-tinyimagenet": [{ batch: 1, cryptgpu: [2.30, 224.5e6], other: ["FALCON", 8.61, 161.71e6], plain: 0.0024 }],
  "alexnet-imagenet": [{ batch: 1, cryptgpu: [1.52, 0.24e9], plain: 0.0013 }],
  "vgg16-imagenet": [{ batch: 1, cryptgpu: [9.44, 2.75e9], plain: 0.0024 }],
  "resnet50": [
    { batch: 1, cryptgpu: [9.31, 3.08e9], other: ["CRYPTFLOW", 25.9, 6.9e9], plain: 0.011 },
    { batch: 8, cryptgpu: [42.99, 24.7e9] },
  ],
  "resnet101": [
    { batch: 1, cryptgpu: [17.62, 4.64e9], other: ["CRYPTFLOW (est.)", 40, 10.5e9], plain: 0.021 },
    { batch: 8, cryptgpu: [72.99, 37.2e9] },
  ],
  "resnet152": [
    { batch: 1, cryptgpu: [25.77, 6.56e9], other: ["CRYPTFLOW (est.)", 60, 14.5e9], plain: 0.031 },
    { batch: 8, cryptgpu: [105.20, 52.5e9] },
  ],
};

const trunc = (r: InferenceRow): TruncationMode => r.truncation ?? "local";

const mb = (bytes: number) => bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(2)} MB`;

type Table = (header: readonly string[], rows: readonly (readonly string[])[]) => string;

export function inferenceMarkdown(record: InferenceRecord, table: Table): string {
  const head = `# Private inference, three parties, ${record.device} build\n\n` +
    `Each row is a private forward pass of a batch through a zoo model (the second of two where the first took ` +
    `under ${WARM_LIMIT} s; "cold" is the first, with its JIT compilation and fresh buffers), as \`cryptgpu local bench ` +
    `inference --model NAME --batch K\` runs it: three processes on one machine, the three parties sharing its cores, ` +
    `over loopback (sealed channels unless marked). Weights (seeded, Kaiming-uniform; batch normalization calibrated on one seeded image, as a trained network's statistics would be: lib/nn/calibrate.ts) are shared by party 0 and the input ` +
    `(seeded, values in [0, 1)) by party 1 before the clock starts; revealing the output is not timed. ` +
    `Time is the slowest party's; bytes are payload bytes sent during the pass. "LAN" is what those rounds and the ` +
    `busiest party's bytes take on the paper's LAN (${LAN.bytesPerSecond / 1e9} GB/s, ${
      LAN.roundSeconds * 1e3
    } ms a round), ` +
    `communication only. "Plaintext" is the float64 twin (direct TypeScript loops, one core; timed on a second run ` +
    `where the first took under 2 s), not an optimized ` +
    `framework: the ratio overstates the cost of privacy against PyTorch. Error is sum |private - plaintext| / ` +
    `sum |plaintext| over the logits; f is the number of fractional bits (the paper's is 20). Truncation "local" is ` +
    `ABY3's Pi_trunc1 (1 round, fails with probability about |z| / 2^63 per element), "corrected" the wrap-corrected ` +
    `one (2 rounds, twice the words, no failures). ` +
    `Average pooling unless the name ends in \`:max\`.\n\n`;
  const rows = record.rows.map((r) => [
    r.model,
    String(r.batch),
    String(r.fracBits),
    trunc(r),
    r.seconds.toFixed(r.seconds < 0.1 ? 3 : 2),
    r.coldSeconds === undefined ? "" : r.coldSeconds.toFixed(r.coldSeconds < 0.1 ? 3 : 2),
    mb(r.bytesTotal),
    mb(Math.max(...r.bytesSent)),
    String(r.rounds),
    r.lanSeconds.toFixed(2),
    r.plainSeconds.toFixed(3),
    `${r.ratio.toFixed(r.ratio >= 10 ? 0 : 2)}x`,
    r.relativeError.toExponential(1),
    `${r.argmaxAgree}/${r.batch}`,
    `${r.tls ? "sealed" : "TCP"}, ${r.threads} thr`,
    r.provenance ? `${r.provenance.commit}${r.provenance.dirty ? "+" : ""} ${r.provenance.date.slice(0, 10)}` : "",
  ]);
  const measured = table(
    [
      "model",
      "batch",
      "f",
      "truncation",
      "time (s)",
      "cold (s)",
      "sent, total",
      "sent, busiest",
      "rounds",
      "LAN comm (s)",
      "plaintext (s)",
      "ratio",
      "error",
      "argmax",
      "transport",
      "commit",
    ],
    rows,
  );

  const breakdownRows = record.rows.map((r) => [
    r.model,
    String(r.batch),
    String(r.fracBits),
    trunc(r),
    ...kinds.map((k) => {
      const b = r.breakdown[k];
      return b.rounds === 0 && b.bytes === 0 ? "" : `${b.seconds.toFixed(2)} s, ${mb(b.bytes)}, ${b.rounds} r`;
    }),
  ]);
  const breakdown = table(["model", "batch", "f", "truncation", ...kinds], breakdownRows);

  const compare: string[][] = [];
  for (const [name, entries] of Object.entries(paper)) {
    for (const e of entries) {
      // at f = 20; the corrected truncation's row where there is one (the local one may be wrong, see the notes)
      const at20 = record.rows.filter((r) => r.model === name && r.batch === e.batch && r.fracBits === 20);
      const ours = at20.find((r) => trunc(r) === "corrected") ?? at20[0];
      compare.push([
        name,
        String(e.batch),
        ours ? `${ours.seconds.toFixed(2)}${trunc(ours) === "corrected" ? " (corrected)" : ""}` : "not run",
        ours ? mb(ours.bytesTotal) : "",
        ours ? ours.lanSeconds.toFixed(2) : "",
        e.cryptgpu[0].toFixed(2),
        mb(e.cryptgpu[1]),
        e.other ? `${e.other[0]}: ${e.other[1]} s, ${mb(e.other[2])}` : "",
        e.plain === undefined ? "" : e.plain.toFixed(4),
      ]);
    }
  }
  const paperTable = table(
    [
      "model",
      "batch",
      "ours: time (s)",
      "ours: sent, total",
      "ours: LAN comm (s)",
      "paper CryptGPU: time (s)",
      "paper CryptGPU: comm",
      "paper, other system",
      "paper plaintext GPU (s)",
    ],
    compare,
  );

  return head + measured + "\n\n## Time, bytes (all parties) and rounds per layer type\n\n" +
    "Party 0's time, the three parties' bytes, rounds.\n\n" + breakdown +
    "\n\n## Next to the paper (Tables I to III)\n\n" +
    "Ours at f = 20, as the paper. The paper's figures are CryptGPU on three AWS p3.2xlarge (one V100 each) over a 1.25 GB/s, 0.2 ms LAN, " +
    "average pooling throughout; its communication is the total over the parties. Ours are CPU-only on one " +
    "machine; compare bytes and rounds directly, and time only through the LAN column's communication share.\n\n" +
    paperTable + "\n" + (record.notes.length ? `\n## Notes\n\n${record.notes.map((n) => `- ${n}`).join("\n")}\n` : "");
}
