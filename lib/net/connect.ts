/**
 * Making the mesh's three links: over plain TCP sockets, the lower-numbered
 * party of each pair listens and the higher one dials, and every link then
 * runs its handshake (handshake.ts). Every step has a deadline, so a silent
 * listener, a stopped peer or a client that never speaks ends setup with a
 * line naming the party and the step, never a hang.
 *
 * The listener survives strangers: a connection that fails before its peer
 * has proven who it is (no hello, garbage, a wrong CA, a bad signature, a
 * second connection) is dropped and logged, and the listener keeps accepting
 * until the genuine peer arrives or the deadline passes.
 */
import type { Identity } from "./auth.ts";
import type { PartiesConfig } from "./config.ts";
import { beforeDeadline, seconds, sleep, StepTimeout } from "./deadline.ts";
import {
  dialerHandshake,
  type HandshakeParams,
  type LinkSecrets,
  listenerHandshake,
  RejectedConnection,
  type Settings,
  SetupError,
} from "./handshake.ts";
import { ConnLink, PeerClosedError } from "./link.ts";

export class MeshError extends Error {}

/** Connections accepted but not yet authenticated, at most: a flood of idle sockets cannot exhaust the listener. */
const MAX_PENDING = 16;

export interface ConnectParams {
  party: number;
  config: PartiesConfig;
  session: string;
  settings: Settings;
  identity: Identity | null;
  deadline: number;
  timeoutMs: number;
  /** Where dropped connections are reported (stderr by default). */
  log: (line: string) => void;
}

function listenHost(host: string): string {
  return /^(127\.|localhost$|::1$|\[::1\]$)/.test(host) ? host.replace(/^\[|\]$/g, "") : "0.0.0.0";
}
const unbracket = (host: string) => host.replace(/^\[|\]$/g, "");
const where = (c: ConnectParams, j: number) => `${c.config.parties[j].host}:${c.config.parties[j].port}`;
const handshakeParams = (c: ConnectParams): HandshakeParams => ({
  me: c.party,
  session: c.session,
  identity: c.identity,
  settings: c.settings,
});

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** The three links of this party, indexed by peer (null at its own index). */
export async function connectLinks(c: ConnectParams): Promise<(LinkSecrets | null)[]> {
  const higher = [0, 1, 2].filter((j) => j > c.party), lower = [0, 1, 2].filter((j) => j < c.party);
  const listener = higher.length ? listen(c) : null;
  const made: LinkSecrets[] = [];
  const keep = <T extends LinkSecrets>(s: T) => (made.push(s), s);
  try {
    const [accepted, dialed] = await Promise.all([
      listener ? acceptPeers(c, listener, higher, keep) : Promise.resolve(new Map<number, LinkSecrets>()),
      Promise.all(lower.map((j) => dialPeer(c, j).then(keep))),
    ]);
    const links: (LinkSecrets | null)[] = [null, null, null];
    for (const [j, s] of accepted) links[j] = s;
    lower.forEach((j, k) => (links[j] = dialed[k]));
    return links;
  } catch (e) {
    for (const s of made) s.channel.close();
    throw e;
  } finally {
    if (listener) closeQuietly(listener);
  }
}

function listen(c: ConnectParams): Deno.Listener {
  const me = c.config.parties[c.party];
  try {
    return Deno.listen({ hostname: listenHost(me.host), port: me.port });
  } catch (e) {
    throw new MeshError(`party ${c.party}: cannot listen on ${me.host}:${me.port}: ${(e as Error).message}`);
  }
}

/**
 * Accepts until every party of `from` has authenticated. Each connection's
 * handshake runs on its own, against the setup deadline; only a SetupError
 * (a genuine peer that disagrees) ends the wait early.
 */
