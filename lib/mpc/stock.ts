/**
 * A party's stock of preprocessed material (truncation pairs, comparison
 * masks), one queue per key. `fill` makes material ahead of the inputs; `take`
 * hands out the oldest, making what is missing on the spot when the stock runs
 * short. Counts are public, so all three parties fill, take and fall short at
 * the same points, and the i-th element of one party's stock is the i-th of
 * the others'.
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import { BShare } from "./binary.ts";

/** Material for n elements: sharings of 64-bit words whose first axis counts the elements. */
export type Material = { readonly [field: string]: AShare | BShare };

export function disposeMaterial(m: Material): void {
  Object.values(m).forEach((s) => s.dispose());
}

const sizeOf = (m: Material): number => Object.values(m)[0]?.shape[0] ?? 0;

/**
 * Views of elements [lo, hi) of every field: no copy, and no fresh buffer for a first forward to fault in; each
 * view keeps its batch's memory alive until it is disposed.
 */
function part<M extends Material>(m: M, lo: number, hi: number): M {
  return Object.fromEntries(
    Object.entries(m).map(([k, s]) => [k, (s as AShare).map((t) => t.slice(0, lo, hi))]),
  ) as unknown as M;
}

/** Elements [from, end) of a, then all of b, field by field. */
function join<M extends Material>(a: M, from: number, b: M): M {
  return Object.fromEntries(
    Object.entries(a).map(([k, s]) => {
      const t = b[k], end = s.shape[0];
      using cur = s.cur.slice(0, from, end), next = s.next.slice(0, from, end);
      const make = s instanceof AShare ? AShare : BShare;
      return [k, new make(s.party, RingTensor.concat([cur, t.cur]), RingTensor.concat([next, t.next]))];
    }),
  ) as unknown as M;
}

export class Stock<K, M extends Material> {
  #stock = new Map<K, { material: M; used: number }>();
  /** Elements handed out per key since the last `resetUsage`, and how many of them were made on the spot. */
  readonly usage = new Map<K, { taken: number; madeOnDemand: number }>();

  /** `make(key, n)`: n fresh elements (every party calls it at the same point). */
  constructor(private readonly make: (key: K, n: number) => Promise<M>) {}

  /** Elements for the key in stock, not yet taken. */
  available(key: K): number {
    const s = this.#stock.get(key);
    return s ? sizeOf(s.material) - s.used : 0;
  }

  /** Makes material until `count` elements are in stock for the key. */
  async fill(key: K, count: number): Promise<void> {
    const missing = count - this.available(key);
    if (missing > 0) await this.#append(key, missing);
  }

  /** The next n elements for the key (the caller disposes them). */
  async take(key: K, n: number): Promise<M> {
    const short = n - this.available(key);
    const use = this.usage.get(key) ?? { taken: 0, madeOnDemand: 0 };
    this.usage.set(key, use);
    use.taken += n;
    if (short > 0) {
      use.madeOnDemand += short;
      await this.#append(key, short);
    }
    const s = this.#stock.get(key)!;
    if (s.used === 0 && sizeOf(s.material) === n) { // the whole stock: handed over as it is
      this.#stock.delete(key);
      return s.material;
    }
    const out = part(s.material, s.used, s.used + n);
    s.used += n;
    if (s.used === sizeOf(s.material)) { // used up: its memory goes now, not at the next batch
      disposeMaterial(s.material);
      this.#stock.delete(key);
    }
    return out;
  }

  resetUsage(): void {
    this.usage.clear();
  }

  dispose(): void {
    this.#stock.forEach((s) => disposeMaterial(s.material));
    this.#stock.clear();
  }

  /** The stock for the key becomes what is left of it followed by `count` new elements. */
  async #append(key: K, count: number): Promise<void> {
    const fresh = await this.make(key, count);
    const s = this.#stock.get(key);
    if (!s) {
      this.#stock.set(key, { material: fresh, used: 0 });
      return;
    }
    let joined: M;
    try {
      joined = join(s.material, s.used, fresh);
    } finally {
      disposeMaterial(fresh);
    }
    disposeMaterial(s.material);
    this.#stock.set(key, { material: joined, used: 0 });
  }
}
