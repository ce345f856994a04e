/**
 * Three parties over real loopback sockets in one process: each with its own
 * native backend, mesh and keys. `runParties(fn)` runs fn for the three at
 * once and returns their results in party order.
 */
import { NativeBackend } from "../../lib/native/backend.ts";
import { Mesh, type MeshOptions } from "../../lib/net/mesh.ts";
import { Party, type TruncationMode } from "../../lib/mpc/party.ts";
import { currentDevice } from "../helpers.ts";

let nextPort = 20000 + Math.floor(Math.random() * 20000);

export function loopbackConfig(): MeshOptions["config"] {
  const base = nextPort;
  nextPort += 3;
  return { parties: [0, 1, 2].map((i) => ({ host: "127.0.0.1", port: base + i })) };
}

export interface RunOptions {
  fracBits?: number;
  config?: MeshOptions["config"];
  insecure?: boolean;
  truncation?: TruncationMode;
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
    const parties = meshes.map((m, i) => Party.setup(m, backends[i], fracBits, o.truncation));
    return await Promise.all(parties.map(fn));
  } finally {
    meshes.forEach((m) => m.close());
    backends.forEach((b) => b.dispose());
  }
}
