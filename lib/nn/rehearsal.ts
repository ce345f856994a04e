/**
 * A rehearsal of a private forward pass (lib/mpc/rehearsal.ts): the three
 * parties run the model on zero weights and a zero input in this process,
 * so that the real first forward finds its code compiled, its buffer sizes
 * cached and (preprocessed truncation) the number of pairs it takes known.
 */
import type { Backend } from "../native/backend.ts";
import { AShare } from "../mpc/arithmetic.ts";
import type { TruncationMode } from "../mpc/party.ts";
import { type Demand, rehearse } from "../mpc/rehearsal.ts";
import { RingTensor } from "../ring/tensor.ts";
import { type Model, sharedParams } from "./model.ts";

export interface ForwardRehearsal {
  /** The preprocessed material a forward takes (none unless the truncation is preprocessed). */
  demand: Demand;
  seconds: number;
}

/**
 * The forward as `infer` runs it: opened to party `revealTo` (the last layer's product straight from its shares), or
 * left shared when revealTo is null.
 */
export async function rehearseForward(
  model: Model,
  inputShape: readonly number[],
  backend: Backend,
  fracBits: number,
  truncation: TruncationMode,
  revealTo: number | null = 0,
): Promise<ForwardRehearsal> {
  const t0 = performance.now();
  const demand = await rehearse(backend, fracBits, truncation, async (p) => {
    const zeros = (shape: readonly number[]) =>
      new AShare(p, RingTensor.zeros(backend, [...shape]), RingTensor.zeros(backend, [...shape]));
    const w = new Map(model.paramShapes().map(([name, shape]) => [name, zeros(shape)]));
    try {
      using x = zeros(inputShape);
      if (revealTo === null) (await model.net.forward(x, sharedParams(w))).dispose();
      else (await model.net.openOutputTo(x, sharedParams(w), revealTo)).value?.dispose();
    } finally {
      w.forEach((s) => s.dispose());
    }
  });
  return { demand, seconds: (performance.now() - t0) / 1000 };
}
