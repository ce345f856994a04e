/**
 * Tensor and share files (lib/io/format.ts), parsed from bytes. Valid inputs
 * are written by writeTensorFile: a plain model file, a share file and a
 * checkpoint share file. The digest covers the header and the data (format
 * version 2), so most mutations stop at the checksum; to reach the header's
 * checks the fuzzer also edits the header JSON (generically, as text, and
 * with tensor-aware edits: offsets, shapes whose product overflows, dtypes,
 * duplicated and renamed entries) under a correct length prefix and, in most
 * of those cases, signs the edited header again (and in some resizes the
 * data), as a writer that got the header wrong would.
 */
import { createHash } from "node:crypto";
import { FileFormatError, parseTensorFile, signedHeader, tensorBytes, writeTensorFile } from "../../lib/io/format.ts";
import type { Probe, Target } from "./harness.ts";
import { mutateJson } from "./json.ts";
import { mutateBytes } from "./mutate.ts";
import { Rng } from "./rng.ts";

// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

interface Valid {
  bytes: Uint8Array;
  header: Doc;
  data: Uint8Array;
}

const encoder = new TextEncoder(), decoder = new TextDecoder();
const NAME = "fuzz.cgtf";

function assemble(header: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  out.set([0x43, 0x47, 0x54, 0x46]);
  new DataView(out.buffer).setUint32(4, header.length, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** A header object's text, signed again over `data` (the sha256 field dropped and recomputed). */
async function resign(h: Doc, data: Uint8Array): Promise<string> {
  const { sha256: _old, ...unsigned } = h;
  let text: string;
  try {
    text = JSON.stringify(unsigned);
  } catch {
    return "{}"; // nested past JSON.stringify's stack: an empty header, refused by the parser like any other
  }
  return await signedHeader(text, data);
}

/** Version 2's digest, computed here from its definition (not through format.ts's own code). */
function expectedDigest(headerText: string, data: Uint8Array): string | null {
  const m = headerText.match(/,"sha256":"([0-9a-f]{64})"\}$/);
  if (!m) return null;
  const inner = createHash("sha256").update(data).digest("hex");
  return createHash("sha256").update(headerText.slice(0, -m[0].length) + "}").update(new Uint8Array([0]))
    .update(inner).digest("hex");
}

/** JSON with sorted keys: what two headers mean, whatever order their keys came in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Doc)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * What an accepted header changed against the file it came from. The digest covers the header, so only a header
 * signed again (as the fuzzer does for some edits) can pass changed; the note names the fields.
 */
function changes(original: Doc | undefined, h: Doc): string {
  if (!original) return "header or data changed, digest recomputed";
  const fields = [...new Set([...Object.keys(original), ...Object.keys(h)])].filter((k) => k !== "tensors")
    .filter((k) => canonical(original[k]) !== canonical(h[k]));
  const ts: Doc[] = h.tensors, was: Doc[] = original.tensors;
  if (ts.length !== was.length) fields.push("tensors (count)");
  else {
    for (const k of ["name", "shape", "dtype", "offset", "bytes"]) {
      if (ts.some((t, i) => canonical(t[k]) !== canonical(was[i][k]))) fields.push(`tensors.${k}`);
    }
  }
  return fields.length ? `altered header: ${fields.sort().join(", ")}` : "the original header";
}

async function corpus(): Promise<Valid[]> {
  const rng = new Rng(11);
  const f64 = (n: number) =>
    new Uint8Array(new Float64Array(Array.from({ length: n }, () => rng.int(2000) / 7)).buffer);
  const dir = await Deno.makeTempDir({ prefix: "cryptgpu-fuzz-" });
  try {
    // w and v have the same size, so a header that swaps their offsets passes every size check
    await writeTensorFile(`${dir}/plain`, { kind: "model", model: "lenet", fracBits: 20 }, [
      { name: "w", shape: [2, 3], dtype: "f64", bytes: f64(6) },
      { name: "v", shape: [3, 2], dtype: "f64", bytes: f64(6) },
      { name: "b", shape: [3], dtype: "f64", bytes: f64(3) },
    ]);
    await writeTensorFile(`${dir}/share`, {
      kind: "input",
      model: "lenet",
      fracBits: 20,
      share: { party: 1, id: "ab12" },
    }, [
      { name: "x", shape: [2, 2], dtype: "u64-pair", bytes: rng.bytes(64) },
      { name: "y", shape: [1, 3], dtype: "u64-pair", bytes: rng.bytes(48) },
    ]);
    await writeTensorFile(`${dir}/checkpoint`, {
      kind: "model",
      model: "lenet:max",
      fracBits: 16,
      share: { party: 2, id: "cd34" },
      training: { iteration: 3, batch: 64, seed: 1, lr: 0.05, momentum: 0.9, weightDecay: 0 },
    }, [{ name: "conv1.w", shape: [2, 1, 2], dtype: "u64-pair", bytes: rng.bytes(64) }]);
    const out: Valid[] = [];
    for (const f of ["plain", "share", "checkpoint"]) {
      const bytes = await Deno.readFile(`${dir}/${f}`);
      const len = new DataView(bytes.buffer).getUint32(4, true);
      out.push({
        bytes,
        header: JSON.parse(decoder.decode(bytes.subarray(8, 8 + len))),
        data: bytes.subarray(8 + len),
      });
    }
    return out;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const HUGE_SHAPES = [[2 ** 31, 2 ** 31, 2 ** 31], [1e308, 1e308], [2 ** 53], [2 ** 53 + 2, 2], [0], [], [0, 1e308], [
  -1,
  -6,
]];

/** One tensor-aware edit of a header (in place). */
function tensorEdit(rng: Rng, h: Doc, dataLength: number): void {
  const ts: Doc[] = h.tensors;
  const t = rng.pick(ts), size = t.dtype === "f64" ? 8 : 16;
  const consistent = rng.chance(0.5); // keep bytes = product(shape) * size, so the size check passes
  switch (rng.int(10)) {
    case 0:
      ts.splice(rng.int(ts.length + 1), 0, structuredClone(t)); // the same entry twice
      break;
    case 1: {
      const other = rng.pick(ts); // swap offsets (same size: a silent exchange of tensors)
      [t.offset, other.offset] = [other.offset, t.offset];
      break;
    }
    case 2:
      t.offset = rng.pick([
        0,
        t.offset + 1,
        t.offset - size,
        t.offset + size,
        dataLength,
        dataLength - t.bytes,
        2 ** 53,
      ]);
      break;
    case 3:
      t.shape = rng.pick(HUGE_SHAPES);
      break;
    case 4:
      t.shape = rng.chance(0.5) ? [...t.shape].reverse() : [t.shape.reduce((a: number, b: number) => a * b, 1)];
      break;
    case 5:
      t.shape = [...t.shape, rng.pick([1, 2])];
      break;
    case 6:
      t.dtype = t.dtype === "f64" ? "u64-pair" : "f64";
      break;
    case 7:
      t.name = rng.pick([rng.pick(ts).name, "", "a\nb", "\u001b[2J", "x".repeat(5000)]);
      break;
    case 8:
      if (h.share) delete h.share;
      else h.share = { party: rng.int(4), id: "z" };
      break;
    default:
      ts.splice(rng.int(ts.length), 1);
  }
  if (consistent && Array.isArray(t.shape)) {
    t.bytes = t.shape.reduce((a: number, b: number) => a * b, 1) * (t.dtype === "f64" ? 8 : 16);
  }
}

function resized(rng: Rng, h: Doc, data: Uint8Array): Uint8Array {
  const end = Math.max(0, ...h.tensors.map((t: Doc) => Number(t.offset) + Number(t.bytes)).filter(Number.isFinite));
  const n = rng.chance(0.7) && end <= 1 << 20 ? end : Math.max(0, data.length + rng.range(-16, 16));
  const out = new Uint8Array(n);
  out.set(data.subarray(0, n));
  return out;
}

export async function tensorFileTarget(): Promise<Target<Uint8Array>> {
  const files = await corpus();
  const bySum = new Map(files.map((f) => [f.header.sha256 as string, f.header]));
  return {
    parser: "tensor and share files (parseTensorFile)",
    expected: [FileFormatError],
    allocationCap: "views into the input; tensorBytes copies at most the data section",
    valid: files.map((f) => f.bytes),
    async mutate(rng) {
      const f = rng.pick(files);
      const mode = rng.int(20);
      if (mode < 5) {
        const len = f.bytes.length - f.data.length - 8;
        return mutateBytes(rng, f.bytes, {
          others: files.map((g) => g.bytes),
          fields: [{ offset: 0, size: 4 }, { offset: 4, size: 4 }],
          words: [BigInt(len), BigInt(f.bytes.length)],
        });
      }
      const header = encoder.encode(JSON.stringify(f.header));
      if (mode < 11) {
        const text = mutateJson(rng, f.header, { maxString: 1 << 14 });
        // half of the generic edits are signed again, so that they reach the header's validation
        let doc: unknown = null;
        try {
          doc = JSON.parse(text);
        } catch { /* not JSON: refused before the digest */ }
        const signed = mode < 8 && doc !== null && typeof doc === "object" && !Array.isArray(doc);
        // a document nested too deeply for JSON.stringify stays as it is (the parser meets it unsigned)
        const header = signed ? await resign(doc as Doc, f.data).catch(() => text) : text;
        return assemble(encoder.encode(header), f.data);
      }
      if (mode < 14) return assemble(mutateBytes(rng, header, { others: files.map((g) => g.bytes) }), f.data);
      const h = structuredClone(f.header);
      const edits = rng.chance(0.7) ? 1 : 2;
      for (let i = 0; i < edits && h.tensors.length; i++) tensorEdit(rng, h, f.data.length);
      if (mode < 17) return assemble(encoder.encode(await resign(h, f.data)), f.data);
      const data = resized(rng, h, f.data);
      return assemble(encoder.encode(await resign(h, data)), data);
    },
    async run(bytes: Uint8Array, probe: Probe) {
      const f = await parseTensorFile(bytes, NAME);
      if (f.data.buffer !== bytes.buffer || f.data.byteOffset + f.data.length > bytes.byteOffset + bytes.length) {
        probe.inconsistent("the data section is not a view of the input");
      }
      const names = new Set<string>();
      const ranges: [number, number][] = [];
      let duplicate = false;
      for (const t of f.header.tensors) {
        const size = t.dtype === "f64" ? 8 : 16, n = t.shape.reduce((a, b) => a * b, 1);
        if (!(Number.isSafeInteger(t.offset) && Number.isSafeInteger(t.bytes) && t.offset + t.bytes <= f.data.length)) {
          probe.inconsistent(`tensor ${JSON.stringify(t.name)} lies outside the data section`);
        }
        if (t.bytes !== n * size) probe.inconsistent(`tensor ${JSON.stringify(t.name)}: bytes do not match its shape`);
        if ((t.dtype === "u64-pair") !== (f.header.share !== undefined)) probe.inconsistent("dtype and share disagree");
        if (names.has(t.name)) duplicate = true;
        names.add(t.name);
        ranges.push([t.offset, t.offset + t.bytes]);
        const copy = tensorBytes(f, t.name).bytes;
        probe.alloc(copy.length, f.data.length, "tensorBytes");
      }
      const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
      const text = decoder.decode(bytes.subarray(8, 8 + len));
      if (f.header.version !== 2 || expectedDigest(text, f.data) !== f.header.sha256) {
        probe.inconsistent("accepted with a wrong checksum");
      }
      ranges.sort((a, b) => a[0] - b[0]);
      if (ranges.some(([s], i) => i > 0 && s < ranges[i - 1][1])) probe.inconsistent("overlapping tensors");
      if (duplicate) probe.inconsistent("two tensors of one name");
      return changes(bySum.get(f.header.sha256), f.header);
    },
    bytesOf: (bytes) => bytes,
  };
}
