/**
 * A zoo model's private forward (opened to party 0, as `infer` does) with the three parties in one process, on one
 * thread, over loopback TCP: their summed work without any cross-process scheduling, against `local bench inference`
 * (three processes). Prints the first forward, the second and the median of the rest, in milliseconds.
 *
 *   deno run -A bench/one_process.ts [FORWARDS=40] [MODEL=lenet:max]
 *
 * Profile the steady state with `deno run -A --cpu-prof bench/one_process.ts N` at two values of N and subtract.
 */
import { runParties } from "../tests/mpc/harness.ts";
import { RingTensor } from "../lib/ring/tensor.ts";
import { shareInput } from "../lib/mpc/input.ts";
import { emptyBreakdown, sharedParams, shareWeights } from "../lib/nn/model.ts";
import { seededWeights } from "../lib/nn/calibrate.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { barrier, seededInput } from "./parties.ts";

const forwards = Number(Deno.args[0] ?? 40), name = Deno.args[1] ?? "lenet:max";
if (!(Number.isInteger(forwards) && forwards >= 0)) {
  throw new Error(`FORWARDS must be an integer >= 0, got ${Deno.args[0]}`);
}
const times = await runParties(async (p) => {
  const model = modelByName(name), shape = [1, ...model.inputShape];
  const w = await shareWeights(p, model, 0, p.index === 0 ? seededWeights(model, 1) : null);
  const plain = p.index === 1 ? RingTensor.encode(p.backend, seededInput(shape, 2).data, p.fracBits, shape) : null;
  using x = await shareInput(p, 1, plain, shape);
  const ms: number[] = [];
  for (let i = 0; i < forwards; i++) {
    await barrier(p);
    const t0 = performance.now();
    const y = await model.net.openOutputTo(x, sharedParams(w), 0, emptyBreakdown());
    ms.push(performance.now() - t0);
    y.value?.dispose();
  }
  w.forEach((s) => s.dispose());
  return ms;
}, { fracBits: 20, truncation: "corrected" });
const [first, second, ...rest] = times[0];
rest.sort((a, b) => a - b);
const f = (v: number | undefined) => v === undefined ? "-" : v.toFixed(1);
console.log(
  `${name}, batch 1, three parties in one process: first ${f(first)} ms, second ${f(second)} ms, ` +
    `median of the rest ${f(rest[Math.floor(rest.length / 2)])} ms`,
);
