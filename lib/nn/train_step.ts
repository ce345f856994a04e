/**
 * One iteration of private training, and its plaintext twin: forward with a
 * tape, softmax cross-entropy gradient at the logits, backward through every
 * layer, SGD. Disclosures (the batch loss, held-out accuracy) are opt-in and
 * go to one named party; nothing else is ever opened.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { maxLastAxis } from "../mpc/max.ts";
import { mul } from "../mpc/multiply.ts";
import { revealTo } from "../mpc/reveal.ts";
import { type Breakdown, charged } from "./breakdown.ts";
import { plainSoftmaxCrossEntropy, softmaxCrossEntropy } from "./loss.ts";
import { type Model, plainParams, sharedParams, type Weights } from "./model.ts";
import type { Sgd } from "./optim.ts";
import { argmaxRows, type PlainTensor } from "./plain.ts";
import { Grads, Tape } from "./tape.ts";

export interface StepOptions {
  breakdown?: Breakdown;
  /** The party that learns the batch's mean loss (a disclosure; none by default). */
  lossTo?: number;
  /**
   * Dropout's public randomness: the run's public seed and this iteration's
   * number (masks derive from them and each layer's path; see Dropout).
   * Required when the model holds Dropout layers: without it they throw.
   */
  dropout?: { seed: number; iteration: number };
}

/**
 * Trains `params` (replaced in place) on one batch x [B, ...] with one-hot
 * labels y [B, classes]. Returns the batch's mean loss at party `lossTo`,
 * null elsewhere or when not asked.
 */
export async function trainStep(
  model: Model,
  params: Map<string, AShare>,
  sgd: Sgd,
  x: AShare,
  y: AShare,
  o: StepOptions = {},
): Promise<number | null> {
  const p = x.party, batch = x.shape[0];
  using tape = new Tape({ dropout: o.dropout });
  const grads = new Grads<AShare>();
  try {
    using z = await model.net.forward(x, sharedParams(params), o.breakdown, tape);
    // the loss gradient (a private max, exp and reciprocal) is the paper's softmax row; SGD and the loss's one
    // reveal are "other": with the layers' rows they add up to the step's bytes and rounds
    const { grad, lossSum } = await charged(
      o.breakdown,
      "softmax",
      p,
      () => softmaxCrossEntropy(z, y, o.lossTo !== undefined),
    );
    using dz = grad, _l = lossSum;
    const dx = await model.net.backward(dz, sharedParams(params), tape, grads, false, o.breakdown);
    dx?.dispose();
    await charged(o.breakdown, "other", p, () => sgd.step(params, grads.map, batch));
    if (!lossSum) return null;
    using opened = await charged(o.breakdown, "other", p, () => revealTo(lossSum, o.lossTo!));
    return opened ? opened.decode(p.fracBits)[0] / batch : null;
  } finally {
    grads.map.forEach((g) => g.dispose());
  }
}

/** The twin of trainStep (the same `dropout` draws the same masks); returns the batch's mean loss. */
export function plainTrainStep(
  model: Model,
  weights: Weights,
  sgd: Sgd,
  x: PlainTensor,
  y: PlainTensor,
  fracBits: number,
  o: Pick<StepOptions, "dropout"> = {},
): number {
  const tape = new Tape({ dropout: o.dropout }), grads = new Grads<PlainTensor>();
  const z = model.net.plain(x, plainParams(weights), tape);
  const { grad, lossSum } = plainSoftmaxCrossEntropy(z, y);
  model.net.plainBackward(grad, plainParams(weights), tape, grads);
  sgd.plainStep(weights, grads.map, x.shape[0], fracBits);
  return lossSum / x.shape[0];
}

/**
 * How many of the batch the model classifies correctly, still shared (shape
 * [1], at scale f): the private argmax one-hot times the one-hot label,
 * summed. Chunks of a held-out set add up these before one reveal.
 */
export async function sharedCorrect(model: Model, params: Map<string, AShare>, x: AShare, y: AShare): Promise<AShare> {
  using z = await model.net.forward(x, sharedParams(params));
  const { max, argmax } = await maxLastAxis(z, true);
  using _m = max, hot = argmax!;
  // 0/1 integers times fixed-point labels: already at scale f, no truncation
  using hits = await mul(hot, y);
  using flat = hits.reshape([hits.size]);
  return flat.sum(0, true);
}

/** A shared count opened to party `to` only (a disclosure of that one number); null elsewhere. */
export async function revealCount(count: AShare, to: number): Promise<number | null> {
  using opened = await revealTo(count, to);
  return opened ? Math.round(opened.decode(count.party.fracBits)[0]) : null;
}

/** sharedCorrect of one batch, opened to party `to` only. */
export async function countCorrect(model: Model, params: Map<string, AShare>, x: AShare, y: AShare, to: number) {
  using total = await sharedCorrect(model, params, x, y);
  return await revealCount(total, to);
}

export function plainCountCorrect(model: Model, weights: Weights, x: PlainTensor, labels: Int32Array): number {
  const z = model.net.plain(x, plainParams(weights));
  return argmaxRows(z.data, z.shape[1]).filter((c, b) => c === labels[b]).length;
}
