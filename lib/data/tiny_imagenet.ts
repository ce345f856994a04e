/**
 * Tiny ImageNet's folder layout:
 *
 *   wnids.txt                            one WordNet id per line: the classes, in label order
 *   train/<wnid>/images/*.JPEG           training images of that class
 *   val/val_annotations.txt              "<file>\t<wnid>\t<box...>" per line
 *   val/images/<file>
 *
 * The test split is the labelled val/ folder (the official test/ has no
 * labels). Training images are taken round-robin over the classes, so that a
 * `limit` still gives every class; within a class, in file-name order.
 */
import { type Dataset, DatasetError, limitCount, type LoadOptions, makeDataset } from "./dataset.ts";
import { listDir, readBytes, readText, statKind } from "./files.ts";
import { decodeImage, rgbToChw } from "./images.ts";

/** The folder the official archive unpacks to, accepted as a parent. */
const ARCHIVE_FOLDER = "tiny-imagenet-200";

interface Entry {
  path: string;
  label: number;
}

/** The dataset root under `dir` (itself or its archive folder), or null. */
export async function tinyImagenetRoot(dir: string): Promise<string | null> {
  for (const root of [dir, `${dir}/${ARCHIVE_FOLDER}`]) {
    if ((await statKind(`${root}/wnids.txt`)) === "file") return root;
  }
  return null;
}

async function readWnids(root: string): Promise<string[]> {
  const file = `${root}/wnids.txt`;
  const wnids = (await readText(file)).split("\n").map((s) => s.trim()).filter(Boolean);
  if (wnids.length === 0) throw new DatasetError(`${file}: no class ids`);
  const dup = wnids.find((w, i) => wnids.indexOf(w) !== i);
  if (dup) throw new DatasetError(`${file}: class ${dup} is listed twice`);
  return wnids;
}

async function trainEntries(root: string, wnids: string[]): Promise<Entry[]> {
  const perClass: Entry[][] = [];
  for (const [label, wnid] of wnids.entries()) {
    const dir = `${root}/train/${wnid}/images`;
    if ((await statKind(dir)) !== "dir") throw new DatasetError(`${dir}: missing (class ${wnid} of wnids.txt)`);
    const files = (await listDir(dir)).filter((e) => e.isFile && !e.name.startsWith("."));
    perClass.push(files.map((e) => ({ path: `${dir}/${e.name}`, label })));
  }
  const out: Entry[] = [];
  const longest = Math.max(...perClass.map((c) => c.length));
  for (let i = 0; i < longest; i++) for (const c of perClass) if (i < c.length) out.push(c[i]);
  return out;
}

async function valEntries(root: string, wnids: string[]): Promise<Entry[]> {
  const file = `${root}/val/val_annotations.txt`;
  const label = new Map(wnids.map((w, i) => [w, i]));
  const out: Entry[] = [];
  for (const [i, line] of (await readText(file)).split("\n").entries()) {
    if (!line.trim()) continue;
    const [name, wnid] = line.split("\t");
    const l = label.get(wnid?.trim() ?? "");
    if (!name || l === undefined) {
      throw new DatasetError(`${file}: line ${i + 1}: expected "<file>\\t<wnid>" with a wnid of wnids.txt`);
    }
    out.push({ path: `${root}/val/images/${name.trim()}`, label: l });
  }
  return out;
}

/** Reads a split of Tiny ImageNet (or any folder in its layout) from `dir`. */
export async function loadTinyImagenetDir(dir: string, options: LoadOptions = {}): Promise<Dataset> {
  const split = options.split ?? "train";
  const root = await tinyImagenetRoot(dir);
  if (!root) throw new DatasetError(`${dir}: no wnids.txt: not a Tiny ImageNet folder`);
  const wnids = await readWnids(root);
  const all = split === "train" ? await trainEntries(root, wnids) : await valEntries(root, wnids);
  if (all.length === 0) throw new DatasetError(`${root}: no ${split === "train" ? "train" : "val"} images`);
  const entries = all.slice(0, limitCount(all.length, options.limit));

  const first = decodeImage(await readBytes(entries[0].path), entries[0].path);
  const plane = first.width * first.height;
  const images = new Float64Array(entries.length * 3 * plane);
  for (const [i, e] of entries.entries()) {
    const img = i === 0 ? first : decodeImage(await readBytes(e.path), e.path);
    if (img.width !== first.width || img.height !== first.height) {
      throw new DatasetError(
        `${e.path}: ${img.width}x${img.height}, but ${entries[0].path} is ${first.width}x${first.height}`,
      );
    }
    rgbToChw(img, images, i * 3 * plane);
  }
  return makeDataset({
    name: root,
    split,
    images,
    labels: Int32Array.from(entries, (e) => e.label),
    shape: [3, first.height, first.width],
    classes: wnids.length,
    classNames: wnids,
  });
}
