import assert from "node:assert/strict";
import { makeCerts } from "../../lib/net/certs.ts";
import { loadParties } from "../../lib/net/config.ts";
import { partyCertificates, privateKey, signHellos, verifyHellos } from "../../lib/net/auth.ts";

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

Deno.test("party signatures over the hellos: bound to the signer's key, the connection's nonces and the direction", async () => {
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

    const mine = enc({ party: 2, nonce: "aa" }), theirs = enc({ party: 0, nonce: "bb" });
    const sig = signHellos(privateKey(good.tls!.keys[2]!, 2), mine, theirs);
    assert.ok(verifyHellos(certs[2], mine, theirs, sig), "the signer's own certificate verifies");
    assert.ok(!verifyHellos(certs[1], mine, theirs, sig), "another party's certificate does not");
    assert.ok(!verifyHellos(certs[2], theirs, mine, sig), "the other direction does not");
    assert.ok(
      !verifyHellos(certs[2], mine, enc({ party: 0, nonce: "bc" }), sig),
      "another connection's nonce does not",
    );
    const forged = signHellos(privateKey(evil.tls!.keys[2]!, 2), mine, theirs);
    assert.ok(!verifyHellos(certs[2], mine, theirs, forged), "a key from another CA's set does not");
    assert.ok(!verifyHellos(certs[2], mine, theirs, new Uint8Array(70)), "garbage does not");

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
