/**
 * 1/y for y in [1, Y] by Newton-Raphson, z <- z (2 - y z) from z_0 = 1/Y.
 * The error e = 1 - y z squares each step, from e_0 <= 1 - 1/Y, so after i
 * steps |1/y - z| <= e_i <= exp(-2^i / Y): the iteration count follows from Y
 * and the wanted error. 4 rounds a step (two fixed-point products).
 */
import { encodeFixed } from "../ring/fixed.ts";
import type { AShare } from "./arithmetic.ts";
import { mulFixed } from "./multiply.ts";

/** Steps so that exp(-2^i / Y) <= error / 2, leaving half the error to fixed-point rounding. */
export function reciprocalIterations(maxInput: number, error = 1e-4): number {
  if (!(maxInput >= 1)) throw new RangeError(`reciprocal: the input bound ${maxInput} must be at least 1`);
  return Math.max(1, Math.ceil(Math.log2(maxInput * Math.log(2 / error))));
}

export async function reciprocal(y: AShare, maxInput: number, error = 1e-4): Promise<AShare> {
  const p = y.party;
  const before = p.setStep("reciprocal");
  try {
    const steps = reciprocalIterations(maxInput, error);
    using zero = y.mulPublic(0n);
    let z = zero.addPublic(encodeFixed(1 / maxInput, p.fracBits));
    const two = encodeFixed(2, p.fracBits);
    for (let i = 0; i < steps; i++) {
      using prev = z;
      using yz = await mulFixed(y, prev);
      using negYz = yz.neg();
      using factor = negYz.addPublic(two);
      z = await mulFixed(prev, factor);
    }
    return z;
  } finally {
    p.setStep(before);
  }
}
