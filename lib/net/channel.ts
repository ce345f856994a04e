/**
 * Framed messages to one peer. Every frame carries a magic word, the sender's
 * round number and the payload length; the receiver knows all three in
 * advance (protocols are data-independent), so a desynchronised, corrupt or
 * oversized frame is an error at once, never a hang or a misread.
 *
 * On a secure link the payload is sealed with AES-128-GCM under the
 * direction's key (handshake.ts), the header as associated data and the
 * frame's index in its direction as the nonce, so a frame that is altered,
 * replayed, dropped or reordered fails its tag:
 *
 *   header (16) | payload or its ciphertext | tag (16, secure links only)
 */
import { AuthenticationError, type GcmKey, TAG_BYTES } from "./aead.ts";
import { type Link, PeerClosedError } from "./link.ts";

const MAGIC = 0x46_4d_47_43; // "CGMF" little-endian
const HEADER = 16;
/** Small payloads of plain links travel in one write with their header (one segment). */
const COALESCE = 1 << 16;
/** The round field of setup messages, which are not protocol rounds. */
const SETUP_ROUND = 0xffff_ffff;
/** The round field of the notice a party sends its peers when it stops: why, so that they can say so. */
const ABORT_ROUND = 0xffff_fffe;
/** The longest stop notice read: the one read a peer can ask for beyond the size the receiver expects. */
export const ABORT_MAX_BYTES = 1024;

export class ChannelError extends Error {}

/** The peer stopped the run and said why (its own error line). */
export class PeerAbortError extends Error {
  constructor(readonly peer: number, readonly reason: string) {
    super(`party ${peer} stopped: ${reason}`);
  }
}

export interface DirectionKeys {
  send: GcmKey;
  recv: GcmKey;
}

export class Channel {
  /** Payload bytes of protocol rounds (headers and tags are not counted; setup messages neither). */
  bytesSent = 0;
  bytesReceived = 0;
  framesSent = 0;
  framesReceived = 0;
  #header = new Uint8Array(HEADER);
  #tag = new Uint8Array(TAG_BYTES);
  /** Where frames are sealed: reused, since frames to one peer are written one after another. */
  #stage = new Uint8Array(0);
  #sendCounter = 0n;
  #recvCounter = 0n;
  /** The write under way, if any: an abort notice must not land inside a frame. */
  #writing: Promise<void> | null = null;

  constructor(readonly peer: number, readonly link: Link, readonly keys: DirectionKeys | null = null) {}

  get secure(): boolean {
    return this.keys !== null;
  }

  async send(round: number, payload: Uint8Array): Promise<void> {
    await this.#write(round >>> 0, payload);
    this.bytesSent += payload.length;
    this.framesSent++;
  }

  /** Receives the frame of `round` into target, which must be exactly its size. */
  async recvInto(round: number, target: Uint8Array): Promise<void> {
    const len = await this.#readHeader(round >>> 0);
    if (len !== BigInt(target.length)) {
      throw new ChannelError(`party ${this.peer} sent ${len} bytes in round ${round}, expected ${target.length}`);
    }
    await this.#readPayload(target);
    this.bytesReceived += target.length;
    this.framesReceived++;
  }

  /** A setup message (the agreement), outside the protocol's rounds and byte counts. */
  sendSetup(payload: Uint8Array): Promise<void> {
    return this.#write(SETUP_ROUND, payload);
  }

  /** The next setup message, of at most `max` bytes. */
  async recvSetup(max: number): Promise<Uint8Array> {
    const len = await this.#readHeader(SETUP_ROUND);
    if (len > BigInt(max)) {
      throw new ChannelError(`party ${this.peer} sent a ${len}-byte setup message (at most ${max})`);
    }
    const out = new Uint8Array(Number(len));
    await this.#readPayload(out);
    return out;
  }

