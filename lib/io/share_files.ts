/**
 * Splitting plaintext tensor files into three share files (any two
 * reconstruct, one alone is uniformly random), joining them back, and loading
 * a party's shares as sharings.
 */
import type { Backend } from "../native/backend.ts";
import { AShare } from "../mpc/arithmetic.ts";
import type { Party } from "../mpc/party.ts";
import { RingTensor } from "../ring/tensor.ts";
import { storedFracBits } from "../nn/optim.ts";
import {
  FileFormatError,
  type Header,
  type NewTensor,
  readTensorFile,
  tensorBytes,
  writeTensorFile,
} from "./format.ts";
import { assertNotDirectory } from "./atomic.ts";

const bytesOf = (w: BigUint64Array) => new Uint8Array(w.buffer, w.byteOffset, w.byteLength);

/** Path of party i's file for a prefix: PREFIX.p<i>.share. */
export const sharePath = (prefix: string, i: number) => `${prefix}.p${i}.share`;

/**
 * Writes the three share files of a plaintext file: x = x_0 + x_1 + x_2 with
 * x_0, x_1 drawn by AES-CTR under a fresh random key, file i holding
 * (x_i, x_next(i)). Returns the three paths.
 */
export async function shareFile(
  backend: Backend,
  plainPath: string,
  prefix: string,
  fracBits?: number,
): Promise<string[]> {
  const f = await readTensorFile(plainPath);
  if (f.header.share) throw new FileFormatError(`${plainPath} is already a share file`);
  const tensors = new Map(f.header.tensors.map((e) => {
    const { bytes } = tensorBytes(f, e.name);
    return [e.name, { shape: e.shape, data: new Float64Array(bytes.buffer) }];
  }));
  return await shareTensors(
    backend,
    { ...modelMeta(f.header), fracBits: fracBits ?? f.header.fracBits },
    tensors,
    prefix,
  );
}

/** What a file says of its contents, apart from the tensors: kind, model (and its graph), fixed point. */
export type ContentMeta = Pick<Header, "kind" | "model" | "fracBits" | "graph">;

/** A header's ContentMeta, the graph only where there is one. */
export const modelMeta = (h: Header): ContentMeta => ({
  kind: h.kind,
  model: h.model,
  fracBits: h.fracBits,
  ...(h.graph ? { graph: h.graph } : {}),
});

/** shareFile for tensors in memory. */
export async function shareTensors(
  backend: Backend,
  meta: ContentMeta,
  tensors: Map<string, { shape: readonly number[]; data: Float64Array }>,
  prefix: string,
): Promise<string[]> {
  const id = crypto.randomUUID();
  const key = crypto.getRandomValues(new Uint8Array(16));
  const parts: NewTensor[][] = [[], [], []];
  let counter = 0n;
  for (const [name, t] of tensors) {
    using x = RingTensor.encode(backend, t.data, meta.fracBits, t.shape);
    using x0 = RingTensor.prf(backend, t.shape, key, counter);
    counter += BigInt(RingTensor.prfBlocks(x.words));
    using x1 = RingTensor.prf(backend, t.shape, key, counter);
    counter += BigInt(RingTensor.prfBlocks(x.words));
    using partial = x.sub(x0);
    using x2 = partial.sub(x1);
    const shares = [x0.toBigUint64Array(), x1.toBigUint64Array(), x2.toBigUint64Array()];
    for (let i = 0; i < 3; i++) {
      const pair = new BigUint64Array(2 * x.size);
      pair.set(shares[i]);
      pair.set(shares[(i + 1) % 3], x.size);
      parts[i].push({ name, shape: t.shape, dtype: "u64-pair", bytes: bytesOf(pair) });
    }
  }
  const paths = [0, 1, 2].map((i) => sharePath(prefix, i));
  for (let i = 0; i < 3; i++) {
    await writeTensorFile(paths[i], { ...meta, share: { party: i, id } }, parts[i]);
  }
  return paths;
}

/** Whether two paths name one existing file (`./a`, `a` and a symlink to it alike). */
async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false; // one of them does not exist
  }
}

/**
 * Joins two or three share files of one sharing into a plaintext file. The
 * output is checked before anything is read: writing over an input would
 * destroy a share, and a directory cannot take the file.
 */
export async function reconstructFiles(backend: Backend, paths: string[], out: string): Promise<Header> {
  await checkOutput(paths, out);
  const { header, tensors } = await reconstructTensors(backend, paths);
  await writePlainFile(out, modelMeta(header), tensors);
  return header;
}

/** That `out` can take a reconstruction of `paths` without destroying one of them. */
export async function checkOutput(paths: string[], out: string): Promise<void> {
  if (paths.length < 2 || paths.length > 3) throw new FileFormatError("reconstruct needs two or three share files");
  await assertNotDirectory(out);
  for (const p of paths) {
    if (await sameFile(p, out)) throw new FileFormatError(`the output ${out} is the share file ${p}: choose another`);
  }
}

