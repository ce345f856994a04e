/**
 * Setting up one link: the dialing party D and the listening party L agree
 * on keys no one else knows, prove who they are, and compare what they are
 * about to run, before any protocol message.
 *
 *   D -> L  hello_D                      (parties, session, nonce, ephemeral X25519 key, fingerprints)
 *   L -> D  hello_L, sig_L(transcript)   (or a refusal naming why, before any secret)
 *   D -> L  sig_D(transcript)
 *   both    keys = HKDF(X25519(e_D, e_L), salt = SHA-256(transcript))
 *   D <-> L the settings, sealed under those keys (key confirmation and agreement)
 *
 * Each signature covers its role (the direction), both hellos (both party
 * indices, the session, both nonces, both ephemeral keys, the CA's and both
 * certificates' fingerprints), so it is bound to this connection: a relay in
 * the middle can pass the messages on, but cannot learn the X25519 secret,
 * and the keys are what every later frame is sealed with. The pairwise PRF
 * key of correlated randomness comes from the same HKDF and never crosses
 * the wire.
 *
 * Without certificates (--insecure, loopback only) the same exchange runs
 * unsigned and frames go unsealed; the PRF keys still never cross the wire.
 */
import { z } from "zod";
import { GcmKey, KEY_BYTES } from "./aead.ts";
import { type Identity, signTranscript, verifyTranscript } from "./auth.ts";
import { Channel } from "./channel.ts";
import type { Link } from "./link.ts";

export const PROTOCOL_VERSION = 2;
/** The largest handshake message accepted: hellos are a few hundred bytes, signatures under 100. */
export const HANDSHAKE_MAX_BYTES = 4096;
/** The largest settings message accepted (a model graph's digest and file ids, not the graph). */
export const SETTINGS_MAX_BYTES = 1 << 16;

const LABEL = "cryptgpu link v2";
const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

const Hello = z.object({
  protocol: z.literal("cryptgpu"),
  version: z.number().int(),
  from: z.number().int().min(0).max(2),
  to: z.number().int().min(0).max(2),
  session: z.string().min(1).max(256),
  secure: z.boolean(),
  nonce: hex32,
  ephemeral: hex32,
  /** SHA-256 of the CA's and of the sender's certificate (DER); null on plain links. */
  ca: hex32.nullable(),
  cert: hex32.nullable(),
}).strict();
export type Hello = z.infer<typeof Hello>;

const Refusal = z.object({ protocol: z.literal("cryptgpu"), refused: z.string().max(1024) }).strict();

export type Settings = Record<string, string | number | boolean>;

/** A failure that ends setup: the peer is genuine (or the configuration is wrong), so waiting longer cannot help. */
export class SetupError extends Error {}
/** A failure of one connection that a listener survives: it drops the connection and waits for the genuine peer. */
export class RejectedConnection extends Error {
  constructor(message: string, readonly claimed: number | null = null) {
    super(message);
  }
}

export interface LinkSecrets {
  channel: Channel;
  /** The PRF key this party shares with the peer alone. */
  prfKey: Uint8Array;
}

export interface HandshakeParams {
  me: number;
  session: string;
  identity: Identity | null;
  settings: Settings;
}

const encoder = new TextEncoder(), decoder = new TextDecoder();
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
const short = (fp: string) => fp.slice(0, 16);

/**
 * A value from an unauthenticated peer, fit for one line of a message: JSON-escaped (no line breaks or control
 * characters), at most 80 characters. `quote` false leaves a string's quotes off.
 */
export function printable(x: unknown, quote = true): string {
  let text: string;
  try {
    text = quote ? JSON.stringify(x) ?? String(x) : JSON.stringify(String(x)).slice(1, -1);
  } catch {
    text = "(unprintable)"; // an object whose toString throws
  }
  const one = text.replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return one.length > 80 ? `${one.slice(0, 80)}...` : one;
}

/** A hello, a refusal or nothing valid: what an unauthenticated peer sent, parsed with every field checked. */
export function parseHello(bytes: Uint8Array): { hello: Hello } | { refused: string } {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new RejectedConnection("the peer does not speak the cryptgpu protocol (its hello is not JSON)");
  }
  const refusal = Refusal.safeParse(json);
  if (refusal.success) return { refused: refusal.data.refused };
  const v = (json as { version?: unknown })?.version;
  if ((json as { protocol?: unknown })?.protocol === "cryptgpu" && v !== PROTOCOL_VERSION) {
    throw new SetupError(`the peer runs cryptgpu protocol version ${printable(v)}, this party ${PROTOCOL_VERSION}`);
  }
  const parsed = Hello.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = printable(issue.path.join(".") || "top", false);
    throw new RejectedConnection(`the peer's hello is malformed (${where}: ${printable(issue.message, false)})`);
  }
  return { hello: parsed.data };
}

async function writeMessage(link: Link, body: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, true);
  frame.set(body, 4);
  await link.write(frame);
}

