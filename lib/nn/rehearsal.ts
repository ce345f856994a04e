/**
 * A dress rehearsal of a private forward pass: after connecting, the three
 * parties run the model twice over their real links on all-zero weight and
 * input sharings, first making its material on the spot, then from stock.
 * Nothing secret is involved (the output, opened or not, is zero), and what a
 * first forward would otherwise pay inside its own time is paid here: V8's
 * compiled code for every path the forward takes (the channels' included),
 * the backend's buffers of the forward's sizes, and, under preprocessed
 * truncation, the count of the material it takes, which the party then makes
 * (lib/mpc/demand.ts preprocessFor) before the real input is shared.
 */
import { AShare } from "../mpc/arithmetic.ts";
import type { Party } from "../mpc/party.ts";
import { collectGarbage, type Demand, demandOf, preprocessFor, resetDemand } from "../mpc/demand.ts";
import { RingTensor } from "../ring/tensor.ts";
import { type Model, sharedParams } from "./model.ts";

export interface ForwardRehearsal {
  /** The preprocessed material a forward takes (none unless the truncation is preprocessed). */
  demand: Demand;
  seconds: number;
}

/**
 * The forward as `infer` runs it, on zeros: opened to party `revealTo` (the last layer's product straight from its
 * shares), or left shared when revealTo is null. Every party calls it at the same point; the material the first
 * pass takes is made on the spot and counted, and made ahead for the second.
 */
export async function rehearseForward(
  p: Party,
  model: Model,
  inputShape: readonly number[],
  revealTo: number | null = 0,
): Promise<ForwardRehearsal> {
  const t0 = performance.now();
  const zeros = (shape: readonly number[]) =>
    new AShare(p, RingTensor.zeros(p.backend, [...shape]), RingTensor.zeros(p.backend, [...shape]));
  const w = new Map(model.paramShapes().map(([name, shape]) => [name, zeros(shape)]));
  resetDemand(p);
  try {
    using x = zeros(inputShape);
    const once = async () => {
      if (revealTo === null) (await model.net.forward(x, sharedParams(w))).dispose();
      else (await model.net.openOutputTo(x, sharedParams(w), revealTo)).value?.dispose();
    };
    await once(); // material made on the spot, and counted
    const demand = demandOf(p);
    // then as the real forward will run, its material made ahead: one pass left much of V8's tiering to the first
    // real forward (LeNet:max batch 1, preprocessed: 0.049-0.055 s against 0.034-0.036 for the second; with this
    // one, 0.038-0.042 against 0.039-0.043)
    await preprocessFor(p, demand);
    await once();
    return { demand, seconds: (performance.now() - t0) / 1000 };
  } finally {
    w.forEach((s) => s.dispose());
    resetDemand(p);
    collectGarbage(); // its garbage, collected now rather than during the real forward
  }
}
