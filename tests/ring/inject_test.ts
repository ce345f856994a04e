import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, Rng, wrap } from "../helpers.ts";

/** Bit j of a packed stream. */
const bitOf = (w: BigUint64Array, j: number) => BigInt((w[Math.floor(j / 64)] >> BigInt(j % 64)) & 1n);

/**
 * The three roles' formulas (bitinject.ts) in BigInt, element e of row i,
 * c the leader's bit (b0 ^ b1 ^ flip) and d the others' (b0).
 */
const reference = {
  leader(c: bigint, a0: bigint, a1: bigint, s: bigint, s2: bigint, r: bigint, r2: bigint) {
    const u = a0 + a1;
    return { A: wrap((1n - 2n * c) * u + s), B: wrap(c + s2), T: wrap(c * u - r), L: wrap(r + r2) };
  },
  follower(d: bigint, aH: bigint, A: bigint, B: bigint, T: bigint, W: bigint, f: bigint) {
    return wrap(d * A + (1n - 2n * d) * aH * B + T + W + d * aH - f);
  },
  helper(d: bigint, aH: bigint, s: bigint, s2: bigint, r: bigint, r2: bigint) {
    return { W: wrap(-(d * s + (1n - 2n * d) * aH * s2 + r2)), L: wrap(r + r2) };
  },
};

deviceTest("each bit-injection role's step equals its BigInt formula, rows of 1 and 3, any bit offset", () => {
  const be = backend(), rng = new Rng(90);
  for (const [rows, k, offset] of [[1, 1, 0], [70, 1, 5], [130, 1, 64], [33, 3, 63], [200, 1, 137]]) {
    const bitsTotal = offset + rows + rng.int(9);
    const bw = [rng.words(Math.ceil(bitsTotal / 64)), rng.words(Math.ceil(bitsTotal / 64))];
    using b0 = RingTensor.fromBitWords(be, bw[0], [bitsTotal, 1]),
      b1 = RingTensor.fromBitWords(be, bw[1], [bitsTotal, 1]);
    const E = () => rng.words(rows * k), R = () => rng.words(rows);
    const [a0, a1, s, r, r2, T, W, f] = [E(), E(), E(), E(), E(), E(), E(), E()];
    const [s2, B] = [R(), R()];
    const t = (w: BigUint64Array, cols: number) => RingTensor.from(be, w, [rows, cols]);
    using ta0 = t(a0, k), ta1 = t(a1, k), ts = t(s, k), tr = t(r, k), tr2 = t(r2, k), tT = t(T, k), tW = t(W, k);
    using tf = t(f, k), ts2 = t(s2, 1), tB = t(B, 1);
    for (const flip of [false, true]) {
      using oA = RingTensor.empty(be, [rows, k]), oB = RingTensor.empty(be, [rows, 1]);
      using oT = RingTensor.empty(be, [rows, k]), oL = RingTensor.empty(be, [rows, k]);
      RingTensor.injectStep("leader", [b0, b1], offset, [ta0, ta1, ts, ts2, tr, tr2], [oA, oB, oT, oL], flip);
      const [gA, gB, gT, gL] = [oA, oB, oT, oL].map((x) => x.toBigUint64Array());
      for (let i = 0; i < rows; i++) {
        const c = bitOf(bw[0], offset + i) ^ bitOf(bw[1], offset + i) ^ (flip ? 1n : 0n);
        for (let j = 0; j < k; j++) {
          const e = i * k + j, want = reference.leader(c, a0[e], a1[e], s[e], s2[i], r[e], r2[e]);
          assert.equal(gA[e], want.A, `leader A, row ${i}`);
          assert.equal(gT[e], want.T, `leader T, row ${i}`);
          assert.equal(gL[e], want.L, `leader L, row ${i}`);
          assert.equal(gB[i], want.B, `leader B, row ${i}`);
        }
      }
    }
    using oH = RingTensor.empty(be, [rows, k]);
    RingTensor.injectStep("follower", [b0], offset, [ta0, ta1, tB, tT, tW, tf], [oH]);
    using oW = RingTensor.empty(be, [rows, k]), oL = RingTensor.empty(be, [rows, k]);
    RingTensor.injectStep("helper", [b0], offset, [ta0, ts, ts2, tr, tr2], [oW, oL]);
    const [gH, gW, gL] = [oH, oW, oL].map((x) => x.toBigUint64Array());
    for (let i = 0; i < rows; i++) {
      const d = bitOf(bw[0], offset + i);
      for (let j = 0; j < k; j++) {
        const e = i * k + j;
        assert.equal(gH[e], reference.follower(d, a0[e], a1[e], B[i], T[e], W[e], f[e]), `follower, row ${i}`);
        const want = reference.helper(d, a0[e], s[e], s2[i], r[e], r2[e]);
        assert.equal(gW[e], want.W, `helper W, row ${i}`);
        assert.equal(gL[e], want.L, `helper L, row ${i}`);
      }
    }
  }
});