export async function readMessage(link: Link, what: string): Promise<Uint8Array> {
  const len = new Uint8Array(4);
  await link.readInto(len);
  const n = new DataView(len.buffer).getUint32(0, true);
  if (n > HANDSHAKE_MAX_BYTES) {
    throw new RejectedConnection(`the peer's ${what} is ${n} bytes, more than any cryptgpu handshake message`);
  }
  const buf = new Uint8Array(n);
  await link.readInto(buf);
  return buf;
}

async function ephemeral(): Promise<{ key: CryptoKeyPair; pub: string }> {
  const key = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]) as CryptoKeyPair;
  return { key, pub: toHex(new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey))) };
}

function myHello(p: HandshakeParams, to: number, pub: string): Hello {
  return {
    protocol: "cryptgpu",
    version: PROTOCOL_VERSION,
    from: p.me,
    to,
    session: p.session,
    secure: p.identity !== null,
    nonce: toHex(crypto.getRandomValues(new Uint8Array(32))),
    ephemeral: pub,
    ca: p.identity?.caFingerprint ?? null,
    cert: p.identity?.fingerprints[p.me] ?? null,
  };
}

/** Length-prefixed parts after a label: what is signed (with the role) and hashed into the keys' salt. */
function transcript(
  role: "dialer" | "listener" | "keys",
  helloD: Uint8Array,
  helloL: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const parts = [encoder.encode(`${LABEL} ${role}`), helloD, helloL];
  const out = new Uint8Array(parts.reduce((a, b) => a + 4 + b.length, 0));
  let at = 0;
  for (const part of parts) {
    new DataView(out.buffer).setUint32(at, part.length, true);
    out.set(part, at + 4);
    at += 4 + part.length;
  }
  return out;
}

/**
 * What a hello must say for this party to go on with it: checks that need no
 * secret, in an order that names the likeliest misconfiguration first.
 */
function checkHello(p: HandshakeParams, h: Hello, expectedFrom: number | null): void {
  const reject = (msg: string) => {
    throw new RejectedConnection(msg, h.from);
  };
  if (h.to !== p.me) reject(`the peer (claiming party ${h.from}) wanted party ${h.to}, not party ${p.me}`);
  if (h.from === p.me) reject(`the peer claims to be party ${p.me}, which is this party`);
  if (expectedFrom !== null && h.from !== expectedFrom) {
    reject(`party ${h.from} answered where party ${expectedFrom} was dialed`);
  }
  if (h.secure !== (p.identity !== null)) {
    const [tls, plain] = h.secure ? [h.from, p.me] : [p.me, h.from];
    throw new SetupError(
      `party ${plain} runs --insecure (plain TCP) and party ${tls} does not: all three must use the same mode`,
    );
  }
  if (h.session !== p.session) {
    throw new SetupError(
      `session: party ${p.me} has ${printable(p.session)}, party ${h.from} has ${printable(h.session)}`,
    );
  }
  const id = p.identity;
  if (!id) return;
  if (h.ca !== id.caFingerprint) {
    reject(
      `party ${h.from}'s parties file has another CA (${short(h.ca!)}..., this party's ${
        short(id.caFingerprint)
      }...): ` +
        `the three must use the files of one \`cryptgpu certs\` run`,
    );
  }
  if (h.cert !== id.fingerprints[h.from]) {
    reject(`the peer claiming to be party ${h.from} presents another certificate than the parties file's`);
  }
}

/** The channel's keys and the PRF key, from the X25519 secret and the transcript. */
async function deriveKeys(
  mine: CryptoKeyPair,
  theirPub: string,
  helloD: Uint8Array,
  helloL: Uint8Array,
  dialer: boolean,
): Promise<{ send: Uint8Array; recv: Uint8Array; prf: Uint8Array }> {
  const pub = await crypto.subtle.importKey("raw", fromHex(theirPub), { name: "X25519" }, false, []);
  const shared = await crypto.subtle.deriveBits({ name: "X25519", public: pub }, mine.privateKey, 256);
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const salt = await crypto.subtle.digest("SHA-256", transcript("keys", helloD, helloL));
  const okm = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt, info: encoder.encode(`${LABEL} keys`) },
      ikm,
      3 * KEY_BYTES * 8,
    ),
  );
  const toL = okm.slice(0, KEY_BYTES), toD = okm.slice(KEY_BYTES, 2 * KEY_BYTES);
  return { send: dialer ? toL : toD, recv: dialer ? toD : toL, prf: okm.slice(2 * KEY_BYTES) };
}

/**
 * The last step on both sides: each sends its settings on the new channel
 * (sealed: the first frame that decrypts confirms the keys) and compares the
 * peer's with its own, naming the first setting that differs.
 */
async function agree(p: HandshakeParams, peer: number, channel: Channel): Promise<void> {
  const [, theirs] = await Promise.all([
    channel.sendSetup(encoder.encode(JSON.stringify(p.settings))),
    channel.recvSetup(SETTINGS_MAX_BYTES),
  ]);
  let other: Settings;
  try {
    other = JSON.parse(decoder.decode(theirs));
  } catch {
    throw new SetupError(`party ${peer}'s settings message is not JSON`);
  }
  if (typeof other !== "object" || other === null) throw new SetupError(`party ${peer}'s settings are malformed`);
  // in the order this party lists them (what identifies the run first), then any the peer has in addition
  for (const k of new Set([...Object.keys(p.settings), ...Object.keys(other)])) {
    const a = p.settings[k], b = other[k];
    if (a !== b) {
      throw new SetupError(
        `party ${p.me} and party ${peer} disagree on ${printable(k, false)}: party ${p.me} has ${
          printable(a, false)
        }, party ${peer} has ${printable(b, false)}`,
      );
    }
  }
}

