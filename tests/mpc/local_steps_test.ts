import assert from "node:assert/strict";
import { carryAnd, carryMerge, injectStep, localProduct, replicatedProduct } from "../../lib/mpc/local_steps.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, backend, deviceTest, M64, refMatmul, Rng, wrap } from "../helpers.ts";

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
      injectStep("leader", [b0, b1], offset, [ta0, ta1, ts, ts2, tr, tr2], [oA, oB, oT, oL], flip);
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
    injectStep("follower", [b0], offset, [ta0, ta1, tB, tT, tW, tf], [oH]);
    using oW = RingTensor.empty(be, [rows, k]), oL = RingTensor.empty(be, [rows, k]);
    injectStep("helper", [b0], offset, [ta0, ts, ts2, tr, tr2], [oW, oL]);
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
  injectStep("helper", [bits], 10, [ta0, ts, ts2, tr, tr2], [mid, other]);
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
    () => injectStep("helper", [bits, bits], 0, [e, e, e, e, e], [o1, o2]),
    /helper takes 1 bit streams/,
  );
  assert.throws(() => injectStep("helper", [words], 0, [e, e, e, e, e], [o1, o2]), /needs a bit tensor/);
  assert.throws(
    () => injectStep("helper", [bits], 1, [e, e, e, e, e], [o1, o2]),
    /rows \[1, 11\) are outside 10 bits/,
  );
  assert.throws(
    () => injectStep("helper", [bits], 0, [e, wide, e, e, e], [o1, o2]),
    /input 1 has shape \[10, 2\]/,
  );
  assert.throws(() => injectStep("helper", [bits], 0, [e, e, e, e, e], [o1, o1]), /must not alias/);
  assert.throws(() => injectStep("helper", [bits], 0, [e, e, e, e, o1], [o1, o2]), /must not alias/);
  assert.throws(() => be.bitInject("leader", [1n, 2n], 10, 1, 0, false), /role 0 passes 12 buffers, got 2/);
});

deviceTest("the fused replicated product equals its six-operation definition, ring and bits", () => {
  const be = backend(), rng = new Rng(6);
  for (const n of [0, 1, 1000, 65537]) {
    const w = Array.from({ length: 6 }, () => rng.words(n));
    const t = w.map((a) => RingTensor.from(be, a));
    try {
      using ring = replicatedProduct("ring", [t[0], t[1]], [t[2], t[3]], [t[4], t[5]]);
      using bits = replicatedProduct("bits", [t[0], t[1]], [t[2], t[3]], [t[4], t[5]]);
      const [x0, x1, y0, y1, r0, r1] = w;
      assertWordsEqual(
        ring.toBigUint64Array(),
        x0.map((_, i) => wrap(x0[i] * (y0[i] + y1[i]) + x1[i] * y0[i] + r0[i] - r1[i])),
        "ring",
      );
      assertWordsEqual(
        bits.toBigUint64Array(),
        x0.map((_, i) => (x0[i] & (y0[i] ^ y1[i])) ^ (x1[i] & y0[i]) ^ r0[i] ^ r1[i]),
        "bits",
      );
    } finally {
      t.forEach((x) => x.dispose());
    }
  }
  using a = RingTensor.zeros(be, [4]), b = RingTensor.zeros(be, [5]);
  assert.throws(() => replicatedProduct("ring", [a, a], [a, b], [a, a]), /share shape and dtype/);
});

