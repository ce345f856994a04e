/**
 * ONNX Runtime (CPU) on one model and one input, for the tests' independent reference: reads
 * {"model": base64, "input": name or null, "shape": [...], "data": [...]} on stdin, prints {"shape", "data"} of the
 * first output. A project of its own (tests/ort/deno.json, its own lockfile and node_modules), so that the ~290 MB
 * of onnxruntime-node is installed by the tests that use it and never by the demo, the CLI or a GPU machine's copy.
 */
import * as ort from "onnxruntime-node";

const request = JSON.parse(await new Response(Deno.stdin.readable).text());
const model = Uint8Array.from(atob(request.model), (c) => c.charCodeAt(0));
const session = await ort.InferenceSession.create(model);
try {
  const name = request.input ?? session.inputNames[0];
  const feeds = { [name]: new ort.Tensor("float32", Float32Array.from(request.data), request.shape) };
  const out = (await session.run(feeds))[session.outputNames[0]];
  console.log(JSON.stringify({ shape: out.dims.map(Number), data: Array.from(out.data as Float32Array) }));
} finally {
  await session.release();
}
