/**
 * Two ends of a link in one process: what one end writes, the other reads, in
 * order. For a rehearsal (lib/mpc/rehearsal.ts), where the three parties of a
 * dummy run live in one process and nothing crosses a socket.
 */
import { type Link, PeerClosedError } from "./link.ts";

class Pipe {
  chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already read. */
  head = 0;
  closed = false;
  wake: (() => void) | null = null;

  push(data: Uint8Array): void {
    if (this.closed) throw new PeerClosedError("connection closed");
    if (data.length > 0) this.chunks.push(data.slice());
    this.wake?.();
  }

  async fill(target: Uint8Array): Promise<void> {
    let off = 0;
    while (off < target.length) {
      if (this.chunks.length === 0) {
        if (this.closed) throw new PeerClosedError("connection closed");
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const chunk = this.chunks[0], n = Math.min(chunk.length - this.head, target.length - off);
      target.set(chunk.subarray(this.head, this.head + n), off);
      off += n;
      this.head += n;
      if (this.head === chunk.length) this.chunks.shift(), this.head = 0;
    }
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }
}

class MemoryLink implements Link {
  readonly secure = false;
  constructor(private readonly out: Pipe, private readonly into: Pipe) {}
  write(data: Uint8Array): Promise<void> {
    this.out.push(data);
    return Promise.resolve();
  }
  readInto(target: Uint8Array): Promise<void> {
    return this.into.fill(target);
  }
  close(): void {
    this.out.close();
    this.into.close();
  }
}

/** A connected pair of in-process links. */
export function memoryLinkPair(): [Link, Link] {
  const ab = new Pipe(), ba = new Pipe();
  return [new MemoryLink(ab, ba), new MemoryLink(ba, ab)];
}
