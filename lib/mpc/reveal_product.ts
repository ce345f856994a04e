/**
 * A product opened to one party without being reshared: the network's last
 * linear layer at inference, whose logits P_r learns anyway. Each P_i forms
 * its 3-out-of-3 share of the product, z_i = x_i o (y_i + y_next(i)) +
 * x_next(i) o y_i + a_i (a_i a zero-share, as in `multiplyWith`), plus its
 * share `cur` of a sharing to add, and the two parties other than P_r send
 * theirs to P_r, which adds the three. 1 round, one word per element from
 * each of the two; it replaces the product's reshare, its truncation and the
 * reveal (4 rounds with the corrected truncation, 3 with Pi_trunc1).
 *
 * Privacy: P_r receives z_{r+1}, masked by F(k_{r+1}) in a_{r+1} = F(k_{r+1})
 * - F(k_r), and z_{r-1}, masked by -F(k_{r+1}) in a_{r-1} = F(k_{r-1}) -
 * F(k_{r+1}); P_r lacks k_{r+1}, so the two are uniform given their sum
 * z - z_r, which is what P_r is to learn. The others receive nothing.
 *
 * The value is not truncated: it comes at the product's scale (2f for two
 * fixed-point operands), which also removes the truncation's rounding error.
 */
import type { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import type { Bilinear } from "./multiply.ts";
import { localProduct } from "./local_steps.ts";
import { exchange } from "./transfer.ts";

export async function revealProductTo(
  x: AShare,
  y: AShare,
  op: Bilinear,
  r: number,
  add?: AShare,
): Promise<RingTensor | null> {
  const p = x.party;
  const before = p.setStep(`product revealed to party ${r}`);
  try {
    using t = localProduct([x.cur, x.next], [y.cur, y.next], op);
    using a = p.rand.zeroShare(t.shape);
    using masked = t.add(a);
    const z = add ? masked.add(add.cur) : masked.clone();
    using _z = z;
    const others = [(r + 1) % 3, (r + 2) % 3];
    const got = await exchange(
      p.mesh,
      p.backend,
      p.index === r ? [] : [{ to: r, tensor: z }],
      p.index === r ? others.map((from) => ({ from, shape: z.shape })) : [],
    );
    if (p.index !== r) return null;
    using partial = z.add(got[0]);
    got[0].dispose();
    const out = partial.add(got[1]);
    got[1].dispose();
    return out;
  } finally {
    p.setStep(before);
  }
}
