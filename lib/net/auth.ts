/**
 * Who is on the other end of a link. A party trusts exactly the material of
 * its parties file: the CA, and each party's certificate pinned by its
 * SHA-256 fingerprint. No system or default root is ever consulted, because
 * no TLS library decides trust here: each end of a link signs the link's
 * handshake transcript (handshake.ts) with its party key, and the other
 * checks the signature against its own copy of that party's certificate.
 */
import { createHash, createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto";

export class AuthError extends Error {}

/** Certificates name their party as CN=cryptgpu-party-<i>. */
export const partyCommonName = (i: number) => `cryptgpu-party-${i}`;

/** SHA-256 of a certificate's DER encoding, in hex: what the handshake pins and announces. */
export function fingerprint(cert: X509Certificate): string {
  return createHash("sha256").update(cert.raw).digest("hex");
}

/** The trust material of one party: its key, the CA and every party's certificate, checked. */
export interface Identity {
  key: KeyObject;
  ca: X509Certificate;
  certs: X509Certificate[];
  caFingerprint: string;
  fingerprints: string[];
}

function readCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new AuthError(`${what} cannot be read: ${(e as Error).message}`);
  }
}

/** The party certificates of a parties file, each checked to be the CA's and to name its party. */
export function partyCertificates(ca: string, certs: readonly string[]): X509Certificate[] {
  const root = readCertificate(ca, "the CA certificate");
  return certs.map((pem, i) => {
    const c = readCertificate(pem, `the certificate of party ${i}`);
    if (!c.checkIssued(root) || !c.verify(root.publicKey)) {
      throw new AuthError(`the certificate of party ${i} is not signed by the parties file's CA`);
    }
    if (!c.subject.split("\n").includes(`CN=${partyCommonName(i)}`)) {
      throw new AuthError(`the certificate of party ${i} is for '${c.subject}', not CN=${partyCommonName(i)}`);
    }
    const now = Date.now();
    if (Date.parse(c.validFrom) > now || Date.parse(c.validTo) < now) {
      throw new AuthError(`the certificate of party ${i} is not valid now (${c.validFrom} to ${c.validTo})`);
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

/** Party `party`'s identity from the parties file's PEM texts; its key must match its certificate. */
export function loadIdentity(party: number, ca: string, certs: readonly string[], keyPem: string): Identity {
  const root = readCertificate(ca, "the CA certificate");
  const checked = partyCertificates(ca, certs);
  const key = privateKey(keyPem, party);
  const probe = new TextEncoder().encode("cryptgpu key check");
  if (!verify("sha256", probe, checked[party].publicKey, sign("sha256", probe, key))) {
    throw new AuthError(`the key of party ${party} does not belong to the certificate of party ${party}`);
  }
  return { key, ca: root, certs: checked, caFingerprint: fingerprint(root), fingerprints: checked.map(fingerprint) };
}

export function signTranscript(key: KeyObject, transcript: Uint8Array): Uint8Array {
  return sign("sha256", transcript, key);
}

export function verifyTranscript(cert: X509Certificate, transcript: Uint8Array, sig: Uint8Array): boolean {
  try {
    return verify("sha256", transcript, cert.publicKey, sig);
  } catch {
    return false;
  }
}
