/**
 * Making the certificates and keys of a deployment with openssl: a CA, and for each
 * party a key and a certificate named CN=cryptgpu-party-<i> (with the host as
 * subject alternative name), plus a parties file that points at them. Each
 * party's key goes to that party's host only.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { partyCommonName } from "./mesh.ts";

export interface CertsOptions {
  out: string;
  hosts: [string, string, string];
  ports: [number, number, number];
  days?: number;
  /** Replace the files of an existing non-empty folder (refused otherwise). */
  force?: boolean;
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

/** Whether `dir` exists; it must then be a directory. */
async function existingDir(dir: string): Promise<boolean> {
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Error(`${dir} is not a directory`);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Makes the CA, the party keys and certificates and parties.json in `o.out`;
 * returns the parties file's path. An existing non-empty folder is refused
 * unless `o.force`, in which case its files are replaced one by one.
 *
 * openssl writes into a fresh 0700 folder inside `o.out`, so a key is never
 * readable by others even before its chmod; the files are then copied into
 * place atomically (keys 0600, certificates 0644), parties.json last, so that
 * a parties file always points at a complete set. The private folder goes
 * whatever happens.
 */
export async function makeCerts(o: CertsOptions): Promise<string> {
  const days = String(o.days ?? 825);
  const created = !(await existingDir(o.out));
  if (created) {
    await Deno.mkdir(o.out, { recursive: true, mode: 0o700 });
    await Deno.chmod(o.out, 0o700); // mkdir's mode passes through the umask: set it exactly
  } else if (!o.force) {
    for await (const _ of Deno.readDir(o.out)) {
      throw new Error(`${o.out} is not empty: pass --force to replace the certificates and keys in it`);
    }
  }
  const work = await Deno.makeTempDir({ dir: o.out, prefix: ".certs-" }); // 0700
  try {
    await generate(work, o.hosts, days);
    const files: [string, number][] = [["ca.crt", 0o644], ["ca.key", 0o600]];
    for (let i = 0; i < 3; i++) files.push([`p${i}.crt`, 0o644], [`p${i}.key`, 0o600]);
    for (const [name, mode] of files) {
      await writeFileAtomic(join(o.out, name), await Deno.readFile(join(work, name)), { mode });
    }
    const parties = {
      ca: "ca.crt",
      parties: [0, 1, 2].map((i) => ({ host: o.hosts[i], port: o.ports[i], cert: `p${i}.crt`, key: `p${i}.key` })),
    };
    const file = join(o.out, "parties.json");
    await writeFileAtomic(file, JSON.stringify(parties, null, 2) + "\n", { mode: 0o644 });
    return file;
  } catch (e) {
    if (created) await Deno.remove(o.out, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** openssl's work in the private folder `dir`: ca.key, ca.crt, p<i>.key, p<i>.crt (and scratch files). */
async function generate(dir: string, hosts: readonly string[], days: string): Promise<void> {
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
  ], dir);
  await Deno.chmod(join(dir, "ca.key"), 0o600);
  for (let i = 0; i < 3; i++) {
    const host = hosts[i].replace(/^\[|\]$/g, "");
    const san = `subjectAltName=${isIp(host) ? "IP" : "DNS"}:${host}`;
    await Deno.writeTextFile(
      join(dir, `p${i}.ext`),
      `${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n`,
    );
    await openssl(
      ["req", ...ec, "-keyout", `p${i}.key`, "-out", `p${i}.csr`, "-subj", `/CN=${partyCommonName(i)}`],
      dir,
    );
    await Deno.chmod(join(dir, `p${i}.key`), 0o600);
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
      dir,
    );
  }
}
