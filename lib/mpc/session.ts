/**
 * Opening one party's side of a three-party session from the command line's
 * settings: the parties file, the mesh (sealed channels unless insecure), the backend and
 * the key setup.
 */
import { type BackendOptions, NativeBackend } from "../native/backend.ts";
import { loadParties } from "../net/config.ts";
import { Mesh } from "../net/mesh.ts";
import type { Settings } from "../net/handshake.ts";
import { checkFracBits, FIXED_DEFAULT_BITS } from "../ring/fixed.ts";
import { Party, TRUNCATION_MODES, type TruncationMode } from "./party.ts";

export interface SessionOptions {
  party: number;
  partiesFile: string;
  session?: string;
  insecure?: boolean;
  fracBits?: number;
  /** The truncation protocol (party.ts); the three must agree, as on fracBits. */
  truncation?: TruncationMode;
  backend?: BackendOptions;
  connectTimeoutMs?: number;
  recvTimeoutMs?: number;
  /**
   * What else the three must hold in common before any protocol: the ids of
   * the sharings in use, the model and its architecture, the command's
   * settings. Compared at setup with fixed point, truncation and timeouts.
   */
  agree?: Settings;
  /** Bytes of buffer memory faulted in before connecting (default: CRYPTGPU_RESERVE_MB MiB, else RESERVE_MB). */
  reserveBytes?: number;
}

/**
 * A party's first forward pass otherwise spends most of its extra time over the second in first-touch page faults
 * (bench/results/latency.md): 64 MiB covers LeNet's batch 1 several times over; larger models use more, and what
 * the arena does not cover comes from the heap as before.
 */
export const RESERVE_MB = 64;

/** The reservation in bytes: CRYPTGPU_RESERVE_MB (0 turns it off) or RESERVE_MB. */
export function reserveBytes(): number {
  const mb = Number(Deno.env.get("CRYPTGPU_RESERVE_MB") ?? RESERVE_MB);
  if (!Number.isInteger(mb) || mb < 0 || mb > 1024) {
    throw new RangeError(
      `CRYPTGPU_RESERVE_MB must be a whole number of MiB from 0 to 1024, got ${Deno.env.get("CRYPTGPU_RESERVE_MB")}`,
    );
  }
  return mb * 2 ** 20;
}

export interface Session {
  party: Party;
  close(): void;
}

export async function openSession(o: SessionOptions): Promise<Session> {
  const fracBits = o.fracBits ?? FIXED_DEFAULT_BITS;
  checkFracBits(fracBits);
  const truncation = o.truncation ?? "local";
  if (!TRUNCATION_MODES.includes(truncation)) {
    throw new RangeError(`truncation must be one of ${TRUNCATION_MODES.join(", ")}, got ${truncation}`);
  }
  const config = await loadParties(o.partiesFile, o.party);
  const reserve = o.reserveBytes ?? reserveBytes();
  const backend = new NativeBackend(o.backend);
  let mesh: Mesh | undefined;
  try {
    // before connecting: a party that starts first would wait for the others anyway
    backend.reserve(reserve);
    mesh = await Mesh.connect({
      party: o.party,
      config,
      session: o.session ?? "default",
      settings: {
        ...o.agree,
        fracBits,
        truncation,
        abi: Number(backend.build.abi),
        connectTimeoutMs: o.connectTimeoutMs ?? 30_000,
        roundTimeoutMs: o.recvTimeoutMs ?? 60_000,
      },
      insecure: o.insecure,
      connectTimeoutMs: o.connectTimeoutMs ?? 30_000,
      recvTimeoutMs: o.recvTimeoutMs ?? 60_000,
    });
    const party = Party.setup(mesh, backend, fracBits, truncation);
    return {
      party,
      close: () => {
        mesh!.close();
        backend.dispose();
      },
    };
  } catch (e) {
    mesh?.close();
    backend.dispose();
    throw e;
  }
}