/** The plaintext tensors of two or three share files of one sharing, checked to be of one sharing and whole. */
export async function reconstructTensors(
  backend: Backend,
  paths: string[],
): Promise<{ header: Header; tensors: Map<string, { shape: number[]; data: Float64Array }> }> {
  if (paths.length < 2 || paths.length > 3) throw new FileFormatError("reconstruct needs two or three share files");
  const files = await Promise.all(paths.map(readTensorFile));
  const first = files[0].header;
  files.forEach((f, k) => {
    const h = f.header;
    if (!h.share) throw new FileFormatError(`${paths[k]} is not a share file`);
    if (h.share.id !== first.share!.id) {
      throw new FileFormatError(`${paths[k]} belongs to another sharing than ${paths[0]}`);
    }
    if (JSON.stringify(modelMeta(h)) !== JSON.stringify(modelMeta(first))) {
      throw new FileFormatError(`${paths[k]} does not match ${paths[0]} (kind, model, graph or fixed point)`);
    }
    if (JSON.stringify(h.tensors) !== JSON.stringify(first.tensors)) {
      throw new FileFormatError(`${paths[k]} holds other tensors than ${paths[0]}`);
    }
  });
  const parties = files.map((f) => f.header.share!.party);
  if (new Set(parties).size !== parties.length) {
    throw new FileFormatError(`two files are of the same party (${parties.join(", ")})`);
  }
  const tensors = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const e of first.tensors) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const shares: (BigUint64Array | null)[] = [null, null, null];
    files.forEach((f) => {
      const words = new BigUint64Array(tensorBytes(f, e.name).bytes.buffer);
      const i = f.header.share!.party;
      for (const [j, part] of [[i, words.subarray(0, n)], [(i + 1) % 3, words.subarray(n)]] as const) {
        const seen = shares[j];
        if (seen && seen.some((v, k) => v !== part[k])) {
          throw new FileFormatError(`the files disagree on share ${j} of ${e.name}: one of them is corrupt`);
        }
        shares[j] = part;
      }
    });
    using sum = RingTensor.from(backend, shares[0]!, e.shape);
    using s1 = RingTensor.from(backend, shares[1]!, e.shape);
    using s2 = RingTensor.from(backend, shares[2]!, e.shape);
    using partial = sum.add(s1);
    using x = partial.add(s2);
    tensors.set(e.name, { shape: e.shape, data: x.decode(storedFracBits(e.name, first.fracBits)) });
  }
  return { header: first, tensors };
}

/** This party's shares from its share file, checked to be its own. */
export async function loadShares(p: Party, path: string): Promise<{ header: Header; shares: Map<string, AShare> }> {
  const f = await readTensorFile(path);
  const h = f.header;
  if (!h.share) throw new FileFormatError(`${path} is not a share file`);
  if (h.share.party !== p.index) {
    throw new FileFormatError(`${path} is party ${h.share.party}'s share file, not party ${p.index}'s`);
  }
  if (h.fracBits !== p.fracBits) {
    throw new FileFormatError(`${path} uses ${h.fracBits} fractional bits, this session ${p.fracBits}`);
  }
  const shares = new Map<string, AShare>();
  for (const e of h.tensors) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const words = new BigUint64Array(tensorBytes(f, e.name).bytes.buffer);
    shares.set(
      e.name,
      new AShare(
        p,
        RingTensor.from(p.backend, words.subarray(0, n), e.shape),
        RingTensor.from(p.backend, words.subarray(n), e.shape),
      ),
    );
  }
  return { header: h, shares };
}

/** Writes this party's pair of shares of some outputs. */
export async function saveShares(
  p: Party,
  path: string,
  meta: { kind: Header["kind"]; model: string; graph?: Header["graph"]; id: string; training?: Header["training"] },
  tensors: Map<string, AShare>,
) {
  const entries: NewTensor[] = [];
  for (const [name, x] of tensors) {
    const pair = new BigUint64Array(2 * x.size);
    pair.set(x.cur.toBigUint64Array());
    pair.set(x.next.toBigUint64Array(), x.size);
    entries.push({ name, shape: x.shape, dtype: "u64-pair", bytes: bytesOf(pair) });
  }
  await writeTensorFile(path, {
    kind: meta.kind,
    model: meta.model,
    fracBits: p.fracBits,
    ...(meta.graph ? { graph: meta.graph } : {}),
    share: { party: p.index, id: meta.id },
    ...(meta.training ? { training: meta.training } : {}),
  }, entries);
}

/** A plaintext file from named float64 tensors. */
export async function writePlainFile(
  path: string,
  meta: ContentMeta,
  tensors: Map<string, { shape: readonly number[]; data: Float64Array }>,
): Promise<void> {
  await writeTensorFile(
    path,
    meta,
    [...tensors].map(([name, t]) => ({
      name,
      shape: t.shape,
      dtype: "f64" as const,
      bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    })),
  );
}
