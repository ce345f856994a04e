import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, idx, Rng } from "../helpers.ts";

deviceTest("permute is a view; contiguous() materialises it exactly", () => {
  const be = backend(), rng = new Rng(10);
  const s = [2, 3, 4, 5];
  const xa = rng.words(120);
  using x = RingTensor.from(be, xa, s);
  using p = x.permute([2, 0, 3, 1]);
  assert.deepEqual(p.shape, [4, 2, 5, 3]);
  assert.equal(p.isContiguous(), false);
  using c = p.contiguous();
  const expected = new BigUint64Array(120);
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 2; b++) {
      for (let d = 0; d < 5; d++) {
        for (let e = 0; e < 3; e++) expected[idx([4, 2, 5, 3], a, b, d, e)] = xa[idx(s, b, e, a, d)];
      }
    }
  }
  assertWordsEqual(c.toBigUint64Array(), expected);
  assert.throws(() => x.permute([0, 1, 1, 2]), /not a permutation/);
});

deviceTest("slice along each axis, slices of slices, and reshape of views", () => {
  const be = backend(), rng = new Rng(11);
  const xa = rng.words(6 * 7 * 8);
  using x = RingTensor.from(be, xa, [6, 7, 8]);
  using s = x.slice(1, 2, 6); // [6, 4, 8], offset 16
  using ss = s.slice(2, 3, 5).slice(0, 1, 4); // [3, 4, 2]
  const expected: bigint[] = [];
  for (let i = 1; i < 4; i++) {
    for (let j = 2; j < 6; j++) for (let k = 3; k < 5; k++) expected.push(xa[idx([6, 7, 8], i, j, k)]);
  }
  assertWordsEqual(ss.toBigUint64Array(), BigUint64Array.from(expected));
  using r = ss.reshape([4, -1]);
  assert.deepEqual(r.shape, [4, 6]);
  assertWordsEqual(r.toBigUint64Array(), BigUint64Array.from(expected));
  using rows = x.slice(0, 2, 4); // contiguous at an offset
  assert.equal(rows.isContiguous(), true);
  assert.equal(rows.isDense, false);
  assertWordsEqual(rows.toBigUint64Array(), xa.slice(2 * 56, 4 * 56));
  assert.throws(() => x.slice(1, 5, 9), /outside axis 1/);
  assert.throws(() => x.reshape([5, -1]), /cannot view/);
  using empty = x.slice(0, 3, 3);
  assert.equal(empty.toBigUint64Array().length, 0);
});

deviceTest("a slice of rows reaches kernels without a copy; clone still copies", () => {
  const be = backend(), rng = new Rng(12);
  const xa = rng.words(5 * 3);
  using x = RingTensor.from(be, xa, [5, 3]);
  const before = be.liveBuffers();
  using rows = x.slice(0, 1, 4);
  using dense = rows.contiguous(); // a view handle: one more buffer, no more words than the handle names
  assert.equal(dense.isDense, true);
  assert.deepEqual(be.liveBuffers(), { count: before.count + 1, words: before.words + 9 });
  using sum = rows.add(rows);
  assertWordsEqual(sum.toBigUint64Array(), BigUint64Array.from(xa.slice(3, 12), (v) => BigInt.asUintN(64, 2n * v)));
  using copy = rows.clone();
  copy.fill(7n); // the clone is independent of x
  assertWordsEqual(x.toBigUint64Array(), xa);
});

deviceTest("writing into slices: fill, assign, assignBinary and assignPrf touch only their rows", () => {
  const be = backend(), rng = new Rng(13);
  const [aa, ba] = [rng.words(12), rng.words(12)];
  using a = RingTensor.from(be, aa, [4, 3]), b = RingTensor.from(be, ba, [4, 3]);
  using out = RingTensor.full(be, [4, 3], 5n);
  using r0 = out.slice(0, 0, 1), r1 = out.slice(0, 1, 2), r2 = out.slice(0, 2, 4);
  using a1 = a.slice(0, 1, 2), b1 = b.slice(0, 1, 2), bT = b.transpose();
  r0.fill(9n);
  r1.assignBinary("sub", a1, b1);
  using bRows = bT.slice(1, 2, 4); // [3, 2], not contiguous
  using bRowsT = bRows.transpose(); // [2, 3]: b's rows 2 and 3, a strided view
  r2.assign(bRowsT);
  const got = out.toBigUint64Array();
  assertWordsEqual(got.slice(0, 3), BigUint64Array.of(9n, 9n, 9n));
  assertWordsEqual(got.slice(3, 6), BigUint64Array.from([0, 1, 2], (j) => BigInt.asUintN(64, aa[3 + j] - ba[3 + j])));
  assertWordsEqual(got.slice(6, 12), ba.slice(6, 12));
  // a PRF written into a slice equals the same draw made on its own
  const key = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
  r2.assignPrf(key, 1234n);
  using drawn = RingTensor.prf(be, [2, 3], key, 1234n);
  assertWordsEqual(out.toBigUint64Array().slice(6, 12), drawn.toBigUint64Array());
  assertWordsEqual(out.toBigUint64Array().slice(0, 3), BigUint64Array.of(9n, 9n, 9n));
  // only contiguous destinations, and matching operands
  using cols = out.slice(1, 0, 2);
  assert.throws(() => cols.fill(0n), /writes only into a contiguous tensor or slice/);
  assert.throws(() => r0.assignBinary("add", a, a1), /left operand has shape \[4, 3\], expected \[1, 3\]/);
  assert.throws(() => r2.assign(a1), /source has shape \[1, 3\], expected \[2, 3\]/);
});

