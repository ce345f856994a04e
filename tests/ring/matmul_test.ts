import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, refMatmul, Rng, transposeWords, wrap } from "../helpers.ts";

/** Every exact method the device's build has: the CUDA build adds the limb embeddings. */
const methodsOf = () =>
  backend().device === "cuda"
    ? (["naive", "direct", "fp64", "int8", "auto"] as const)
    : (["naive", "direct", "auto"] as const);

deviceTest("matmul equals the BigInt product bit for bit on odd shapes, every method", () => {
  const be = backend(), rng = new Rng(40);
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [1, 33, 65], [17, 1, 9], [33, 65, 31], [64, 64, 64], [5, 129, 3]]) {
    const aa = rng.words(m * k), ba = rng.words(k * n);
    const expected = refMatmul(aa, ba, m, n, k);
    using a = RingTensor.from(be, aa, [m, k]);
    using b = RingTensor.from(be, ba, [k, n]);
    for (const method of methodsOf()) {
      using c = a.matmul(b, method);
      assertWordsEqual(c.toBigUint64Array(), expected, `${m}x${n}x${k} ${method}`);
    }
  }
});

deviceTest("transposed operands are passed as transposes and give the same product", () => {
  const be = backend(), rng = new Rng(41);
  const [m, n, k] = [19, 23, 29];
  const aa = rng.words(m * k), ba = rng.words(k * n);
  const expected = refMatmul(aa, ba, m, n, k);
  using at = RingTensor.from(be, transposeWords(aa, m, k), [k, m]);
  using bt = RingTensor.from(be, transposeWords(ba, k, n), [n, k]);
  using a = at.transpose();
  using b = bt.transpose();
  assert.equal(a.isContiguous(), false);
  using b2 = RingTensor.from(be, ba, [k, n]);
  for (const method of methodsOf()) {
    assertWordsEqual(a.matmul(b, method).toBigUint64Array(), expected, `AT BT ${method}`);
    assertWordsEqual(a.matmul(b2, method).toBigUint64Array(), expected, `AT B ${method}`);
  }
});

deviceTest("batched matmul, with either side broadcast, and accumulate", () => {
  const be = backend(), rng = new Rng(42);
  const [batch, m, n, k] = [3, 7, 6, 5];
  const aa = rng.words(batch * m * k), ba = rng.words(batch * k * n), b1 = rng.words(k * n), a1 = rng.words(m * k);
  using A = RingTensor.from(be, aa, [batch, m, k]);
  using B = RingTensor.from(be, ba, [batch, k, n]);
  using B1 = RingTensor.from(be, b1, [k, n]);
  using A1 = RingTensor.from(be, a1, [m, k]);
  const part = (x: BigUint64Array, i: number, len: number) => x.slice(i * len, (i + 1) * len);
  const expect = (f: (i: number) => BigUint64Array) => {
    const out = new BigUint64Array(batch * m * n);
    for (let i = 0; i < batch; i++) out.set(f(i), i * m * n);
    return out;
  };
  assertWordsEqual(
    A.matmul(B).toBigUint64Array(),
    expect((i) => refMatmul(part(aa, i, m * k), part(ba, i, k * n), m, n, k)),
  );
  assertWordsEqual(A.matmul(B1).toBigUint64Array(), expect((i) => refMatmul(part(aa, i, m * k), b1, m, n, k)));
  assertWordsEqual(A1.matmul(B).toBigUint64Array(), expect((i) => refMatmul(a1, part(ba, i, k * n), m, n, k)));
  // accumulate at the backend level: C += A B
  using C = RingTensor.from(be, rng.words(batch * m * n), [batch, m, n]);
  const c0 = C.toBigUint64Array();
  be.matmul(C.handle, A.handle, B.handle, batch, m, n, k, { accumulate: true });
  const prod = A.matmul(B).toBigUint64Array();
  assertWordsEqual(C.toBigUint64Array(), c0.map((v, i) => wrap(v + prod[i])), "accumulate");
});

deviceTest("k = 0 gives zeros; empty m or n give empty results", () => {
  const be = backend();
  using a = RingTensor.zeros(be, [3, 0]);
  using b = RingTensor.zeros(be, [0, 4]);
  using c = a.matmul(b);
  assert.deepEqual([...c.toBigUint64Array()], new Array(12).fill(0n));
  using e = RingTensor.zeros(be, [0, 5]).matmul(RingTensor.zeros(be, [5, 2]));
  assert.deepEqual(e.shape, [0, 2]);
});

deviceTest("large products: the fast kernel equals the naive one on 200x300x700 with all bits set", () => {
  const be = backend(), rng = new Rng(43);
  using a = RingTensor.prf(be, [200, 700], new Uint8Array(16).fill(1), 0n);
  using b = RingTensor.prf(be, [700, 300], new Uint8Array(16).fill(2), 0n);
  const naive = a.matmul(b, "naive").toBigUint64Array();
  for (const method of methodsOf()) {
    assertWordsEqual(a.matmul(b, method).toBigUint64Array(), naive, `${method} vs naive`);
  }
  // spot-check a few entries against BigInt
  const aw = a.toBigUint64Array(), bw = b.toBigUint64Array();
  for (let t = 0; t < 5; t++) {
    const i = rng.int(200), j = rng.int(300);
    let s = 0n;
    for (let p = 0; p < 700; p++) s += aw[i * 700 + p] * bw[p * 300 + j];
    assert.equal(naive[i * 300 + j], wrap(s));
  }
});

deviceTest("matmul refuses aliasing, unknown flags and CUDA-only methods on the CPU build", () => {
  const be = backend();
  using a = RingTensor.zeros(be, [4, 4]);
  assert.throws(() => be.matmul(a.handle, a.handle, a.handle, 1, 4, 4, 4), /must not be the same buffer/);
  if (be.device === "cpu") {
    using b = RingTensor.zeros(be, [4, 4]);
    assert.throws(() => a.matmul(b, "fp64"), (e: Error & { status?: string }) => e.status === "CG_EUNSUPPORTED");
  }
});
