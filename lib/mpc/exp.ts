/**
 * exp(x) for fixed-point x <= 0 (softmax's shifted inputs), after CryptGPU's
 * f_m(x) = (1 + x/m)^m (Appendix A), with a fourth-order base and fewer
 * squarings:
 *   t  = x / 2^6                          one truncation by 6 bits
 *   t' = max(t, -1) = ReLU(t + 1) - 1     one ReLU (10 rounds)
 *   b  = 1 + t' + t'^2/2 + t'^3/6 + t'^4/24
 *        t'^2 (2 rounds), t'^3 and t'^4 in one product (2 rounds), and the
 *        public coefficients folded into one truncation (1 round)
 *   exp(x) ~ b^(2^6)                      6 fixed-point squarings (12 rounds)
 * Why: each squaring doubles the relative rounding error of the base, so with
 * m = 2^9 fixed-point rounding alone reaches 2^9 ulp (~5e-4 at f = 20) and the
 * first-order base adds up to 5.3e-4 near x = -2. Here the base errs by less
 * than 1e-6 relative and rounding is amplified 2^6 times: about 1e-4 in all.
 * The clamp keeps b in [0.375, 1], so exp(x) -> 0 as x -> -inf
 * (0.375^64 < 1e-27 at x <= -64).
 * Cost: 1 + 10 + 5 + 12 = 28 rounds.
 */
import { encodeFixed } from "../ring/fixed.ts";
import { AShare } from "./arithmetic.ts";
import { mulFixed } from "./multiply.ts";
import { relu } from "./relu.ts";
import { truncate } from "./truncate.ts";

export const EXP_LOG2_M = 6;
export const EXP_ROUNDS = 1 + 10 + 5 + 2 * EXP_LOG2_M;

export async function exp(input: AShare): Promise<AShare> {
  using x = input.reshape([input.size]);
  const p = x.party;
  const f = p.fracBits;
  const before = p.setStep("exp");
  const one = encodeFixed(1, f);
  try {
    using t = await truncate(x, EXP_LOG2_M);
    using tPlusOne = t.addPublic(one);
    using clamped = await relu(tPlusOne); // t' + 1
    using tc = clamped.addPublic(-one); // t'
    using t2 = await mulFixed(tc, tc);
    // t'^3 and t'^4 in one multiplication: [t'^2, t'^2] * [t', t'^2]
    using pair = AShare.concat([t2, t2], 0);
    using other = AShare.concat([tc, t2], 0);
    using t34 = await mulFixed(pair, other);
    const n = tc.shape[0];
    using t3 = t34.slice(0, 0, n), t4 = t34.slice(0, n, 2 * n);
    // c2 t^2 + c3 t^3 + c4 t^4 with the coefficients at f bits: one truncation by f
    using a2 = t2.mulPublic(encodeFixed(1 / 2, f)), a3 = t3.mulPublic(encodeFixed(1 / 6, f));
    using a4 = t4.mulPublic(encodeFixed(1 / 24, f));
    using a23 = a2.add(a3);
    using high = a23.add(a4);
    using highT = await truncate(high, f);
    let y = clamped.add(highT); // 1 + t' + t'^2/2 + t'^3/6 + t'^4/24
    for (let i = 0; i < EXP_LOG2_M; i++) {
      using prev = y;
      y = await mulFixed(prev, prev);
    }
    using flat = y;
    return flat.reshape(input.shape);
  } finally {
    p.setStep(before);
  }
}