deviceTest("concat along every axis, including views", () => {
  const be = backend(), rng = new Rng(12);
  const aa = rng.words(2 * 3 * 4), ba = rng.words(2 * 3 * 4);
  using a = RingTensor.from(be, aa, [2, 3, 4]);
  using b = RingTensor.from(be, ba, [2, 3, 4]);
  for (let axis = 0; axis < 3; axis++) {
    using c = RingTensor.concat([a, b, a], axis);
    const shape = [2, 3, 4];
    shape[axis] *= 3;
    assert.deepEqual(c.shape, shape);
    const got = c.toBigUint64Array();
    for (let i = 0; i < shape[0]; i++) {
      for (let j = 0; j < shape[1]; j++) {
        for (let k = 0; k < shape[2]; k++) {
          const at = [i, j, k], part = Math.floor(at[axis] / [2, 3, 4][axis]);
          at[axis] %= [2, 3, 4][axis];
          const src = part === 1 ? ba : aa;
          assert.equal(got[idx(shape, i, j, k)], src[idx([2, 3, 4], at[0], at[1], at[2])]);
        }
      }
    }
  }
  using t = a.transpose(0, 2); // [4, 3, 2] view
  using ct = RingTensor.concat([t, t], 2);
  assert.deepEqual(ct.shape, [4, 3, 4]);
  assert.equal(ct.toBigUint64Array()[idx([4, 3, 4], 1, 2, 3)], aa[idx([2, 3, 4], 1, 2, 1)]);
  assert.throws(() => RingTensor.concat([a, t], 0), /does not match/);
});

deviceTest("pad with zeros (and a value) on chosen sides", () => {
  const be = backend(), rng = new Rng(13);
  const xa = rng.words(2 * 3 * 4);
  using x = RingTensor.from(be, xa, [2, 3, 4]);
  using p = x.pad([[0, 1], [2, 0], [1, 3]], 9n);
  assert.deepEqual(p.shape, [3, 5, 8]);
  const got = p.toBigUint64Array();
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 5; j++) {
      for (let k = 0; k < 8; k++) {
        const inside = i < 2 && j >= 2 && k >= 1 && k < 5;
        assert.equal(got[idx([3, 5, 8], i, j, k)], inside ? xa[idx([2, 3, 4], i, j - 2, k - 1)] : 9n);
      }
    }
  }
});

deviceTest("sum over each axis, keepDims, and of a view", () => {
  const be = backend(), rng = new Rng(14);
  const shape = [3, 4, 5];
  const xa = rng.words(60);
  using x = RingTensor.from(be, xa, shape);
  for (let axis = 0; axis < 3; axis++) {
    using s = x.sum(axis);
    const outShape = shape.filter((_, i) => i !== axis);
    const expected = new BigUint64Array(20 * 3 / shape[axis]);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) {
        for (let k = 0; k < 5; k++) {
          const o = [i, j, k].filter((_, d) => d !== axis);
          expected[idx(outShape, ...o)] = BigInt.asUintN(64, expected[idx(outShape, ...o)] + xa[idx(shape, i, j, k)]);
        }
      }
    }
    assertWordsEqual(s.toBigUint64Array(), expected, `sum axis ${axis}`);
    using kd = x.sum(axis, true);
    assert.equal(kd.rank, 3);
  }
  using big = RingTensor.full(be, [1, 100000, 3], (1n << 63n) + 1n);
  assert.deepEqual(
    [...big.sum(1).toBigUint64Array()],
    [100000n, 100000n, 100000n].map((v) => BigInt.asUintN(64, v * ((1n << 63n) + 1n))),
  );
  assert.throws(() => x.sum(3), /out of range/);
});

deviceTest("the strided copy refuses views that reach outside the buffer", () => {
  const be = backend();
  const a = be.alloc(10), b = be.alloc(10);
  try {
    assert.throws(() => be.copyStrided(a, 0, [1], b, 5, [1], [6]), /reaches words \[5, 10\] of a buffer of 10 words/);
    assert.throws(() => be.copyStrided(a, 0, [2], b, 0, [1], [6]), /destination/);
    assert.throws(() => be.copyStrided(a, 0, [1], b, 9, [-2], [6]), /source view reaches words \[-1, 9\]/);
    be.copyStrided(a, 0, [1], b, 9, [-1], [10]); // a reversal is fine
    assert.throws(() => be.copyStrided(a, 0, [1], a, 0, [1], [3]), /same buffer/);
  } finally {
    be.free(a);
    be.free(b);
  }
});
