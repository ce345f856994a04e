import assert from "node:assert/strict";
import { makeCerts } from "../../lib/net/certs.ts";
import { loadParties } from "../../lib/net/config.ts";
import { loadIdentity, partyCertificates, privateKey, signTranscript, verifyTranscript } from "../../lib/net/auth.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("party signatures: bound to the signer's pinned certificate and to the exact transcript", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hosts: [string, string, string] = ["127.0.0.1", "127.0.0.1", "127.0.0.1"];
    const good = await loadParties(await makeCerts({ out: `${dir}/a`, hosts, ports: [7000, 7001, 7002] }), 2);
    const evil = await loadParties(await makeCerts({ out: `${dir}/b`, hosts, ports: [7000, 7001, 7002] }), 2);
    const certs = partyCertificates(good.tls!.ca, good.tls!.certs);
    assert.deepEqual(certs.map((c) => c.subject), [
      "CN=cryptgpu-party-0",
      "CN=cryptgpu-party-1",
      "CN=cryptgpu-party-2",
    ]);

    const t = enc("transcript of one connection"), other = enc("transcript of one connectioN");
    const sig = signTranscript(privateKey(good.tls!.keys[2]!, 2), t);
    assert.ok(verifyTranscript(certs[2], t, sig), "the signer's own certificate verifies");
    assert.ok(!verifyTranscript(certs[1], t, sig), "another party's certificate does not");
    assert.ok(!verifyTranscript(certs[2], other, sig), "another transcript does not");
    const forged = signTranscript(privateKey(evil.tls!.keys[2]!, 2), t);
    assert.ok(!verifyTranscript(certs[2], t, forged), "a key from another CA's set does not");
    assert.ok(!verifyTranscript(certs[2], t, new Uint8Array(70)), "garbage does not");

    // the identity pins every certificate by fingerprint and checks that the key is the certificate's
    const id = loadIdentity(2, good.tls!.ca, good.tls!.certs, good.tls!.keys[2]!);
    assert.equal(new Set(id.fingerprints).size, 3);
    for (const f of [id.caFingerprint, ...id.fingerprints]) assert.match(f, /^[0-9a-f]{64}$/);
    assert.throws(
      () => loadIdentity(2, good.tls!.ca, good.tls!.certs, evil.tls!.keys[2]!),
      { message: "the key of party 2 does not belong to the certificate of party 2" },
    );

    // a parties file whose certificate is not the CA's, or sits at another party's index, is refused
    assert.throws(() => partyCertificates(good.tls!.ca, [good.tls!.certs[0], good.tls!.certs[1], evil.tls!.certs[2]]), {
      message: "the certificate of party 2 is not signed by the parties file's CA",
    });
    assert.throws(
      () => partyCertificates(good.tls!.ca, [good.tls!.certs[1], good.tls!.certs[0], good.tls!.certs[2]]),
      /certificate of party 0 is for 'CN=cryptgpu-party-1'/,
    );
    assert.throws(() => partyCertificates("not a certificate", good.tls!.certs), /the CA certificate cannot be read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
