/**
 * ln(s) for s in [1, d] (the softmax denominator), by Newton's iteration on
 * exp: y <- y - 1 + s exp(-y). The map g(y) = y - 1 + s e^-y has its minimum
 * ln s at y = ln s, so from any start every iterate after the first lies at or
 * above ln s >= 0 (exp always sees -y <= 0, as ours needs) and the error
 * shrinks quadratically (e' ~ e^2 / 2). The start is the chord of ln through
 * (1, 0) and (d, ln d), within ln(d) / 2 or so of ln s on [1, d]; 5 steps leave
 * the exp's own error (~1e-4) as the bound. 30 rounds a step.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { encodeFixed } from "../ring/fixed.ts";
import { exp } from "../mpc/exp.ts";
import { mulFixed } from "../mpc/multiply.ts";
import { truncate } from "../mpc/truncate.ts";
import { publicScale, scaledTerm } from "./scale.ts";

export const LN_STEPS = 5;

export async function lnBounded(s: AShare, d: number): Promise<AShare> {
  const p = s.party, f = p.fracBits;
  if (!(d >= 1)) throw new RangeError(`ln: the input bound ${d} must be at least 1`);
  const slope = publicScale(d > 1 ? Math.log(d) / (d - 1) : 0, f);
  using term = scaledTerm(s, slope);
  using chord = await truncate(term, slope.shift);
  let y = chord.addPublic(BigInt.asUintN(64, -encodeFixed(slope.value, f)));
  for (let i = 0; i < LN_STEPS; i++) {
    using prev = y;
    using negY = prev.neg();
    using e = await exp(negY);
    using se = await mulFixed(s, e);
    using sum = prev.add(se);
    y = sum.addPublic(BigInt.asUintN(64, -encodeFixed(1, f)));
  }
  return y;
}
