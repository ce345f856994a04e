/**
 * Maximum (and optionally ReLU of it) over the last axis of length d in one
 * level instead of a tree: every pair is compared at once, so the rounds no
 * longer grow with log d, at the price of d(d-1)/2 comparisons instead of d - 1.
 *   1. c_ij = msb(x_i - x_j) for i < j (x_i < x_j), and with ReLU also
 *      z_i = msb(-x_i) (x_i > 0): one batched msb, 8 rounds.
 *   2. Entry i wins if it beats every other: w_i = AND_{j>i} !c_ij AND_{j<i} c_ji
 *      (AND z_i): a tree of ANDs over those d - 1 (or d) bits, all entries at
 *      once, ceil(log2) rounds. Ties go to the first entry, so exactly one wins
 *      (none, with ReLU, when the maximum is not positive).
 *   3. max = sum_i w_i x_i by one bit injection (2 rounds), which also yields
 *      the one-hot w as 0/1 words when asked.
 * Under the preprocessing mode (preprocessed truncation) msb opens its input
 * masked (7 rounds), the trees' last level is not reshared but opened masked
 * by random bits made ahead, which gives w as arithmetic 0/1 at once, and
 * max = sum_i w_i x_i is one multiplication: 7 + (levels - 1) + 1 + 1 rounds,
 * two fewer.
 * Pays off where rounds cost more than the extra comparisons' bytes: small
 * tensors (batch-1 pooling), see `preferPairs`.
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import { andMany, localAnd } from "./and.ts";
import { BShare } from "./binary.ts";
import { bitInject } from "./bitinject.ts";
import { type MaxResult, maxRounds } from "./max.ts";
import { msb } from "./msb.ts";
import { MASKED_MSB_ROUNDS, toArithmetic } from "./msb_masked.ts";
import { mul } from "./multiply.ts";
import { disposeMaterial } from "./stock.ts";
import type { Party } from "./party.ts";
import { RELU_ROUNDS } from "./relu.ts";

/**
 * Rounds of maxAllPairs: msb, the AND tree over each entry's d - 1 (d with ReLU) bits, the injection; masked (the
 * preprocessing mode): msb from masks, the tree less its last level, the masked opening and one multiplication.
 */
export const pairsRounds = (d: number, relu: boolean, masked = false): number => {
  const levels = Math.ceil(Math.log2(Math.max(1, d - 1 + +relu)));
  return masked ? MASKED_MSB_ROUNDS + Math.max(0, levels - 1) + 2 : 8 + levels + 2;
};

/** Comparisons per row: maxAllPairs's, and the tree's (with ReLU after it). */
const pairComparisons = (d: number, relu: boolean) => (d * (d - 1)) / 2 + (relu ? d : 0);
const treeComparisons = (d: number, relu: boolean) => d - 1 + +relu;

/**
 * What one round is worth in comparisons: on the paper's LAN (1.25 GB/s, 0.2 ms
 * a round) a round's latency moves 250 kB, the bytes of about 10^4
 * comparisons (msb sends about 25 bytes per element from every party).
 */
export const COMPARISONS_PER_ROUND = 10_000;

/** Whether maxAllPairs beats the tree (then ReLU) for `rows` rows of d: fewer rounds against more comparisons. */
export function preferPairs(rows: number, d: number, relu: boolean): boolean {
  if (d < 3 && !relu) return false; // one pair: the tree is already one level
  const saved = maxRounds(d) + (relu ? RELU_ROUNDS : 0) - pairsRounds(d, relu);
  const extra = rows * (pairComparisons(d, relu) - treeComparisons(d, relu));
  return extra < saved * COMPARISONS_PER_ROUND;
}

