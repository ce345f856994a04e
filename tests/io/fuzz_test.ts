/**
 * A short fuzzing run of tensor and share files (bench/fuzz/tensor_file.ts):
 * byte mutations, header JSON edits under a correct length prefix, and
 * tensor-aware edits with the checksum recomputed. A refusal is one
 * FileFormatError line; an accepted file has every tensor, once, inside the
 * data section, one after another. Plus the corruptions the fuzzer found
 * accepted before parseTensorFile checked the layout.
 */
import assert from "node:assert/strict";
import { fuzzParser } from "../../bench/fuzz.ts";
import { FileFormatError, parseTensorFile, writeTensorFile } from "../../lib/io/format.ts";
import { assertClean, CASES, FUZZ_SEED } from "../net/fuzz_check.ts";

Deno.test("fuzz: tensor and share files refuse with one line and accept only consistent layouts", async () => {
  const r = await fuzzParser("tensor-file", { cases: CASES, seed: FUZZ_SEED });
  assertClean(r, "tensor-file");
  assert.ok(r.refused.FileFormatError > 0);
});

/** A plain file of tensors w [2,3], v [3,2], b [3]: its bytes and where the header's JSON lies. */
async function sample(): Promise<{ bytes: Uint8Array; header: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const f64 = (n: number, at: number) => new Uint8Array(Float64Array.from({ length: n }, (_, i) => at + i).buffer);
    await writeTensorFile(`${dir}/m.cgtf`, { kind: "model", model: "any", fracBits: 20 }, [
      { name: "w", shape: [2, 3], dtype: "f64", bytes: f64(6, 0) },
      { name: "v", shape: [3, 2], dtype: "f64", bytes: f64(6, 10) },
      { name: "b", shape: [3], dtype: "f64", bytes: f64(3, 20) },
    ]);
    const bytes = await Deno.readFile(`${dir}/m.cgtf`);
    const len = new DataView(bytes.buffer).getUint32(4, true);
    return { bytes, header: new TextDecoder().decode(bytes.subarray(8, 8 + len)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The file with its header's JSON text replaced (the length prefix follows; the data and checksum stay). */
function withHeader(bytes: Uint8Array, header: string, edited: string): Uint8Array {
  const h = new TextEncoder().encode(edited), data = bytes.subarray(8 + new TextEncoder().encode(header).length);
  const out = new Uint8Array(8 + h.length + data.length);
  out.set(bytes.subarray(0, 4));
  new DataView(out.buffer).setUint32(4, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("a header whose offsets overlap, swap two tensors or name one twice is refused (the checksum covers only the data)", async () => {
  const { bytes, header } = await sample();
  assert.equal((await parseTensorFile(bytes, "m.cgtf")).header.tensors.length, 3);
  const cases: [string, string, RegExp][] = [
    // one digit: v would start 8 bytes into w (every size check still holds)
    ["overlap", header.replace('"offset":48', '"offset":40'), /m\.cgtf: tensor "v" at offset 40, expected 48/],
    // w and v have the same size: swapped, each would be read as the other
    [
      "swap",
      header.replace('"offset":0', '"offset":@').replace('"offset":48', '"offset":0').replace(
        '"offset":@',
        '"offset":48',
      ),
      /m\.cgtf: tensor "w" at offset 48, expected 0/,
    ],
    ["twice", header.replace('"name":"v"', '"name":"w"'), /m\.cgtf: two tensors named "w"/],
  ];
  for (const [what, edited, message] of cases) {
    assert.notEqual(edited, header, what);
    await assert.rejects(parseTensorFile(withHeader(bytes, header, edited), "m.cgtf"), (e: Error) => {
      assert.ok(e instanceof FileFormatError, what);
      assert.match(e.message, message, what);
      return true;
    });
  }
});

Deno.test("a tensor name with a line break or escape sequence is quoted in the refusal, which stays one line", async () => {
  const { bytes, header } = await sample();
  const edited = header.replace('"name":"w","shape":[2,3]', '"name":"w\\n\\u001b[2J","shape":[3,3]');
  await assert.rejects(parseTensorFile(withHeader(bytes, header, edited), "m.cgtf"), (e: Error) => {
    assert.equal(e.message, 'm.cgtf: tensor "w\\n\\u001b[2J": 48 bytes for shape [3,3] (72 expected)');
    return true;
  });
});
