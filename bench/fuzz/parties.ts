/**
 * The parties file's validation (parsePartiesDocument: JSON and the zod
 * schema; loadParties then reads the files it names, which is not parsing).
 * Valid inputs: a plain file, one with certificate paths and one with inline
 * PEM, pretty-printed as people write them.
 */
import { ConfigError, parsePartiesDocument } from "../../lib/net/config.ts";
import type { Probe, Target } from "./harness.ts";
import { mutateJson } from "./json.ts";
import { mutateBytes } from "./mutate.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIUYWJj\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----\n";

const DOCS: unknown[] = [
  { parties: [0, 1, 2].map((i) => ({ host: "127.0.0.1", port: 7400 + i })) },
  {
    parties: [0, 1, 2].map((i) => ({ host: `10.0.0.${i + 1}`, port: 7400, cert: `p${i}.crt`, key: `p${i}.key` })),
    ca: "ca.crt",
  },
  {
    parties: [0, 1, 2].map((i) => ({
      host: "localhost",
      port: 7500 + i,
      certPem: PEM,
      ...(i === 0 ? { keyPem: KEY } : {}),
    })),
    caPem: PEM,
  },
];

const encoder = new TextEncoder(), decoder = new TextDecoder();

export function partiesTarget(): Target<Uint8Array> {
  const valid = DOCS.map((d) => encoder.encode(JSON.stringify(d, null, 2)));
  return {
    parser: "parties file (parsePartiesDocument)",
    expected: [ConfigError],
    allocationCap: "none driven by the input's fields (JSON.parse of the text alone)",
    valid,
    mutate(rng) {
      const k = rng.int(DOCS.length);
      if (rng.chance(0.5)) return mutateBytes(rng, valid[k], { others: valid });
      const text = mutateJson(rng, DOCS[k], { maxString: 1 << 14 });
      // pretty-printed half the time (when it still parses), as a hand-edited file is
      if (rng.chance(0.5) && text.length < 4096) {
        try {
          return encoder.encode(JSON.stringify(JSON.parse(text), null, 2));
        } catch { /* not JSON any more: keep the text */ }
      }
      return encoder.encode(text);
    },
    run(bytes: Uint8Array, probe: Probe) {
      const cfg = parsePartiesDocument(decoder.decode(bytes), "parties file fuzz.json");
      if (cfg.parties.length !== 3) probe.inconsistent(`${cfg.parties.length} parties accepted`);
      for (const p of cfg.parties) {
        if (!(typeof p.host === "string" && p.host.length > 0)) probe.inconsistent("an empty host accepted");
        if (!(Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535)) probe.inconsistent("a bad port accepted");
      }
      return Promise.resolve(cfg.ca || cfg.caPem ? "with TLS material" : "plain");
    },
    bytesOf: (bytes) => bytes,
  };
}
