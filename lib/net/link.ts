/**
 * A `Link` is one authenticated byte stream to a peer over Deno's own sockets:
 * plain TCP, or TLS (rustls, which is about three times faster here than
 * node:tls's event streams). Reads go straight into the caller's buffer,
 * which may be a view of native tensor memory.
 *
 * A TLS link is two connections, one per direction, each dialed by its
 * sender: only a dialing socket can have Nagle's algorithm turned off before
 * TLS starts on it (Deno.listenTls offers no such switch), and a small frame
 * held back by Nagle waits for a delayed ACK, about 20 ms a round.
 */

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

/** Errors of a vanished peer, as Deno names them. */
const GONE = [
  Deno.errors.ConnectionReset,
  Deno.errors.BrokenPipe,
  Deno.errors.ConnectionAborted,
  Deno.errors.UnexpectedEof,
];

function peerGone(e: unknown): never {
  if (GONE.some((k) => e instanceof k)) throw new PeerClosedError("connection closed", { cause: e });
  throw e;
}

/** Writes to `out` and reads from `inbound` (the same connection unless TLS's one-way pair). */
export class ConnLink implements Link {
  #out: Deno.Conn;
  #in: Deno.Conn;
  constructor(readonly secure: boolean, out: Deno.Conn, inbound: Deno.Conn = out) {
    this.#out = out;
    this.#in = inbound;
  }
  async write(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.length;) off += await this.#out.write(data.subarray(off));
    } catch (e) {
      peerGone(e);
    }
  }
  async readInto(target: Uint8Array): Promise<void> {
    for (let off = 0; off < target.length;) {
      let n: number | null;
      try {
        n = await this.#in.read(target.subarray(off));
      } catch (e) {
        peerGone(e);
      }
      if (n === null) throw new PeerClosedError("connection closed");
      off += n;
    }
  }
  close(): void {
    for (const c of new Set([this.#out, this.#in])) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }
}