export async function maxAllPairs(x: AShare, o: { relu?: boolean; argmax?: boolean } = {}): Promise<MaxResult> {
  const p = x.party;
  const before = p.setStep(o.relu ? "relu of max" : "max");
  const shape = x.shape, d = shape[shape.length - 1], rows = x.size / d;
  if (!(d >= 2 || (d === 1 && o.relu))) throw new RangeError(`maxAllPairs: needs two entries, got ${d}`);
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const vals = own(x.reshape([rows, d]));
    const col = (i: number) => own(vals.slice(1, i, i + 1));
    const pairs: [number, number][] = [];
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) pairs.push([i, j]);
    const diffs = pairs.map(([i, j]) => own(col(i).sub(col(j))));
    if (o.relu) diffs.push(own(vals.neg()));
    const width = pairs.length + (o.relu ? d : 0);
    // bits [rows, width]: column k < pairs.length is c_ij of pair k, then z_0 .. z_(d-1)
    const bits = own(await msb(own(AShare.concat(diffs, 1))));
    const table = own(bits.map((s) => s.reshape([rows, width])));
    const column = (k: number) => own(table.gatherBits(k, 1, 1));

    const terms: BShare[][] = [];
    for (let i = 0; i < d; i++) {
      const t: BShare[] = [];
      pairs.forEach(([a, b], k) => {
        if (a === i) t.push(own(column(k).not())); // i beats b unless x_i < x_b
        else if (b === i) t.push(column(k)); // i beats a only if x_a < x_i
      });
      if (o.relu) t.push(column(pairs.length + i));
      terms.push(t);
    }
    const outShape = shape.slice(0, -1);
    if (p.truncation === "preprocessed") { // the last AND level opened masked instead of reshared (see above)
      const hot = own(await winnersMasked(p, terms, rows, d, own));
      const picked = own(await mul(hot, vals));
      const max = own(picked.sum(1)).reshape(outShape);
      return o.argmax ? { max, argmax: hot.reshape([...outShape, d]) } : { max };
    }
    const wins = (await andAll(p, terms, own)).map((l) => l[0]);
    const oneHot = own(scatterColumns(p, wins, rows, d)); // [rows * d, 1], row-major like vals
    if (!o.argmax) {
      const picked = own(await bitInject(oneHot, vals));
      return { max: own(picked.sum(1)).reshape(outShape) };
    }
    const ones = own(own(own(vals.map((s) => s.mul(0n))).addPublic(1n)).reshape([rows, d, 1]));
    const both = own(AShare.concat([own(vals.reshape([rows, d, 1])), ones], 2));
    const prod = own(await bitInject(oneHot, both));
    const picked = own(own(own(prod.slice(2, 0, 1)).contiguous()).reshape([rows, d]));
    const hot = own(own(prod.slice(2, 1, 2)).contiguous());
    return { max: own(picked.sum(1)).reshape(outShape), argmax: hot.reshape([...outShape, d]) };
  } finally {
    held.forEach((t) => t.dispose());
    p.setStep(before);
  }
}

/**
 * The one-hot w as arithmetic 0/1 [rows, d] under the preprocessing mode: the AND trees stop at two bits a list,
 * whose AND each party keeps as its 3-out-of-3 share (a list of one bit: its own share, masked by a zero share), and
 * msb_masked.ts's toArithmetic opens them masked by random bits made ahead: 1 round where the last level and the
 * injection took 3.
 */
async function winnersMasked(
  p: Party,
  lists: BShare[][],
  rows: number,
  d: number,
  own: <T extends { dispose(): void }>(t: T) => T,
): Promise<AShare> {
  const pairs = await andAll(p, lists, own, 2);
  const shares = pairs.map((l) => {
    if (l.length === 2) return own(localAnd(l[0], l[1]));
    const [r0, r1] = p.rand.zeroShareParts(l[0].shape, "bit");
    using _r0 = r0, _r1 = r1;
    using zero = r0.xor(r1);
    return own(l[0].cur.xor(zero));
  });
  const stream = own(scatterShares(p, shares, rows, d));
  const bits = await p.bits.take("bits", rows * d);
  try {
    return own(await toArithmetic(p, stream, bits)).reshape([rows, d]);
  } finally {
    disposeMaterial(bits);
  }
}

/** The AND of each list of bits, every list's tree level in one round, until lists are `until` long (or shorter). */
async function andAll(
  p: Party,
  lists: BShare[][],
  own: <T extends { dispose(): void }>(t: T) => T,
  until = 1,
): Promise<BShare[][]> {
  let live = lists.map((l) => [...l]);
  for (let level = 1; live.some((l) => l.length > until); level++) {
    const pairs: [BShare, BShare][] = [];
    for (const l of live) for (let k = 0; k + 1 < l.length; k += 2) pairs.push([l[k], l[k + 1]]);
    const anded = (await andMany(p, pairs, `max pairs and ${level}`)).map(own);
    let at = 0;
    live = live.map((l) => {
      const next = [];
      for (let k = 0; k + 1 < l.length; k += 2) next.push(anded[at++]);
      if (l.length % 2) next.push(l[l.length - 1]);
      return next;
    });
  }
  return live;
}

/** Columns [rows, 1] as one [rows * d, 1] stream, row-major. */
function scatterColumns(p: Party, columns: BShare[], rows: number, d: number): BShare {
  return new BShare(
    p,
    scatterShares(p, columns.map((b) => b.cur), rows, d),
    scatterShares(p, columns.map((b) => b.next), rows, d),
  );
}

/** One share's columns [rows, 1] as one [rows * d, 1] stream, row-major. */
function scatterShares(p: Party, columns: RingTensor[], rows: number, d: number): RingTensor {
  let t = RingTensor.zeros(p.backend, [rows, d], "bit");
  columns.forEach((c, i) => {
    const u = t.scatterBits(c, i, 1, 1);
    t.dispose();
    t = u;
  });
  using flat = t;
  return flat.reshape([rows * d, 1]);
}