function acceptPeers(
  c: ConnectParams,
  listener: Deno.Listener,
  from: number[],
  keep: <T extends LinkSecrets>(s: T) => T,
): Promise<Map<number, LinkSecrets>> {
  const done = new Map<number, LinkSecrets>(), pending = new Set<Deno.Conn>();
  const lastRefusal = new Map<number, string>();
  const me = c.config.parties[c.party];
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      closeQuietly(listener);
      for (const conn of pending) closeQuietly(conn);
      if (e) reject(e);
      else resolve(done);
    };
    const timer = setTimeout(() => {
      const missing = from.filter((j) => !done.has(j));
      const why = missing.map((j) =>
        lastRefusal.has(j)
          ? `the last connection claiming to be party ${j} was refused: ${lastRefusal.get(j)}`
          : `no connection from party ${j} arrived`
      );
      finish(
        new MeshError(
          `party ${c.party}: party ${missing.join(" and ")} did not connect to ${me.host}:${me.port} within ${
            seconds(c.timeoutMs)
          } (${why.join("; ")})`,
        ),
      );
    }, Math.max(0, c.deadline - Date.now()));
    (async () => {
      while (!settled) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch (e) {
          if (!settled) {
            finish(new MeshError(`party ${c.party}: accepting on port ${me.port} failed: ${(e as Error).message}`));
          }
          return;
        }
        const addr = conn.remoteAddr as Deno.NetAddr;
        const peerName = `${addr.hostname}:${addr.port}`;
        if (pending.size >= MAX_PENDING) {
          c.log(
            `party ${c.party}: dropped a connection from ${peerName}: ${MAX_PENDING} unauthenticated connections already open`,
          );
          closeQuietly(conn);
          continue;
        }
        (conn as Deno.TcpConn).setNoDelay(true);
        pending.add(conn);
        const link = new ConnLink(c.identity !== null, conn);
        const progress = { claimed: null as number | null };
        beforeDeadline(
          listenerHandshake(handshakeParams(c), link, from, progress),
          c.deadline,
          "handshake",
          () => link.close(),
        )
          .then((s) => {
            pending.delete(conn);
            if (settled || done.has(s.peer)) {
              if (!settled) c.log(`party ${c.party}: dropped a second connection from party ${s.peer} (${peerName})`);
              s.channel.close();
              return;
            }
            done.set(keep(s).peer, s);
            if (from.every((j) => done.has(j))) finish();
          })
          .catch((e) => {
            pending.delete(conn);
            link.close();
            if (settled) return;
            if (e instanceof SetupError) {
              finish(new MeshError(`party ${c.party}: ${e.message}`));
              return;
            }
            const why = e instanceof StepTimeout
              ? progress.claimed === null
                ? "it sent no hello before the deadline"
                : "it did not finish the handshake before the deadline"
              : e instanceof PeerClosedError
              ? "it closed the connection during the handshake"
              : (e as Error).message;
            const claimed = e instanceof RejectedConnection && e.claimed !== null ? e.claimed : progress.claimed;
            if (claimed !== null) lastRefusal.set(claimed, why);
            c.log(`party ${c.party}: dropped a connection from ${peerName}: ${why}`);
          });
      }
    })();
  });
}

/**
 * Dials party j until a handshake completes or the deadline passes. The peer
 * may not be listening yet (refused: try again); a refusal or a mismatch from
 * the party at j's address is final.
 */
async function dialPeer(c: ConnectParams, j: number): Promise<LinkSecrets> {
  const peer = c.config.parties[j];
  let last = "no answer";
  while (Date.now() < c.deadline) {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({
        hostname: unbracket(peer.host),
        port: peer.port,
        signal: AbortSignal.timeout(Math.max(1, c.deadline - Date.now())),
      });
    } catch (e) {
      last = `TCP connect: ${(e as Error).message}`;
      await sleep(100);
      continue;
    }
    conn.setNoDelay(true);
    const link = new ConnLink(c.identity !== null, conn);
    try {
      return await beforeDeadline(
        dialerHandshake(handshakeParams(c), link, j),
        c.deadline,
        "handshake",
        () => link.close(),
      );
    } catch (e) {
      link.close();
      if (e instanceof SetupError || e instanceof RejectedConnection) {
        throw new MeshError(`party ${c.party}: ${e.message}`);
      }
      if (e instanceof StepTimeout) {
        last =
          `party ${j} accepted the connection but did not complete the handshake (a stopped process, or not cryptgpu)`;
        break;
      }
      last = e instanceof PeerClosedError
        ? `party ${j} closed the connection during the handshake`
        : `handshake: ${(e as Error).message}`;
      await sleep(200);
    }
  }
  throw new MeshError(
    `party ${c.party}: could not set up the link to party ${j} at ${where(c, j)} within ${
      seconds(c.timeoutMs)
    }: ${last}`,
  );
}
