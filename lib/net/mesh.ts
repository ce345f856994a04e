/**
 * The three-party mesh: one connection per pair of parties, a handshake that
 * checks who is on the other end and that both run the same session with the
 * same settings, and rounds in which every party sends and receives at once.
 *
 * Over TLS every party listens and dials both others (one connection per
 * direction, see link.ts), and the two ends of each connection prove their
 * party identity with a signature (auth.ts). Over plain TCP the
 * lower-numbered party of a pair listens and the higher one dials. Dialing
 * retries until a deadline. A peer that disconnects or stalls makes this party
 * fail with an error naming the peer and the protocol step, and close its
 * links so that the third party fails too instead of waiting.
 */
import type { KeyObject, X509Certificate } from "node:crypto";
import { partyCertificates, partyCommonName, privateKey, signHellos, verifyHellos } from "./auth.ts";
import { Channel, PeerClosedError } from "./channel.ts";
import { allLoopback, type PartiesConfig } from "./config.ts";
import { ConnLink, type Link } from "./link.ts";

export const PROTOCOL_VERSION = 1;

export interface MeshOptions {
  party: number;
  config: PartiesConfig;
  /** Identifies one joint run; all three must agree. */
  session: string;
  /** Settings the three must agree on (fixed-point bits, ...), compared at the handshake. */
  settings?: Record<string, string | number | boolean>;
  /** Plain TCP instead of TLS; refused unless every host is loopback. */
  insecure?: boolean;
  connectTimeoutMs?: number;
  /** How long a round may wait for a peer before failing. */
  recvTimeoutMs?: number;
}

export class MeshError extends Error {}

export { partyCommonName };

interface Hello {
  protocol: "cryptgpu";
  version: number;
  party: number;
  session: string;
  settings: Record<string, string | number | boolean>;
  /** Fresh per connection: what makes the peer's signature over the hellos unique to it. */
  nonce: string;
}

/** This party's key and every party's certificate, for the signatures of the handshake. */
interface Identity {
  key: KeyObject;
  certs: X509Certificate[];
}

export interface Send {
  to: number;
  data: Uint8Array;
}
export interface Recv {
  from: number;
  into: Uint8Array;
}

export interface MeshStats {
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  /** Payload bytes sent to each peer, indexed by party. */
  sentTo: number[];
}

export class Mesh {
  readonly party: number;
  readonly secure: boolean;
  rounds = 0;
  /** The protocol step now running, for error messages. */
  step = "setup";
  /**
   * Sees every payload this party receives, after the round completes: the
   * party's whole view of the other parties, for audits and privacy tests.
   */
  onReceive: ((from: number, payload: Uint8Array) => void) | null = null;
  #channels: (Channel | null)[];
  #recvTimeoutMs: number;
  #failed: Error | null = null;

  private constructor(party: number, channels: (Channel | null)[], secure: boolean, recvTimeoutMs: number) {
    this.party = party;
    this.#channels = channels;
    this.secure = secure;
    this.#recvTimeoutMs = recvTimeoutMs;
  }

  get nextParty(): number {
    return (this.party + 1) % 3;
  }
  get prevParty(): number {
    return (this.party + 2) % 3;
  }

