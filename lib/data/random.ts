/**
 * A small seeded generator for public, reproducible orders (shuffles of
 * sample indices that every party computes alike). Not for secrets: keys and
 * masks come from crypto and AES-CTR elsewhere.
 *
 * A Weyl sequence through the 32-bit murmur3 finaliser: cheap, no BigInt,
 * and the same numbers in every JavaScript engine.
 */
export class SeededRandom {
  #state: number;

  /** `stream` separates independent sequences under one seed (e.g. one per epoch). */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(stream)) {
      throw new RangeError(`seed and stream must be integers, got ${seed} and ${stream}`);
    }
    // Fold all 53 bits of both numbers into the 32-bit state.
    const hi = Math.floor(seed / 2 ** 32);
    this.#state = mix(mix(seed >>> 0) ^ mix(hi + 0x5bd1e995) ^ mix(stream + 0x27d4eb2f));
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    return mix(this.#state);
  }

  /** A uniform integer in [0, n), for n up to 2^32 (bias at most n / 2^32). */
  below(n: number): number {
    return Math.floor((this.nextUint32() / 2 ** 32) * n);
  }
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A permutation of 0..n-1 (Fisher-Yates) drawn from `rng`. */
export function permutation(n: number, rng: SeededRandom): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
