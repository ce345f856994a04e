/** Timing for benchmarks: every sample waits for the device (sync) before the clock stops. */
import type { Backend } from "../lib/native/backend.ts";

export interface Timing {
  /** Median seconds per run. */
  seconds: number;
  runs: number;
}

/** Runs fn once to warm up, then until `minSeconds` have passed (at least 3, at most maxRuns runs). */
export async function measure(
  backend: Backend,
  fn: () => void,
  { minSeconds = 0.5, maxRuns = 50 } = {},
): Promise<Timing> {
  fn();
  await backend.sync();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 3 || (samples.length < maxRuns && performance.now() - start < minSeconds * 1000)) {
    const t0 = performance.now();
    fn();
    await backend.sync();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { seconds: samples[Math.floor(samples.length / 2)], runs: samples.length };
}
