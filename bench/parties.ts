/** What every three-party benchmark needs around its measurement: a start line, collecting counts, seeded inputs. */
import type { Party } from "../lib/mpc/party.ts";
import { demandOf, preprocessFor, resetDemand } from "../lib/mpc/demand.ts";
import { PlainTensor } from "../lib/nn/plain.ts";

/** A round in which every party sends one byte to every other: all start together. */
export async function barrier(p: Party): Promise<void> {
  const others = [p.next, p.prev];
  await p.mesh.round(
    others.map((to) => ({ to, data: new Uint8Array(1) })),
    others.map((from) => ({ from, into: new Uint8Array(1) })),
  );
}

/** Party 0 receives every party's numbers (in party order); the others get null. Run outside the measurement. */
export async function gatherToZero(p: Party, mine: number[]): Promise<number[][] | null> {
  const data = new Uint8Array(Float64Array.from(mine).buffer);
  if (p.index === 0) {
    const got = [new Uint8Array(data.length), new Uint8Array(data.length)];
    await p.mesh.round([], [{ from: 1, into: got[0] }, { from: 2, into: got[1] }]);
    return [mine, ...got.map((g) => Array.from(new Float64Array(g.buffer)))];
  }
  await p.mesh.round([{ to: 0, data }], []);
  return null;
}

/** Benchmark input (public, seeded test data): pixel-like values in [0, 1). */
export function seededInput(shape: readonly number[], seed: number): PlainTensor {
  let s = (seed * 0x9e3779b1) >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // xorshift32: plenty for test images, and fast for 224x224x3 batches
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    data[i] = s / 2 ** 32;
  }
  return new PlainTensor(shape, data);
}

/** Every party receives every party's numbers, in party order (a decision all must take alike). */
export async function allGather(p: Party, mine: number[]): Promise<number[][]> {
  const data = new Uint8Array(Float64Array.from(mine).buffer);
  const others = [p.next, p.prev];
  const got = others.map(() => new Uint8Array(data.length));
  await p.mesh.round(others.map((to) => ({ to, data })), others.map((from, k) => ({ from, into: got[k] })));
  const all: number[][] = [mine, mine, mine];
  others.forEach((j, k) => (all[j] = Array.from(new Float64Array(got[k].buffer))));
  return all;
}

/**
 * Makes again the truncation pairs, comparison masks and random bits taken since the usage was last reset (between two timed
 * runs, outside their clock): this party's seconds, bytes and rounds, and the pairs, masks and random bits made.
 */
export async function refillPairs(p: Party): Promise<number[]> {
  const wanted = demandOf(p);
  resetDemand(p);
  await barrier(p);
  const s0 = p.mesh.stats(), t0 = performance.now();
  await preprocessFor(p, wanted);
  await p.backend.sync();
  const seconds = (performance.now() - t0) / 1000, s1 = p.mesh.stats();
  const pairs = [...wanted.pairs.values()].reduce((s, n) => s + n, 0);
  return [seconds, s1.bytesSent - s0.bytesSent, s1.rounds - s0.rounds, pairs, wanted.masks, wanted.bits];
}
