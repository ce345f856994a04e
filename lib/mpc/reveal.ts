/**
 * Opening a sharing. To all: P_j sends x_next(j) to P_prev(j), which lacks
 * exactly that share (1 round, 1 word per element per party). To one party
 * P_r: P_next(r) sends its x_prev(r) = its `next` share (1 round, 1 word, one
 * sender).
 */
import type { RingTensor } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { exchange } from "./transfer.ts";

export async function reveal(x: AShare): Promise<RingTensor> {
  const p = x.party;
  const before = p.setStep("reveal");
  try {
    const [missing] = await exchange(p.mesh, p.backend, [{ to: p.prev, tensor: x.next }], [{
      from: p.next,
      shape: x.shape,
    }]);
    using sum = x.cur.add(x.next);
    const out = sum.add(missing);
    missing.dispose();
    return out;
  } finally {
    p.setStep(before);
  }
}

/** Every party calls this; party r gets the value, the others null. */
export async function revealTo(x: AShare, r: number): Promise<RingTensor | null> {
  const p = x.party;
  const before = p.setStep(`reveal to party ${r}`);
  try {
    const sends = p.index === (r + 1) % 3 ? [{ to: r, tensor: x.next }] : [];
    const recvs = p.index === r ? [{ from: (r + 1) % 3, shape: x.shape }] : [];
    const got = await exchange(p.mesh, p.backend, sends, recvs);
    if (p.index !== r) return null;
    using sum = x.cur.add(x.next);
    const out = sum.add(got[0]);
    got[0].dispose();
    return out;
  } finally {
    p.setStep(before);
  }
}
