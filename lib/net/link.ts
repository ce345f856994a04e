/**
 * A `Link` is one authenticated byte stream to a peer: plain TCP (Deno.Conn,
 * Nagle off) or mutual TLS (node:tls, since Deno.listenTls cannot demand a
 * client certificate). Both read straight into the caller's buffer, which may
 * be a view of native tensor memory.
 */
import type { TLSSocket } from "node:tls";

export interface Link {
  /** Writes all of data (looping over partial writes). */
  write(data: Uint8Array): Promise<void>;
  /** Fills target exactly; rejects on end of stream. */
  readInto(target: Uint8Array): Promise<void>;
  close(): void;
  /** Whether the stream is encrypted and mutually authenticated. */
  readonly secure: boolean;
}

export class PeerClosedError extends Error {}

export class TcpLink implements Link {
  readonly secure = false;
  #conn: Deno.TcpConn;
  constructor(conn: Deno.TcpConn) {
    conn.setNoDelay(true);
    this.#conn = conn;
  }
  async write(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length;) off += await this.#conn.write(data.subarray(off));
  }
  async readInto(target: Uint8Array): Promise<void> {
    for (let off = 0; off < target.length;) {
      const n = await this.#conn.read(target.subarray(off));
      if (n === null) throw new PeerClosedError("connection closed");
      off += n;
    }
  }
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** node:tls delivers data as events; this queues the chunks and serves exact reads. */
export class TlsLink implements Link {
  readonly secure = true;
  #socket: TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #waiter: (() => void) | null = null;
  #ended: Error | null = null;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      this.#wake();
    });
    const end = (e?: Error) => {
      this.#ended ??= e ?? new PeerClosedError("connection closed");
      this.#wake();
    };
    socket.on("end", () => end());
    socket.on("close", () => end());
    socket.on("error", (e: Error) => end(e));
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      // node may keep a reference to the buffer until it is flushed; callers
      // pass buffers they do not reuse before the promise resolves.
      this.#socket.write(data, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  async readInto(target: Uint8Array): Promise<void> {
    let off = 0;
    while (off < target.length) {
      if (this.#buffered === 0) {
        if (this.#ended) throw this.#ended;
        await new Promise<void>((r) => (this.#waiter = r));
        continue;
      }
      const head = this.#chunks[0];
      const n = Math.min(head.length, target.length - off);
      target.set(head.subarray(0, n), off);
      off += n;
      this.#buffered -= n;
      if (n === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}
