import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { backend, deviceTest } from "../helpers.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (w: BigUint64Array) =>
  Array.from(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), (b) => b.toString(16).padStart(2, "0")).join("");

function keystream(
  key: Uint8Array,
  iv: Uint8Array,
  words: number,
  impl: "portable" | "aesni" | "auto",
): BigUint64Array {
  const be = backend();
  const h = be.alloc(words);
  try {
    be.aesCtr(h, 0, words, key, iv, impl);
    return be.download(h, 0, words);
  } finally {
    be.free(h);
  }
}

const impls = (): ("portable" | "aesni")[] =>
  (backend().build.features as Record<string, boolean>)?.aesni || backend().device === "cuda"
    ? ["portable", "aesni"]
    : ["portable"];

deviceTest("FIPS-197 C.1: AES-128 known answer on both paths", () => {
  const key = hex("000102030405060708090a0b0c0d0e0f");
  for (const impl of impls()) {
    assert.equal(
      toHex(keystream(key, hex("00112233445566778899aabbccddeeff"), 2, impl)),
      "69c4e0d86a7b0430d8cdb78070b4c55a",
      impl,
    );
  }
});

deviceTest("SP 800-38A F.5.1: CTR-AES128 keystream = ciphertext xor plaintext", () => {
  const key = hex("2b7e151628aed2a6abf7158809cf4f3c");
  const iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const plain = hex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
  );
  const cipher = hex(
    "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
  );
  const expected = toHex(BigUint64Array.from(new BigUint64Array(plain.map((p, i) => p ^ cipher[i]).buffer)));
  for (const impl of impls()) assert.equal(toHex(keystream(key, iv, 8, impl)), expected, impl);
});

deviceTest("both AES paths give the same words for random keys, counters that carry, and odd lengths", () => {
  const ivs = [new Uint8Array(16), hex("0000000000000000ffffffffffffffff"), hex("fffffffffffffffffffffffffffffffe")];
  for (const words of [0, 1, 2, 3, 17, 100001]) {
    const key = crypto.getRandomValues(new Uint8Array(16));
    for (const iv of [...ivs, crypto.getRandomValues(new Uint8Array(16))]) {
      const ref = keystream(key, iv, words, "portable");
      for (const impl of impls()) assert.deepEqual(keystream(key, iv, words, impl), ref, `${impl} ${words} words`);
      assert.deepEqual(keystream(key, iv, words, "auto"), ref);
    }
  }
});

deviceTest("the counter carries across 64 bits: block 1 after ..ffff is the block at 2^64", () => {
  const key = hex("2b7e151628aed2a6abf7158809cf4f3c");
  const two = keystream(key, hex("0000000000000000ffffffffffffffff"), 4, "auto");
  const next = keystream(key, hex("00000000000000010000000000000000"), 2, "auto");
  assert.deepEqual(two.slice(2), next);
});

deviceTest("RingTensor.prf draws from a 128-bit block counter, so draws compose", () => {
  const be = backend();
  const key = crypto.getRandomValues(new Uint8Array(16));
  using whole = RingTensor.prf(be, [10], key, 5n);
  using first = RingTensor.prf(be, [4], key, 5n);
  using rest = RingTensor.prf(be, [6], key, 5n + BigInt(RingTensor.prfBlocks(4)));
  assert.deepEqual([...whole.toBigUint64Array()], [...first.toBigUint64Array(), ...rest.toBigUint64Array()]);
  assert.throws(() => be.aesCtr(whole.handle, 0, 2, new Uint8Array(15), new Uint8Array(16)), /16 bytes/);
});
