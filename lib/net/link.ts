/**
 * A `Link` is one byte stream to a peer over a TCP socket (Nagle off). Reads
 * go straight into the caller's buffer, which may be a view of native tensor
 * memory. Confidentiality and integrity are the channel's (channel.ts), not
 * the socket's.
 */

export interface Link {
  /** Writes all of data (looping over partial writes). */
  write(data: Uint8Array): Promise<void>;
  /** Fills target exactly; rejects on end of stream. */
  readInto(target: Uint8Array): Promise<void>;
  close(): void;
  /**
   * Closes after telling the peer all that was written: half-close, then read
   * and discard what the peer still sends (for at most waitMs). A plain close
   * with unread data sends a reset, which can destroy a last message in
   * flight to the peer.
   */
  closeGracefully?(waitMs: number): Promise<void>;
  /** Whether the channel on it seals its frames (a link set up with the parties file's keys). */
  readonly secure: boolean;
}

export class PeerClosedError extends Error {}

/** Errors of a vanished peer, as Deno names them. */
const GONE = [
  Deno.errors.ConnectionReset,
  Deno.errors.BrokenPipe,
  Deno.errors.ConnectionAborted,
  Deno.errors.UnexpectedEof,
  Deno.errors.BadResource,
  Deno.errors.Interrupted,
];

function peerGone(e: unknown): never {
  if (GONE.some((k) => e instanceof k)) throw new PeerClosedError("connection closed", { cause: e });
  throw e;
}

/** Reads of less than this go through the link's buffer: one read then serves a frame's header, body and tag. */
const BUFFERED = 1 << 16;

export class ConnLink implements Link {
  #conn: Deno.Conn;
  /** Bytes read ahead of the caller: buffer[start, end). */
  #buffer = new Uint8Array(BUFFERED);
  #start = 0;
  #end = 0;
  constructor(readonly secure: boolean, conn: Deno.Conn) {
    this.#conn = conn;
  }
  async write(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.length;) off += await this.#conn.write(data.subarray(off));
    } catch (e) {
      peerGone(e);
    }
  }
  /**
   * Small reads are served from a buffer that one socket read fills as far as
   * the peer has sent, so a small frame costs one read instead of three; a
   * large target, once the buffer is drained, is read into directly (it may be
   * native tensor memory, and copying it would cost more than the reads).
   */
  async readInto(target: Uint8Array): Promise<void> {
    let off = this.#take(target, 0);
    while (off < target.length) {
      if (target.length - off >= BUFFERED) {
        off += await this.#read(target.subarray(off));
        continue;
      }
      this.#start = 0;
      this.#end = await this.#read(this.#buffer);
      off = this.#take(target, off);
    }
  }

  /** Copies buffered bytes into target from off; returns the new offset. */
  #take(target: Uint8Array, off: number): number {
    const n = Math.min(this.#end - this.#start, target.length - off);
    if (n > 0) {
      target.set(this.#buffer.subarray(this.#start, this.#start + n), off);
      this.#start += n;
    }
    return off + n;
  }

  async #read(into: Uint8Array): Promise<number> {
    let n: number | null;
    try {
      n = await this.#conn.read(into);
    } catch (e) {
      peerGone(e);
    }
    if (n === null) throw new PeerClosedError("connection closed");
    return n;
  }
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
  async closeGracefully(waitMs: number): Promise<void> {
    const until = Date.now() + waitMs, scratch = new Uint8Array(1 << 16);
    try {
      await (this.#conn as Deno.TcpConn).closeWrite();
      while (Date.now() < until) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const n = await Promise.race([
          this.#conn.read(scratch),
          new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(1, until - Date.now())))),
        ]).finally(() => clearTimeout(timer));
        if (n === null) break;
      }
    } catch { /* the peer is gone: nothing left to deliver */ }
    this.close();
  }
}
