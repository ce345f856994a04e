/**
 * The channel's frames, as a peer's bytes reach the receiver: one setup
 * message (recvSetup(max)) then three rounds (recvInto(round, target)), on a
 * plain channel and on a sealed one (fixed AES-GCM keys). Valid streams are
 * what a sending Channel writes (recorded through a MemoryLink); mutations
 * aim half their word writes at the frames' magic, round and length fields.
 *
 * Checked besides the outcome: no read (so no buffer) larger than the target
 * or `max` (16-byte headers and tags aside), and a sealed stream that is
 * accepted delivers exactly the bytes that were sent.
 */
import { GcmKey, TAG_BYTES } from "../../lib/net/aead.ts";
import {
  ABORT_MAX_BYTES,
  Channel,
  ChannelError,
  FRAME_HEADER_BYTES,
  PeerAbortError,
  PeerClosedError,
} from "../../lib/net/channel.ts";
import { SETTINGS_MAX_BYTES } from "../../lib/net/handshake.ts";
import type { Probe, Target } from "./harness.ts";
import { MemoryLink } from "./memory_link.ts";
import { type Field, mutateBytes } from "./mutate.ts";
import { Rng } from "./rng.ts";

/** Round numbers and payload sizes of the script (a zero-length frame included: protocols send them). */
const ROUNDS: [number, number][] = [[7, 24], [8, 0], [9, 300]];

export interface ChannelCase {
  /** The recording mutated (its keys open the frames): streams[stream]. */
  stream: number;
  sealed: boolean;
  bytes: Uint8Array;
  /** recvSetup's max for this case. */
  max: number;
}

interface Stream {
  sealed: boolean;
  seed: number;
  bytes: Uint8Array;
  setup: Uint8Array;
  payloads: Uint8Array[];
  fields: Field[];
}

/**
 * Fixed keys per recording, as each session has its own: a frame spliced in from the other recording must fail
 * its tag, as one from another session would.
 */
function keys(sealed: boolean, seed: number, sender: boolean) {
  if (!sealed) return null;
  const a = new Uint8Array(16).fill(0xa0 + seed), b = new Uint8Array(16).fill(0x50 + seed);
  return { send: new GcmKey(sender ? a : b), recv: new GcmKey(sender ? b : a) };
}

async function record(sealed: boolean, seed: number): Promise<Stream> {
  const rng = new Rng(seed);
  const link = new MemoryLink();
  const ch = new Channel(1, link, keys(sealed, seed, true));
  const setup = new TextEncoder().encode(JSON.stringify({ fracBits: 20, model: `lenet-${seed}`, tls: sealed }));
  const payloads = ROUNDS.map(([, n]) => rng.bytes(n));
  await ch.sendSetup(setup);
  for (const [i, [round]] of ROUNDS.entries()) await ch.send(round, payloads[i]);
  const fields: Field[] = [];
  let at = 0;
  for (const n of [setup.length, ...payloads.map((p) => p.length)]) {
    fields.push({ offset: at, size: 4 }, { offset: at + 4, size: 4 }, { offset: at + 8, size: 8 });
    at += FRAME_HEADER_BYTES + n + (sealed ? TAG_BYTES : 0);
  }
  return { sealed, seed, bytes: link.recorded(), setup, payloads, fields };
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export async function channelTarget(): Promise<Target<ChannelCase>> {
  const streams = [await record(false, 1), await record(false, 2), await record(true, 1), await record(true, 2)];
  const sizes = [...streams.map((s) => s.setup.length), ...ROUNDS.map(([, n]) => n)];
  const words = [...sizes, SETTINGS_MAX_BYTES, 0xffff_ffff].map(BigInt);
  return {
    parser: "channel frames (recvSetup + recvInto, plain and sealed)",
    expected: [ChannelError, PeerClosedError, PeerAbortError],
    allocationCap: "recvSetup's max; recvInto's target (16-byte headers and tags aside); a stop notice, 1024",
    valid: streams.map((s, stream) => ({ stream, sealed: s.sealed, bytes: s.bytes, max: SETTINGS_MAX_BYTES })),
    mutate(rng) {
      const stream = rng.int(streams.length), s = streams[stream];
      const same = streams.filter((t) => t.sealed === s.sealed).map((t) => t.bytes);
      const bytes = mutateBytes(rng, s.bytes, {
        others: rng.chance(0.9) ? same : streams.map((t) => t.bytes),
        fields: s.fields,
        words,
      });
      const max = rng.pick([SETTINGS_MAX_BYTES, SETTINGS_MAX_BYTES, s.setup.length, s.setup.length - 1, 0, 16]);
      return { stream, sealed: s.sealed, bytes, max };
    },
    async run(c: ChannelCase, probe: Probe) {
      const link = new MemoryLink(c.bytes, c.sealed, probe);
      const s = streams[c.stream];
      const ch = new Channel(0, link, keys(s.sealed, s.seed, false));
      // a stop notice (up to ABORT_MAX_BYTES) may stand in any frame's place
      const headers = Math.max(FRAME_HEADER_BYTES, TAG_BYTES, ABORT_MAX_BYTES);
      link.cap = Math.max(headers, c.max);
      const setup = await ch.recvSetup(c.max);
      if (setup.length > c.max) probe.inconsistent(`a ${setup.length}-byte setup message under max ${c.max}`);
      const got = [setup];
      for (const [round, n] of ROUNDS) {
        link.cap = Math.max(headers, n);
        const target = new Uint8Array(n);
        await ch.recvInto(round, target);
        got.push(target);
      }
      if (equal(got[0], s.setup) && s.payloads.every((p, i) => equal(p, got[i + 1]))) return "exact bytes";
      if (c.sealed) probe.inconsistent("a sealed channel delivered bytes that were never sent");
      return "altered payload (plain link: no integrity)";
    },
    bytesOf: (c) => c.bytes,
  };
}
