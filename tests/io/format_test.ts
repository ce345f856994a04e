/**
 * The tensor file's digest covers its header: an edit that leaves a valid
 * header (a reshape with the same element count, a renamed tensor, another
 * party) is refused like corrupt data. Files of format version 1, whose
 * digest covers the data only, still load.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { FileFormatError, parseTensorFile, readTensorFile, writeTensorFile } from "../../lib/io/format.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** The file with its header text replaced (the length prefix follows). */
function withHeader(bytes: Uint8Array, edit: (text: string) => string): Uint8Array {
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  const text = edit(dec.decode(bytes.subarray(8, 8 + len))), head = enc.encode(text);
  const out = new Uint8Array(8 + head.length + bytes.length - 8 - len);
  out.set(bytes.subarray(0, 4));
  new DataView(out.buffer).setUint32(4, head.length, true);
  out.set(head, 8);
  out.set(bytes.subarray(8 + len), 8 + head.length);
  return out;
}

Deno.test("tensor files: every header field is under the digest; version 1 files still load", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/s.share`;
    const pair = (n: number, seed: number) => {
      const w = new BigUint64Array(2 * n).map((_, i) => BigInt(seed * 1000 + i));
      return new Uint8Array(w.buffer);
    };
    await writeTensorFile(path, { kind: "model", model: "lenet", fracBits: 20, share: { party: 1, id: "abc" } }, [
      { name: "w", shape: [2, 3], dtype: "u64-pair", bytes: pair(6, 1) },
      { name: "b", shape: [3], dtype: "u64-pair", bytes: pair(3, 2) },
    ]);
    const bytes = await Deno.readFile(path);
    const f = await parseTensorFile(bytes, path);
    assert.equal(f.header.version, 2);
    assert.deepEqual(f.header.tensors.map((t) => [t.name, t.shape]), [["w", [2, 3]], ["b", [3]]]);

    const edits: [string, (t: string) => string][] = [
      ["a reshape with the same element count", (t) => t.replace('"shape":[2,3]', '"shape":[3,2]')],
      ["a renamed tensor", (t) => t.replace('"name":"b"', '"name":"c"')],
      ["another party", (t) => t.replace('"party":1', '"party":2')],
      ["another sharing id", (t) => t.replace('"id":"abc"', '"id":"abd"')],
      ["other fixed-point bits", (t) => t.replace('"fracBits":20', '"fracBits":16')],
      ["another model", (t) => t.replace('"model":"lenet"', '"model":"lenet:max"')],
    ];
    for (const [what, edit] of edits) {
      const edited = withHeader(bytes, edit);
      assert.notDeepEqual(edited, bytes, `${what}: the edit applies`);
      await assert.rejects(
        parseTensorFile(edited, path),
        (e: Error) =>
          e instanceof FileFormatError && /checksum mismatch: the header or the data is corrupt/.test(e.message),
        what,
      );
    }
    // one flipped data bit
    const flipped = bytes.slice();
    flipped[flipped.length - 1] ^= 1;
    await assert.rejects(parseTensorFile(flipped, path), /checksum mismatch/);
    // a digest field moved away from the end
    await assert.rejects(
      parseTensorFile(
        withHeader(bytes, (t) =>
          t.replace(/,"sha256":("[0-9a-f]{64}")\}$/, "}").replace(
            "{",
            `{"sha256":${t.match(/"sha256":("[0-9a-f]{64}")/)![1]},`,
          )),
        path,
      ),
      /the digest is not its last field/,
    );

    // a version 1 file (the digest of the data alone), as earlier builds wrote it
    const data = bytes.subarray(8 + new DataView(bytes.buffer).getUint32(4, true));
    const v1 = withHeader(bytes, (t) => {
      const h = JSON.parse(t);
      h.version = 1;
      h.sha256 = createHash("sha256").update(data).digest("hex");
      return JSON.stringify(h);
    });
    await Deno.writeFile(`${dir}/old.share`, v1);
    const old = await readTensorFile(`${dir}/old.share`);
    assert.equal(old.header.version, 1);
    assert.deepEqual(old.data, data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tensor files: a file built byte by byte from docs/file-format.md's layout (as its numpy recipe does) is read", async () => {
  const values = Float64Array.from({ length: 24 }, (_, i) => i / 7 - 1);
  const data = new Uint8Array(values.buffer);
  const tensors = [{ name: "input", shape: [2, 3, 4], dtype: "f64", offset: 0, bytes: data.length }];
  // Python's json.dumps spacing, as the recipe writes it: the digest covers the text as written
  const head = `{"format": "cryptgpu", "version": 2, "kind": "input", "model": "any", "fracBits": 20, "tensors": ${
    JSON.stringify(tensors).replaceAll(",", ", ").replaceAll(":", ": ")
  }}`;
  const inner = createHash("sha256").update(data).digest("hex");
  const digest = createHash("sha256").update(head).update(new Uint8Array([0])).update(inner).digest("hex");
  const header = new TextEncoder().encode(`${head.slice(0, -1)},"sha256":"${digest}"}`);
  const file = new Uint8Array(8 + header.length + data.length);
  file.set(new TextEncoder().encode("CGTF"));
  new DataView(file.buffer).setUint32(4, header.length, true);
  file.set(header, 8);
  file.set(data, 8 + header.length);
  const f = await parseTensorFile(file, "recipe.cgtf");
  assert.equal(f.header.kind, "input");
  assert.deepEqual(f.header.tensors[0].shape, [2, 3, 4]);
  assert.deepEqual(new Float64Array(f.data.slice().buffer), values);
  file[8 + header.length] ^= 1; // one bit of data
  await assert.rejects(parseTensorFile(file, "recipe.cgtf"), /checksum mismatch/);
});