  static async connect(o: MeshOptions): Promise<Mesh> {
    const { party, config } = o;
    if (!Number.isInteger(party) || party < 0 || party > 2) {
      throw new MeshError(`party must be 0, 1 or 2, got ${party}`);
    }
    const secure = !o.insecure;
    if (!secure && !allLoopback(config.parties)) {
      throw new MeshError("--insecure (plain TCP) is only allowed when every party is on loopback");
    }
    if (secure && !config.tls) {
      throw new MeshError(
        "the parties file has no TLS material (ca, cert, key); make it with `cryptgpu certs`, or use --insecure on loopback",
      );
    }
    let identity: Identity | null = null;
    if (secure) {
      const t = config.tls!;
      try {
        identity = { key: privateKey(t.keys[party]!, party), certs: partyCertificates(t.ca, t.certs) };
      } catch (e) {
        throw new MeshError(`party ${party}: ${(e as Error).message}`);
      }
    }
    const deadline = Date.now() + (o.connectTimeoutMs ?? 30_000);
    const hello = (): Hello => ({
      protocol: "cryptgpu",
      version: PROTOCOL_VERSION,
      party,
      session: o.session,
      settings: o.settings ?? {},
      nonce: [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join(""),
    });
    const links = identity ? await connectTls(o, identity, hello, deadline) : await connectTcp(o, hello, deadline);
    const channels = links.map((l, j) => (l ? new Channel(j, l) : null));
    return new Mesh(party, channels, secure, o.recvTimeoutMs ?? 60_000);
  }

  /**
   * One round: every send and receive of this party at once. Every party
   * calls round() for every round of a protocol, even with nothing to move,
   * so that round numbers stay in step.
   */
  async round(sends: readonly Send[], recvs: readonly Recv[]): Promise<void> {
    if (this.#failed) throw this.#failed;
    const r = this.rounds++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const waiting = recvs.map((x) => x.from).join(" and ");
        reject(
          new MeshError(
            `party ${this.party}: no message from party ${waiting} within ${this.#recvTimeoutMs} ms in step '${this.step}' (round ${r})`,
          ),
        );
      }, this.#recvTimeoutMs);
    });
    try {
      // Frames to (and from) one peer go one after another on its stream;
      // the two peers and the two directions run at once.
      const inOrder = <T>(items: readonly T[], peer: (t: T) => number, fn: (t: T) => Promise<void>) =>
        [0, 1, 2].map(async (j) => {
          for (const t of items) if (peer(t) === j) await fn(t);
        });
      await Promise.race([
        Promise.all([
          ...inOrder(
            sends,
            (s) => s.to,
            (s) => this.#channel(s.to).send(r, s.data).catch((e) => this.#peerError(s.to, e, "sending")),
          ),
          ...inOrder(
            recvs,
            (x) => x.from,
            (x) => this.#channel(x.from).recvInto(r, x.into).catch((e) => this.#peerError(x.from, e, "receiving")),
          ),
        ]),
        timeout,
      ]);
    } catch (e) {
      this.#failed = e instanceof Error ? e : new Error(String(e));
      this.close();
      throw this.#failed;
    } finally {
      clearTimeout(timer);
    }
    if (this.onReceive) { for (const x of recvs) this.onReceive(x.from, x.into); }
  }

  #channel(peer: number): Channel {
    const c = this.#channels[peer];
    if (!c) throw new MeshError(`party ${this.party} has no channel to party ${peer}`);
    return c;
  }

  #peerError(peer: number, e: unknown, doing: string): never {
    const cause = e instanceof PeerClosedError ? "disconnected" : `failed (${(e as Error).message})`;
    throw new MeshError(
      `party ${this.party}: party ${peer} ${cause} while ${doing} in step '${this.step}' (round ${this.rounds - 1})`,
      {
        cause: e,
      },
    );
  }

  stats(): MeshStats {
    const sentTo = this.#channels.map((c) => c?.bytesSent ?? 0);
    return {
      rounds: this.rounds,
      bytesSent: sentTo.reduce((a, b) => a + b, 0),
      bytesReceived: this.#channels.reduce((a, c) => a + (c?.bytesReceived ?? 0), 0),
      sentTo,
    };
  }

  close(): void {
    for (const c of this.#channels) c?.close();
  }
}

// ------------------------------------------------------------ connecting

function listenHost(host: string): string {
  return /^(127\.|localhost$|::1$|\[::1\]$)/.test(host) ? host.replace(/^\[|\]$/g, "") : "0.0.0.0";
}

async function withDeadline<T>(p: Promise<T>, deadline: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout();
          reject(new MeshError(what));
        }, Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const unbracket = (host: string) => host.replace(/^\[|\]$/g, "");

/** Closes connections, ignoring those already closed. */
function closeConns(conns: Iterable<Deno.Conn>): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* already closed */ }
  }
}

/** Awaits both, and if either fails closes what the other made before rethrowing. */
async function bothOrNeither<A extends Deno.Conn, B extends Deno.Conn>(a: Promise<A[]>, b: Promise<B[]>) {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === "rejected" || y.status === "rejected") {
    if (x.status === "fulfilled") closeConns(x.value);
    if (y.status === "fulfilled") closeConns(y.value);
    throw x.status === "rejected" ? x.reason : (y as PromiseRejectedResult).reason;
  }
  return [x.value, y.value] as const;
}

/** Plain TCP: one connection per pair, the lower-numbered party listening. Links indexed by peer. */
async function connectTcp(o: MeshOptions, hello: () => Hello, deadline: number): Promise<(Link | null)[]> {
  const higher = [0, 1, 2].filter((j) => j > o.party), lower = [0, 1, 2].filter((j) => j < o.party);
  const [acc, dia] = await bothOrNeither(
    higher.length ? accept(o, higher, deadline, listenTcp(o)) : Promise.resolve([]),
    Promise.all(lower.map((j) => dial(o, j, deadline))),
  );
  for (const c of [...acc, ...dia]) (c as Deno.TcpConn).setNoDelay(true);
  const links: (Link | null)[] = [null, null, null];
  try {
    const peers = await Promise.all([
      ...acc.map((c) => handshake(new ConnLink(false, c), hello(), null, deadline, null)),
      ...dia.map((c, k) => handshake(new ConnLink(false, c), hello(), lower[k], deadline, null)),
    ]);
    [...acc, ...dia].forEach((c, k) => {
      if (links[peers[k]]) throw new MeshError(`party ${peers[k]} connected twice`);
      links[peers[k]] = new ConnLink(false, c);
    });
    return links;
  } catch (e) {
    closeConns([...acc, ...dia]);
    throw e;
  }
}

