/**
 * CIFAR-10 binary batches: records of 1 label byte then 3072 pixel bytes
 * (1024 red, 1024 green, 1024 blue, each 32x32 row-major), i.e. already CHW.
 * data_batch_1.bin .. data_batch_5.bin are the training set, test_batch.bin
 * the test set.
 */
import { bytesToUnit, type Dataset, DatasetError, limitCount, type LoadOptions, makeDataset } from "./dataset.ts";
import { readBytes, statKind } from "./files.ts";

const SIDE = 32, CHANNELS = 3;
const PIXELS = CHANNELS * SIDE * SIDE;
export const CIFAR_RECORD_BYTES = 1 + PIXELS;
const CLASSES = 10;
const CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const TEST_FILES = ["test_batch.bin"];
/** The folder the official archive unpacks to, accepted as a parent. */
const ARCHIVE_FOLDER = "cifar-10-batches-bin";

/** Checks one batch file's bytes and returns its record count. */
export function checkCifarBatch(bytes: Uint8Array, file: string): number {
  if (bytes.length === 0) throw new DatasetError(`${file}: empty file`);
  if (bytes.length % CIFAR_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR_RECORD_BYTES);
    throw new DatasetError(
      `${file}: truncated or not a CIFAR-10 batch: ${bytes.length} bytes is ${whole} records of ` +
        `${CIFAR_RECORD_BYTES} bytes and ${bytes.length % CIFAR_RECORD_BYTES} left over`,
    );
  }
  const n = bytes.length / CIFAR_RECORD_BYTES;
  for (let r = 0; r < n; r++) {
    const label = bytes[r * CIFAR_RECORD_BYTES];
    if (label >= CLASSES) {
      throw new DatasetError(
        `${file}: record ${r} has label ${label}, CIFAR-10 labels are 0..9 (not a CIFAR-10 batch?)`,
      );
    }
  }
  return n;
}

/** The batch files of a split present in `dir` (its archive folder is looked into too). */
export async function cifarFiles(dir: string, split: "train" | "test"): Promise<string[]> {
  if ((await statKind(`${dir}/${ARCHIVE_FOLDER}`)) === "dir") dir = `${dir}/${ARCHIVE_FOLDER}`;
  const found: string[] = [];
  for (const name of split === "train" ? TRAIN_FILES : TEST_FILES) {
    if ((await statKind(`${dir}/${name}`)) === "file") found.push(`${dir}/${name}`);
  }
  return found;
}

export async function looksLikeCifar(dir: string): Promise<boolean> {
  return (await cifarFiles(dir, "train")).length + (await cifarFiles(dir, "test")).length > 0;
}

/** Reads batch files in order, stopping once `limit` samples are in. */
async function readBatches(files: string[], name: string, split: "train" | "test", limit?: number): Promise<Dataset> {
  const images: Float64Array[] = [], labels: number[] = [];
  let wanted = limit === undefined ? Infinity : limitCount(Infinity, limit);
  for (const file of files) {
    if (wanted <= 0) break;
    const bytes = await readBytes(file);
    const n = Math.min(checkCifarBatch(bytes, file), wanted);
    const out = new Float64Array(n * PIXELS);
    for (let r = 0; r < n; r++) {
      const at = r * CIFAR_RECORD_BYTES;
      labels.push(bytes[at]);
      bytesToUnit(bytes.subarray(at + 1, at + CIFAR_RECORD_BYTES), out, r * PIXELS);
    }
    images.push(out);
    wanted -= n;
  }
  const all = new Float64Array(labels.length * PIXELS);
  let at = 0;
  for (const part of images) {
    all.set(part, at);
    at += part.length;
  }
  return makeDataset({
    name,
    split,
    images: all,
    labels: Int32Array.from(labels),
    shape: [CHANNELS, SIDE, SIDE],
    classes: CLASSES,
    classNames: CLASS_NAMES,
  });
}

/** A split of CIFAR-10 from its directory (or the directory holding cifar-10-batches-bin). */
export async function loadCifarDir(dir: string, options: LoadOptions = {}): Promise<Dataset> {
  const split = options.split ?? "train";
  const files = await cifarFiles(dir, split);
  if (files.length === 0) {
    const want = split === "train" ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin";
    throw new DatasetError(`${dir}: no CIFAR-10 ${split} batches (looked for ${want})`);
  }
  return await readBatches(files, dir, split, options.limit);
}

/** One CIFAR-10 batch file, whatever the split it is labelled with. */
export async function loadCifarFile(file: string, options: LoadOptions = {}): Promise<Dataset> {
  return await readBatches([file], file, options.split ?? "train", options.limit);
}
