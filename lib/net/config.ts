/**
 * The parties file: where each of the three parties listens, and in
 * production the TLS material (a common CA, each party's certificate and
 * key). Paths are relative to the file.
 *
 *   { "parties": [ { "host": "10.0.0.1", "port": 7400, "cert": "p0.crt", "key": "p0.key" }, ... ],
 *     "ca": "ca.crt" }
 */
import { z } from "zod";

const Party = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
});

export const PartiesFile = z.object({
  parties: z.array(Party).length(3, "a parties file names exactly three parties"),
  ca: z.string().min(1).optional(),
});

export type PartyAddress = z.infer<typeof Party>;

export interface PartiesConfig {
  parties: PartyAddress[];
  /** PEM text of the CA and of each party's certificate and key, when TLS is configured. */
  tls?: { ca: string; certs: string[]; keys: (string | undefined)[] };
}

export class ConfigError extends Error {}

function resolve(base: string, path: string): string {
  return path.startsWith("/") ? path : `${base}/${path}`;
}

/**
 * Reads and validates a parties file. `party` is this process's index: only
 * its own key is read (the other keys are not needed, and usually absent).
 */
export async function loadParties(file: string, party: number): Promise<PartiesConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`cannot read parties file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`parties file ${file} is not JSON: ${(e as Error).message}`);
  }
  const parsed = PartiesFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`parties file ${file}: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  const cfg = parsed.data;
  const base = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  const withTls = cfg.ca !== undefined || cfg.parties.some((p) => p.cert || p.key);
  if (!withTls) return { parties: cfg.parties };
  if (!cfg.ca || cfg.parties.some((p) => !p.cert) || !cfg.parties[party].key) {
    throw new ConfigError(`parties file ${file}: TLS needs "ca", every party's "cert" and this party's "key"`);
  }
  const read = async (what: string, path: string) => {
    try {
      return await Deno.readTextFile(resolve(base, path));
    } catch (e) {
      throw new ConfigError(`cannot read ${what} ${resolve(base, path)}: ${(e as Error).message}`);
    }
  };
  return {
    parties: cfg.parties,
    tls: {
      ca: await read("CA certificate", cfg.ca),
      certs: await Promise.all(cfg.parties.map((p, i) => read(`certificate of party ${i}`, p.cert!))),
      keys: await Promise.all(
        cfg.parties.map((p, i) => (i === party ? read(`key of party ${i}`, p.key!) : Promise.resolve(undefined))),
      ),
    },
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

export function allLoopback(parties: readonly PartyAddress[]): boolean {
  return parties.every((p) => LOOPBACK.test(p.host));
}
