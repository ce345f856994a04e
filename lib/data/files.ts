/**
 * Reading dataset files: whole files, gzip-compressed or not, with every
 * failure turned into a DatasetError that names the file.
 */
import { DatasetError } from "./dataset.ts";

/** Whether `path` exists and is what we look for. */
export async function statKind(path: string): Promise<"file" | "dir" | null> {
  try {
    const s = await Deno.stat(path);
    return s.isDirectory ? "dir" : s.isFile ? "file" : null;
  } catch {
    return null;
  }
}

export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new DatasetError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

export async function readText(path: string): Promise<string> {
  return new TextDecoder().decode(await readBytes(path));
}

/** gzip members start with 1f 8b (RFC 1952). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The file's bytes, gunzipped when they are gzip data (decided by content, not by the name). */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = await readBytes(path);
  if (!isGzip(raw)) {
    if (path.endsWith(".gz")) throw new DatasetError(`${path}: not gzip data (the file is named .gz)`);
    return raw;
  }
  try {
    const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new DatasetError(`${path}: corrupt or truncated gzip data (${(e as Error).message.split("\n")[0]})`);
  }
}

/** Names in a directory, sorted so that every party and every run sees the same order. */
export async function listDir(path: string): Promise<{ name: string; isFile: boolean; isDirectory: boolean }[]> {
  const out: { name: string; isFile: boolean; isDirectory: boolean }[] = [];
  try {
    for await (const e of Deno.readDir(path)) out.push({ name: e.name, isFile: e.isFile, isDirectory: e.isDirectory });
  } catch (e) {
    throw new DatasetError(`cannot list ${path}: ${(e as Error).message}`);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
