/**
 * Softmax cross-entropy at the output layer. The gradient with respect to the
 * logits z is softmax(z) - y per sample (the sum over the batch; the optimizer
 * divides by the batch size). The loss value is not needed for training: it is
 * computed only when asked (a disclosure to one party), as
 *   sum_b [ln s_b - sum_j (z_bj - m_b) y_bj],  m_b = max_j z_bj, s_b = sum_j exp(z_bj - m_b),
 * with ln on [1, d] by a normalization to [1, 2] and a quartic (`ln.ts`).
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { exp } from "../mpc/exp.ts";
import { maxLastAxis } from "../mpc/max.ts";
import { mulFixed } from "../mpc/multiply.ts";
import { reciprocal } from "../mpc/reciprocal.ts";
import { lnBounded } from "./ln.ts";
import { PlainTensor } from "./plain.ts";

export interface LossResult {
  /** softmax(z) - y, [batch, classes]. */
  grad: AShare;
  /** The summed loss over the batch, [1], when asked for. */
  lossSum?: AShare;
}

export async function softmaxCrossEntropy(z: AShare, y: AShare, withLoss = false): Promise<LossResult> {
  const p = z.party;
  const before = p.setStep("softmax cross-entropy");
  try {
    const [n, d] = z.shape;
    if (y.shape.join() !== z.shape.join()) {
      throw new RangeError(`loss: labels [${y.shape}] do not match logits [${z.shape}]`);
    }
    using m = (await maxLastAxis(z)).max;
    using mCol = m.reshape([n, 1]);
    using shifted = z.sub(mCol);
    using e = await exp(shifted);
    using total = e.sum(1, true);
    using inv = await reciprocal(total, d);
    using probs = await mulFixed(e, inv);
    const grad = probs.sub(y);
    if (!withLoss) return { grad };
    using logs = await lnBounded(total, d);
    using picked = await mulFixed(shifted, y);
    using pickedSum = picked.sum(1);
    using logFlat = logs.reshape([n]);
    using perSample = logFlat.sub(pickedSum);
    using sum = perSample.sum(0, true);
    return { grad, lossSum: sum.map((t) => t.clone()) };
  } finally {
    p.setStep(before);
  }
}

/** The twin: gradient softmax(z) - y and the summed loss. */
export function plainSoftmaxCrossEntropy(z: PlainTensor, y: PlainTensor): { grad: PlainTensor; lossSum: number } {
  const [n, d] = z.shape;
  const grad = new Float64Array(n * d);
  let lossSum = 0;
  for (let b = 0; b < n; b++) {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, z.data[b * d + j]);
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.exp(z.data[b * d + j] - m);
    for (let j = 0; j < d; j++) {
      const i = b * d + j;
      grad[i] = Math.exp(z.data[i] - m) / s - y.data[i];
      lossSum -= y.data[i] * (z.data[i] - m - Math.log(s));
    }
  }
  return { grad: new PlainTensor([n, d], grad), lossSum };
}
