/**
 * The handshake's first message, as an unauthenticated peer sends it: the
 * length-prefixed reader (readMessage, cap HANDSHAKE_MAX_BYTES) and then
 * parseHello. Valid inputs are hellos as myHello builds them (secure and
 * plain) and a refusal. A third of the cases mutate the framed bytes (the
 * length prefix included), the rest the JSON body (structurally or as
 * text) under a correct prefix, so that parseHello sees them.
 */
import { HANDSHAKE_MAX_BYTES, parseHello, PROTOCOL_VERSION, readMessage } from "../../lib/net/handshake.ts";
import { RejectedConnection, SetupError } from "../../lib/net/handshake.ts";
import { PeerClosedError } from "../../lib/net/link.ts";
import { oneLine, type Probe, type Target } from "./harness.ts";
import { MemoryLink } from "./memory_link.ts";
import { mutateJson } from "./json.ts";
import { mutateBytes } from "./mutate.ts";
import { Rng } from "./rng.ts";

const hex = (rng: Rng) => Array.from(rng.bytes(32), (b) => b.toString(16).padStart(2, "0")).join("");

function docs(): unknown[] {
  const rng = new Rng(7);
  const hello = (from: number, to: number, secure: boolean) => ({
    protocol: "cryptgpu",
    version: PROTOCOL_VERSION,
    from,
    to,
    session: "fuzz-session-1",
    secure,
    nonce: hex(rng),
    ephemeral: hex(rng),
    ca: secure ? hex(rng) : null,
    cert: secure ? hex(rng) : null,
  });
  return [
    hello(0, 1, true),
    hello(2, 0, false),
    { protocol: "cryptgpu", refused: "session: party 1 has 'a', party 0 has 'b'" },
  ];
}

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

const encoder = new TextEncoder();
const CAP = BigInt(HANDSHAKE_MAX_BYTES);

export function helloTarget(): Target<Uint8Array> {
  const documents = docs();
  const valid = documents.map((d) => frame(encoder.encode(JSON.stringify(d))));
  return {
    parser: "handshake hello (readMessage + parseHello)",
    expected: [RejectedConnection, SetupError, PeerClosedError],
    allocationCap: `HANDSHAKE_MAX_BYTES = ${HANDSHAKE_MAX_BYTES} bytes per message`,
    valid,
    mutate(rng) {
      const k = rng.int(documents.length);
      const mode = rng.int(3);
      if (mode === 0) {
        return mutateBytes(rng, valid[k], {
          others: valid,
          fields: [{ offset: 0, size: 4 }],
          words: [CAP, BigInt(valid[k].length - 4)],
        });
      }
      const body = mode === 1
        ? encoder.encode(mutateJson(rng, documents[k], { maxString: 2 * HANDSHAKE_MAX_BYTES }))
        : mutateBytes(rng, valid[k].subarray(4), { others: valid.map((v) => v.subarray(4)) });
      return frame(body);
    },
    async run(input: Uint8Array, probe: Probe) {
      const link = new MemoryLink(input, false, probe);
      link.cap = HANDSHAKE_MAX_BYTES;
      const body = await readMessage(link, "hello");
      const parsed = parseHello(body);
      if ("refused" in parsed) {
        if (typeof parsed.refused !== "string") probe.inconsistent("a refusal whose reason is not a string");
        // The dialer prints the reason in its error: a peer's line breaks would go with it.
        return oneLine(parsed.refused) ? "refusal" : "refusal whose reason is not one printable line";
      }
      const h = parsed.hello;
      if (![h.from, h.to].every((p) => Number.isInteger(p) && p >= 0 && p <= 2)) {
        probe.inconsistent("party out of range");
      }
      if (!/^[0-9a-f]{64}$/.test(h.nonce) || !/^[0-9a-f]{64}$/.test(h.ephemeral)) probe.inconsistent("bad nonce/key");
      return "hello";
    },
    bytesOf: (input) => input,
  };
}
