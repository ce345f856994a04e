/**
 * Maximum and argmax over the last axis by a tree of pairwise comparisons:
 * ceil(log2 d) levels, all pairs of a level in one batched call. A level
 * compares the first half of the live entries with the second half:
 * sel = <a < b> (msb, 8 rounds), then max = a + sel (b - a) by one bit
 * injection (2 rounds) that moves the one-hot rows of argmax at the same time,
 * the bit multiplying a whole row [b - a, onehot_b - onehot_a]: 10 rounds a level.
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import { bitInject } from "./bitinject.ts";
import { msb } from "./msb.ts";

export interface MaxResult {
  max: AShare;
  /** One-hot [..., d] marking the maximum (the first one where values tie), if asked for. */
  argmax?: AShare;
}

/** Rounds of maxLastAxis for an axis of length d. */
export const maxRounds = (d: number) => 10 * Math.ceil(Math.log2(d));

export async function maxLastAxis(x: AShare, withArgmax = false): Promise<MaxResult> {
  const p = x.party;
  const before = p.setStep("max");
  const shape = x.shape, d = shape[shape.length - 1];
  if (!(d >= 1)) throw new RangeError("max over an empty axis");
  const rows = x.size / d;
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    // vals [rows, m]; hots [rows, m, d]: the one-hot of each live entry
    let vals = own(x.reshape([rows, d]));
    let hots = withArgmax ? own(publicOneHots(x, rows, d)) : null;
    for (let m = d; m > 1; m = Math.ceil(m / 2)) {
      const h = Math.floor(m / 2);
      const a = own(own(vals.slice(1, 0, h)).contiguous()), b = own(own(vals.slice(1, h, 2 * h)).contiguous());
      const diff = own(b.sub(a));
      using lt = await msb(own(a.sub(b))); // a < b: take b
      let dv: AShare;
      if (hots) {
        const ha = own(own(hots.slice(1, 0, h)).contiguous()), hb = own(own(hots.slice(1, h, 2 * h)).contiguous());
        // one bit per pair moves the value and its one-hot row together
        const both = own(AShare.concat([own(diff.reshape([rows, h, 1])), own(hb.sub(ha))], 2));
        const prod = own(await bitInject(lt, both));
        dv = own(own(own(prod.slice(2, 0, 1)).contiguous()).reshape([rows, h]));
        const dh = own(own(prod.slice(2, 1, 1 + d)).contiguous());
        const movedHots = own(ha.add(dh));
        hots = own(m % 2 ? AShare.concat([movedHots, own(hots.slice(1, m - 1, m))], 1) : movedHots.contiguous());
      } else {
        dv = own(await bitInject(lt, diff));
      }
      const moved = own(a.add(dv));
      vals = own(m % 2 ? AShare.concat([moved, own(vals.slice(1, m - 1, m))], 1) : moved.contiguous());
    }
    const outShape = shape.slice(0, -1);
    return {
      max: vals.reshape(outShape),
      argmax: hots?.reshape([...outShape, d]),
    };
  } finally {
    held.forEach((t) => t.dispose());
    p.setStep(before);
  }
}

/** The public one-hot rows e_0 .. e_(d-1) for each of `rows` rows, as a sharing. */
function publicOneHots(like: AShare, rows: number, d: number): AShare {
  const p = like.party;
  const words = new BigUint64Array(d * d);
  for (let i = 0; i < d; i++) words[i * d + i] = 1n;
  using eye = RingTensor.from(p.backend, words, [1, d, d]);
  using zeros = RingTensor.zeros(p.backend, [rows, d, d]);
  using none = new AShare(p, zeros.clone(), zeros.clone());
  using tiled = zeros.add(eye);
  return none.addPublic(tiled);
}
