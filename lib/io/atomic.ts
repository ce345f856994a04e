/**
 * Writing a file so that no one ever sees half of it: the bytes go to a
 * private temporary beside the target, are flushed to disk, and the temporary
 * is renamed over the target (rename is atomic within a directory), then the
 * directory itself is flushed so that the rename survives a power cut. A
 * reader sees the old file or the new one; a failure leaves the old one and
 * no temporary.
 *
 * Files are 0600 unless a caller asks otherwise: shares, plaintext models,
 * keys and reports are nobody else's business. A public certificate or a
 * benchmark result may pass 0644 explicitly.
 */
import { basename, dirname, join } from "node:path";

export interface AtomicOptions {
  /** Permission bits of the new file (default 0600), set exactly whatever the umask. */
  mode?: number;
}

const TMP_SUFFIX_HEX = 16;
const tmpPrefix = (path: string) => `.${basename(path)}.tmp-`;

/** Why a file system call failed, without Deno's "open '<temporary>'" tail, which names the wrong file. */
function reason(e: unknown): string {
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
  return message.replace(/: \w+ '.*'$/, "");
}

/** Refuses a target that is a directory (renaming over it would fail only after all the bytes are written). */
export async function assertNotDirectory(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return; // absent (or unreadable): the write itself says what is wrong
  }
  if (info.isDirectory) throw new Error(`${path} is a directory`);
}

/** Flushes a directory's entries; platforms that cannot open or sync a directory (Windows) are skipped. */
async function syncDirectory(dir: string): Promise<void> {
  let d: Deno.FsFile;
  try {
    d = await Deno.open(dir, { read: true });
  } catch (e) {
    if (Deno.build.os === "windows") return;
    throw e;
  }
  try {
    await d.sync();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (!(e instanceof Deno.errors.NotSupported || ["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EBADF"].includes(code!))) {
      throw e;
    }
  } finally {
    d.close();
  }
}

/** Writes `bytes` (a string is UTF-8) to `path` atomically, with mode 0600 unless `opts.mode` says otherwise. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string, opts: AtomicOptions = {}) {
  const mode = opts.mode ?? 0o600;
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  await assertNotDirectory(path);
  const dir = dirname(path);
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(TMP_SUFFIX_HEX / 2)),
    (b) => b.toString(16).padStart(2, "0"),
  );
  const tmp = join(dir, tmpPrefix(path) + hex.join(""));
  let renamed = false;
  try {
    // createNew: never follow or reuse someone else's file; mode is masked by the umask, so chmod before any byte.
    const file = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
      for (let n = 0; n < data.length;) n += await file.write(data.subarray(n));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
    renamed = true;
    await syncDirectory(dir);
  } catch (e) {
    if (!renamed) await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${path}: ${reason(e)}`);
  }
}

/**
 * Removes the temporaries that interrupted writes of `path` left beside it
 * (a killed process runs no cleanup); returns their paths. Call it only when
 * no other writer of `path` is running, e.g. before a checkpoint is written.
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = tmpPrefix(path);
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw new Error(`cannot list ${dir}: ${reason(e)}`);
  }
  for (const e of entries) {
    const rest = e.name.startsWith(prefix) ? e.name.slice(prefix.length) : "";
    if (!e.isFile || rest.length !== TMP_SUFFIX_HEX || !/^[0-9a-f]+$/.test(rest)) continue;
    const p = join(dir, e.name);
    await Deno.remove(p);
    removed.push(p);
  }
  return removed;
}
