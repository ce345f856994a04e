/** Time, bytes and rounds per layer type: the paper's Table V accounting. */
import type { Party } from "../mpc/party.ts";

/** The layer types of the paper's Table V breakdown. */
export type LayerKind = "linear" | "pool" | "relu" | "softmax" | "other";

export type Breakdown = Record<LayerKind, { seconds: number; bytes: number; rounds: number }>;

export function emptyBreakdown(): Breakdown {
  const z = () => ({ seconds: 0, bytes: 0, rounds: 0 });
  return { linear: z(), pool: z(), relu: z(), softmax: z(), other: z() };
}

/** Runs fn and charges its time, bytes sent and rounds to `kind` (when a breakdown is kept). */
export async function charged<T>(
  breakdown: Breakdown | undefined,
  kind: LayerKind,
  party: Party,
  fn: () => Promise<T>,
): Promise<T> {
  if (!breakdown) return await fn();
  const s0 = party.mesh.stats(), t0 = performance.now();
  const result = await fn();
  const s1 = party.mesh.stats(), b = breakdown[kind];
  b.seconds += (performance.now() - t0) / 1000;
  b.bytes += s1.bytesSent - s0.bytesSent;
  b.rounds += s1.rounds - s0.rounds;
  return result;
}
