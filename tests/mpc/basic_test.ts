import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal, revealTo } from "../../lib/mpc/reveal.ts";
import { matmul, mul, mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { exchangeInto } from "../../lib/mpc/transfer.ts";
import { assertWordsEqual, deviceTest, refMatmul, Rng, wrap } from "../helpers.ts";
import { runParties } from "./harness.ts";

deviceTest("input by each party, reveal to all and to one: exact, with the formula's bytes and rounds", async () => {
  const values = new Rng(70).words(1000);
  for (const owner of [0, 1, 2]) {
    const results = await runParties(async (p) => {
      const s0 = p.mesh.stats();
      const input = p.index === owner ? RingTensor.from(p.backend, values, [10, 100]) : null;
      using x = await shareInput(p, owner, input, [10, 100]);
      input?.dispose();
      const s1 = p.mesh.stats();
      using all = await reveal(x);
      const s2 = p.mesh.stats();
      const one = await revealTo(x, (owner + 1) % 3);
      const s3 = p.mesh.stats();
      const got = one?.toBigUint64Array() ?? null;
      one?.dispose();
      return {
        all: all.toBigUint64Array(),
        one: got,
        input: [s1.bytesSent - s0.bytesSent, s1.rounds - s0.rounds],
        reveal: [s2.bytesSent - s1.bytesSent, s2.rounds - s1.rounds],
        revealTo: [s3.bytesSent - s2.bytesSent, s3.rounds - s2.rounds],
      };
    });
    results.forEach((r, i) => {
      assertWordsEqual(r.all, values, `reveal at party ${i}`);
      if (i === (owner + 1) % 3) assertWordsEqual(r.one!, values, "revealTo");
      else assert.equal(r.one, null);
      // input: 1 round, 2 words per element from the owner only
      assert.deepEqual(r.input, [i === owner ? 2 * 8 * 1000 : 0, 1]);
      // reveal: 1 round, 1 word per element per party
      assert.deepEqual(r.reveal, [8 * 1000, 1]);
      // reveal to r: 1 round, 1 word per element from P_next(r) only
      assert.deepEqual(r.revealTo, [i === (owner + 2) % 3 ? 8 * 1000 : 0, 1]);
    });
  }
});

deviceTest("a round received into slices fills exactly those rows, and refuses a strided target", async () => {
  const results = await runParties(async (p) => {
    // each party sends rows 0..2 of a [3, 4] block to the next, who lands them in rows 1..3 of a [5, 4] tensor
    using mine = RingTensor.from(p.backend, BigUint64Array.from({ length: 12 }, (_, i) => BigInt(100 * p.index + i)), [
      3,
      4,
    ]);
    using whole = RingTensor.full(p.backend, [5, 4], 7n);
    using rows = whole.slice(0, 1, 4);
    const s0 = p.mesh.stats();
    await exchangeInto(p.mesh, [{ to: p.next, tensor: mine }], [{ from: p.prev, into: rows }]);
    const bytes = p.mesh.stats().bytesSent - s0.bytesSent;
    using cols = whole.slice(1, 0, 2);
    await assert.rejects(
      () => exchangeInto(p.mesh, [], [{ from: p.prev, into: cols }]),
      /tensors received into must be contiguous/,
    );
    return { got: whole.toBigUint64Array(), bytes };
  });
  results.forEach(({ got, bytes }, i) => {
    const from = (i + 2) % 3;
    const want = [
      ...Array(4).fill(7n),
      ...Array.from({ length: 12 }, (_, k) => BigInt(100 * from + k)),
      ...Array(4).fill(7n),
    ];
    assertWordsEqual(got, BigUint64Array.from(want), `party ${i}`);
    assert.equal(bytes, 96);
  });
});

deviceTest("linear operations are local and exact; public constants land once", async () => {
  const rng = new Rng(71);
  const a = rng.words(500), b = rng.words(500);
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.from(p.backend, a) : null, [500]);
    using y = await shareInput(p, 2, p.index === 2 ? RingTensor.from(p.backend, b) : null, [500]);
    const before = p.mesh.stats();
    using z = x.add(y).sub(x.mulPublic(3n)).addPublic(7n).neg();
    const after = p.mesh.stats();
    assert.deepEqual([after.bytesSent, after.rounds], [before.bytesSent, before.rounds]);
    using out = await reveal(z);
    return out.toBigUint64Array();
  });
  const expected = a.map((v, i) => wrap(-(v + b[i] - 3n * v + 7n)));
  results.forEach((r) => assertWordsEqual(r, expected));
});

deviceTest("multiplication is exact mod 2^64: elementwise and matmul, 1 round, 1 word per output", async () => {
  const rng = new Rng(72);
  const [m, k, n] = [7, 9, 5];
  const a = rng.words(m * k), b = rng.words(k * n), c = rng.words(m * k);
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.from(p.backend, a, [m, k]) : null, [m, k]);
    using y = await shareInput(p, 1, p.index === 1 ? RingTensor.from(p.backend, b, [k, n]) : null, [k, n]);
    using w = await shareInput(p, 2, p.index === 2 ? RingTensor.from(p.backend, c, [m, k]) : null, [m, k]);
    const s0 = p.mesh.stats();
    using xy = await matmul(x, y);
    const s1 = p.mesh.stats();
    using xw = await mul(x, w);
    const s2 = p.mesh.stats();
    using r1 = await reveal(xy);
    using r2 = await reveal(xw);
    return {
      mm: r1.toBigUint64Array(),
      ew: r2.toBigUint64Array(),
      cost: [s1.bytesSent - s0.bytesSent, s1.rounds - s0.rounds, s2.bytesSent - s1.bytesSent, s2.rounds - s1.rounds],
    };
  });
  for (const r of results) {
    assertWordsEqual(r.mm, refMatmul(a, b, m, n, k), "matmul");
    assertWordsEqual(r.ew, a.map((v, i) => wrap(v * c[i])), "elementwise");
    assert.deepEqual(r.cost, [8 * m * n, 1, 8 * m * k, 1]);
  }
});

