/**
 * Framed messages to one peer. Every frame carries a magic word, the sender's
 * round number and the payload length; the receiver knows all three in
 * advance (protocols are data-independent), so a desynchronised, corrupt or
 * oversized frame is an error at once, never a hang or a misread.
 */
import { type Link, PeerClosedError } from "./link.ts";

const MAGIC = 0x46_4d_47_43; // "CGMF" little-endian
const HEADER = 16;
/** Small payloads travel in one write with their header (one TLS record, one segment). */
const COALESCE = 1 << 16;

export class ChannelError extends Error {}

export class Channel {
  /** Payload bytes (frame headers are counted in frames: 16 bytes each). */
  bytesSent = 0;
  bytesReceived = 0;
  framesSent = 0;
  framesReceived = 0;
  #header = new Uint8Array(HEADER);

  constructor(readonly peer: number, readonly link: Link) {}

  async send(round: number, payload: Uint8Array): Promise<void> {
    const header = new Uint8Array(HEADER);
    const view = new DataView(header.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, round >>> 0, true);
    view.setBigUint64(8, BigInt(payload.length), true);
    if (payload.length <= COALESCE) {
      const frame = new Uint8Array(HEADER + payload.length);
      frame.set(header);
      frame.set(payload, HEADER);
      await this.link.write(frame);
    } else {
      await this.link.write(header);
      await this.link.write(payload);
    }
    this.bytesSent += payload.length;
    this.framesSent++;
  }

  /** Receives the frame of `round` into target, which must be exactly its size. */
  async recvInto(round: number, target: Uint8Array): Promise<void> {
    await this.link.readInto(this.#header);
    const view = new DataView(this.#header.buffer);
    const magic = view.getUint32(0, true), r = view.getUint32(4, true), len = view.getBigUint64(8, true);
    if (magic !== MAGIC) {
      throw new ChannelError(`malformed frame from party ${this.peer} (bad magic ${magic.toString(16)})`);
    }
    if (r !== round >>> 0) {
      throw new ChannelError(`party ${this.peer} is out of step: its frame is for round ${r}, expected ${round >>> 0}`);
    }
    if (len !== BigInt(target.length)) {
      throw new ChannelError(`party ${this.peer} sent ${len} bytes in round ${round}, expected ${target.length}`);
    }
    await this.link.readInto(target);
    this.bytesReceived += target.length;
    this.framesReceived++;
  }

  close(): void {
    this.link.close();
  }
}

export { PeerClosedError };
export const FRAME_HEADER_BYTES = HEADER;
