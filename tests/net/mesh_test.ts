import assert from "node:assert/strict";
import { Mesh } from "../../lib/net/mesh.ts";
import { makeCerts } from "../../lib/net/certs.ts";
import { loadParties } from "../../lib/net/config.ts";
import { loopbackConfig } from "../mpc/harness.ts";

const connectAll = (opts: (party: number) => Parameters<typeof Mesh.connect>[0]) =>
  Promise.allSettled([0, 1, 2].map((party) => Mesh.connect(opts(party))));

function closeAll(results: PromiseSettledResult<Mesh>[]) {
  for (const r of results) if (r.status === "fulfilled") r.value.close();
}

function reasons(results: PromiseSettledResult<Mesh>[]): string[] {
  return results.flatMap((r) => (r.status === "rejected" ? [String((r.reason as Error).message)] : []));
}

Deno.test("a session mismatch is refused at the handshake, naming both sides", async () => {
  const config = loopbackConfig();
  const results = await connectAll((party) => ({
    party,
    config,
    session: party === 2 ? "other" : "main",
    insecure: true,
    connectTimeoutMs: 5000,
  }));
  closeAll(results);
  const msgs = reasons(results);
  assert.ok(
    msgs.some((m) => /session: party \d has "(main|other)", party \d has "(main|other)"/.test(m)),
    msgs.join("\n"),
  );
});

Deno.test("different fixed-point settings are refused at the handshake", async () => {
  const config = loopbackConfig();
  const results = await connectAll((party) => ({
    party,
    config,
    session: "s",
    settings: { fracBits: party === 1 ? 16 : 20 },
    insecure: true,
    connectTimeoutMs: 5000,
  }));
  closeAll(results);
  assert.ok(
    reasons(results).some((m) => /disagree on fracBits: party \d has (16|20), party \d has (16|20)/.test(m)),
    reasons(results).join("\n"),
  );
});

Deno.test("plain TCP is refused unless every host is loopback", async () => {
  await assert.rejects(
    Mesh.connect({
      party: 0,
      config: {
        parties: [{ host: "10.1.2.3", port: 1 }, { host: "127.0.0.1", port: 2 }, { host: "127.0.0.1", port: 3 }],
      },
      session: "s",
      insecure: true,
    }),
    /only allowed when every party is on loopback/,
  );
  await assert.rejects(
    Mesh.connect({ party: 0, config: loopbackConfig(), session: "s" }),
    /no certificates and keys/,
  );
});

Deno.test("a party that never comes is reported by the others before the deadline", async () => {
  const config = loopbackConfig();
  const t0 = Date.now();
  const results = await Promise.allSettled(
    [0, 1].map((party) => Mesh.connect({ party, config, session: "s", insecure: true, connectTimeoutMs: 1500 })),
  );
  closeAll(results);
  assert.ok(Date.now() - t0 < 5000);
  const msgs = reasons(results);
  assert.equal(msgs.length, 2);
  for (const m of msgs) {
    assert.match(m, /party 2 did not connect to 127\.0\.0\.1:\d+ within 1\.5 s \(no connection from party 2 arrived\)/);
  }
});

Deno.test("a party that disconnects mid-protocol makes the others fail within seconds, naming it and the step", async () => {
  const config = loopbackConfig();
  const meshes = await Promise.all(
    [0, 1, 2].map((party) => Mesh.connect({ party, config, session: "s", insecure: true, recvTimeoutMs: 3000 })),
  );
  const t0 = Date.now();
  meshes[2].close(); // party 2 vanishes
  const results = await Promise.allSettled(
    meshes.slice(0, 2).map((m) => {
      m.step = "multiply";
      return m.round([{ to: m.prevParty, data: new Uint8Array(1 << 20) }], [{
        from: m.nextParty,
        into: new Uint8Array(1 << 20),
      }]);
    }),
  );
  meshes.forEach((m) => m.close());
  assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
  const msgs = reasons(results as PromiseSettledResult<Mesh>[]);
  assert.equal(msgs.length, 2);
  // party 0 waits on party 1 (its next), which itself failed; party 1 waits on party 2
  assert.ok(
    msgs.some((m) => /party 2 disconnected while (sending|receiving) in step 'multiply'/.test(m)),
    msgs.join("\n"),
  );
  for (const m of msgs) assert.match(m, /step 'multiply'/);
});

