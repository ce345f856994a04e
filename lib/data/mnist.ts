/**
 * MNIST in its IDX files (also Fashion-MNIST, which uses the same names):
 *
 *   images: 00 00 08 03 | n | rows | cols (u32 big-endian) | n*rows*cols bytes
 *   labels: 00 00 08 01 | n                                | n bytes
 *
 * Files may be gzip-compressed (.gz), as they are distributed.
 */
import { bytesToUnit, type Dataset, DatasetError, limitCount, type LoadOptions, makeDataset } from "./dataset.ts";
import { readMaybeGzip, statKind } from "./files.ts";

const IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
const LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension
const MNIST_CLASSES = 10;

/** The file stems of each split; the distributions differ in "-" or "." before "idx". */
const STEMS = { train: "train", test: "t10k" } as const;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

function header(bytes: Uint8Array, file: string, magic: number, dims: number): number[] {
  const fail = (why: string): never => {
    throw new DatasetError(`${file}: ${why}`);
  };
  const headerBytes = 4 + 4 * dims;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The magic first: a file of the wrong kind should say so, whatever its length.
  const got = bytes.length >= 4 ? view.getUint32(0) : -1;
  if (got !== magic && bytes.length >= 4) {
    const hex = (v: number) => `0x${v.toString(16).padStart(8, "0")}`;
    fail(`bad magic number ${hex(got)} (expected ${hex(magic)}): not an IDX ${dims === 3 ? "image" : "label"} file`);
  }
  if (bytes.length < headerBytes) fail(`truncated: ${bytes.length} bytes, an IDX header needs ${headerBytes}`);
  const sizes = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const want = headerBytes + sizes.reduce((a, b) => a * b, 1);
  if (bytes.length < want) fail(`truncated: ${bytes.length} bytes, the header [${sizes}] needs ${want}`);
  if (bytes.length > want) fail(`${bytes.length - want} unexpected bytes after the data of [${sizes}]`);
  return sizes;
}

/** Parses an IDX image file's bytes (already gunzipped); `file` names it in errors. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const [count, rows, cols] = header(bytes, file, IMAGES_MAGIC, 3);
  return { count, rows, cols, pixels: bytes.subarray(16) };
}

/** Parses an IDX label file's bytes (already gunzipped). */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  header(bytes, file, LABELS_MAGIC, 1);
  const labels = bytes.subarray(8);
  const bad = labels.findIndex((l) => l >= MNIST_CLASSES);
  if (bad >= 0) throw new DatasetError(`${file}: label ${labels[bad]} at index ${bad}, MNIST labels are 0..9`);
  return labels;
}

/** The path of one of a split's files in `dir`, trying the names MNIST is distributed under. */
export async function findIdxFile(dir: string, split: "train" | "test", what: "images" | "labels"): Promise<string> {
  const kind = what === "images" ? "idx3" : "idx1";
  const names = ["-", "."].flatMap((sep) => ["", ".gz"].map((gz) => `${STEMS[split]}-${what}${sep}${kind}-ubyte${gz}`));
  for (const name of names) {
    if ((await statKind(`${dir}/${name}`)) === "file") return `${dir}/${name}`;
  }
  throw new DatasetError(`${dir}: no MNIST ${split} ${what} file (looked for ${names[0]} and ${names[1]})`);
}

/** Whether `dir` holds any MNIST IDX file (for format detection). */
export async function looksLikeMnist(dir: string): Promise<boolean> {
  for (const split of ["train", "test"] as const) {
    try {
      await findIdxFile(dir, split, "images");
      return true;
    } catch {
      // not this split
    }
  }
  return false;
}

/** Reads a split of MNIST from a directory of IDX files (plain or .gz). */
export async function loadMnistDir(dir: string, options: LoadOptions = {}): Promise<Dataset> {
  const split = options.split ?? "train";
  const imagesPath = await findIdxFile(dir, split, "images");
  const labelsPath = await findIdxFile(dir, split, "labels");
  const images = parseIdxImages(await readMaybeGzip(imagesPath), imagesPath);
  const labels = parseIdxLabels(await readMaybeGzip(labelsPath), labelsPath);
  if (labels.length !== images.count) {
    throw new DatasetError(`${labelsPath}: ${labels.length} labels for ${images.count} images in ${imagesPath}`);
  }
  const n = limitCount(images.count, options.limit);
  const per = images.rows * images.cols;
  return makeDataset({
    name: dir,
    split,
    images: bytesToUnit(images.pixels.subarray(0, n * per)),
    labels: Int32Array.from(labels.subarray(0, n)),
    shape: [1, images.rows, images.cols],
    classes: MNIST_CLASSES,
  });
}
