import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { decodeFixed, encodeFixed } from "../../lib/ring/fixed.ts";
import { backend, deviceTest, Rng } from "../helpers.ts";

deviceTest("encode rounds x * 2^f to the nearest word (ties away from zero), decode reads int64 / 2^f", () => {
  const be = backend();
  const values = [0, 1, -1, 0.5, -0.5, 3.25, -1e-9, 2 ** -21, 1.5 * 2 ** -20, -1.5 * 2 ** -20, 1e6, -123456.789];
  using t = RingTensor.encode(be, values, 20);
  const words = t.toBigUint64Array();
  values.forEach((v, i) => {
    const scaled = v * 2 ** 20;
    const expected = BigInt.asUintN(64, BigInt(Math.sign(scaled) * Math.round(Math.abs(scaled))));
    assert.equal(words[i], expected, `encode ${v}`);
    assert.equal(words[i], encodeFixed(v, 20), `native and TypeScript encoders agree on ${v}`);
  });
  const back = t.decode(20);
  values.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= 2 ** -21, `decode ${v} -> ${back[i]}`));
  assert.equal(decodeFixed(words[2], 20), -1);
});

deviceTest("every precision from 8 to 32 bits round-trips within 2^-(f+1)", () => {
  const be = backend(), rng = new Rng(20);
  const values = Float64Array.from({ length: 2000 }, () => (rng.int(2 ** 30) - 2 ** 29) / 2 ** rng.int(20));
  for (let f = 8; f <= 32; f++) {
    using t = RingTensor.encode(be, values, f);
    const back = t.decode(f);
    for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i] - values[i]) <= 2 ** -(f + 1), `f=${f}`);
  }
});

deviceTest("values that do not fit are refused, naming the index", () => {
  const be = backend();
  assert.throws(
    () => RingTensor.encode(be, [1, 2, 2 ** 43], 20),
    /value 8796093022208 at index 2 does not fit the ring with 20 fractional bits/,
  );
  assert.throws(() => RingTensor.encode(be, [Number.NaN], 20), /value nan at index 0/i);
  assert.throws(() => RingTensor.encode(be, [0, Infinity], 8), /index 1/);
  assert.throws(() => RingTensor.encode(be, [1], 63), /fractional bits 63/);
  assert.throws(() => encodeFixed(2 ** 43, 20), /does not fit/);
  // -2^63 itself fits; 2^63 does not.
  using edge = RingTensor.encode(be, [-(2 ** 43)], 20);
  assert.equal(edge.toBigUint64Array()[0], 1n << 63n);
});
