/**
 * ONNX Runtime (CPU) as the independent reference for imported and exported models. It runs in a child process
 * from tests/ort/, a project of its own: Deno installs every package of a project's lockfile for any task, and
 * onnxruntime-node brings ~290 MB of binaries that only these tests need.
 */
const ORT_DIR = new URL("../../ort/", import.meta.url);

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The model's first output on one input (named, or the model's first input when the name is null). */
export async function runOrt(
  bytes: Uint8Array,
  input: { name: string | null; shape: readonly number[]; data: ArrayLike<number> },
): Promise<{ shape: number[]; data: Float32Array }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-ffi", "--allow-read", "--allow-env", "--allow-sys", "run.ts"],
    cwd: ORT_DIR,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const request = { model: base64(bytes), input: input.name, shape: input.shape, data: Array.from(input.data) };
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`ONNX Runtime failed: ${new TextDecoder().decode(stderr).trim()}`);
  const result = JSON.parse(new TextDecoder().decode(stdout));
  return { shape: result.shape, data: Float32Array.from(result.data) };
}
