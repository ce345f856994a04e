/**
 * Mini-batch orders for training. The order is public: every party derives
 * the same index lists from the same seed and epoch, so that they select the
 * same rows of their shares without talking.
 */
import { permutation, SeededRandom } from "./random.ts";

export interface BatchOptions {
  /** Seed of the shuffle (0 by default). */
  seed?: number;
  /** The epoch: each epoch has its own order under one seed (0 by default). */
  epoch?: number;
  /** Shuffle (the default) or keep 0..n-1 in order. */
  shuffle?: boolean;
  /** Drop the last batch when it is smaller than batchSize (default false: every index appears). */
  dropLast?: boolean;
}

/** The order of all n indices in one epoch. */
export function epochOrder(n: number, options: BatchOptions = {}): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`the number of samples must be an integer >= 0, got ${n}`);
  if (options.shuffle === false) return Int32Array.from({ length: n }, (_, i) => i);
  return permutation(n, new SeededRandom(options.seed ?? 0, options.epoch ?? 0));
}

/**
 * Index lists of one epoch over n samples (or a dataset's), batchSize at a
 * time; without dropLast every index appears exactly once.
 */
export function* batches(
  samples: number | { labels: ArrayLike<number> },
  batchSize: number,
  options: BatchOptions = {},
): Generator<Int32Array> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }
  const n = typeof samples === "number" ? samples : samples.labels.length;
  const order = epochOrder(n, options);
  for (let start = 0; start < n; start += batchSize) {
    const batch = order.subarray(start, Math.min(n, start + batchSize));
    if (options.dropLast && batch.length < batchSize) break;
    yield batch;
  }
}

/** How many batches `batches` yields. */
export function batchCount(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}