/**
 * TLS: this party dials both others (its sending connections, Nagle off) and
 * accepts their two (its receiving ones); every connection's two ends sign
 * their hellos. Links indexed by peer.
 */
async function connectTls(
  o: MeshOptions,
  me: Identity,
  hello: () => Hello,
  deadline: number,
): Promise<(Link | null)[]> {
  const peers = [0, 1, 2].filter((j) => j !== o.party);
  const [incoming, outgoing] = await bothOrNeither(
    accept(o, peers, deadline, listenTls(o)),
    Promise.all(peers.map((j) => dial(o, j, deadline))),
  );
  try {
    const [from, to] = await Promise.all([
      Promise.all(incoming.map((c) => handshake(new ConnLink(true, c), hello(), null, deadline, me))),
      Promise.all(outgoing.map((c, k) => handshake(new ConnLink(true, c), hello(), peers[k], deadline, me))),
    ]);
    const links: (Link | null)[] = [null, null, null];
    for (const [k, j] of to.entries()) {
      const ins = from.flatMap((p, i) => (p === j ? [incoming[i]] : []));
      if (ins.length !== 1) throw new MeshError(`party ${o.party}: party ${j} connected ${ins.length} times`);
      links[j] = new ConnLink(true, outgoing[k], ins[0]);
    }
    return links;
  } catch (e) {
    closeConns([...incoming, ...outgoing]);
    throw e;
  }
}

function listenTcp(o: MeshOptions): Deno.Listener {
  const me = o.config.parties[o.party];
  try {
    return Deno.listen({ hostname: listenHost(me.host), port: me.port });
  } catch (e) {
    throw new MeshError(`party ${o.party}: cannot listen on ${me.host}:${me.port}: ${(e as Error).message}`);
  }
}

function listenTls(o: MeshOptions): Deno.TlsListener {
  const me = o.config.parties[o.party], t = o.config.tls!;
  try {
    return Deno.listenTls({
      hostname: listenHost(me.host),
      port: me.port,
      cert: t.certs[o.party],
      key: t.keys[o.party]!,
    });
  } catch (e) {
    throw new MeshError(`party ${o.party}: cannot listen on ${me.host}:${me.port}: ${(e as Error).message}`);
  }
}

/**
 * Accepts a connection from each party of `from` (who is who, the handshake
 * tells). A TLS connection whose handshake fails (a client that does not
 * trust our certificate, a stray scanner) is dropped and the wait goes on;
 * the dialing side reports the reason.
 */
async function accept(o: MeshOptions, from: number[], deadline: number, listener: Deno.Listener): Promise<Deno.Conn[]> {
  const me = o.config.parties[o.party], count = from.length;
  const ready: Deno.Conn[] = [], pending = new Set<Deno.Conn>();
  try {
    return await withDeadline(
      new Promise<Deno.Conn[]>((resolve, reject) => {
        (async () => {
          while (ready.length < count) {
            const c = await listener.accept();
            if (!("handshake" in c)) {
              ready.push(c);
              continue;
            }
            pending.add(c);
            (c as Deno.TlsConn).handshake().then(
              () => ready.push(c) === count && resolve(ready),
              () => closeConns([c]),
            ).finally(() => pending.delete(c));
          }
          if (ready.length === count) resolve(ready);
        })().catch(reject);
      }),
      deadline,
      `party ${o.party}: timed out waiting for party ${from.join(" and ")} to connect on port ${me.port}`,
      () => closeConns([...ready, ...pending]),
    );
  } finally {
    listener.close();
  }
}

/** Dials party j until it answers or the deadline passes; over TLS, checks its certificate (CA and host). */
async function dial(o: MeshOptions, j: number, deadline: number): Promise<Deno.Conn> {
  const peer = o.config.parties[j], host = unbracket(peer.host);
  let last: unknown;
  while (Date.now() < deadline) {
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname: host, port: peer.port });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    if (o.insecure) return tcp;
    tcp.setNoDelay(true); // before TLS starts: this connection carries our frames to party j
    try {
      const c = await Deno.startTls(tcp, { hostname: host, caCerts: [o.config.tls!.ca] });
      await c.handshake();
      return c;
    } catch (e) {
      closeConns([tcp]);
      throw new MeshError(
        `party ${o.party}: TLS to party ${j} at ${peer.host}:${peer.port} failed: ${(e as Error).message}`,
      );
    }
  }
  throw new MeshError(
    `party ${o.party}: could not reach party ${j} at ${peer.host}:${peer.port} before the deadline: ${
      (last as Error)?.message ?? "no answer"
    }`,
  );
}

