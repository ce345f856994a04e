/**
 * Three parties over real loopback sockets in one process: each with its own
 * native backend, mesh and keys. `runParties(fn)` runs fn for the three at
 * once and returns their results in party order.
 */
import { NativeBackend } from "../../lib/native/backend.ts";
import { Mesh, type MeshOptions } from "../../lib/net/mesh.ts";
import { Party, type TruncationMode } from "../../lib/mpc/party.ts";
import { Randomness } from "../../lib/mpc/randomness.ts";
import { currentDevice } from "../helpers.ts";
import { assertLedgers } from "./ledger.ts";
import type { BShare } from "../../lib/mpc/binary.ts";
import type { RingTensor } from "../../lib/ring/tensor.ts";
import { exchange } from "../../lib/mpc/transfer.ts";

// Every test run records each party's draws; runParties checks the ledgers after fn (ledger.ts).
Randomness.recording = true;

// Below Linux's ephemeral range (32768-60999): an outgoing connection can hold a port there, and a party would then
// fail to listen on it. The fault tests take 10000-20000.
let nextPort = 20000 + Math.floor(Math.random() * 10000);

export function loopbackConfig(): MeshOptions["config"] {
  const base = nextPort;
  nextPort = nextPort + 3 > 32000 ? 20000 : nextPort + 3;
  return { parties: [0, 1, 2].map((i) => ({ host: "127.0.0.1", port: base + i })) };
}

export interface RunOptions {
  fracBits?: number;
  config?: MeshOptions["config"];
  insecure?: boolean;
  truncation?: TruncationMode;
  /**
   * Fixed PRF keys instead of the ones the handshake derives, indexed by pair:
   * keys[i] is k_i, shared by P_i and P_next(i) (pairIndex). Privacy tests
   * re-draw one key and keep the others.
   */
  keys?: readonly Uint8Array[];
  /** Filled with every payload each party receives (received[party]), with its round, peer and step. */
  received?: Received[][];
}

/** One payload a party received. */
export interface Received {
  round: number;
  from: number;
  step: string;
  payload: Uint8Array;
}

/** The index of the key parties a and b share: k_i belongs to P_i and P_next(i). */
export function pairIndex(a: number, b: number): number {
  return b === (a + 1) % 3 ? a : b;
}

export async function runParties<T>(fn: (p: Party) => Promise<T>, o: RunOptions = {}): Promise<T[]> {
  const config = o.config ?? loopbackConfig();
  const fracBits = o.fracBits ?? 20;
  const backends = [0, 1, 2].map(() => new NativeBackend({ device: currentDevice(), threads: 1 }));
  const meshes = await Promise.all(
    [0, 1, 2].map((party) =>
      Mesh.connect({
        party,
        config,
        session: "test",
        settings: { fracBits, truncation: o.truncation ?? "local" },
        insecure: o.insecure ?? true,
      })
    ),
  );
  try {
    const keys = o.keys;
    if (keys) meshes.forEach((m) => m.prfKey = (peer) => keys[pairIndex(m.party, peer)]);
    const received = o.received;
    if (received) {
      meshes.forEach((m, i) =>
        m.onReceive = (from, payload) =>
          received[i].push({ round: m.rounds - 1, from, step: m.step, payload: payload.slice() })
      );
    }
    const parties = meshes.map((m, i) => Party.setup(m, backends[i], fracBits, o.truncation));
    const results = await Promise.all(parties.map(fn));
    assertLedgers(parties.map((p) => p.rand.ledger!));
    return results;
  } finally {
    meshes.forEach((m) => m.close());
    backends.forEach((b) => b.dispose());
  }
}

/** Opens a binary sharing to every party (test only): each sends its `next` share to prev; the XOR of the three. */
export async function openBinary(b: BShare): Promise<RingTensor> {
  const p = b.party;
  const [missing] = await exchange(p.mesh, p.backend, [{ to: p.prev, tensor: b.next }], [{
    from: p.next,
    shape: b.shape,
    dtype: b.dtype,
  }]);
  using _m = missing;
  using x = b.cur.xor(b.next);
  return x.xor(missing);
}
