/**
 * Datasets as share files: the data owner splits images [n, c, h, w] and
 * one-hot labels [n, classes] into three files of kind "dataset"; each
 * training party loads its own file and takes batches of rows from it.
 *
 * A party keeps its shares on the host and uploads one batch at a time, so a
 * training loop's native memory stays one batch, not the whole dataset.
 */
import type { Backend } from "../native/backend.ts";
import { FileFormatError, type Header, readTensorFile, tensorBytes, type TensorEntry } from "../io/format.ts";
import { shareTensors } from "../io/share_files.ts";
import { AShare } from "../mpc/arithmetic.ts";
import type { Party } from "../mpc/party.ts";
import { RingTensor } from "../ring/tensor.ts";
import type { Dataset } from "./dataset.ts";
import { oneHot } from "./transform.ts";

/** Writes PREFIX.p0.share .. p2.share holding "images" and one-hot "labels"; returns the paths. */
export async function shareDataset(
  backend: Backend,
  dataset: Dataset,
  prefix: string,
  fracBits: number,
): Promise<string[]> {
  const n = dataset.labels.length;
  return await shareTensors(
    backend,
    { kind: "dataset", model: `${dataset.name}:${dataset.split}`, fracBits },
    new Map([
      ["images", { shape: [n, ...dataset.shape], data: dataset.images }],
      ["labels", { shape: [n, dataset.classes], data: oneHot(dataset.labels, dataset.classes) }],
    ]),
    prefix,
  );
}

/** One party's shares of a dataset, on the host. */
export interface DatasetShares {
  readonly header: Header;
  /** Number of samples. */
  readonly size: number;
  /** One sample's shape [c, h, w]. */
  readonly shape: readonly [number, number, number];
  readonly classes: number;
  /**
   * Sharings of the samples at `indices` (images [b, c, h, w], labels
   * [b, classes]), uploaded now; the caller disposes them.
   */
  batch(indices: ArrayLike<number>): { images: AShare; labels: AShare };
}

interface DatasetFile {
  header: Header;
  n: number;
  shape: readonly [number, number, number];
  classes: number;
  /** Each tensor's pair of shares: n rows of cur, then n rows of next. */
  imageWords: BigUint64Array;
  labelWords: BigUint64Array;
}

/** Reads and checks a dataset share file; only the share words outlive it, not the file's bytes. */
async function readDatasetFile(p: Party, path: string): Promise<DatasetFile> {
  const f = await readTensorFile(path);
  const h = f.header;
  const fail = (why: string): never => {
    throw new FileFormatError(`${path}: ${why}`);
  };
  if (!h.share) fail("not a share file");
  if (h.kind !== "dataset") fail(`is a share file of kind "${h.kind}", not "dataset"`);
  if (h.share!.party !== p.index) fail(`is party ${h.share!.party}'s share file, not party ${p.index}'s`);
  if (h.fracBits !== p.fracBits) fail(`uses ${h.fracBits} fractional bits, this session ${p.fracBits}`);
  const entry = (name: string, rank: number): TensorEntry => {
    const e = h.tensors.find((t) => t.name === name);
    if (!e) return fail(`no tensor "${name}"`);
    if (e.shape.length !== rank) fail(`"${name}" has shape [${e.shape}], rank ${rank} expected`);
    return e;
  };
  const images = entry("images", 4), labels = entry("labels", 2);
  const n = images.shape[0];
  if (labels.shape[0] !== n) fail(`${labels.shape[0]} labels for ${n} images`);
  return {
    header: h,
    n,
    shape: [images.shape[1], images.shape[2], images.shape[3]],
    classes: labels.shape[1],
    imageWords: new BigUint64Array(tensorBytes(f, "images").bytes.buffer),
    labelWords: new BigUint64Array(tensorBytes(f, "labels").bytes.buffer),
  };
}

/** Rows `indices` of an [n, row] pair of shares (cur then next) as a sharing of shape [b, ...rowShape]. */
function gather(
  p: Party,
  pair: BigUint64Array,
  n: number,
  rowShape: readonly number[],
  indices: ArrayLike<number>,
): AShare {
  const row = rowShape.reduce((a, b) => a * b, 1), b = indices.length;
  const cur = new BigUint64Array(b * row), next = new BigUint64Array(b * row);
  for (let i = 0; i < b; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n) throw new RangeError(`sample index ${k} outside 0..${n - 1}`);
    cur.set(pair.subarray(k * row, (k + 1) * row), i * row);
    next.set(pair.subarray((n + k) * row, (n + k + 1) * row), i * row);
  }
  const shape = [b, ...rowShape];
  const c = RingTensor.from(p.backend, cur, shape);
  try {
    return new AShare(p, c, RingTensor.from(p.backend, next, shape));
  } catch (e) {
    c.dispose();
    throw e;
  }
}

/** Reads this party's dataset share file, checking that it is its own and that the tensors fit together. */
export async function loadDatasetShares(p: Party, path: string): Promise<DatasetShares> {
  const { header, n, shape, classes, imageWords, labelWords } = await readDatasetFile(p, path);
  return {
    header,
    size: n,
    shape,
    classes,
    batch(indices) {
      const images = gather(p, imageWords, n, shape, indices);
      try {
        return { images, labels: gather(p, labelWords, n, [classes], indices) };
      } catch (e) {
        images.dispose();
        throw e;
      }
    },
  };
}
