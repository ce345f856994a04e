/**
 * The preprocessing mode's material (truncation pairs per shift, comparison
 * masks, random bits) as a count: what a party took since it last reset its
 * stocks' usage, what of that was made on the spot, and the batches that make
 * a counted demand ahead of the inputs (a dress rehearsal counts it:
 * lib/nn/rehearsal.ts).
 */
import type { Party } from "./party.ts";

/** The preprocessed material a computation takes: truncation pairs per shift d, comparison masks, random bits. */
export interface Demand {
  pairs: Map<number, number>;
  masks: number;
  bits: number;
}

/** What the party took since its last resetDemand. */
export function demandOf(p: Party): Demand {
  return {
    pairs: new Map([...p.pairs.usage].map(([d, u]) => [d, u.taken])),
    masks: p.masks.usage.get("masks")?.taken ?? 0,
    bits: p.bits.usage.get("bits")?.taken ?? 0,
  };
}

/** Of what the party took since its last resetDemand, what was made on the spot, in elements. */
export function madeOnDemand(p: Party): number {
  const uses = [...p.pairs.usage.values(), ...p.masks.usage.values(), ...p.bits.usage.values()];
  return uses.reduce((s, u) => s + u.madeOnDemand, 0);
}

export function resetDemand(p: Party): void {
  p.pairs.resetUsage();
  p.masks.resetUsage();
  p.bits.resetUsage();
}

/**
 * Makes the material a rehearsal counted (pairs in increasing d, masks, bits, as every party does), before the real
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
  made += Math.max(0, demand.bits - p.bits.available("bits"));
  await p.bits.fill("bits", demand.bits);
  collectGarbage(); // the batches' temporaries, collected now rather than during the forward that follows
  return made;
}

/** V8's gc() where the command exposed it (`--v8-flags=--expose-gc`: deno.json's task, the local launcher). */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
