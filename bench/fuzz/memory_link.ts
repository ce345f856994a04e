/**
 * A Link over bytes in memory: it serves a fixed byte string and then ends
 * the stream (PeerClosedError), as a TCP peer that sent those bytes and
 * closed; so a reader that wants more than is there fails at once instead of
 * waiting. It records what it is written (copies: the channel reuses its
 * buffer) and the size of every read, which is the buffer the reader
 * allocated for it: a read larger than `cap` is a reader that let a length
 * field choose its allocation.
 */
import { type Link, PeerClosedError } from "../../lib/net/link.ts";
import type { Probe } from "./harness.ts";

export class MemoryLink implements Link {
  readonly written: Uint8Array[] = [];
  #at = 0;
  /** The largest read the current operation may ask for. */
  cap = Infinity;
  constructor(readonly data: Uint8Array = new Uint8Array(0), readonly secure = false, readonly probe?: Probe) {}

  write(data: Uint8Array): Promise<void> {
    this.written.push(data.slice());
    return Promise.resolve();
  }

  readInto(target: Uint8Array): Promise<void> {
    this.probe?.alloc(target.length, this.cap, "a read");
    const n = Math.min(target.length, this.data.length - this.#at);
    target.set(this.data.subarray(this.#at, this.#at + n));
    this.#at += n;
    return n < target.length ? Promise.reject(new PeerClosedError("connection closed")) : Promise.resolve();
  }

  close(): void {}

  /** Everything written, as one byte string. */
  recorded(): Uint8Array {
    const out = new Uint8Array(this.written.reduce((n, w) => n + w.length, 0));
    let at = 0;
    for (const w of this.written) out.set(w, at), at += w.length;
    return out;
  }
}
