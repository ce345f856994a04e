/**
 * The stock of preprocessed material (lib/mpc/stock.ts) with a maker that
 * numbers its elements: takes hand out each element once, in the order made,
 * across batches and fills; a short take makes exactly the rest; usage counts
 * what was taken and made on demand; nothing is left behind. Reusing an element
 * (a mask or a pair twice) would not change a result, only leak, so the order
 * is checked here against the numbering, not through a protocol.
 */
import assert from "node:assert/strict";
import { AShare } from "../../lib/mpc/arithmetic.ts";
import { BShare } from "../../lib/mpc/binary.ts";
import type { Party } from "../../lib/mpc/party.ts";
import { Stock } from "../../lib/mpc/stock.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { backend, deviceTest } from "../helpers.ts";
import { runParties } from "./harness.ts";

type Numbered = { a: AShare; b: BShare };

function numbered(p: Party, made: number[]) {
  let next = 0;
  return (_key: string, n: number): Promise<Numbered> => {
    made.push(n);
    const words = BigUint64Array.from({ length: n }, (_, i) => BigInt(next + i));
    next += n;
    const t = () => RingTensor.from(p.backend, words, [n]);
    return Promise.resolve({ a: new AShare(p, t(), t()), b: new BShare(p, t(), t()) });
  };
}

const read = (m: Numbered) => {
  const out = [m.a.cur, m.a.next, m.b.cur, m.b.next].map((t) => Array.from(t.toBigUint64Array(), Number));
  m.a.dispose(), m.b.dispose();
  return out;
};

deviceTest("stock: every element handed out once, in order, across fills and short takes", async () => {
  const live = backend().liveBuffers().count;
  await runParties(async (p) => {
    const made: number[] = [];
    const stock = new Stock(numbered(p, made));
    await stock.fill("k", 5);
    await stock.fill("k", 3); // already enough: nothing made
    assert.equal(stock.available("k"), 5);
    const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, i) => lo + i);
    const expect = (m: Numbered, lo: number, hi: number) => read(m).forEach((v) => assert.deepEqual(v, range(lo, hi)));
    expect(await stock.take("k", 1), 0, 1);
    expect(await stock.take("k", 1), 1, 2); // the second take of one batch starts where the first ended
    await stock.fill("k", 6); // 3 left: 3 more made after them
    expect(await stock.take("k", 4), 2, 6);
    expect(await stock.take("k", 4), 6, 10); // 2 in stock, 2 made on the spot
    expect(await stock.take("k", 3), 10, 13); // none in stock: the whole fresh batch handed over
    assert.deepEqual(made, [5, 3, 2, 3]);
    assert.deepEqual(stock.usage.get("k"), { taken: 13, madeOnDemand: 5 });
    assert.equal(stock.available("k"), 0);
    await stock.fill("k", 4);
    stock.resetUsage();
    assert.equal(stock.usage.size, 0);
    stock.dispose(); // the unused 4 go too
  });
  assert.equal(backend().liveBuffers().count, live, "nothing left behind");
});
