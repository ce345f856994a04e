/**
 * The parties file: where each of the three parties listens, and in
 * production the TLS material (a common CA, each party's certificate and
 * key). Paths are relative to the file.
 *
 *   { "parties": [ { "host": "10.0.0.1", "port": 7400, "cert": "p0.crt", "key": "p0.key" }, ... ],
 *     "ca": "ca.crt" }
 *
 * The file name `-` reads the document from standard input instead, where
 * the material may come inline as PEM text (`caPem`, `certPem`, `keyPem`):
 * that is how `cryptgpu local` hands each party its key without leaving it
 * in a file.
 */
import { z } from "zod";
import { stdinPipe } from "./stdin_pipe.ts";

const filePath = z.string().min(1);
const pem = z.string().regex(/-----BEGIN [A-Z ]+-----/, "not PEM text");

const Party = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  cert: filePath.optional(),
  key: filePath.optional(),
  certPem: pem.optional(),
  keyPem: pem.optional(),
}).refine((p) => !(p.cert && p.certPem) && !(p.key && p.keyPem), "give a path or the PEM text, not both");

export const PartiesFile = z.object({
  parties: z.array(Party).length(3, "a parties file names exactly three parties"),
  ca: filePath.optional(),
  caPem: pem.optional(),
}).refine((f) => !(f.ca && f.caPem), "give ca or caPem, not both");

/** Where a party listens (the PEM fields, when given inline, stay in the config's tls). */
export type PartyAddress = { host: string; port: number; cert?: string; key?: string };

export interface PartiesConfig {
  parties: PartyAddress[];
  /** PEM text of the CA and of each party's certificate and key, when TLS is configured. */
  tls?: { ca: string; certs: string[]; keys: (string | undefined)[] };
}

export class ConfigError extends Error {}

function resolve(base: string, path: string): string {
  return path.startsWith("/") ? path : `${base}/${path}`;
}

/** A parties document's text, parsed and validated (no file is read); `name` begins every refusal. */
export function parsePartiesDocument(text: string, name: string): z.infer<typeof PartiesFile> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // V8 quotes the text around the error, line breaks included: escape them so that the refusal stays one line.
    const why = (e as Error).message.replace(
      // deno-lint-ignore no-control-regex -- control characters are what it escapes
      /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    throw new ConfigError(`${name} is not JSON: ${why}`);
  }
  const parsed = PartiesFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${name}: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Reads and validates a parties file (`-`: standard input). `party` is this
 * process's index: only its own key is read (the other keys are not needed,
 * and usually absent).
 */
export async function loadParties(file: string, party: number): Promise<PartiesConfig> {
  const name = file === "-" ? "parties file on stdin" : `parties file ${file}`;
  let text: string;
  try {
    text = file === "-" ? await stdinPipe.document() : await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`cannot read ${name}: ${(e as Error).message}`);
  }
  const cfg = parsePartiesDocument(text, name);
  const parties: PartyAddress[] = cfg.parties.map(({ certPem: _cert, keyPem: _key, ...address }) => address);
  const base = file === "-" ? "." : file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  const withTls = cfg.ca !== undefined || cfg.caPem !== undefined ||
    cfg.parties.some((p) => p.cert || p.key || p.certPem || p.keyPem);
  if (!withTls) return { parties };
  const me = cfg.parties[party];
  if (!(cfg.ca || cfg.caPem) || cfg.parties.some((p) => !(p.cert || p.certPem)) || !(me.key || me.keyPem)) {
    throw new ConfigError(`${name}: TLS needs "ca", every party's "cert" and this party's "key" (paths or PEM text)`);
  }
  const read = async (what: string, path: string | undefined, inline: string | undefined) => {
    if (inline !== undefined) return inline;
    try {
      return await Deno.readTextFile(resolve(base, path!));
    } catch (e) {
      throw new ConfigError(`cannot read ${what} ${resolve(base, path!)}: ${(e as Error).message}`);
    }
  };
  return {
    parties,
    tls: {
      ca: await read("CA certificate", cfg.ca, cfg.caPem),
      certs: await Promise.all(cfg.parties.map((p, i) => read(`certificate of party ${i}`, p.cert, p.certPem))),
      keys: await Promise.all(
        cfg.parties.map((p, i) => (i === party ? read(`key of party ${i}`, p.key, p.keyPem) : undefined)),
      ),
    },
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

export function allLoopback(parties: readonly PartyAddress[]): boolean {
  return parties.every((p) => LOOPBACK.test(p.host));
}
