import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { backend, deviceTest, M64, Rng } from "../helpers.ts";

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

/** A plaintext carry level: units (P, G) as [P bits, G bits] per row, pairs combined. */
function combineUnits(units: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (let j = 0; j < units.length; j += 2) {
    const [pLo, gLo] = units[j], [pHi, gHi] = units[j + 1];
    out.push([pHi & pLo, gHi ^ (pHi & gLo)]);
  }
  return out;
}

deviceTest(
  "carry levels: three XOR-shared parties' levels combine to the plaintext prefix, down to the carry into bit 63",
  () => {
    const be = backend(), rng = new Rng(62);
    const edge = [0n, M64, 1n << 63n, (1n << 63n) - 1n, 1n, M64 - 1n];
    for (const n of [1, 3, 64, 101]) {
      const u = rng.words(n), v = rng.words(n);
      edge.slice(0, n).forEach((x, i) => (u[i] = x, v[i] = edge[(i + 1) % edge.length]));
      const p = u.map((x, i) => x ^ v[i]), g = u.map((x, i) => x & v[i]);
      const held: { dispose(): void }[] = [];
      const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
      // XOR shares s_0 ^ s_1 ^ s_2 = x, party i holding (s_i, s_{i+1}).
      const share = (x: BigUint64Array) => {
        const s0 = rng.words(n), s1 = rng.words(n);
        return [s0, s1, x.map((w, i) => w ^ s0[i] ^ s1[i])].map((s) => own(RingTensor.from(be, s)));
      };
      const reveal = (s: RingTensor[]) => own(own(s[0].xor(s[1])).xor(s[2]));
      try {
        const ps = share(p), gs = share(g);
        // The plaintext units of every row: group 0 = (0, 0), group k = bits k - 1.
        let plain = [...Array(n)].map((_, e) =>
          [...Array(64)].map((_, k): [number, number] =>
            k === 0 ? [0, 0] : [Number((p[e] >> BigInt(k - 1)) & 1n), Number((g[e] >> BigInt(k - 1)) & 1n)]
          )
        );
        let level: RingTensor[] | null = null;
        for (let width = 128; width > 2; width /= 2) {
          const outShape = [n, width / 2];
          // draws r_i per party: party i uses (r_i, r_{i+1}), so the three zero shares XOR to 0
          const words = Math.ceil((n * width) / 2 / 64);
          const r = [0, 1, 2].map(() => own(RingTensor.fromBitWords(be, rng.words(words), outShape)));
          const z = [0, 1, 2].map((i) => {
            const j = (i + 1) % 3;
            return own(
              level === null
                ? RingTensor.carryAnd([ps[i], ps[j]], [gs[i], gs[j]], [r[i], r[j]])
                : RingTensor.carryAnd([level[i], level[j]], null, [r[i], r[j]]),
            );
          });
          level = z.map((zi, i) => own(RingTensor.carryMerge(level === null ? gs[i] : level![i], zi)));
          plain = plain.map(combineUnits);
          const got = reveal(level).toBigUint64Array();
          const bits = n * (width / 2);
          for (let e = 0; e < n; e++) {
            plain[e].forEach(([P, G], k) => {
              const at = e * (width / 2) + 2 * k;
              assert.equal(bitOf(got, at), P, `n${n} width ${width / 2} row ${e} unit ${k} P`);
              assert.equal(bitOf(got, at + 1), G, `n${n} width ${width / 2} row ${e} unit ${k} G`);
            });
          }
          if (bits % 64) assert.equal(got.at(-1)! >> BigInt(bits % 64), 0n, `n${n} width ${width / 2}: tail bits zero`);
        }
        // one unit per row: G is the carry into bit 63 of u + v
        const got = reveal(level!).toBigUint64Array();
        const low = (1n << 63n) - 1n;
        for (let e = 0; e < n; e++) assert.equal(bitOf(got, 2 * e + 1), Number(((u[e] & low) + (v[e] & low)) >> 63n));
      } finally {
        held.forEach((t) => t.dispose());
      }
    }
  },
);

deviceTest("carry levels refuse rows that split a pair, misshapen draws and mixed layouts", () => {
  const be = backend();
  using w = RingTensor.zeros(be, [4]);
  using r = RingTensor.zeros(be, [4, 64], "bit");
  using units = RingTensor.zeros(be, [4, 6], "bit"), r3 = RingTensor.zeros(be, [4, 3], "bit");
  assert.throws(() => RingTensor.carryAnd([units, units], null, [r3, r3]), /multiple of 4/);
  assert.throws(() => RingTensor.carryAnd([w, w], [w, w], [r3, r3]), /carryAnd: r/);
  using words = RingTensor.zeros(be, [4, 64]);
  assert.throws(() => RingTensor.carryAnd([w, w], [w, w], [words, words]), /carryAnd: r: needs a bit tensor/);
  assert.throws(() => RingTensor.carryAnd([w, w], null, [r, r]), /generate words go with propagate words/);
  assert.throws(() => RingTensor.carryMerge(w, r3), /carryMerge: z/);
  using z = RingTensor.carryAnd([w, w], [w, w], [r, r]);
  assert.deepEqual([...z.toBigUint64Array()], [0n, 0n, 0n, 0n]);
});