Deno.test("a stalled peer times out with the peer and step named", async () => {
  const config = loopbackConfig();
  const meshes = await Promise.all(
    [0, 1, 2].map((party) => Mesh.connect({ party, config, session: "s", insecure: true, recvTimeoutMs: 500 })),
  );
  meshes[0].step = "truncate";
  await assert.rejects(
    meshes[0].round([], [{ from: 1, into: new Uint8Array(8) }]), // party 1 never sends
    /no message from party 1 within 500 ms in step 'truncate'/,
  );
  meshes.forEach((m) => m.close());
});

Deno.test("a malformed or mis-sized frame is an error, not a hang", async () => {
  const config = loopbackConfig();
  const meshes = await Promise.all(
    [0, 1, 2].map((party) => Mesh.connect({ party, config, session: "s", insecure: true, recvTimeoutMs: 2000 })),
  );
  const [a, b] = await Promise.allSettled([
    meshes[0].round([{ to: 1, data: new Uint8Array(16) }], []),
    meshes[1].round([], [{ from: 0, into: new Uint8Array(8) }]), // expects 8 bytes
  ]);
  meshes.forEach((m) => m.close());
  assert.equal(a.status, "fulfilled");
  assert.equal(b.status, "rejected");
  assert.match(String((b as PromiseRejectedResult).reason.message), /party 0 sent 16 bytes in round 0, expected 8/);
});

Deno.test("TLS with per-party certificates from a common CA; a certificate from another CA is refused", async () => {
  const dir = await Deno.makeTempDir();
  const base = loopbackConfig().parties.map((p) => p.port) as [number, number, number];
  const file = await makeCerts({ out: `${dir}/good`, hosts: ["127.0.0.1", "127.0.0.1", "127.0.0.1"], ports: base });
  const configs = await Promise.all([0, 1, 2].map((i) => loadParties(file, i)));
  const meshes = await Promise.all(
    [0, 1, 2].map((party) => Mesh.connect({ party, config: configs[party], session: "s" })),
  );
  assert.deepEqual(meshes.map((m) => m.secure), [true, true, true]);
  const got = new Uint8Array(5);
  await Promise.all([
    meshes[0].round([{ to: 1, data: new TextEncoder().encode("hello") }], []),
    meshes[1].round([], [{ from: 0, into: got }]),
    meshes[2].round([], []),
  ]);
  assert.equal(new TextDecoder().decode(got), "hello");
  meshes.forEach((m) => m.close());

  // party 2 presents a certificate from a different CA
  const ports = loopbackConfig().parties.map((p) => p.port) as [number, number, number];
  const good = await makeCerts({ out: `${dir}/a`, hosts: ["127.0.0.1", "127.0.0.1", "127.0.0.1"], ports });
  const evil = await makeCerts({ out: `${dir}/b`, hosts: ["127.0.0.1", "127.0.0.1", "127.0.0.1"], ports });
  const cfgs = [await loadParties(good, 0), await loadParties(good, 1), await loadParties(evil, 2)];
  const results = await Promise.allSettled(
    [0, 1, 2].map((party) => Mesh.connect({ party, config: cfgs[party], session: "s", connectTimeoutMs: 4000 })),
  );
  closeAll(results);
  const msgs = reasons(results);
  assert.ok(msgs.length >= 1, "some party must refuse");
  assert.ok(results[2].status === "rejected", "the impostor must not connect");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a malformed parties file gives one clear line", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/p.json`, JSON.stringify({ parties: [{ host: "a", port: 1 }] }));
  await assert.rejects(
    loadParties(`${dir}/p.json`, 0),
    /parties file .*p\.json: parties: a parties file names exactly three parties/,
  );
  await Deno.writeTextFile(`${dir}/q.json`, "{ not json");
  await assert.rejects(loadParties(`${dir}/q.json`, 0), /is not JSON/);
  await Deno.writeTextFile(
    `${dir}/r.json`,
    JSON.stringify({ parties: [0, 1, 2].map((i) => ({ host: "h", port: 70000 + i })) }),
  );
  await assert.rejects(loadParties(`${dir}/r.json`, 0), /parties\.0\.port/);
  await assert.rejects(loadParties(`${dir}/missing.json`, 0), /cannot read parties file/);
  await Deno.remove(dir, { recursive: true });
});
