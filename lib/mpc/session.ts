/**
 * Opening one party's side of a three-party session from the command line's
 * settings: the parties file, the mesh (TLS unless insecure), the backend and
 * the key setup.
 */
import { type BackendOptions, NativeBackend } from "../native/backend.ts";
import { loadParties } from "../net/config.ts";
import { Mesh } from "../net/mesh.ts";
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
  const backend = new NativeBackend(o.backend);
  let mesh: Mesh | undefined;
  try {
    mesh = await Mesh.connect({
      party: o.party,
      config,
      session: o.session ?? "default",
      settings: { fracBits, truncation, abi: Number(backend.build.abi) },
      insecure: o.insecure,
      connectTimeoutMs: o.connectTimeoutMs,
      recvTimeoutMs: o.recvTimeoutMs,
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
