/**
 * The in-memory dataset every reader returns: images as float64 in [0, 1]
 * (NCHW, one sample after the other), integer labels, and the sample shape.
 * Training shares these values; the readers only decode and check files.
 */

export type Split = "train" | "test";

export interface Dataset {
  /** Where it came from, e.g. "mnist (embedded)" or the directory read. */
  readonly name: string;
  readonly split: Split;
  /** n * c * h * w values in [0, 1], sample-major then channel-major (NCHW). */
  readonly images: Float64Array;
  /** n labels in [0, classes). */
  readonly labels: Int32Array;
  /** The shape of one sample: [channels, height, width]. */
  readonly shape: readonly [number, number, number];
  readonly classes: number;
  /** Human names of the classes where the format has them (CIFAR-10, Tiny ImageNet wnids). */
  readonly classNames?: readonly string[];
}

export interface LoadOptions {
  /** "train" by default. */
  split?: Split;
  /** Read at most this many samples (the first ones in the reader's order). */
  limit?: number;
}

/** A dataset that cannot be read: the message names the file and what is wrong, on one line. */
export class DatasetError extends Error {
  override name = "DatasetError";
}

/** Number of samples. */
export function datasetSize(d: Dataset): number {
  return d.labels.length;
}

/** Values per sample (c * h * w). */
export function sampleSize(d: Pick<Dataset, "shape">): number {
  return d.shape[0] * d.shape[1] * d.shape[2];
}

/** How many samples to read of `available`, after checking `limit`. */
export function limitCount(available: number, limit: number | undefined): number {
  if (limit === undefined) return available;
  if (!Number.isInteger(limit) || limit < 1) throw new DatasetError(`limit must be a positive integer, got ${limit}`);
  return Math.min(available, limit);
}

/** Builds a Dataset after checking that its parts agree (a reader bug must not pass silently). */
export function makeDataset(d: Dataset): Dataset {
  const n = d.labels.length, per = sampleSize(d);
  if (d.shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new DatasetError(`${d.name}: bad sample shape [${d.shape}]`);
  }
  if (d.images.length !== n * per) {
    throw new DatasetError(`${d.name}: ${d.images.length} pixel values for ${n} samples of shape [${d.shape}]`);
  }
  const bad = d.labels.findIndex((l) => l < 0 || l >= d.classes);
  if (bad >= 0) {
    throw new DatasetError(`${d.name}: sample ${bad} has label ${d.labels[bad]}, outside 0..${d.classes - 1}`);
  }
  return d;
}

/** Bytes 0..255 to values in [0, 1]: the one scaling every reader uses. */
export function bytesToUnit(
  bytes: Uint8Array,
  out: Float64Array = new Float64Array(bytes.length),
  at = 0,
): Float64Array {
  for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i] / 255;
  return out;
}
