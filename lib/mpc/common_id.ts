/**
 * A fresh id the three parties share, for the sharings they write together
 * (the files of one sharing carry one id; `reconstruct` and the agreement at
 * setup refuse mixed ones): party 0 draws it and sends it to the others, so
 * two runs never give their outputs the same id.
 */
import type { Party } from "./party.ts";

export async function commonId(p: Party): Promise<string> {
  const id = new Uint8Array(16);
  const before = p.setStep("common id");
  if (p.index === 0) {
    crypto.getRandomValues(id);
    await p.mesh.round([{ to: 1, data: id }, { to: 2, data: id }], []);
  } else {
    await p.mesh.round([], [{ from: 0, into: id }]);
  }
  p.setStep(before);
  return Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("");
}