function channelOf(peer: number, link: Link, keys: { send: Uint8Array; recv: Uint8Array }, secure: boolean): Channel {
  return new Channel(peer, link, secure ? { send: new GcmKey(keys.send), recv: new GcmKey(keys.recv) } : null);
}

function claimedParty(hello: Uint8Array): number | null {
  try {
    const from = JSON.parse(decoder.decode(hello))?.from;
    return Number.isInteger(from) && from >= 0 && from <= 2 ? from : null;
  } catch {
    return null;
  }
}

/** The dialing side, on a fresh connection to party `to`. */
export async function dialerHandshake(p: HandshakeParams, link: Link, to: number): Promise<LinkSecrets> {
  const e = await ephemeral();
  const helloD = encoder.encode(JSON.stringify(myHello(p, to, e.pub)));
  await writeMessage(link, helloD);
  const helloLBytes = await readMessage(link, "hello");
  let h: Hello;
  try {
    const answer = parseHello(helloLBytes);
    if ("refused" in answer) {
      throw new SetupError(`party ${to} refused the connection: ${printable(answer.refused, false)}`);
    }
    h = answer.hello;
    checkHello(p, h, to);
  } catch (err) {
    // From the address of the party this one dialed, a refusal or a mismatch is a misconfiguration (or a
    // relay): waiting will not change it.
    throw err instanceof RejectedConnection ? new SetupError(err.message) : err;
  }
  if (p.identity) {
    const sig = await readMessage(link, "signature");
    if (!verifyTranscript(p.identity.certs[to], transcript("listener", helloD, helloLBytes), sig)) {
      throw new SetupError(
        `the peer at party ${to}'s address did not sign with party ${to}'s key: an impostor or a relay`,
      );
    }
    await writeMessage(link, signTranscript(p.identity.key, transcript("dialer", helloD, helloLBytes)));
  }
  const keys = await deriveKeys(e.key, h.ephemeral, helloD, helloLBytes, true);
  const channel = channelOf(to, link, keys, p.identity !== null);
  await agree(p, to, channel);
  return { channel, prfKey: keys.prf };
}

/**
 * The listening side, on a connection from anyone. Until the peer's
 * signature verifies, every failure is a RejectedConnection (the caller
 * drops the connection and keeps waiting); after it, the peer is genuine and
 * a mismatch is a SetupError.
 */
export async function listenerHandshake(
  p: HandshakeParams,
  link: Link,
  expected: readonly number[],
  progress: { claimed: number | null } = { claimed: null },
): Promise<LinkSecrets & { peer: number }> {
  const helloDBytes = await readMessage(link, "hello");
  let h: Hello;
  try {
    const parsed = parseHello(helloDBytes);
    if ("refused" in parsed) throw new RejectedConnection("the peer sent a refusal instead of a hello");
    h = parsed.hello;
    if (!expected.includes(h.from)) {
      throw new RejectedConnection(
        `a peer claiming to be party ${h.from} dialed party ${p.me}, which only party ${expected.join(" and ")} may`,
        h.from,
      );
    }
    checkHello(p, h, null);
    progress.claimed = h.from; // for the listener's report, should this connection fail from here on
  } catch (err) {
    // Nothing is proven yet, so nothing here may end setup: an outsider could send any hello. Tell the dialer
    // why (nothing secret), so that a misconfigured genuine peer names the cause on its side and stops.
    const why = (err as Error).message;
    await writeMessage(link, encoder.encode(JSON.stringify({ protocol: "cryptgpu", refused: why.slice(0, 1000) })))
      .catch(() => {});
    throw err instanceof RejectedConnection ? err : new RejectedConnection(why, claimedParty(helloDBytes));
  }
  const e = await ephemeral();
  const helloL = encoder.encode(JSON.stringify(myHello(p, h.from, e.pub)));
  await writeMessage(link, helloL);
  if (p.identity) {
    await writeMessage(link, signTranscript(p.identity.key, transcript("listener", helloDBytes, helloL)));
    const sig = await readMessage(link, "signature");
    if (!verifyTranscript(p.identity.certs[h.from], transcript("dialer", helloDBytes, helloL), sig)) {
      throw new RejectedConnection(
        `a peer claiming to be party ${h.from} did not sign with party ${h.from}'s key`,
        h.from,
      );
    }
  }
  const keys = await deriveKeys(e.key, h.ephemeral, helloDBytes, helloL, false);
  const channel = channelOf(h.from, link, keys, p.identity !== null);
  await agree(p, h.from, channel);
  return { channel, prfKey: keys.prf, peer: h.from };
}
