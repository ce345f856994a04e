/** ONNX Runtime (CPU) as the independent reference for imported models; tests only (it is large). */
// A full specifier, not an import-map entry: Deno installs every package of the import map for any task, and this
// one brings ~290 MB of binaries that only the tests need (the demo and the CLI must not download it).
// deno-lint-ignore no-import-prefix
import * as ort from "npm:onnxruntime-node@1.31.1";

export { ort };

export async function runOrt(
  bytes: Uint8Array,
  input: { name: string; shape: number[]; data: Float32Array },
): Promise<{ shape: number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const feeds = { [input.name]: new ort.Tensor("float32", input.data, input.shape) };
    const results = await session.run(feeds);
    const out = results[session.outputNames[0]];
    return { shape: out.dims.map(Number), data: Float32Array.from(out.data as Float32Array) };
  } finally {
    await session.release();
  }
}
