/**
 * Writers of the real dataset formats, for tests: the readers must accept
 * exactly what these produce, byte for byte as the distributions lay it out.
 */

/** An IDX file: magic 0x0000080<dims>, sizes as u32 big-endian, then the bytes. */
export function idx(sizes: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * sizes.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000800 | sizes.length);
  sizes.forEach((s, i) => view.setUint32(4 + 4 * i, s));
  out.set(data, 4 + 4 * sizes.length);
  return out;
}

export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A pixel value that differs per (sample, position) and covers 0..255, for exact checks. */
export const pixel = (sample: number, at: number): number => (sample * 37 + at * 11) % 256;

/** Writes an MNIST directory of n images of rows x cols with labels[i], plain or gzipped. */
export async function writeMnistDir(
  dir: string,
  split: "train" | "t10k",
  labels: number[],
  rows: number,
  cols: number,
  compress = false,
): Promise<{ pixels: Uint8Array }> {
  const n = labels.length;
  const pixels = Uint8Array.from({ length: n * rows * cols }, (_, k) => pixel(Math.floor(k / (rows * cols)), k));
  let images = idx([n, rows, cols], pixels), labelFile = idx([n], Uint8Array.from(labels));
  const suffix = compress ? ".gz" : "";
  if (compress) [images, labelFile] = [await gzip(images), await gzip(labelFile)];
  await Deno.writeFile(`${dir}/${split}-images-idx3-ubyte${suffix}`, images);
  await Deno.writeFile(`${dir}/${split}-labels-idx1-ubyte${suffix}`, labelFile);
  return { pixels };
}

/** A CIFAR-10 batch: per record, the label byte then 3072 pixel bytes (R plane, G plane, B plane). */
export function cifarBatch(labels: number[], firstSample = 0): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((l, r) => {
    out[r * 3073] = l;
    for (let k = 0; k < 3072; k++) out[r * 3073 + 1 + k] = pixel(firstSample + r, k);
  });
  return out;
}

/** A binary PPM (P6) of HWC RGB bytes, with a comment in the header as real files may have. */
export function ppm(width: number, height: number, rgb: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`P6\n# test image\n${width} ${height}\n255\n`);
  const out = new Uint8Array(head.length + rgb.length);
  out.set(head);
  out.set(rgb, head.length);
  return out;
}

/** A binary PGM (P5) of grey bytes. */
export function pgm(width: number, height: number, grey: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`P5 ${width} ${height} 255\n`);
  const out = new Uint8Array(head.length + grey.length);
  out.set(head);
  out.set(grey, head.length);
  return out;
}

/** Runs fn with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