deviceTest(
  "fixed-point multiply: within 2^-f per product plus 1 ulp, apart from rare truncation failures; 2 rounds, <= 2 words",
  async () => {
    const rng = new Rng(73);
    const f = 20, n = 4000;
    // magnitudes from tiny to about 30, both signs
    const xs = Float64Array.from(
      { length: n },
      (_, i) => (rng.int(2) ? 1 : -1) * (rng.int(1 << 20) / (1 << 20)) * 2 ** ((i % 7) - 4),
    );
    const ys = Float64Array.from(
      { length: n },
      (_, i) => (rng.int(2) ? 1 : -1) * (rng.int(1 << 20) / (1 << 20)) * 2 ** (2 - (i % 5)),
    );
    const results = await runParties(async (p) => {
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f) : null, [n]);
      using y = await shareInput(p, 1, p.index === 1 ? RingTensor.encode(p.backend, ys, f) : null, [n]);
      const s0 = p.mesh.stats();
      using z = await mulFixed(x, y);
      const s1 = p.mesh.stats();
      using out = await reveal(z);
      return { z: out.decode(f), bytes: s1.bytesSent - s0.bytesSent, rounds: s1.rounds - s0.rounds, index: p.index };
    });
    // Pi_trunc1 fails (a wildly wrong result) with probability about |z| / 2^64, z = xy 2^(2f):
    // here |xy| <= 4, so about 2^-22 per element; more than 2 failures is a bug (p < 1e-9).
    let failures = 0;
    for (let i = 0; i < n; i++) {
      const err = Math.abs(results[0].z[i] - xs[i] * ys[i]);
      if (err > 2 ** 10) {
        failures++;
        continue;
      }
      // encoding error of each operand (2^-(f+1)) times the other, plus 1 ulp from truncation
      const bound = (Math.abs(xs[i]) + Math.abs(ys[i]) + 1) * 2 ** -(f + 1) + 2 ** -f;
      assert.ok(err <= bound, `${xs[i]} * ${ys[i]} = ${results[0].z[i]}`);
    }
    assert.ok(failures <= 2, `${failures} truncation failures`);
    for (const r of results) assert.equal(r.rounds, 2);
    // bytes per party: P0 and P1 send 1 word in each round, P2 in the multiply only
    assert.deepEqual(results.map((r) => r.bytes), [2 * 8 * n, 2 * 8 * n, 8 * n]);
  },
);

deviceTest("truncation failures occur at about |z| / 2^64 on 10^7 elements, and are reported", async () => {
  const n = 10_000_000;
  const rows: string[] = [];
  for (const log2z of [50, 54, 58]) {
    const z = 2n ** BigInt(log2z) + 12345n;
    const results = await runParties(async (p) => {
      using x = await shareInput(p, 0, p.index === 0 ? RingTensor.full(p.backend, [n], z) : null, [n]);
      using t = await truncate(x, 20);
      using r = await reveal(t);
      return r.toBigInt64Array();
    });
    const exact = z >> 20n;
    let failures = 0;
    for (const v of results[0]) {
      const d = v - exact;
      if (d !== 0n && d !== 1n) failures++;
    }
    const expected = n * Number(z) / 2 ** 64;
    rows.push(`|z| = 2^${log2z}: ${failures} failures in ${n}, expected about ${expected.toFixed(1)}`);
    // Poisson: within 5 standard deviations (plus slack for the small case)
    assert.ok(Math.abs(failures - expected) <= 5 * Math.sqrt(expected) + 3, rows.at(-1));
  }
  console.log(rows.join("\n"));
});

deviceTest("truncation of negative and positive values is exact up to 1 ulp, with every d", async () => {
  const rng = new Rng(74);
  const n = 2000;
  const vals = BigInt64Array.from({ length: n }, () => BigInt(rng.int(2 ** 30) - 2 ** 29) * BigInt(rng.int(1 << 10)));
  const results = await runParties(async (p) => {
    using x = await shareInput(
      p,
      0,
      p.index === 0 ? RingTensor.from(p.backend, BigUint64Array.from(vals, (v) => wrap(v))) : null,
      [n],
    );
    const out: BigInt64Array[] = [];
    for (const d of [0, 1, 13, 20, 32]) {
      using t = await truncate(x, d);
      using r = await reveal(t);
      out.push(r.toBigInt64Array());
    }
    return out;
  });
  // |z| < 2^39: a failure (probability about 2^-25 per element) is allowed once in the 10^4 results.
  let failures = 0;
  [0, 1, 13, 20, 32].forEach((d, k) => {
    for (let i = 0; i < n; i++) {
      const exact = vals[i] >> BigInt(d); // floor
      const got = results[0][k][i];
      if (got - exact !== 0n && got - exact !== 1n) failures++;
      if (d === 0) assert.equal(got, vals[i]);
    }
  });
  assert.ok(failures <= 1, `${failures} truncation failures`);
});
