import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { backend, deviceTest, Rng } from "../helpers.ts";

/** Bit j of a packed stream. */
const bitOf = (w: BigUint64Array, j: number) => Number((w[Math.floor(j / 64)] >> BigInt(j % 64)) & 1n);

deviceTest("packBit and unpackBits round-trip every bit position", () => {
  const be = backend(), rng = new Rng(60);
  for (const n of [1, 63, 64, 65, 1000]) {
    const xa = rng.words(n);
    using x = RingTensor.from(be, xa);
    for (const k of [0, 1, 31, 62, 63]) {
      using p = x.packBit(k);
      assert.equal(p.dtype, "bit");
      assert.equal(p.words, Math.ceil(n / 64));
      const bits = p.toBits();
      for (let i = 0; i < n; i++) assert.equal(bits[i], Number((xa[i] >> BigInt(k)) & 1n));
      // the unused high bits of the last word are zero
      const last = p.toBigUint64Array().at(-1)!;
      if (n % 64) assert.equal(last >> BigInt(n % 64), 0n);
      using u = p.unpackBits();
      assert.deepEqual([...u.toBigUint64Array()], [...xa].map((v) => (v >> BigInt(k)) & 1n));
    }
  }
});

deviceTest("gather and scatter against a bit-by-bit reference, many row widths and strides", () => {
  const be = backend(), rng = new Rng(61);
  const cases: [number, number, number, number, number][] = [
    // n, width, start, step, count
    [100, 64, 1, 2, 32],
    [100, 64, 0, 2, 32],
    [77, 64, 5, 3, 19],
    [130, 63, 0, 2, 32],
    [130, 63, 1, 2, 31],
    [65, 31, 0, 1, 31],
    [65, 5, 1, 2, 2],
    [200, 1, 0, 1, 1],
    [3, 16, 15, 1, 1],
    [0, 64, 0, 1, 1],
  ];
  for (const [n, width, start, step, count] of cases) {
    const streamWords = Math.ceil((n * width) / 64);
    const ia = rng.words(streamWords);
    using bitsIn = width === 64 ? RingTensor.from(be, ia) : RingTensor.fromBitWords(be, ia, [n, width]);
    using g = bitsIn.gatherBits(start, step, count);
    const got = g.toBigUint64Array();
    for (let e = 0; e < n; e++) {
      for (let t = 0; t < count; t++) {
        assert.equal(
          bitOf(got, e * count + t),
          bitOf(ia, e * width + start + t * step),
          `gather n${n} w${width} e${e} t${t}`,
        );
      }
    }
    // scatter the gathered bits, flipped, back into the stream
    using flipped = g.not();
    using back = bitsIn.scatterBits(flipped, start, step, count);
    const out = back.toBigUint64Array();
    const touched = new Set<number>();
    for (let e = 0; e < n; e++) for (let t = 0; t < count; t++) touched.add(e * width + start + t * step);
    for (let j = 0; j < n * width; j++) {
      assert.equal(bitOf(out, j), touched.has(j) ? 1 - bitOf(ia, j) : bitOf(ia, j), `scatter n${n} w${width} bit ${j}`);
    }
  }
});

deviceTest("bit operations refuse bad rows and arithmetic on packed bits", () => {
  const be = backend();
  using x = RingTensor.from(be, [1n, 2n]);
  assert.throws(() => x.gatherBits(60, 2, 3), /cg_bits_gather/);
  using p = x.packBit(0);
  assert.throws(() => p.add(p), /not defined on packed bits/);
  assert.throws(() => p.shl(1), /not defined on packed bits/);
  using q = p.xor(p);
  assert.deepEqual([...q.toBits()], [0, 0]);
});
