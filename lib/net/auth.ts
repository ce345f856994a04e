/**
 * Who is on the other end of a TLS link. Deno's TLS server cannot ask for a
 * client certificate, so TLS proves only the listening side (its certificate
 * chains to the CA and names the host dialed). Both sides then prove their
 * party identity inside the encrypted stream: each signs the two hellos of
 * this connection (each carrying a fresh nonce) with its party key, and the
 * other checks the signature against that party's certificate in the parties
 * file. A signature is bound to one connection by the peer's nonce and to its
 * direction by the order of the hellos, so it cannot be replayed elsewhere.
 */
import { createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto";

export class AuthError extends Error {}

/** Certificates name their party as CN=cryptgpu-party-<i>. */
export const partyCommonName = (i: number) => `cryptgpu-party-${i}`;

const LABEL = new TextEncoder().encode("cryptgpu mesh party authentication v1");

/** The party certificates of a parties file, each checked to be the CA's and to name its party. */
export function partyCertificates(ca: string, certs: readonly string[]): X509Certificate[] {
  let root: X509Certificate;
  try {
    root = new X509Certificate(ca);
  } catch (e) {
    throw new AuthError(`the CA certificate cannot be read: ${(e as Error).message}`);
  }
  return certs.map((pem, i) => {
    let c: X509Certificate;
    try {
      c = new X509Certificate(pem);
    } catch (e) {
      throw new AuthError(`the certificate of party ${i} cannot be read: ${(e as Error).message}`);
    }
    if (!c.checkIssued(root) || !c.verify(root.publicKey)) {
      throw new AuthError(`the certificate of party ${i} is not signed by the parties file's CA`);
    }
    if (!c.subject.split("\n").includes(`CN=${partyCommonName(i)}`)) {
      throw new AuthError(`the certificate of party ${i} is for '${c.subject}', not CN=${partyCommonName(i)}`);
    }
    return c;
  });
}

export function privateKey(pem: string, party: number): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new AuthError(`the key of party ${party} cannot be read: ${(e as Error).message}`);
  }
}

/** What the signer signs: a label, then its own hello, then the verifier's, each length-prefixed. */
function transcript(signerHello: Uint8Array, verifierHello: Uint8Array): Uint8Array {
  const out = new Uint8Array(LABEL.length + 8 + signerHello.length + verifierHello.length);
  const view = new DataView(out.buffer);
  out.set(LABEL);
  let at = LABEL.length;
  for (const h of [signerHello, verifierHello]) {
    view.setUint32(at, h.length, true);
    out.set(h, at + 4);
    at += 4 + h.length;
  }
  return out;
}

export function signHellos(key: KeyObject, mine: Uint8Array, theirs: Uint8Array): Uint8Array {
  return sign("sha256", transcript(mine, theirs), key);
}

export function verifyHellos(cert: X509Certificate, theirs: Uint8Array, mine: Uint8Array, sig: Uint8Array): boolean {
  try {
    return verify("sha256", transcript(theirs, mine), cert.publicKey, sig);
  } catch {
    return false;
  }
}
