/** The verdict of a short fuzzing run in a test: no finding of any kind, no slow case, and mutations that matter. */
import assert from "node:assert/strict";
import type { FuzzReport, ParserName } from "../../bench/fuzz.ts";

/** The run's seed (CRYPTGPU_FUZZ_SEED picks another), printed with every failure so that it replays. */
export const FUZZ_SEED = BigInt(Deno.env.get("CRYPTGPU_FUZZ_SEED") ?? "20261204");
/** Cases per parser in CI: a few seconds in all on 2 cores. */
export const CASES = 8000;

/** Fails with every finding's kind, case and detail, and the seed that replays it. */
export function assertClean(r: FuzzReport, p: ParserName): void {
  const found = Object.entries(r.findings).filter(([, n]) => n > 0);
  const replay = `cryptgpu bench fuzz --seed ${r.seed} --only ${p} --case <i>`;
  assert.deepEqual(
    found,
    [],
    `${r.parser}: ${found.map(([k, n]) => `${n} ${k}`).join(", ")} (replay: ${replay})\n` +
      r.examples.map((f) => `  ${f.kind}, case ${f.case}: ${JSON.stringify(f.detail)}`).join("\n"),
  );
  assert.ok(r.slowestMs < 2000, `${r.parser}: case ${r.slowestCase} took ${r.slowestMs.toFixed(0)} ms`);
  // A fuzzer whose mutations never get through, or never fail, exercises little.
  assert.ok(r.accepted > 0 && r.accepted < r.cases, `${r.parser}: ${r.accepted} of ${r.cases} accepted`);
}
