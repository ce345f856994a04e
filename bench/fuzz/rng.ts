/**
 * The fuzzer's seeded generator: splitmix64, as tests/helpers.ts's Rng
 * (which this module cannot import: that file registers tests and loads the
 * native library). Good enough to pick mutations, never for keys. Every case
 * gets its own generator from (seed, case index), so one case replays alone.
 */
const M64 = (1n << 64n) - 1n;

export class Rng {
  #s: bigint;
  constructor(seed: number | bigint) {
    this.#s = BigInt(seed) & M64;
  }

  /** The generator of case `index` of a run seeded with `seed`. */
  static forCase(seed: bigint, index: number): Rng {
    return new Rng(new Rng(seed ^ (BigInt(index) << 32n) ^ 0x5eed_f022n).next());
  }

  next(): bigint {
    this.#s = (this.#s + 0x9e3779b97f4a7c15n) & M64;
    let z = this.#s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  }

  /** Uniform in [0, n) for n below 2^32 (the modulo bias is irrelevant here). */
  int(n: number): number {
    return Number(this.next() & 0xffff_ffffn) % n;
  }

  /** Uniform in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.int(1 << 30) < p * (1 << 30);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}
