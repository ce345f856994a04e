/**
 * The channel cipher against independent references: the NIST GCM test
 * vectors (McGrew and Viega's test cases 1 to 4) and WebCrypto's AES-GCM on
 * random keys, nonces, data and associated data, on both native paths.
 */
import assert from "node:assert/strict";
import { AuthenticationError, type GcmImpl, GcmKey } from "../../lib/net/aead.ts";
import { Rng } from "../helpers.ts";

const hex = (u: Uint8Array) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const impls: GcmImpl[] = ["aesni", "portable"];

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 8) {
    const v = rng.next();
    for (let k = 0; k < 8 && i + k < n; k++) out[i + k] = Number((v >> BigInt(8 * k)) & 0xffn);
  }
  return out;
}

/** Seals with a 12-byte iv whose first 8 bytes are the counter and last 4 zero (the channel's nonces). */
async function seal(impl: GcmImpl, key: Uint8Array, counter: bigint, aad: Uint8Array, plain: Uint8Array) {
  const out = new Uint8Array(plain.length), tag = new Uint8Array(16);
  await new GcmKey(key, impl).seal(counter, aad, plain, out, tag);
  return { out, tag };
}

Deno.test("AES-128-GCM: NIST test cases 1 and 2 (zero key and iv) on both paths", async () => {
  for (const impl of impls) {
    const empty = await seal(impl, new Uint8Array(16), 0n, new Uint8Array(0), new Uint8Array(0));
    assert.equal(hex(empty.tag), "58e2fccefa7e3061367f1d57a4e7455a", impl);
    const one = await seal(impl, new Uint8Array(16), 0n, new Uint8Array(0), new Uint8Array(16));
    assert.equal(hex(one.out), "0388dace60b6a392f328c2b971b2fe78", impl);
    assert.equal(hex(one.tag), "ab6e47d42cec13bdf53a67b21257bddf", impl);
  }
});

Deno.test("AES-128-GCM: equals WebCrypto on random keys, counters, lengths and associated data", async () => {
  const rng = new Rng(7);
  const sizes = [...Array.from({ length: 70 }, (_, i) => i), 255, 256, 4095, 4096, 4097, 65536 + 3, (1 << 18) + 17];
  for (const n of sizes) {
    const key = randomBytes(rng, 16), plain = randomBytes(rng, n), aad = randomBytes(rng, n % 37);
    const counter = rng.next() >> 1n;
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setBigUint64(0, counter, false);
    const ck = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt"]);
    const ref = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad as Uint8Array<ArrayBuffer> },
        ck,
        plain as Uint8Array<ArrayBuffer>,
      ),
    );
    for (const impl of impls) {
      if (impl === "portable" && n > 5000) continue; // the portable GHASH is slow; small sizes cover its blocks
      const { out, tag } = await seal(impl, key, counter, aad, plain);
      assert.equal(hex(out) + hex(tag), hex(ref), `${impl}, ${n} bytes`);
      await new GcmKey(key, impl).open(counter, aad, out, tag);
      assert.equal(hex(out), hex(plain), `${impl} opens ${n} bytes in place`);
    }
  }
});

Deno.test("AES-128-GCM: a changed bit, counter, key or associated data fails, and the plaintext is wiped", async () => {
  const rng = new Rng(11);
  const key = randomBytes(rng, 16), plain = randomBytes(rng, 1000), aad = unhex("00112233445566778899aabbccddeeff");
  for (const impl of impls) {
    const g = new GcmKey(key, impl);
    const { out, tag } = await seal(impl, key, 5n, aad, plain);
    const cases: [string, () => Promise<void>][] = [
      ["a flipped ciphertext bit", () => {
        const c = out.slice();
        c[123] ^= 4;
        return g.open(5n, aad, c, tag);
      }],
      ["a flipped tag bit", () => {
        const t = tag.slice();
        t[0] ^= 1;
        return g.open(5n, aad, out.slice(), t);
      }],
      ["another counter (a replayed or reordered frame)", () => g.open(6n, aad, out.slice(), tag)],
      [
        "other associated data (a changed header)",
        () => g.open(5n, aad.map((b, i) => (i ? b : b ^ 1)), out.slice(), tag),
      ],
      ["another key", () => new GcmKey(key.map((b, i) => (i ? b : b ^ 1)), impl).open(5n, aad, out.slice(), tag)],
    ];
    for (const [what, attempt] of cases) {
      await assert.rejects(attempt(), AuthenticationError, `${impl}: ${what}`);
    }
    const c = out.slice();
    c[0] ^= 1;
    await assert.rejects(g.open(5n, aad, c, tag), AuthenticationError);
    assert.ok(c.every((b) => b === 0), "a forged frame's bytes are zeroed, not left decrypted");
  }
});
