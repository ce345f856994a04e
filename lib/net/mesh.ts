/**
 * The three-party mesh: one link per pair of parties (connect.ts), set up by
 * a handshake that authenticates both ends against the parties file alone,
 * derives the link's keys and compares everything the three must agree on
 * (handshake.ts); then rounds in which every party sends and receives at
 * once, each frame sealed under its link's keys (channel.ts).
 *
 * A peer that disconnects or stalls makes this party fail with an error
 * naming the peer and the protocol step, and close its links so that the
 * third party fails too instead of waiting.
 */
import { type Identity, loadIdentity, partyCommonName } from "./auth.ts";
import { type Channel, PeerAbortError, PeerClosedError } from "./channel.ts";
import { allLoopback, type PartiesConfig } from "./config.ts";
import { connectLinks, MeshError } from "./connect.ts";
import { PROTOCOL_VERSION, type Settings } from "./handshake.ts";

export { MeshError, partyCommonName, PROTOCOL_VERSION };

export interface MeshOptions {
  party: number;
  config: PartiesConfig;
  /** Identifies one joint run; all three must agree. */
  session: string;
  /** Everything the three must agree on (file ids, model, fixed point, training settings), compared at setup. */
  settings?: Settings;
  /** Plain TCP without encryption or authentication; refused unless every host is loopback. */
  insecure?: boolean;
  /** The whole of setup: TCP, handshake, key exchange, agreement. */
  connectTimeoutMs?: number;
  /** How long a round may wait for a peer before failing. */
  recvTimeoutMs?: number;
  /** Where connections dropped during setup are reported (stderr by default). */
  log?: (line: string) => void;
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
  #prfKeys: (Uint8Array | null)[];
  #recvTimeoutMs: number;
  #failed: Error | null = null;
  /** The round now running and its step: a second round meanwhile means two protocol calls overlap. */
  #inFlight: { round: number; step: string } | null = null;

  private constructor(
    party: number,
    channels: (Channel | null)[],
    prfKeys: (Uint8Array | null)[],
    secure: boolean,
    recvTimeoutMs: number,
  ) {
    this.party = party;
    this.#channels = channels;
    this.#prfKeys = prfKeys;
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
        "the parties file has no certificates and keys (ca, cert, key); make them with `cryptgpu certs`, or use --insecure on loopback",
      );
    }
    let identity: Identity | null = null;
    if (secure) {
      const t = config.tls!;
      try {
        identity = loadIdentity(party, t.ca, t.certs, t.keys[party]!);
      } catch (e) {
        throw new MeshError(`party ${party}: ${(e as Error).message}`);
      }
    }
    const timeoutMs = o.connectTimeoutMs ?? 30_000;
    const links = await connectLinks({
      party,
      config,
      session: o.session,
      settings: o.settings ?? {},
      identity,
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      log: o.log ?? ((line) => console.error(line)),
    });
    return new Mesh(
      party,
      links.map((l) => l?.channel ?? null),
      links.map((l) => l?.prfKey ?? null),
      secure,
      o.recvTimeoutMs ?? 60_000,
    );
  }

  /** The PRF key this party shares with `peer` alone, derived at setup (it never crossed the wire). */
  prfKey(peer: number): Uint8Array {
    const k = this.#prfKeys[peer];
    if (!k) throw new MeshError(`party ${this.party} has no link to party ${peer}`);
    return k;
  }

  /**
   * One round: every send and receive of this party at once. Every party
   * calls round() for every round of a protocol, even with nothing to move,
   * so that round numbers stay in step.
   */
  async round(sends: readonly Send[], recvs: readonly Recv[]): Promise<void> {
    if (this.#failed) throw this.#failed;
    // Nonces and round numbers stay in step only if a party's protocol calls run one after another.
    if (this.#inFlight) {
      throw new MeshError(
        `two protocol calls overlap on party ${this.party}: round ${this.rounds} of step '${this.step}' started while round ${this.#inFlight.round} of step '${this.#inFlight.step}' runs; protocol calls on one Party must be awaited one after another`,
      );
    }
    const r = this.rounds++;
    this.#inFlight = { round: r, step: this.step };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const waiting = [...new Set(recvs.map((x) => x.from))].join(" and ");
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
      clearTimeout(timer);
      this.#failed = e instanceof Error ? e : new Error(String(e));
      // Tell both peers why before closing, so that the third party names the cause, not the messenger.
      await Promise.all(this.#channels.map((c) => c?.abort(this.#failed!.message)));
      throw this.#failed;
    } finally {
      clearTimeout(timer);
      this.#inFlight = null;
    }
    if (this.onReceive) { for (const x of recvs) this.onReceive(x.from, x.into); }
  }

  #channel(peer: number): Channel {
    const c = this.#channels[peer];
    if (!c) throw new MeshError(`party ${this.party} has no channel to party ${peer}`);
    return c;
  }

  #peerError(peer: number, e: unknown, doing: string): never {
    if (e instanceof PeerAbortError) {
      throw new MeshError(
        `party ${this.party}: party ${peer} stopped the run in step '${this.step}' (round ${
          this.rounds - 1
        }); its cause: ${e.reason}`,
        { cause: e },
      );
    }
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
