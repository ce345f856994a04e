/**
 * The protocol benchmark, run by each of the three parties: time, bytes sent
 * per element per party and rounds of every protocol at several sizes, with
 * the operation alone timed (inputs are shared before the clock starts; the
 * median of TIMED_RUNS runs after one untimed run of the same operation), and
 * the communication modelled on the paper's LAN (1.25 GB/s, 0.2 ms a round).
 */
import { RingTensor } from "../lib/ring/tensor.ts";
import type { AShare } from "../lib/mpc/arithmetic.ts";
import { shareInput } from "../lib/mpc/input.ts";
import { matmul, mulFixed } from "../lib/mpc/multiply.ts";
import { truncate } from "../lib/mpc/truncate.ts";
import { disposePairs, makeTruncationPairs } from "../lib/mpc/truncation_pairs.ts";
import { msb } from "../lib/mpc/msb.ts";
import { relu } from "../lib/mpc/relu.ts";
import { maxLastAxis } from "../lib/mpc/max.ts";
import { exp } from "../lib/mpc/exp.ts";
import { reciprocal } from "../lib/mpc/reciprocal.ts";
import { softmax } from "../lib/mpc/softmax.ts";
import type { Party } from "../lib/mpc/party.ts";
import { barrier, gatherToZero, refillPairs } from "./parties.ts";
import { madeOnDemand, resetDemand } from "../lib/mpc/demand.ts";

export const LAN = { bytesPerSecond: 1.25e9, roundSeconds: 0.2e-3 };

/** Timed runs of each operation; the row reports their median. */
export const TIMED_RUNS = 3;

interface Case {
  name: string;
  /** Largest size this protocol runs at by default (the costly ones stop earlier). */
  maxSize: number;
  /** Input values (the clear values party 0 shares) for n elements. */
  input: (n: number) => { values: Float64Array; shape: number[] };
  run: (x: AShare) => Promise<{ dispose(): void }>;
}

/** Benchmark inputs (public test data, not secrets). */
const uniform = (n: number, lo: number, hi: number) =>
  Float64Array.from({ length: n }, () => lo + Math.random() * (hi - lo));

const cases: Case[] = [
  {
    name: "fixed-point multiply (x * x)",
    maxSize: 1e7,
    input: (n) => ({ values: uniform(n, -4, 4), shape: [n] }),
    run: (x) => mulFixed(x, x),
  },
  {
    // Preprocessed truncation's pairs for a shift of 8 (truncation_pairs.ts): what the other modes' rows do not pay.
    name: "truncation pairs (preprocessing, d = 8)",
    maxSize: 1e6,
    input: (n) => ({ values: new Float64Array(n), shape: [n] }),
    run: async (x) => {
      const pairs = await makeTruncationPairs(x.party, x.size, 8);
      return { dispose: () => disposePairs(pairs) };
    },
  },
  {
    name: "truncate",
    maxSize: 1e7,
    input: (n) => ({ values: uniform(n, -1e3, 1e3), shape: [n] }),
    run: (x) => truncate(x, 8),
  },
  { name: "msb", maxSize: 1e7, input: (n) => ({ values: uniform(n, -1e3, 1e3), shape: [n] }), run: (x) => msb(x) },
  {
    name: "msb, carry-save front end",
    maxSize: 1e7,
    input: (n) => ({ values: uniform(n, -1e3, 1e3), shape: [n] }),
    run: (x) => msb(x, "carry-save"),
  },
  { name: "ReLU", maxSize: 1e7, input: (n) => ({ values: uniform(n, -1e3, 1e3), shape: [n] }), run: (x) => relu(x) },
  {
    name: "max over rows of 10",
    maxSize: 1e6,
    input: (n) => ({ values: uniform(n, -50, 50), shape: [n / 10, 10] }),
    run: async (x) => (await maxLastAxis(x)).max,
  },
  { name: "exp", maxSize: 1e6, input: (n) => ({ values: uniform(n, -20, 0), shape: [n] }), run: (x) => exp(x) },
  {
    name: "reciprocal, Y = 200",
    maxSize: 1e6,
    input: (n) => ({ values: uniform(n, 1, 200), shape: [n] }),
    run: (x) => reciprocal(x, 200),
  },
  {
    name: "softmax over rows of 10",
    maxSize: 1e6,
    input: (n) => ({ values: uniform(n, -10, 10), shape: [n / 10, 10] }),
    run: (x) => softmax(x),
  },
];

/** The round rows: bytes each party sends to each peer, and rounds timed in a row. */
const ROUND_CASES: [number, number][] = [[0, 200], [8, 200], [131072, 50], [1e6, 20]];

export interface ProtocolRow {
  protocol: string;
  elements: number;
  /** The median over the timed runs of the slowest party's time. */
  seconds: number;
  /** The fastest and slowest of the timed runs (absent in rows recorded before there were several). */
  secondsRange?: [number, number];
  /** Bytes sent per element: the most any party sent, and the average over parties. */
  bytesPerElementMax: number;
  bytesPerElementMean: number;
  rounds: number;
  /** Rounds and the busiest party's bytes on the paper's LAN. */
  lanSeconds: number;
}

