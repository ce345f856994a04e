/**
 * revealProductTo: a product (plus a sharing to add) opened to one party
 * straight from the 3-out-of-3 shares. Exact against BigInt from the shares,
 * one round in which only P_r receives, and the two words P_r receives per
 * element masked by the key it lacks: under a re-drawn k_next(r) each changes,
 * the two by opposite amounts (their sum is the output), and no two elements
 * by the same amount.
 *
 * Mutation tried (reverted): the zero share dropped from z_i
 * (reveal_product.ts): every word unchanged under the re-draw.
 */
import assert from "node:assert/strict";
import { revealProductTo } from "../../lib/mpc/reveal_product.ts";
import { matmul } from "../../lib/mpc/multiply.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { deviceTest, M64, Rng, wrap } from "../helpers.ts";
import { type Received, runParties } from "./harness.ts";
import { fixedShares } from "./privacy_cases.ts";

const A = { shape: [3, 5], seed: 1 }, B = { shape: [5, 4], seed: 7 }, BIAS = { shape: [4], seed: 13 };

function values(n: number, seed: number): bigint[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.next());
}
const av = values(15, 100), bv = values(20, 200), cv = values(4, 300);

/** (a . b + c) mod 2^64 from the definition. */
function expected(): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      let s = cv[j];
      for (let k = 0; k < 5; k++) s += av[i * 5 + k] * bv[k * 4 + j];
      out.push(wrap(s));
    }
  }
  return out;
}

function key(seed: number): Uint8Array {
  const rng = new Rng(seed), k = new Uint8Array(16);
  new DataView(k.buffer).setBigUint64(0, rng.next(), true);
  new DataView(k.buffer).setBigUint64(8, rng.next(), true);
  return k;
}

async function session(r: number, keys: Uint8Array[]) {
  const received: Received[][] = [[], [], []];
  const results = await runParties(async (p) => {
    const a = fixedShares(p, av, A.shape, A.seed), b = fixedShares(p, bv, B.shape, B.seed);
    const c = fixedShares(p, cv, BIAS.shape, BIAS.seed);
    const r0 = p.mesh.rounds;
    const out = await revealProductTo(a, b, (x, y) => x.matmul(y), r, c);
    const rounds = p.mesh.rounds - r0;
    // the same product reshared then opened: the reference from the protocol users had before
    using z = await matmul(a, b);
    using zc = z.add(c);
    using opened = await reveal(zc);
    a.dispose(), b.dispose(), c.dispose();
    const got = out ? Array.from(out.toBigUint64Array()) : null;
    out?.dispose();
    return { got, rounds, reshared: Array.from(opened.toBigUint64Array()) };
  }, { keys, received });
  return { results, received };
}

const words = (b: Uint8Array) => Array.from(new BigUint64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));

for (const r of [0, 1, 2]) {
  deviceTest(`revealProductTo party ${r}: exact, one round, only P_r receives, each word masked`, async () => {
    const keys = [key(1), key(2), key(3)];
    const { results, received } = await session(r, keys);
    const want = expected();
    results.forEach((res, i) => {
      assert.equal(res.rounds, 1, `party ${i}: rounds`);
      assert.deepEqual(res.got, i === r ? want : null, `party ${i}: the value`);
      assert.deepEqual(res.reshared, want, "the reshared product opened agrees");
    });
    // round 1 of the session is the opening: P_r gets one word per element from each other party, the rest nothing
    const first = (i: number) => received[i].filter((m) => m.step.startsWith("product revealed"));
    [0, 1, 2].forEach((i) => {
      const got = first(i);
      if (i !== r) return assert.equal(got.length, 0, `party ${i} receives nothing`);
      assert.deepEqual(
        got.map((m) => [m.from, m.payload.length]).sort(),
        [[(r + 1) % 3, 96], [(r + 2) % 3, 96]].sort(),
      );
    });
    const redrawn = keys.slice();
    redrawn[(r + 1) % 3] = key(50 + r); // k_next(r): the key P_r lacks
    const again = await session(r, redrawn);
    assert.deepEqual(again.results[r].got, want, "the value does not depend on the keys");
    const [m1, m2] = [(r + 1) % 3, (r + 2) % 3].map((from) => {
      const before = words(first(r).find((m) => m.from === from)!.payload);
      const after = words(
        again.received[r].find((m) => m.step.startsWith("product revealed") && m.from === from)!
          .payload,
      );
      return before.map((w, k) => (after[k] - w) & M64);
    });
    const seen = new Set<bigint>();
    m1.forEach((d, k) => {
      assert.notEqual(d, 0n, `element ${k}: the word from party ${(r + 1) % 3} is unchanged`);
      assert.equal((d + m2[k]) & M64, 0n, `element ${k}: the two words change by opposite amounts`);
      assert.ok(!seen.has(d), `element ${k}: changed by the same amount as another element`);
      seen.add(d);
    });
  });
}

deviceTest("revealProductTo: an elementwise product without an addend", async () => {
  const xs = values(7, 400), ys = values(7, 500);
  const [got] = await runParties(async (p) => {
    const x = fixedShares(p, xs, [7], 3), y = fixedShares(p, ys, [7], 5);
    const out = await revealProductTo(x, y, (a, b) => a.mul(b), 0);
    x.dispose(), y.dispose();
    const v = out ? Array.from(out.toBigUint64Array()) : null;
    out?.dispose();
    return v;
  });
  assert.deepEqual(got, xs.map((x, i) => wrap(x * ys[i])));
});
