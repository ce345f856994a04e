/**
 * softmax over the last axis: exp(x - max x) / sum exp(x - max x). The shift
 * by the (private) maximum keeps every exponent <= 0, so each exp lies in
 * (0, 1] and the sum in [1, d]: the reciprocal runs with Y = d.
 */
import type { AShare } from "./arithmetic.ts";
import { exp } from "./exp.ts";
import { maxLastAxis } from "./max.ts";
import { mulFixed } from "./multiply.ts";
import { reciprocal } from "./reciprocal.ts";

export async function softmax(x: AShare, error = 1e-4): Promise<AShare> {
  const p = x.party;
  const before = p.setStep("softmax");
  const shape = x.shape, d = shape[shape.length - 1];
  try {
    const { max } = await maxLastAxis(x);
    using m = max;
    using mCol = m.reshape([...shape.slice(0, -1), 1]);
    using shifted = x.sub(mCol);
    using e = await exp(shifted);
    using total = e.sum(shape.length - 1, true);
    using inv = await reciprocal(total, d, error);
    return await mulFixed(e, inv);
  } finally {
    p.setStep(before);
  }
}