  /**
   * Tells the peer why this party stops, after any frame being written (for
   * at most `waitMs`: a peer that does not read cannot hold the stop up),
   * then closes the link. Never throws.
   */
  async abort(reason: string, waitMs = 500): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), waitMs)));
    try {
      const notice = new TextEncoder().encode(reason).subarray(0, ABORT_MAX_BYTES);
      const sent = (async () => {
        await this.#writing?.catch(() => {});
        await this.#write(ABORT_ROUND, notice);
        return true;
      })().catch(() => false);
      if (await Promise.race([sent, gaveUp])) {
        clearTimeout(timer);
        if (this.link.closeGracefully) return await this.link.closeGracefully(waitMs);
      }
    } finally {
      clearTimeout(timer);
      this.close();
    }
  }

  #write(round: number, payload: Uint8Array): Promise<void> {
    const w = this.#writeFrame(round, payload);
    this.#writing = w;
    return w.finally(() => {
      if (this.#writing === w) this.#writing = null;
    });
  }

  async #writeFrame(round: number, payload: Uint8Array): Promise<void> {
    const header = new Uint8Array(HEADER);
    const view = new DataView(header.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, round, true);
    view.setBigUint64(8, BigInt(payload.length), true);
    if (this.keys) {
      const total = HEADER + payload.length + TAG_BYTES;
      if (this.#stage.length < total) this.#stage = new Uint8Array(Math.max(total, 2 * this.#stage.length));
      const frame = this.#stage.subarray(0, total);
      frame.set(header);
      const body = frame.subarray(HEADER, HEADER + payload.length), tag = frame.subarray(HEADER + payload.length);
      await this.keys.send.seal(this.#sendCounter++, header, payload, body, tag);
      await this.link.write(frame);
    } else if (payload.length <= COALESCE) {
      const frame = new Uint8Array(HEADER + payload.length);
      frame.set(header);
      frame.set(payload, HEADER);
      await this.link.write(frame);
    } else {
      await this.link.write(header);
      await this.link.write(payload);
    }
  }

  async #readHeader(round: number): Promise<bigint> {
    await this.link.readInto(this.#header);
    const view = new DataView(this.#header.buffer);
    const magic = view.getUint32(0, true), r = view.getUint32(4, true), len = view.getBigUint64(8, true);
    if (magic !== MAGIC) {
      throw new ChannelError(`malformed frame from party ${this.peer} (bad magic ${magic.toString(16)})`);
    }
    if (r === ABORT_ROUND) {
      if (len > BigInt(ABORT_MAX_BYTES)) throw new ChannelError(`party ${this.peer} sent an oversized stop notice`);
      const notice = new Uint8Array(Number(len));
      await this.#readPayload(notice);
      // a peer's words, kept to one line: control characters become spaces
      const text = Array.from(new TextDecoder().decode(notice), (c) => {
        const code = c.charCodeAt(0);
        return code < 0x20 || (code >= 0x7f && code <= 0x9f) ? " " : c;
      }).join("");
      throw new PeerAbortError(this.peer, text);
    }
    const name = (x: number) => (x === SETUP_ROUND ? "setup" : `round ${x}`);
    if (r !== round) {
      throw new ChannelError(`party ${this.peer} is out of step: its frame is for ${name(r)}, expected ${name(round)}`);
    }
    return len;
  }

  async #readPayload(target: Uint8Array): Promise<void> {
    await this.link.readInto(target);
    if (!this.keys) return;
    await this.link.readInto(this.#tag);
    try {
      await this.keys.recv.open(this.#recvCounter++, this.#header, target, this.#tag);
    } catch (e) {
      if (!(e instanceof AuthenticationError)) throw e;
      throw new ChannelError(
        `a frame from party ${this.peer} failed authentication: altered on the way, or not sent by party ${this.peer}`,
      );
    }
  }

  close(): void {
    this.link.close();
  }
}

export { PeerClosedError };
export const FRAME_HEADER_BYTES = HEADER;
