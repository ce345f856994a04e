/**
 * The three-party mesh: one connection per pair of parties, a handshake that
 * checks who is on the other end and that both run the same session with the
 * same settings, and rounds in which every party sends and receives at once.
 *
 * The lower-numbered party of a pair listens and the higher one dials, with
 * retries until a deadline. A peer that disconnects or stalls makes this party
 * fail with an error naming the peer and the protocol step, and close its
 * links so that the third party fails too instead of waiting.
 */
import * as tls from "node:tls";
import { Channel, PeerClosedError } from "./channel.ts";
import { allLoopback, type PartiesConfig } from "./config.ts";
import { type Link, TcpLink, TlsLink } from "./link.ts";

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

/** Certificates name their party as CN=cryptgpu-party-<i>. */
export const partyCommonName = (i: number) => `cryptgpu-party-${i}`;

interface Hello {
  protocol: "cryptgpu";
  version: number;
  party: number;
  session: string;
  settings: Record<string, string | number | boolean>;
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
    const deadline = Date.now() + (o.connectTimeoutMs ?? 30_000);
    const hello: Hello = {
      protocol: "cryptgpu",
      version: PROTOCOL_VERSION,
      party,
      session: o.session,
      settings: o.settings ?? {},
    };
    const channels: (Channel | null)[] = [null, null, null];
    const higher = [0, 1, 2].filter((j) => j > party), lower = [0, 1, 2].filter((j) => j < party);
    const closeAll = () => channels.forEach((c) => c?.close());
    try {
      const accepted = higher.length ? accept(o, higher, deadline) : Promise.resolve([]);
      const dialed = Promise.all(lower.map((j) => dial(o, j, deadline)));
      // Guard both before awaiting either, so a failure of one does not leave the other unhandled.
      const [acc, dia] = await Promise.allSettled([accepted, dialed]);
      if (acc.status === "rejected") {
        if (dia.status === "fulfilled") dia.value.forEach((l) => l.close());
        throw acc.reason;
      }
      if (dia.status === "rejected") {
        acc.value.forEach((l) => l.close());
        throw dia.reason;
      }
      const links: [number | null, Link][] = [
        ...acc.value.map((l) => [null, l] as [null, Link]),
        ...dia.value.map((l, k) => [lower[k], l] as [number, Link]),
      ];
      await Promise.all(links.map(async ([expected, link]) => {
        const peer = await handshake(link, hello, expected, deadline);
        if (channels[peer]) throw new MeshError(`party ${peer} connected twice`);
        channels[peer] = new Channel(peer, link);
      }));
    } catch (e) {
      closeAll();
      throw e;
    }
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

/** Accepts one connection from each higher-numbered party. */
async function accept(o: MeshOptions, from: number[], deadline: number): Promise<Link[]> {
  const me = o.config.parties[o.party];
  const waitMsg = () =>
    `party ${o.party}: timed out waiting for party ${from.join(" and ")} to connect on port ${me.port}`;
  if (o.insecure) {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: listenHost(me.host), port: me.port });
    } catch (e) {
      throw new MeshError(`party ${o.party}: cannot listen on ${me.host}:${me.port}: ${(e as Error).message}`);
    }
    const links: Link[] = [];
    try {
      await withDeadline(
        (async () => {
          for (const _ of from) links.push(new TcpLink(await listener.accept() as Deno.TcpConn));
        })(),
        deadline,
        waitMsg(),
        () => links.forEach((l) => l.close()),
      );
      return links;
    } finally {
      listener.close();
    }
  }
  const t = o.config.tls!;
  const server = tls.createServer({
    key: t.keys[o.party],
    cert: t.certs[o.party],
    ca: t.ca,
    requestCert: true,
    rejectUnauthorized: true,
  });
  const sockets: tls.TLSSocket[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      server.once(
        "error",
        (e: Error) => reject(new MeshError(`party ${o.party}: cannot listen on ${me.host}:${me.port}: ${e.message}`)),
      );
      server.listen(me.port, listenHost(me.host), () => resolve());
    });
    await withDeadline(
      new Promise<void>((resolve) => {
        server.on("secureConnection", (s: tls.TLSSocket) => {
          sockets.push(s);
          if (sockets.length === from.length) resolve();
        });
      }),
      deadline,
      waitMsg(),
      () => sockets.forEach((s) => s.destroy()),
    );
    return sockets.map((s) => {
      const cn = s.getPeerCertificate()?.subject?.CN;
      const link = new TlsLink(s);
      (link as TlsLink & { peerName?: string }).peerName = typeof cn === "string" ? cn : undefined;
      return link;
    });
  } finally {
    server.close();
  }
}

/** Dials party j until it answers or the deadline passes. */
async function dial(o: MeshOptions, j: number, deadline: number): Promise<Link> {
  const peer = o.config.parties[j];
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (o.insecure) {
        return new TcpLink(await Deno.connect({ hostname: peer.host.replace(/^\[|\]$/g, ""), port: peer.port }));
      }
      const t = o.config.tls!;
      const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({
          host: peer.host,
          port: peer.port,
          key: t.keys[o.party],
          cert: t.certs[o.party],
          ca: t.ca,
          // Identity is the party's certificate name, not the host name: hosts may be IPs.
          checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
            cert.subject?.CN === partyCommonName(j) ? undefined : new Error(
              `the certificate at ${peer.host}:${peer.port} is for ${cert.subject?.CN}, not ${partyCommonName(j)}`,
            ),
        }, () => resolve(s));
        s.once("error", reject);
      });
      const link = new TlsLink(socket);
      (link as TlsLink & { peerName?: string }).peerName = partyCommonName(j);
      return link;
    } catch (e) {
      last = e;
      const msg = (e as Error).message ?? "";
      if (/certificate|self.signed|unable to verify|alert/i.test(msg)) {
        throw new MeshError(`party ${o.party}: TLS to party ${j} at ${peer.host}:${peer.port} failed: ${msg}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new MeshError(
    `party ${o.party}: could not reach party ${j} at ${peer.host}:${peer.port} before the deadline: ${
      (last as Error)?.message ?? "no answer"
    }`,
  );
}

async function handshake(link: Link, hello: Hello, expected: number | null, deadline: number): Promise<number> {
  const body = new TextEncoder().encode(JSON.stringify(hello));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, true);
  frame.set(body, 4);
  const me = hello.party;
  const read = async (): Promise<Hello> => {
    const len = new Uint8Array(4);
    await link.readInto(len);
    const n = new DataView(len.buffer).getUint32(0, true);
    if (n > 65536) throw new MeshError(`party ${me}: the peer's handshake is malformed (${n} bytes)`);
    const buf = new Uint8Array(n);
    await link.readInto(buf);
    try {
      return JSON.parse(new TextDecoder().decode(buf));
    } catch {
      throw new MeshError(`party ${me}: the peer's handshake is not cryptgpu's`);
    }
  };
  const [, peer] = await withDeadline(
    Promise.all([link.write(frame), read()]),
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
  if (expected === null && p < me) fail(`party ${me}: party ${p} dialed, but lower-numbered parties listen`);
  const name = (link as Link & { peerName?: string }).peerName;
  if (link.secure && name !== partyCommonName(p)) fail(`party ${me}: party ${p}'s certificate is for ${name}`);
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
