/**
 * A rehearsal: the three parties of a computation played in this process on
 * dummy data, over memory links, before the real run. What it leaves behind
 * is what a first run would otherwise pay for inside its own time: V8's
 * compiled code for every path the computation takes, the backend's buffers
 * (shared with the real party, so its block cache holds their sizes), and the
 * preprocessed truncation's demand, counted per shift, so that the real party
 * can make its pairs before the input exists.
 *
 * Nothing secret is involved: the caller gives dummy values, and the keys are
 * fresh random ones that never leave this process.
 */
import type { Backend } from "../native/backend.ts";
import { Mesh } from "../net/mesh.ts";
import { Party, type TruncationMode } from "./party.ts";

/** Runs `play` as each of the three parties at once; returns the truncation pairs one party took, per shift d. */
export async function rehearse(
  backend: Backend,
  fracBits: number,
  truncation: TruncationMode,
  play: (p: Party) => Promise<void>,
): Promise<Map<number, number>> {
  const meshes = Mesh.inMemory();
  const parties = meshes.map((m) => Party.setup(m, backend, fracBits, truncation));
  try {
    await Promise.all(parties.map(play));
    return new Map([...parties[0].pairs.usage].map(([d, u]) => [d, u.taken]));
  } finally {
    meshes.forEach((m) => m.close()); // wakes a party still waiting on one that failed
    parties.forEach((p) => p.pairs.dispose());
    // Three parties' worth of garbage, collected now rather than during the real forwards (the command exposes gc;
    // left to V8, it slowed LeNet's second forward from 0.040-0.043 s to 0.067-0.073 s).
    (globalThis as { gc?: () => void }).gc?.();
  }
}

/** Makes the pairs a rehearsal counted (in increasing d, as every party does), before the real inputs are shared. */
export async function preprocessFor(p: Party, demand: Map<number, number>): Promise<number> {
  let made = 0;
  for (const [d, count] of [...demand].sort(([a], [b]) => a - b)) {
    made += Math.max(0, count - p.pairs.available(d));
    await p.pairs.fill(d, count);
  }
  return made;
}
