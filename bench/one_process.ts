/**
 * A zoo model's private forward (opened to party 0, as `infer` does) with the three parties in one process, on one
 * thread, over loopback TCP: their summed work without any cross-process scheduling, against `local bench inference`
 * (three processes). Prints the first forward, the second and the median of the rest, in milliseconds, and the
 * median CPU time of the rest (all the process's threads; on a shared machine it moves with the wall time, but
 * shows spinning).
 *
 *   deno run -A bench/one_process.ts [FORWARDS=40] [MODEL=lenet:max] [TRUNCATION=corrected]
 *
 * Under preprocessed truncation each forward's pairs are made before its clock starts, as `bench inference` does.
 *
 * Profile the steady state with `deno run -A --cpu-prof bench/one_process.ts N` at two values of N and subtract.
 */
import { cpuUsage } from "node:process";
import { runParties } from "../tests/mpc/harness.ts";
import { RingTensor } from "../lib/ring/tensor.ts";
import { shareInput } from "../lib/mpc/input.ts";
import { emptyBreakdown, sharedParams, shareWeights } from "../lib/nn/model.ts";
import { seededWeights } from "../lib/nn/calibrate.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { trimDeadTaps, trimShares } from "../lib/nn/trim_taps.ts";
import { TRUNCATION_MODES, type TruncationMode } from "../lib/mpc/party.ts";
import { barrier, refillPairs, seededInput } from "./parties.ts";

const forwards = Number(Deno.args[0] ?? 40), name = Deno.args[1] ?? "lenet:max";
const truncation = (Deno.args[2] ?? "corrected") as TruncationMode;
if (!TRUNCATION_MODES.includes(truncation)) {
  throw new Error(`TRUNCATION must be one of ${TRUNCATION_MODES.join(", ")}, got ${Deno.args[2]}`);
}
if (!(Number.isInteger(forwards) && forwards >= 0)) {
  throw new Error(`FORWARDS must be an integer >= 0, got ${Deno.args[0]}`);
}
const times = await runParties(async (p) => {
  const full = modelByName(name), shape = [1, ...full.inputShape], { model, trims } = trimDeadTaps(full);
  const w = await shareWeights(p, full, 0, p.index === 0 ? seededWeights(full, 1) : null);
  trimShares(w, trims);
  const plain = p.index === 1 ? RingTensor.encode(p.backend, seededInput(shape, 2).data, p.fracBits, shape) : null;
  using x = await shareInput(p, 1, plain, shape);
  const ms: number[] = [], cpu: number[] = [];
  for (let i = 0; i < forwards; i++) {
    if (i > 0 && truncation === "preprocessed") await refillPairs(p);
    await barrier(p);
    const t0 = performance.now(), c0 = cpuUsage();
    const y = await model.net.openOutputTo(x, sharedParams(w), 0, emptyBreakdown());
    ms.push(performance.now() - t0);
    const c1 = cpuUsage();
    cpu.push((c1.user + c1.system - c0.user - c0.system) / 1000);
    y.value?.dispose();
  }
  w.forEach((s) => s.dispose());
  return { ms, cpu };
}, { fracBits: 20, truncation });
const [first, second, ...rest] = times[0].ms;
const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
const f = (v: number | undefined) => v === undefined ? "-" : v.toFixed(1);
console.log(
  `${name}, batch 1, three parties in one process: first ${f(first)} ms, second ${f(second)} ms, ` +
    `median of the rest ${f(median(rest))} ms (process CPU time ${f(median(times[0].cpu.slice(2)))} ms)`,
);