deviceTest("a bit-injection step writes into slices of a larger tensor and nowhere else", () => {
  const be = backend(), rng = new Rng(91);
  const rows = 50, bw = rng.words(2);
  using bits = RingTensor.fromBitWords(be, bw, [128, 1]);
  const [a0, s, s2, r, r2] = [rng.words(rows), rng.words(rows), rng.words(rows), rng.words(rows), rng.words(rows)];
  const t = (w: BigUint64Array) => RingTensor.from(be, w, [rows, 1]);
  using ta0 = t(a0), ts = t(s), ts2 = t(s2), tr = t(r), tr2 = t(r2);
  using whole = RingTensor.full(be, [3 * rows, 1], 7n), other = RingTensor.full(be, [rows, 1], 7n);
  using mid = whole.slice(0, rows, 2 * rows);
  RingTensor.injectStep("helper", [bits], 10, [ta0, ts, ts2, tr, tr2], [mid, other]);
  const got = whole.toBigUint64Array();
  assertWordsEqual(got.slice(0, rows), new BigUint64Array(rows).fill(7n), "rows before the slice");
  assertWordsEqual(got.slice(2 * rows), new BigUint64Array(rows).fill(7n), "rows after the slice");
  for (let i = 0; i < rows; i++) {
    assert.equal(got[rows + i], reference.helper(bitOf(bw, 10 + i), a0[i], s[i], s2[i], r[i], r2[i]).W);
  }
});

deviceTest("bit-injection steps refuse wrong counts, shapes, bit ranges and aliased outputs", () => {
  const be = backend();
  using bits = RingTensor.zeros(be, [10, 1], "bit"), words = RingTensor.zeros(be, [10, 1]);
  using e = RingTensor.zeros(be, [10, 1]), wide = RingTensor.zeros(be, [10, 2]);
  using o1 = RingTensor.empty(be, [10, 1]), o2 = RingTensor.empty(be, [10, 1]);
  assert.throws(
    () => RingTensor.injectStep("helper", [bits, bits], 0, [e, e, e, e, e], [o1, o2]),
    /helper takes 1 bit streams/,
  );
  assert.throws(() => RingTensor.injectStep("helper", [words], 0, [e, e, e, e, e], [o1, o2]), /needs a bit tensor/);
  assert.throws(
    () => RingTensor.injectStep("helper", [bits], 1, [e, e, e, e, e], [o1, o2]),
    /rows \[1, 11\) are outside 10 bits/,
  );
  assert.throws(
    () => RingTensor.injectStep("helper", [bits], 0, [e, wide, e, e, e], [o1, o2]),
    /input 1 has shape \[10, 2\]/,
  );
  assert.throws(() => RingTensor.injectStep("helper", [bits], 0, [e, e, e, e, e], [o1, o1]), /must not alias/);
  assert.throws(() => RingTensor.injectStep("helper", [bits], 0, [e, e, e, e, o1], [o1, o2]), /must not alias/);
  assert.throws(() => be.bitInject("leader", [1n, 2n], 10, 1, 0, false), /role 0 passes 12 buffers, got 2/);
});
