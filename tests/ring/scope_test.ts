import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { keep, scope } from "../../lib/ring/scope.ts";
import { backend, deviceTest } from "../helpers.ts";

deviceTest("scope frees every temporary and keeps what it returns", () => {
  const be = backend();
  const before = be.liveBuffers();
  using x = RingTensor.from(be, [1n, 2n, 3n]);
  const { y, kept } = scope(() => {
    const a = x.add(x), b = a.mul(a), c = b.sub(1n);
    const k = keep(c.neg());
    return { y: b.add(c), kept: k };
  });
  assert.equal(be.liveBuffers().count, before.count + 3);
  assert.deepEqual([...y.toBigUint64Array()], [7n, 31n, 71n]);
  y.dispose();
  kept.dispose();
  assert.equal(be.liveBuffers().count, before.count + 1);
});

deviceTest("views keep their buffer alive until the last one is disposed", () => {
  const be = backend();
  const before = be.liveBuffers().count;
  const x = RingTensor.from(be, [1n, 2n, 3n, 4n], [2, 2]);
  const t = x.transpose();
  x.dispose();
  assert.equal(be.liveBuffers().count, before + 1);
  assert.deepEqual([...t.toBigUint64Array()], [1n, 3n, 2n, 4n]);
  t.dispose();
  assert.equal(be.liveBuffers().count, before);
  assert.throws(() => x.add(1n), /disposed/);
});

deviceTest("a throwing scope still frees its temporaries", () => {
  const be = backend();
  const before = be.liveBuffers().count;
  assert.throws(() =>
    scope(() => {
      RingTensor.zeros(be, [10]);
      throw new Error("boom");
    }), /boom/);
  assert.equal(be.liveBuffers().count, before);
});