export interface ProtocolBenchOptions {
  sizes?: number[];
  only?: string[];
  progress?: (line: string) => void;
}

/** Every party runs this; party 0 gets the rows, the others an empty list. */
export async function protocolBench(p: Party, o: ProtocolBenchOptions = {}): Promise<ProtocolRow[]> {
  const sizes = o.sizes ?? [1e3, 1e4, 1e5, 1e6];
  const rows: ProtocolRow[] = [];
  const selected = cases.filter((c) => !o.only || o.only.some((s) => c.name.toLowerCase().includes(s.toLowerCase())));
  const measure = async (name: string, elements: number, op: () => Promise<{ dispose(): void }>) => {
    // one untimed run first: the timed ones see JIT-compiled code and the native buffer cache warm
    resetDemand(p);
    (await op()).dispose();
    const runs: number[][][] = [];
    for (let k = 0; k < TIMED_RUNS; k++) {
      // preprocessing mode: the pairs and masks a run takes are made before its clock starts (the online phase)
      await refillPairs(p);
      await barrier(p);
      const s0 = p.mesh.stats();
      const t0 = performance.now();
      const out = await op();
      await p.backend.sync();
      const seconds = (performance.now() - t0) / 1000;
      const s1 = p.mesh.stats();
      out.dispose();
      const short = madeOnDemand(p);
      if (short > 0) {
        throw new Error(`protocols bench: ${name} made ${short} preprocessed elements on demand in a timed run`);
      }
      const stats = await gatherToZero(p, [seconds, s1.bytesSent - s0.bytesSent, s1.rounds - s0.rounds]);
      if (stats) runs.push(stats);
    }
    if (runs.length === 0) return;
    const stats = runs[0]; // bytes and rounds are the same in every run
    const bytes = stats.map((s) => s[1]);
    const rounds = stats[0][2];
    // a run takes as long as its slowest party
    const times = runs.map((r) => Math.max(...r.map((s) => s[0]))).sort((a, b) => a - b);
    const row: ProtocolRow = {
      protocol: name,
      elements,
      seconds: times[Math.floor(times.length / 2)],
      secondsRange: [times[0], times[times.length - 1]],
      bytesPerElementMax: Math.max(...bytes) / elements,
      bytesPerElementMean: bytes.reduce((a, b) => a + b, 0) / 3 / elements,
      rounds,
      lanSeconds: rounds * LAN.roundSeconds + Math.max(...bytes) / LAN.bytesPerSecond,
    };
    rows.push(row);
    o.progress?.(`${name}, ${elements} elements: ${row.seconds.toFixed(3)} s`);
  };

  for (const c of selected) {
    for (const n of sizes.filter((s) => s <= c.maxSize)) {
      const { values, shape } = c.input(n);
      using x = await shareInput(
        p,
        0,
        p.index === 0 ? RingTensor.encode(p.backend, values, p.fracBits, shape) : null,
        shape,
      );
      await measure(c.name, n, () => c.run(x));
    }
  }
  // What a round costs on its own: every party sends `bytes` to both peers and receives as much from both, `count`
  // times in a row; "elements" is the number of rounds, so seconds / elements is the time of one round.
  // A process's first few hundred rounds pay V8's tiering up (the first row timed took twice the others' time a
  // round, whatever its size): untimed rounds first, so that every row times the warm round path.
  let warmed = false;
  for (const [bytes, count] of ROUND_CASES) {
    const name = `round: ${bytes === 0 ? "empty" : bytes < 1e6 ? `${bytes}-byte` : `${bytes / 1e6} MB`} exchange`;
    if (o.only && !o.only.some((s) => name.includes(s.toLowerCase()))) continue;
    const peers0 = [p.next, p.prev], none = new Uint8Array(0);
    for (let k = 0; !warmed && k < 1000; k++) {
      await p.mesh.round(peers0.map((to) => ({ to, data: none })), peers0.map((from) => ({ from, into: none })));
    }
    warmed = true;
    const out = new Uint8Array(bytes), ins = [new Uint8Array(bytes), new Uint8Array(bytes)];
    const peers = [p.next, p.prev];
    await measure(name, count, async () => {
      for (let k = 0; k < count; k++) {
        await p.mesh.round(peers.map((to) => ({ to, data: out })), peers.map((from, j) => ({ from, into: ins[j] })));
      }
      return { dispose() {} };
    });
  }
  if (!o.only || o.only.some((s) => "matmul".includes(s.toLowerCase()))) {
    const d = 512;
    const values = uniform(d * d, -1, 1);
    using a = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, values, p.fracBits, [d, d]) : null, [
      d,
      d,
    ]);
    using b = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, values, p.fracBits, [d, d]) : null, [
      d,
      d,
    ]);
    await measure("fixed-point matmul 512x512x512", d * d, () => mulFixed(a, b, (u, v) => u.matmul(v)));
    await measure("matmul 512x512x512 (no truncation)", d * d, () => matmul(a, b));
  }
  return rows;
}
