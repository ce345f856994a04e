/**
 * Input by one party (protocols.md): owner P_i sets share i = F(k_prev(i)),
 * share next(i) = F(k_i) and sends share prev(i) = x - both to the two
 * others. One round; 2 words per element, from the owner only.
 */
import type { Shape } from "../ring/shape.ts";
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import type { Party } from "./party.ts";
import { exchange } from "./transfer.ts";

/** Every party calls this; only the owner passes the value. */
export async function shareInput(p: Party, owner: number, value: RingTensor | null, shape: Shape): Promise<AShare> {
  const before = p.setStep("input");
  const c = p.rand.nonce();
  const me = p.index;
  try {
    if (me === owner) {
      if (!value) throw new Error(`party ${me} owns the input but passed no value`);
      const cur = p.rand.draw("prev", shape, c), next = p.rand.draw("own", shape, c);
      using both = cur.add(next);
      using rest = value.sub(both);
      await exchange(p.mesh, p.backend, [{ to: p.next, tensor: rest }, { to: p.prev, tensor: rest }], []);
      return new AShare(p, cur, next);
    }
    // P_next(owner) holds (F(k_owner), rest); P_prev(owner) holds (rest, F(k_prev(owner))).
    const [rest] = await exchange(p.mesh, p.backend, [], [{ from: owner, shape }]);
    return me === (owner + 1) % 3
      ? new AShare(p, p.rand.draw("prev", shape, c), rest)
      : new AShare(p, rest, p.rand.draw("own", shape, c));
  } finally {
    p.setStep(before);
  }
}

/**
 * Sharing a value the owner knows, with share prev(owner) = 0: share owner =
 * F(k_prev(owner)) (common to the owner and P_prev(owner)), share next(owner)
 * = value - share owner (binary: xor), sent by the owner to P_next(owner),
 * which lacks k_prev(owner) and so sees a uniformly masked value. 1 round,
 * 1 word per element from the owner only: half the cost of shareInput. The
 * round may carry other messages: pass `extra` sends and receives.
 */
export async function shareKnown(
  p: Party,
  owner: number,
  value: RingTensor | null,
  shape: Shape,
  kind: "arithmetic" | "binary",
): Promise<{ cur: RingTensor; next: RingTensor }> {
  const c = p.rand.nonce();
  const me = p.index;
  if (me === owner) {
    if (!value) throw new Error(`party ${me} owns the value but passed none`);
    const mask = p.rand.draw("prev", shape, c);
    const masked = kind === "arithmetic" ? value.sub(mask) : value.xor(mask);
    await exchange(p.mesh, p.backend, [{ to: p.next, tensor: masked }], []);
    return { cur: mask, next: masked };
  }
  if (me === (owner + 1) % 3) {
    const [masked] = await exchange(p.mesh, p.backend, [], [{ from: owner, shape }]);
    return { cur: masked, next: RingTensor.zeros(p.backend, shape) };
  }
  await exchange(p.mesh, p.backend, [], []);
  return { cur: RingTensor.zeros(p.backend, shape), next: p.rand.draw("own", shape, c) };
}
