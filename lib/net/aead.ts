/**
 * AES-128-GCM for the parties' channels, in the native library (AES-NI and
 * PCLMULQDQ, or a constant-time portable path). The channel runs on the host
 * whatever the compute device, so this always opens the CPU build, with its
 * own symbol table: the CUDA build does not export these.
 */
import { LibraryLoadError, libraryPath } from "../native/library.ts";

const args = ["buffer", "buffer", "buffer", "u64", "buffer", "buffer", "u64", "buffer", "i32"] as const;
const symbols = {
  cg_gcm_seal: { parameters: args, result: "i32" },
  cg_gcm_open: { parameters: args, result: "i32" },
  // The same functions off the JavaScript thread, for large frames.
  cg_gcm_seal_async: { name: "cg_gcm_seal", parameters: args, result: "i32", nonblocking: true },
  cg_gcm_open_async: { name: "cg_gcm_open", parameters: args, result: "i32", nonblocking: true },
} as const;

/** Frames at least this large are sealed and opened on a native thread. */
const ASYNC_BYTES = 1 << 18;
export const TAG_BYTES = 16;
export const KEY_BYTES = 16;
const CG_EAUTH = 9;

export type GcmImpl = "auto" | "portable" | "aesni";
const IMPL = { auto: 0, portable: 1, aesni: 2 } as const;

let lib: Deno.DynamicLibrary<typeof symbols> | null = null;
function open(): Deno.DynamicLibrary<typeof symbols> {
  if (lib) return lib;
  const path = libraryPath("cpu");
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (cause) {
    throw new LibraryLoadError(`cannot load the channel cipher from ${path}: build it with \`deno task build\``, {
      cause,
    });
  }
  return lib;
}

export class AuthenticationError extends Error {}

const EMPTY = new Uint8Array(0);

function check(status: number, what: string): void {
  if (status === CG_EAUTH) throw new AuthenticationError(`${what}: the tag does not match`);
  if (status !== 0) throw new Error(`${what}: native status ${status}`);
}

/**
 * One direction's key: seals or opens frames with a 96-bit nonce made of a
 * 64-bit counter. The caller supplies the counter; it must never repeat
 * under a key (the channel counts frames).
 */
export class GcmKey {
  readonly #key: Uint8Array;
  readonly #impl: number;
  constructor(key: Uint8Array, impl: GcmImpl = "auto") {
    if (key.length !== KEY_BYTES) throw new RangeError(`a GCM key has ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = key.slice();
    this.#impl = IMPL[impl];
    open();
  }

  /** The native call's arguments: a fresh 96-bit nonce (the counter, then four zero bytes) for every frame. */
  #args(counter: bigint, aad: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array) {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setBigUint64(0, counter, false);
    const a = aad.length ? aad : EMPTY;
    return [this.#key, iv, a, BigInt(aad.length), input, output, BigInt(input.length), tag, this.#impl] as const;
  }

  /** out = E(plain) (same length), tag = the 16-byte tag over aad and out. */
  async seal(counter: bigint, aad: Uint8Array, plain: Uint8Array, out: Uint8Array, tag: Uint8Array): Promise<void> {
    const s = open().symbols, a = this.#args(counter, aad, plain, out, tag);
    check(plain.length >= ASYNC_BYTES ? await s.cg_gcm_seal_async(...a) : s.cg_gcm_seal(...a), "sealing a frame");
  }

  /** Decrypts `data` in place; throws AuthenticationError (and zeroes data) if the tag is wrong. */
  async open(counter: bigint, aad: Uint8Array, data: Uint8Array, tag: Uint8Array): Promise<void> {
    const s = open().symbols, a = this.#args(counter, aad, data, data, tag);
    check(data.length >= ASYNC_BYTES ? await s.cg_gcm_open_async(...a) : s.cg_gcm_open(...a), "opening a frame");
  }
}
