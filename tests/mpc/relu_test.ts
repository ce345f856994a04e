import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { msb, MSB_BITS } from "../../lib/mpc/msb.ts";
import { drelu, relu } from "../../lib/mpc/relu.ts";
import { injectWords } from "../../lib/mpc/bitinject.ts";
import type { BShare } from "../../lib/mpc/binary.ts";
import { deviceTest, Rng, wrap } from "../helpers.ts";
import { openBinary, runParties } from "./harness.ts";

async function revealBits(b: BShare): Promise<Uint8Array> {
  using open = await openBinary(b);
  return open.toBits();
}

for (const variant of ["input", "carry-save"] as const) {
  deviceTest(`msb (${variant}) is exact on edge and random values; 8 rounds and the documented bits`, async () => {
    const rng = new Rng(80);
    const edges = [0n, 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 1n << 62n, (1n << 64n) - (1n << 62n)];
    const n = 5000;
    const vals = BigUint64Array.from({ length: n }, (_, i) => (i < edges.length ? edges[i] : rng.next()));
    const results = await runParties(async (p) => {
      using x = await shareInput(p, 1, p.index === 1 ? RingTensor.from(p.backend, vals) : null, [n]);
      const s0 = p.mesh.stats();
      using b = await msb(x, variant);
      const s1 = p.mesh.stats();
      const bits = await revealBits(b);
      return { bits, rounds: s1.rounds - s0.rounds, bytes: s1.bytesSent - s0.bytesSent };
    });
    results.forEach((r, i) => {
      for (let k = 0; k < n; k++) assert.equal(r.bits[k], Number(vals[k] >> 63n), `msb of ${vals[k]}`);
      assert.equal(r.rounds, 8);
      // packed bits: each AND stream rounds up to whole words, so allow up to one word per stream and round,
      // and the thirds of the input front end differ by at most one element
      const exact = (MSB_BITS[variant][i] * n) / 8;
      assert.ok(Math.abs(r.bytes - exact) <= 8 * 2 * 8 + 8, `party ${i}: ${r.bytes} bytes, formula ${exact}`);
    });
  });
}

deviceTest("ReLU and DReLU on fixed-point values against float64: exact up to the input encoding", async () => {
  const rng = new Rng(81);
  const f = 20, n = 3000;
  const xs = Float64Array.from(
    { length: n },
    (_, i) => (rng.int(2) ? 1 : -1) * rng.int(1 << 24) / 2 ** (rng.int(30)) + (i === 0 ? 0 : 0),
  );
  xs[1] = 0;
  xs[2] = -(2 ** -20);
  xs[3] = 2 ** -20;
  xs[4] = -1e6;
  xs[5] = 1e6;
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f) : null, [n]);
    const s0 = p.mesh.stats();
    using y = await relu(x);
    const s1 = p.mesh.stats();
    using d = await drelu(x);
    using ry = await reveal(y);
    using rd = await reveal(d);
    return {
      y: ry.toBigInt64Array(),
      d: rd.toBigInt64Array(),
      rounds: s1.rounds - s0.rounds,
      bytes: s1.bytesSent - s0.bytesSent,
    };
  });
  for (const r of results) {
    assert.equal(r.rounds, 10);
    for (let i = 0; i < n; i++) {
      const enc = BigInt.asIntN(64, RingTensor.encode === undefined ? 0n : wrap(BigInt(Math.round(xs[i] * 2 ** f))));
      assert.equal(r.y[i], enc > 0n ? enc : 0n, `relu(${xs[i]})`);
      assert.equal(r.d[i], enc >= 0n ? 1n : 0n, `drelu(${xs[i]})`);
    }
  }
  // msb bits plus the bit injection's 5/3 words, the same for every party (up to word rounding and uneven thirds)
  results.forEach((r, i) => {
    const formula = (MSB_BITS.input[i] / 8 + 8 * injectWords(1)) * n;
    assert.ok(Math.abs(r.bytes - formula) <= 8 * 2 * 8 + 40, `party ${i}: ${r.bytes} bytes, formula ${formula}`);
  });
});

deviceTest("ReLU on 0 to 3 elements: exact, and an empty tensor costs no round", async () => {
  for (const n of [0, 1, 2, 3]) {
    const vals = BigUint64Array.from({ length: n }, (_, i) => (i % 2 ? 5n : wrap(-7n)));
    const results = await runParties(async (p) => {
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.from(p.backend, vals) : null, [n]);
      const s0 = p.mesh.stats();
      using y = await relu(x);
      const rounds = p.mesh.stats().rounds - s0.rounds;
      using r = await reveal(y);
      return { y: [...r.toBigUint64Array()], rounds };
    });
    for (const r of results) {
      assert.deepEqual(r.y, [...vals].map((v) => (v >> 63n ? 0n : v)), `n = ${n}`);
      assert.equal(r.rounds, n === 0 ? 0 : 10, `n = ${n}`);
    }
  }
});
