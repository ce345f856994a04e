import assert from "node:assert/strict";
import type { BinaryOp } from "../../lib/native/symbols.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, Rng, wrap } from "../helpers.ts";

const binaryRef: Record<string, (x: bigint, y: bigint) => bigint> = {
  add: (x, y) => wrap(x + y),
  sub: (x, y) => wrap(x - y),
  mul: (x, y) => wrap(x * y),
  xor: (x, y) => x ^ y,
  and: (x, y) => x & y,
  or: (x, y) => x | y,
};

deviceTest("binary ops on same-shape tensors wrap mod 2^64", () => {
  const be = backend(), rng = new Rng(1);
  for (const n of [0, 1, 2, 63, 1000, 70001]) {
    const xa = rng.words(n), ya = rng.words(n);
    using x = RingTensor.from(be, xa), y = RingTensor.from(be, ya);
    for (const [op, f] of Object.entries(binaryRef)) {
      using z = x.binary(op as BinaryOp, y);
      assertWordsEqual(z.toBigUint64Array(), xa.map((v, i) => f(v, ya[i])), `${op} n=${n}`);
    }
  }
});

deviceTest("wraparound edges: 2^64-1 + 1, 0 - 1, 2^63 * 2, -2^63", () => {
  const be = backend();
  using x = RingTensor.from(be, [(1n << 64n) - 1n, 0n, 1n << 63n, 1n << 63n]);
  using y = RingTensor.from(be, [1n, 1n, 2n, 1n << 63n]);
  assert.deepEqual([...x.add(y).toBigUint64Array()], [0n, 1n, (1n << 63n) + 2n, 0n]);
  assert.deepEqual([...x.sub(y).toBigUint64Array()], [(1n << 64n) - 2n, (1n << 64n) - 1n, (1n << 63n) - 2n, 0n]);
  assert.deepEqual([...x.mul(y).toBigUint64Array()], [(1n << 64n) - 1n, 0n, 0n, 0n]);
  assert.deepEqual([...x.neg().toBigUint64Array()], [1n, 0n, 1n << 63n, 1n << 63n]);
});

deviceTest("public scalars: add, sub, reversed sub, mul, bitwise", () => {
  const be = backend(), rng = new Rng(2);
  const xa = rng.words(5000);
  using x = RingTensor.from(be, xa);
  for (const s of [0n, 1n, 3n, 1n << 63n, (1n << 64n) - 1n, -5n]) {
    const w = wrap(s);
    for (const [op, f] of Object.entries(binaryRef)) {
      using z = x.binary(op as BinaryOp, s);
      assertWordsEqual(z.toBigUint64Array(), xa.map((v) => f(v, w)), `${op} scalar ${s}`);
    }
    using r = x.binary("rsub", s);
    assertWordsEqual(r.toBigUint64Array(), xa.map((v) => wrap(w - v)), `rsub ${s}`);
  }
});

deviceTest("unary ops and every shift from 0 to 63", () => {
  const be = backend(), rng = new Rng(3);
  const xa = rng.words(3001);
  using x = RingTensor.from(be, xa);
  assertWordsEqual(x.neg().toBigUint64Array(), xa.map((v) => wrap(-v)), "neg");
  assertWordsEqual(x.not().toBigUint64Array(), xa.map((v) => wrap(~v)), "not");
  for (let k = 0; k < 64; k++) {
    const K = BigInt(k);
    assertWordsEqual(x.shl(k).toBigUint64Array(), xa.map((v) => wrap(v << K)), `shl ${k}`);
    assertWordsEqual(x.shr(k).toBigUint64Array(), xa.map((v) => v >> K), `shr ${k}`);
    assertWordsEqual(x.sar(k).toBigUint64Array(), xa.map((v) => wrap(BigInt.asIntN(64, v) >> K)), `sar ${k}`);
    assertWordsEqual(x.bit(k).toBigUint64Array(), xa.map((v) => (v >> K) & 1n), `bit ${k}`);
  }
});

deviceTest("shift by 64 or more is refused with a clear error", () => {
  using x = RingTensor.from(backend(), [1n]);
  assert.throws(() => x.shl(64), /outside \[0, 63\]/);
  assert.throws(() => x.sar(-1));
});

deviceTest("broadcasting: scalar tensor, row bias, column, per-channel, either side", () => {
  const be = backend(), rng = new Rng(4);
  const [N, C, H, W] = [2, 3, 4, 5];
  const xa = rng.words(N * C * H * W);
  using x = RingTensor.from(be, xa, [N, C, H, W]);
  const cases: [number[], (i: number) => number][] = [
    [[1], () => 0],
    [[W], (i) => i % W],
    [[H, W], (i) => i % (H * W)],
    [[C, 1, 1], (i) => Math.floor(i / (H * W)) % C],
    [[N, 1, 1, 1], (i) => Math.floor(i / (C * H * W))],
    [[1, C, H, 1], (i) => Math.floor(i / W) % (C * H)],
  ];
  for (const [shape, at] of cases) {
    const ba = rng.words(shape.reduce((a, b) => a * b, 1));
    using b = RingTensor.from(be, ba, shape);
    using sum = x.add(b);
    assertWordsEqual(sum.toBigUint64Array(), xa.map((v, i) => wrap(v + ba[at(i)])), `x + [${shape}]`);
    using diff = b.sub(x); // the small one on the left: reversed kernel op
    assert.deepEqual(diff.shape, [N, C, H, W]);
    assertWordsEqual(diff.toBigUint64Array(), xa.map((v, i) => wrap(ba[at(i)] - v)), `[${shape}] - x`);
  }
  using bad = RingTensor.from(be, rng.words(4), [4]);
  assert.throws(() => x.add(bad), /do not broadcast/);
});

deviceTest("ops on non-contiguous views equal ops on their copies", () => {
  const be = backend(), rng = new Rng(5);
  const xa = rng.words(6 * 7), ya = rng.words(7 * 6);
  using x = RingTensor.from(be, xa, [6, 7]);
  using y = RingTensor.from(be, ya, [7, 6]);
  using xt = x.transpose();
  using s = xt.add(y);
  const expected = new BigUint64Array(42);
  for (let i = 0; i < 7; i++) for (let j = 0; j < 6; j++) expected[i * 6 + j] = wrap(xa[j * 7 + i] + ya[i * 6 + j]);
  assertWordsEqual(s.toBigUint64Array(), expected);
  using col = x.slice(1, 2, 3); // a column: stride 7
  assertWordsEqual(
    col.mul(3n).toBigUint64Array(),
    BigUint64Array.from({ length: 6 }, (_, i) => wrap(xa[i * 7 + 2] * 3n)),
  );
});

deviceTest("empty and one-element tensors", () => {
  const be = backend();
  using e = RingTensor.zeros(be, [0, 5]);
  using e2 = e.add(e);
  assert.deepEqual(e2.shape, [0, 5]);
  assert.deepEqual(e2.toBigUint64Array().length, 0);
  using one = RingTensor.from(be, [7n], []);
  assert.deepEqual(one.shape, []);
  assert.deepEqual([...one.mul(one).toBigUint64Array()], [49n]);
});
