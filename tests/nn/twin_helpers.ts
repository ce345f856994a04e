/**
 * What the tests comparing a private pass with its float64 twin share: seeded inputs, the error measure, and
 * sharing and opening a tensor in the three-party harness.
 */
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { PlainTensor } from "../../lib/nn/plain.ts";
import { Rng } from "../helpers.ts";

/** Seeded values in [lo, hi) on a 2^-24 grid. */
export const random = (shape: readonly number[], seed: number, lo = -1, hi = 1): PlainTensor => {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new PlainTensor(shape, Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.int(1 << 24) / (1 << 24)));
};

/** sum |got - want| / sum |want|. */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0, mag = 0;
  for (let i = 0; i < want.length; i++) {
    diff += Math.abs(got[i] - want[i]);
    mag += Math.abs(want[i]);
  }
  return diff / Math.max(mag, 1e-12);
}

/** t shared by `owner` (every party calls this). */
export const share = (p: Party, owner: number, t: PlainTensor): Promise<AShare> =>
  shareInput(p, owner, p.index === owner ? RingTensor.encode(p.backend, t.data, p.fracBits, t.shape) : null, t.shape);

/** x opened to every party, decoded. */
export async function open(x: AShare): Promise<Float64Array> {
  using r = await reveal(x);
  return r.decode(x.party.fracBits);
}
