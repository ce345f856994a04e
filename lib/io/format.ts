/**
 * cryptgpu's tensor files: plaintext models and inputs, and share files.
 *
 *   "CGTF" | u32 header length (LE) | JSON header | data
 *
 * The header (validated with zod) names the file's kind, the model it belongs
 * to, the fixed-point bits, for share files the party and the sharing id, and
 * every tensor with its shape, dtype, offset and length in the data section,
 * and a SHA-256 over the header and the data: in version 2 (written now),
 * SHA-256(header text without its sha256 field, 0x00, SHA-256(data)), so a
 * header edited into another valid one (a reshape, a renamed tensor, another
 * party or sharing id) is refused like corrupt data. Version 1 files, whose
 * digest covers the data only, are still read. Plain files hold float64 values; a share file
 * holds, per tensor, party i's pair of ring shares (x_i then x_next(i)) and
 * never any plaintext.
 */
import { z } from "zod";
import { writeFileAtomic } from "./atomic.ts";
import { GraphSpec } from "../nn/graph_spec.ts";

const MAGIC = [0x43, 0x47, 0x54, 0x46]; // "CGTF"
export const FORMAT_VERSION = 2;

const TensorEntry = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(["f64", "u64-pair"]),
  offset: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});

export const Header = z.object({
  format: z.literal("cryptgpu"),
  version: z.union([z.literal(1), z.literal(FORMAT_VERSION)]),
  /** "dataset": training samples and one-hot labels (tensors "images" and "labels"). */
  kind: z.enum(["model", "input", "output", "dataset"]),
  /** The zoo model and its options, e.g. "lenet" or "lenet:max"; for a dataset, its name and split. */
  model: z.string().min(1),
  fracBits: z.number().int().min(0).max(62),
  /** A graph model's network (an imported ONNX file): models of the zoo are known by name and have none. */
  graph: GraphSpec.optional(),
  share: z.object({ party: z.number().int().min(0).max(2), id: z.string().min(1) }).optional(),
  /** A training checkpoint's progress: the next iteration and the schedule it belongs to. */
  training: z.object({
    iteration: z.number().int().nonnegative(),
    batch: z.number().int().positive(),
    seed: z.number().int(),
    lr: z.number().nonnegative(),
    momentum: z.number().nonnegative(),
    weightDecay: z.number().nonnegative(),
    /** The optimizer (absent in checkpoints from before Adam: SGD). Its state tensors: velocity.*, adam_m.*, adam_v.*. */
    optimizer: z.enum(["sgd", "adam", "adamw"]).optional(),
    /** Adam's and AdamW's settings. */
    beta1: z.number().nonnegative().optional(),
    beta2: z.number().nonnegative().optional(),
    eps: z.number().positive().optional(),
    /** The learning-rate schedule as --lr-schedule spells it (absent: constant). */
    lrSchedule: z.string().min(1).optional(),
    /** The run's iterations in all (a cosine schedule's horizon). */
    iterations: z.number().int().positive().optional(),
    /** Optimizer steps taken (Adam's t for the next step is step + 1). */
    step: z.number().int().nonnegative().optional(),
  }).optional(),
  tensors: z.array(TensorEntry),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export type Header = z.infer<typeof Header>;
export type TensorEntry = z.infer<typeof TensorEntry>;

export interface TensorFile {
  header: Header;
  /** The data section; tensors are views into it. */
  data: Uint8Array;
}

export class FileFormatError extends Error {}

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Version 2's digest: the header's text without its sha256 field, then the data's own digest. */
async function fileDigest(headerText: string, data: Uint8Array): Promise<string> {
  const head = new TextEncoder().encode(headerText), inner = await sha256(data);
  const all = new Uint8Array(head.length + 1 + inner.length);
  all.set(head);
  all.set(new TextEncoder().encode(inner), head.length + 1);
  return await sha256(all);
}

/** How a version 2 header ends: the digest is the last field, so the text before it is what was hashed. */
const digestSuffix = (digest: string) => `,"sha256":"${digest}"}`;

/**
 * A version 2 header's text for `unsigned` (a JSON object's text without the sha256 field) over `data`: what
 * writeTensorFile writes, exported for tools that build files field by field (the fuzzer).
 */
export async function signedHeader(unsigned: string, data: Uint8Array): Promise<string> {
  return unsigned.slice(0, -1) + digestSuffix(await fileDigest(unsigned, data));
}

export interface NewTensor {
  name: string;
  shape: readonly number[];
  dtype: "f64" | "u64-pair";
  bytes: Uint8Array;
}

export async function writeTensorFile(
  path: string,
  meta: Omit<Header, "tensors" | "sha256" | "format" | "version">,
  tensors: NewTensor[],
): Promise<void> {
  let offset = 0;
  const entries: TensorEntry[] = tensors.map((t) => {
    const e = { name: t.name, shape: [...t.shape], dtype: t.dtype, offset, bytes: t.bytes.length };
    offset += t.bytes.length;
    return e;
  });
  const data = new Uint8Array(offset);
  tensors.forEach((t, i) => data.set(t.bytes, entries[i].offset));
  const unsigned = JSON.stringify({ format: "cryptgpu", version: FORMAT_VERSION, ...meta, tensors: entries });
  const json = new TextEncoder().encode(await signedHeader(unsigned, data));
  const out = new Uint8Array(8 + json.length + data.length);
  out.set(MAGIC);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  // Atomic and 0600: a crash never leaves half a file under the name, and shares and plaintext are the owner's only.
  await writeFileAtomic(path, out);
}

/** A name from a file, for a one-line message: quoted, control and line-break characters escaped, cut at 64. */
export function quoted(s: string): string {
  const q = JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
  return q.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from a file, safe for one line of a terminal: control characters (C0, DEL, C1), line and paragraph
 * separators and bidirectional overrides are written as \uXXXX escapes, so a crafted name can neither break a
 * message into lines nor move the cursor or reorder what is shown.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A shape for a message: a header may claim thousands of dimensions. */
export const dims = (shape: number[]) =>
  `[${shape.slice(0, 8)}${shape.length > 8 ? `,... (${shape.length} dims)` : ""}]`;

export async function readTensorFile(path: string): Promise<TensorFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new FileFormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return await parseTensorFile(bytes, path);
}

/**
 * A tensor file's bytes, checked and parsed; `name` (the path) prefixes every
 * refusal. Pure apart from hashing, so a fuzzer can call it without the disk.
 * The data section and the tensors are views into `bytes`.
 */
export async function parseTensorFile(bytes: Uint8Array, name: string): Promise<TensorFile> {
  const fail = (why: string): never => {
    throw new FileFormatError(`${name}: ${why}`);
  };
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) fail("not a cryptgpu tensor file");
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  if (8 + len > bytes.length) fail("truncated header");
  let json: unknown, text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + len));
    json = JSON.parse(text);
  } catch {
    fail("corrupt header (not JSON)");
  }
  const parsed = Header.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(`bad header: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  const header = parsed.data!;
  const data = bytes.subarray(8 + len);
  const end = header.tensors.reduce((m, t) => Math.max(m, t.offset + t.bytes), 0);
  if (data.length < end) fail(`truncated: the data section has ${data.length} bytes, the header needs ${end}`);
  if (data.length > end) fail(`${data.length - end} unexpected bytes after the tensors`);
  const names = new Set<string>();
  let at = 0;
  for (const t of header.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const want = n * (t.dtype === "f64" ? 8 : 16);
    if (t.bytes !== want) {
      fail(`tensor ${quoted(t.name)}: ${t.bytes} bytes for shape ${dims(t.shape)} (${want} expected)`);
    }
    if (names.has(t.name)) fail(`two tensors named ${quoted(t.name)}`);
    names.add(t.name);
    // writeTensorFile lays the tensors out one after another. The checksum covers the data, not the header, so a
    // header whose offsets overlap or swap two tensors of one size would otherwise pass, every tensor misread.
    if (t.offset !== at) fail(`tensor ${quoted(t.name)} at offset ${t.offset}, expected ${at} (after the one before)`);
    at += t.bytes;
  }
  if (header.version === 1) {
    if ((await sha256(data)) !== header.sha256) fail("checksum mismatch: the data is corrupt");
  } else {
    const suffix = digestSuffix(header.sha256);
    if (!text.endsWith(suffix)) fail("corrupt header (the digest is not its last field)");
    const unsigned = text.slice(0, -suffix.length) + "}";
    if ((await fileDigest(unsigned, data)) !== header.sha256) {
      fail("checksum mismatch: the header or the data is corrupt");
    }
  }
  if (header.share && header.tensors.some((t) => t.dtype !== "u64-pair")) fail("a share file holds only ring shares");
  if (!header.share && header.tensors.some((t) => t.dtype !== "f64")) fail("a plain file holds only float64 values");
  return { header, data };
}

/** The bytes of one tensor, copied so that typed-array views are aligned. */
export function tensorBytes(f: TensorFile, name: string): { entry: TensorEntry; bytes: Uint8Array } {
  const entry = f.header.tensors.find((t) => t.name === name);
  if (!entry) throw new FileFormatError(`no tensor named ${name} in the file`);
  return { entry, bytes: f.data.slice(entry.offset, entry.offset + entry.bytes) };
}
