import assert from "node:assert/strict";
import { batchCount, batches, epochOrder } from "../../lib/data/batches.ts";
import { permutation, SeededRandom } from "../../lib/data/random.ts";

const lists = (it: Iterable<Int32Array>) => Array.from(it, (b) => Array.from(b));

Deno.test("batches: every index once per epoch, deterministic per (seed, epoch), different across them", () => {
  const n = 103, size = 10;
  const epoch0 = lists(batches(n, size, { seed: 7 }));
  assert.equal(epoch0.length, 11);
  assert.equal(batchCount(n, size), 11);
  assert.deepEqual(epoch0.map((b) => b.length), [...new Array(10).fill(10), 3]);
  assert.deepEqual(epoch0.flat().sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  // the same at every party: a second call, or another process, gives the same lists
  assert.deepEqual(lists(batches(n, size, { seed: 7 })), epoch0);
  const epoch1 = lists(batches(n, size, { seed: 7, epoch: 1 }));
  assert.notDeepEqual(epoch1, epoch0);
  assert.deepEqual(epoch1.flat().sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  assert.notDeepEqual(lists(batches(n, size, { seed: 8 })), epoch0);
  // unshuffled: 0..n-1 in order; dropLast leaves out the short batch
  assert.deepEqual(lists(batches(5, 2, { shuffle: false })), [[0, 1], [2, 3], [4]]);
  assert.deepEqual(lists(batches({ labels: [1, 1, 1, 1, 1] }, 2, { shuffle: false, dropLast: true })), [[0, 1], [
    2,
    3,
  ]]);
  assert.equal(batchCount(5, 2, true), 2);
  assert.throws(() => batches(5, 0).next(), { message: "batch size must be a positive integer, got 0" });
});

Deno.test("batches: the order is pinned (a change to the generator would desynchronise parties' code versions)", () => {
  assert.deepEqual(Array.from(epochOrder(10, { seed: 1 })), Array.from(epochOrder(10, { seed: 1, epoch: 0 })));
  const pinned = Array.from(epochOrder(10, { seed: 1 }));
  assert.deepEqual(pinned, PINNED_SEED1_N10);
  const r = new SeededRandom(42);
  assert.deepEqual([r.nextUint32(), r.nextUint32()], PINNED_U32_SEED42);
});

Deno.test("permutation: uniform enough that every position sees every value", () => {
  const n = 5, trials = 5000;
  const counts = Array.from({ length: n }, () => new Array(n).fill(0));
  const rng = new SeededRandom(3);
  for (let t = 0; t < trials; t++) permutation(n, rng).forEach((v, pos) => counts[pos][v]++);
  // expected 1000 each; 5 sigma is about 140
  for (const row of counts) for (const c of row) assert.ok(Math.abs(c - trials / n) < 150, `${c}`);
});

const PINNED_SEED1_N10 = [7, 8, 4, 1, 3, 9, 5, 6, 2, 0];
const PINNED_U32_SEED42 = [1791434574, 1940438648];
