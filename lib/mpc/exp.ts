/**
 * exp(x) ~ (1 + x / 2^9)^(2^9) (Appendix A): one truncation by 9 bits, the
 * base clamped at 0 by a ReLU (for x < -512 the base is negative and an even
 * power would grow: clamped, exp(x) -> 0), then 9 fixed-point squarings.
 * Cost: 1 + 10 + 9 * 2 = 29 rounds. Max error about 6e-4 on [-45, 0].
 */
import { encodeFixed } from "../ring/fixed.ts";
import type { AShare } from "./arithmetic.ts";
import { mulFixed } from "./multiply.ts";
import { relu } from "./relu.ts";
import { truncate } from "./truncate.ts";

export const EXP_ITERATIONS = 9;
export const EXP_ROUNDS = 1 + 10 + 2 * EXP_ITERATIONS;

export async function exp(x: AShare): Promise<AShare> {
  const p = x.party;
  const before = p.enter("exp");
  try {
    using scaled = await truncate(x, EXP_ITERATIONS);
    using base = scaled.addPublic(encodeFixed(1, p.fracBits));
    let y = await relu(base);
    for (let i = 0; i < EXP_ITERATIONS; i++) {
      using prev = y;
      y = await mulFixed(prev, prev);
    }
    return y;
  } finally {
    p.enter(before);
  }
}