/** Length-prefixed messages of the handshake. */
async function writeMessage(link: Link, body: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, true);
  frame.set(body, 4);
  await link.write(frame);
}

async function readMessage(link: Link, me: number): Promise<Uint8Array> {
  const len = new Uint8Array(4);
  await link.readInto(len);
  const n = new DataView(len.buffer).getUint32(0, true);
  if (n > 65536) throw new MeshError(`party ${me}: the peer's handshake is malformed (${n} bytes)`);
  const buf = new Uint8Array(n);
  await link.readInto(buf);
  return buf;
}

/**
 * Exchanges hellos (and with an identity, signatures over both) on one
 * connection and checks the peer: the party it claims to be (the one dialed,
 * if this side dialed), its signature, version, session and settings.
 * Returns the peer's index; closes the link on any refusal.
 */
async function handshake(
  link: Link,
  hello: Hello,
  expected: number | null,
  deadline: number,
  identity: Identity | null,
): Promise<number> {
  const me = hello.party;
  const mine = new TextEncoder().encode(JSON.stringify(hello));
  const exchange = async (): Promise<[Hello, boolean | null]> => {
    const [, theirs] = await Promise.all([writeMessage(link, mine), readMessage(link, me)]);
    let peer: Hello;
    try {
      peer = JSON.parse(new TextDecoder().decode(theirs));
    } catch {
      throw new MeshError(`party ${me}: the peer's handshake is not cryptgpu's`);
    }
    if (!identity) return [peer, null];
    const [, sig] = await Promise.all([
      writeMessage(link, signHellos(identity.key, mine, theirs)),
      readMessage(link, me),
    ]);
    // what the peer signed is checked below, once its claimed party is known to be valid
    return [peer, verifyHellosOf(identity, peer, theirs, mine, sig)];
  };
  const [peer, verified] = await withDeadline(
    exchange(),
    deadline,
    `party ${me}: handshake timed out`,
    () => link.close(),
  ).catch((e) => {
    link.close();
    throw e instanceof MeshError ? e : new MeshError(`party ${me}: handshake failed: ${(e as Error).message}`);
  });
  const fail = (msg: string): never => {
    link.close();
    throw new MeshError(`handshake refused: ${msg}`);
  };
  if (peer?.protocol !== "cryptgpu") fail(`party ${me}: the peer does not speak the cryptgpu protocol`);
  const p = peer.party;
  if (!Number.isInteger(p) || p < 0 || p > 2 || p === me) fail(`party ${me}: the peer claims to be party ${p}`);
  if (expected !== null && p !== expected) fail(`party ${me} dialed party ${expected} but party ${p} answered`);
  // over plain TCP the lower-numbered party of a pair listens; over TLS every party dials
  if (!identity && expected === null && p < me) {
    fail(`party ${me}: party ${p} dialed, but lower-numbered parties listen`);
  }
  if (identity && verified !== true) {
    fail(`party ${me}: the peer claiming to be party ${p} did not sign with party ${p}'s key`);
  }
  if (peer.version !== PROTOCOL_VERSION) {
    fail(`protocol version: party ${me} runs ${PROTOCOL_VERSION}, party ${p} runs ${peer.version}`);
  }
  if (peer.session !== hello.session) {
    fail(`session: party ${me} has '${hello.session}', party ${p} has '${peer.session}'`);
  }
  const keys = new Set([...Object.keys(hello.settings), ...Object.keys(peer.settings ?? {})]);
  for (const k of [...keys].sort()) {
    const mine = hello.settings[k], theirs = peer.settings?.[k];
    if (mine !== theirs) fail(`setting ${k}: party ${me} has ${mine}, party ${p} has ${theirs}`);
  }
  return p;
}

/** Whether `sig` is the claimed party's signature over (its hello, ours); false for an invalid claim. */
function verifyHellosOf(me: Identity, peer: Hello, theirs: Uint8Array, mine: Uint8Array, sig: Uint8Array): boolean {
  const cert = Number.isInteger(peer?.party) ? me.certs[peer.party] : undefined;
  return cert !== undefined && verifyHellos(cert, theirs, mine, sig);
}
