/**
 * Making the TLS material of a deployment with openssl: a CA, and for each
 * party a key and a certificate named CN=cryptgpu-party-<i> (with the host as
 * subject alternative name), plus a parties file that points at them. Each
 * party's key goes to that party's host only.
 */
import { partyCommonName } from "./mesh.ts";

export interface CertsOptions {
  out: string;
  hosts: [string, string, string];
  ports: [number, number, number];
  days?: number;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(`openssl is needed to make certificates (apt-get install openssl)`, { cause: e });
  }
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim().split("\n")[0]}`);
  }
}

const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(":");

export async function makeCerts(o: CertsOptions): Promise<string> {
  const days = String(o.days ?? 825);
  await Deno.mkdir(o.out, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    days,
    "-subj",
    "/CN=cryptgpu-ca",
  ], o.out);
  for (let i = 0; i < 3; i++) {
    const host = o.hosts[i].replace(/^\[|\]$/g, "");
    const san = `subjectAltName=${isIp(host) ? "IP" : "DNS"}:${host}`;
    await Deno.writeTextFile(
      `${o.out}/p${i}.ext`,
      `${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n`,
    );
    await openssl(
      ["req", ...ec, "-keyout", `p${i}.key`, "-out", `p${i}.csr`, "-subj", `/CN=${partyCommonName(i)}`],
      o.out,
    );
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        `p${i}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `p${i}.crt`,
        "-days",
        days,
        "-extfile",
        `p${i}.ext`,
      ],
      o.out,
    );
    await Deno.remove(`${o.out}/p${i}.csr`);
    await Deno.remove(`${o.out}/p${i}.ext`);
    await Deno.chmod(`${o.out}/p${i}.key`, 0o600);
  }
  await Deno.chmod(`${o.out}/ca.key`, 0o600);
  const parties = {
    ca: "ca.crt",
    parties: [0, 1, 2].map((i) => ({ host: o.hosts[i], port: o.ports[i], cert: `p${i}.crt`, key: `p${i}.key` })),
  };
  const file = `${o.out}/parties.json`;
  await Deno.writeTextFile(file, JSON.stringify(parties, null, 2) + "\n");
  return file;
}
