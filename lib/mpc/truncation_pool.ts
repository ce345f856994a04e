/**
 * A party's stock of preprocessed truncation pairs (truncation_pairs.ts), one
 * queue per shift d (stock.ts): made ahead by `fill`, or on the spot (10
 * rounds) when a `take` finds the stock short.
 */
import type { AShare } from "./arithmetic.ts";
import type { Party } from "./party.ts";
import { Stock } from "./stock.ts";
import { makeTruncationPairs, type TruncationPairs } from "./truncation_pairs.ts";

type Pairs = { r: AShare; top: AShare; mid: AShare };

export class TruncationPool {
  #stock: Stock<number, Pairs>;

  constructor(party: Party) {
    this.#stock = new Stock(async (d, n) => {
      const { r, top, mid } = await makeTruncationPairs(party, n, d);
      return { r, top, mid };
    });
  }

  /** Pairs handed out per d since the last `resetUsage`, and how many of them were made on the spot. */
  get usage(): Map<number, { taken: number; madeOnDemand: number }> {
    return this.#stock.usage;
  }

  /** Pairs for d in stock, not yet taken. */
  available(d: number): number {
    return this.#stock.available(d);
  }

  /** Makes pairs until `count` are in stock for d. */
  fill(d: number, count: number): Promise<void> {
    return this.#stock.fill(d, count);
  }

  /** The next n pairs for d (the caller disposes them). */
  async take(d: number, n: number): Promise<TruncationPairs> {
    return { d, ...(await this.#stock.take(d, n)) };
  }

  resetUsage(): void {
    this.#stock.resetUsage();
  }

  dispose(): void {
    this.#stock.dispose();
  }
}
