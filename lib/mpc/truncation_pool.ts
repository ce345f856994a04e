/**
 * A party's stock of preprocessed truncation pairs (truncation_pairs.ts), one
 * queue per shift d. `fill` makes pairs ahead of the inputs; `take` hands out
 * the oldest, making what is missing on the spot (10 rounds) when the stock
 * runs short. Counts are public, so all three parties fill, take and fall
 * short at the same points, and the i-th pair of one party is the i-th of the
 * others.
 */
import { AShare } from "./arithmetic.ts";
import type { Party } from "./party.ts";
import { disposePairs, makeTruncationPairs, type TruncationPairs } from "./truncation_pairs.ts";

export class TruncationPool {
  #stock = new Map<number, { pairs: TruncationPairs; used: number }>();
  /** Pairs handed out per d since the last `resetUsage`, and how many of them were made on the spot. */
  readonly usage = new Map<number, { taken: number; madeOnDemand: number }>();

  constructor(private readonly party: Party) {}

  /** Pairs for d in stock, not yet taken. */
  available(d: number): number {
    const s = this.#stock.get(d);
    return s ? s.pairs.r.size - s.used : 0;
  }

  /** Makes pairs until `count` are in stock for d. */
  async fill(d: number, count: number): Promise<void> {
    const missing = count - this.available(d);
    if (missing > 0) await this.#append(d, missing);
  }

  /** The next n pairs for d (the caller disposes them). */
  async take(d: number, n: number): Promise<TruncationPairs> {
    const short = n - this.available(d);
    const use = this.usage.get(d) ?? { taken: 0, madeOnDemand: 0 };
    this.usage.set(d, use);
    use.taken += n;
    if (short > 0) {
      use.madeOnDemand += short;
      await this.#append(d, short);
    }
    const s = this.#stock.get(d)!;
    if (s.used === 0 && s.pairs.r.size === n) { // the whole stock: handed over as it is
      this.#stock.delete(d);
      return s.pairs;
    }
    const part = (x: AShare) =>
      x.map((t) => {
        using view = t.slice(0, s.used, s.used + n);
        return view.clone();
      });
    const out = { d, r: part(s.pairs.r), top: part(s.pairs.top), mid: part(s.pairs.mid) };
    s.used += n;
    if (s.used === s.pairs.r.size) { // used up: its memory goes now, not at the next batch
      disposePairs(s.pairs);
      this.#stock.delete(d);
    }
    return out;
  }

  resetUsage(): void {
    this.usage.clear();
  }

  dispose(): void {
    this.#stock.forEach((s) => disposePairs(s.pairs));
    this.#stock.clear();
  }

  /** The stock for d becomes what is left of it followed by `count` new pairs. */
  async #append(d: number, count: number): Promise<void> {
    const fresh = await makeTruncationPairs(this.party, count, d);
    const s = this.#stock.get(d);
    if (!s) {
      this.#stock.set(d, { pairs: fresh, used: 0 });
      return;
    }
    const end = s.pairs.r.size;
    const join = (old: AShare, add: AShare) => {
      using rest = old.slice(0, s.used, end);
      return AShare.concat([rest, add], 0);
    };
    const pairs = {
      d,
      r: join(s.pairs.r, fresh.r),
      top: join(s.pairs.top, fresh.top),
      mid: join(s.pairs.mid, fresh.mid),
    };
    disposePairs(s.pairs);
    disposePairs(fresh);
    this.#stock.set(d, { pairs, used: 0 });
  }
}
