/**
 * A rehearsal: the three parties of a computation played in this process on
 * dummy data, over memory links, before the real run. What it leaves behind
 * is what a first run would otherwise pay for inside its own time: V8's
 * compiled code for every path the computation takes, the backend's buffers
 * (shared with the real party, so its block cache holds their sizes), and the
 * preprocessing mode's demand (truncation pairs per shift, comparison masks),
 * so that the real party can make them before the input exists.
 *
 * Nothing secret is involved: the caller gives dummy values, and the keys are
 * fresh random ones that never leave this process.
 */
import type { Backend } from "../native/backend.ts";
import { Mesh } from "../net/mesh.ts";
import { Party, type TruncationMode } from "./party.ts";

/** The preprocessed material a computation takes: truncation pairs per shift d, and comparison masks. */
export interface Demand {
  pairs: Map<number, number>;
  masks: number;
}

/** What the party took since its last resetDemand. */
export function demandOf(p: Party): Demand {
  return {
    pairs: new Map([...p.pairs.usage].map(([d, u]) => [d, u.taken])),
    masks: p.masks.usage.get("masks")?.taken ?? 0,
  };
}

/** Of what the party took since its last resetDemand, what was made on the spot, in elements. */
export function madeOnDemand(p: Party): number {
  const uses = [...p.pairs.usage.values(), ...p.masks.usage.values()];
  return uses.reduce((s, u) => s + u.madeOnDemand, 0);
}

export function resetDemand(p: Party): void {
  p.pairs.resetUsage();
  p.masks.resetUsage();
}

/** Runs `play` as each of the three parties at once; returns the material one party took. */
export async function rehearse(
  backend: Backend,
  fracBits: number,
  truncation: TruncationMode,
  play: (p: Party) => Promise<void>,
): Promise<Demand> {
  const meshes = Mesh.inMemory();
  const parties = meshes.map((m) => Party.setup(m, backend, fracBits, truncation));
  try {
    await Promise.all(parties.map(play));
    return demandOf(parties[0]);
  } finally {
    meshes.forEach((m) => m.close()); // wakes a party still waiting on one that failed
    parties.forEach((p) => (p.pairs.dispose(), p.masks.dispose()));
    // Three parties' worth of garbage, collected now rather than during the real forwards (the command exposes gc;
    // left to V8, it slowed LeNet's second forward from 0.040-0.043 s to 0.067-0.073 s).
    (globalThis as { gc?: () => void }).gc?.();
  }
}

/**
 * Makes the material a rehearsal counted (pairs in increasing d, then masks, as every party does), before the real
 * inputs are shared; returns the elements made.
 */
export async function preprocessFor(p: Party, demand: Demand): Promise<number> {
  let made = 0;
  for (const [d, count] of [...demand.pairs].sort(([a], [b]) => a - b)) {
    made += Math.max(0, count - p.pairs.available(d));
    await p.pairs.fill(d, count);
  }
  made += Math.max(0, demand.masks - p.masks.available("masks"));
  await p.masks.fill("masks", demand.masks);
  return made;
}