deviceTest(
  "localProduct sums the smaller operand and equals x_i y_i + x_i y_next + x_next y_i (matmul, BigInt)",
  () => {
    const be = backend(), rng = new Rng(61);
    // [m, k] . [k, n]: a 1-row x against a 5x7 y sums x; a 4x5 x against a 5x1 y sums y; equal sizes sum y
    for (const [m, k, n] of [[1, 5, 7], [4, 5, 1], [3, 3, 3]]) {
      const xs = [0, 1, 2].map(() => rng.words(m * k)), ys = [0, 1, 2].map(() => rng.words(k * n));
      let total = new BigUint64Array(m * n);
      for (let i = 0; i < 3; i++) {
        const j = (i + 1) % 3;
        const t = (w: BigUint64Array, shape: number[]) => RingTensor.from(be, w, shape);
        using x0 = t(xs[i], [m, k]), x1 = t(xs[j], [m, k]), y0 = t(ys[i], [k, n]), y1 = t(ys[j], [k, n]);
        const seen: [RingTensor, RingTensor][] = [];
        using z = localProduct([x0, x1], [y0, y1], (a, b) => (seen.push([a, b]), a.matmul(b)));
        const want = [
          refMatmul(xs[i], ys[i], m, n, k),
          refMatmul(xs[i], ys[j], m, n, k),
          refMatmul(xs[j], ys[i], m, n, k),
        ]
          .reduce((acc, c) => acc.map((v, e) => wrap(v + c[e])));
        assertWordsEqual(z.toBigUint64Array(), want, `party ${i}, [${m}, ${k}] . [${k}, ${n}]`);
        assert.equal(seen.length, 2, "two local products");
        const xSummed = m * k < k * n; // which operand the first product took as a sum (neither of its shares)
        assert.equal(![x0, x1].includes(seen[0][0]), xSummed, `x summed: ${xSummed}`);
        assert.equal(![y0, y1].includes(seen[0][1]), !xSummed, `y summed: ${!xSummed}`);
        total = total.map((v, e) => wrap(v + z.toBigUint64Array()[e]));
      }
      const sum = (w: BigUint64Array[]) => w[0].map((_, e) => wrap(w[0][e] + w[1][e] + w[2][e]));
      assertWordsEqual(total, refMatmul(sum(xs), sum(ys), m, n, k), "the three add up to x . y");
    }
  },
);

/** Bit j of a packed stream, as a number. */
const unitBit = (w: BigUint64Array, j: number) => Number((w[Math.floor(j / 64)] >> BigInt(j % 64)) & 1n);

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
                ? carryAnd([ps[i], ps[j]], [gs[i], gs[j]], [r[i], r[j]])
                : carryAnd([level[i], level[j]], null, [r[i], r[j]]),
            );
          });
          level = z.map((zi, i) => own(carryMerge(level === null ? gs[i] : level![i], zi)));
          plain = plain.map(combineUnits);
          const got = reveal(level).toBigUint64Array();
          const bits = n * (width / 2);
          for (let e = 0; e < n; e++) {
            plain[e].forEach(([P, G], k) => {
              const at = e * (width / 2) + 2 * k;
              assert.equal(unitBit(got, at), P, `n${n} width ${width / 2} row ${e} unit ${k} P`);
              assert.equal(unitBit(got, at + 1), G, `n${n} width ${width / 2} row ${e} unit ${k} G`);
            });
          }
          if (bits % 64) assert.equal(got.at(-1)! >> BigInt(bits % 64), 0n, `n${n} width ${width / 2}: tail bits zero`);
        }
        // one unit per row: G is the carry into bit 63 of u + v
        const got = reveal(level!).toBigUint64Array();
        const low = (1n << 63n) - 1n;
        for (let e = 0; e < n; e++) assert.equal(unitBit(got, 2 * e + 1), Number(((u[e] & low) + (v[e] & low)) >> 63n));
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
  assert.throws(() => carryAnd([units, units], null, [r3, r3]), /multiple of 4/);
  assert.throws(() => carryAnd([w, w], [w, w], [r3, r3]), /carryAnd: r/);
  using words = RingTensor.zeros(be, [4, 64]);
  assert.throws(() => carryAnd([w, w], [w, w], [words, words]), /carryAnd: r: needs a bit tensor/);
  assert.throws(() => carryAnd([w, w], null, [r, r]), /generate words go with propagate words/);
  assert.throws(() => carryMerge(w, r3), /carryMerge: z/);
  using z = carryAnd([w, w], [w, w], [r, r]);
  assert.deepEqual([...z.toBigUint64Array()], [0n, 0n, 0n, 0n]);
});
