/**
 * Exact silence (issue 18, item 4): where a party must receive nothing, it
 * receives exactly 0 bytes, counted per round and per peer from the payloads
 * the mesh hands it; and everywhere else exactly the bytes the protocol sends.
 *   - Truncation, local and corrected: P2 receives nothing in any round (a
 *     P2 that saw A' would learn z, since it holds z_2). Corrected: P1 the
 *     offers (2 words) from P0 and the chosen mask (1 word) from P2 in round
 *     1, P0 the share y_1 (1 word) from P1 in round 2, nothing else.
 *   - msb (input front end), third j: P_prev(j) receives nothing in either of
 *     the first two rounds (the input, then the generate AND whose share from
 *     P_j it computes itself).
 *   - Bit injection, third j: the leader P_j receives nothing; the follower
 *     2k + 1 words a row from P_j and k from the helper, then the helper k
 *     words a row from the follower.
 *
 * Mutation tried (reverted): truncate_corrected.ts with P1 sending y_1 to P2
 * as well in round 2: P2's count of round 2 from P1 was 8 bytes per element,
 * and the test failed.
 */
import assert from "node:assert/strict";
import type { Party } from "../../lib/mpc/party.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { msb } from "../../lib/mpc/msb.ts";
import { bitInject, third } from "../../lib/mpc/bitinject.ts";
import { deviceTest } from "../helpers.ts";
import { type Received, runParties } from "./harness.ts";
import { fixedBits, fixedShares, truncating } from "./privacy_cases.ts";

const next = (i: number) => (i + 1) % 3, prev = (i: number) => (i + 2) % 3;
const len = (n: number, j: number) => third(n, j)[1] - third(n, j)[0];

/** bytes[round][peer] a party should receive in each of a protocol's first rounds. */
type Table = number[][];

interface Silence {
  name: string;
  rounds: number;
  run(p: Party): Promise<{ dispose(): void }>;
  expected(party: number): Table;
}

const WRAPPY = [0n, 1n << 61n, (1n << 62n) - 1n, 5n << 20n, -(1n << 61n), -((1n << 62n) - 1n), 7n];
const values = (n: number) => Array.from({ length: n }, (_, i) => BigInt.asUintN(64, WRAPPY[i % WRAPPY.length]));

const SIZES = [1, 2, 3, 4, 7, 10];

const CASES: Silence[] = [
  ...SIZES.map((n): Silence => ({
    name: `truncate, local, n = ${n}`,
    rounds: 1,
    run: (p) => truncate(fixedShares(p, values(n), [n], n), 20),
    // P0 and P1 swap one word; P2 hears nothing
    expected: (i) => [i === 2 ? [0, 0, 0] : [0, 1, 2].map((j) => (j === 1 - i ? 8 * n : 0))],
  })),
  ...SIZES.map((n): Silence => ({
    name: `truncate, corrected, n = ${n}`,
    rounds: 2,
    run: async (p) => {
      let y: { dispose(): void } | undefined;
      await truncating(p, "corrected", async () => void (y = await truncate(fixedShares(p, values(n), [n], n), 20)));
      return y!;
    },
    expected: (i) =>
      [
        [[0, 0, 0], [0, 8 * n, 0]], // P0: y_1 from P1 in round 2
        [[16 * n, 0, 8 * n], [0, 0, 0]], // P1: two offers from P0 and the chosen mask from P2 in round 1
        [[0, 0, 0], [0, 0, 0]], // P2: nothing, ever
      ][i],
  })),
  ...SIZES.map((n): Silence => ({
    name: `msb, n = ${n}`,
    rounds: 2,
    run: (p) => msb(fixedShares(p, values(n), [n], n)),
    // P_i hears from P_prev(i) the input of third prev(i); then from P_next(i) the AND shares
    // of thirds i and prev(i); of third next(i), where it is P_prev(j), nothing in either round.
    expected: (i) => [
      [0, 1, 2].map((j) => (j === prev(i) ? 8 * len(n, prev(i)) : 0)),
      [0, 1, 2].map((j) => (j === next(i) ? 8 * (len(n, i) + len(n, prev(i))) : 0)),
    ],
  })),
  ...[1, 3].flatMap((k) =>
    SIZES.map((n): Silence => ({
      name: `bit injection, n = ${n}, k = ${k}`,
      rounds: 2,
      run: (p) =>
        bitInject(
          fixedBits(p, Array.from({ length: n }, (_, e) => e % 2), n),
          fixedShares(p, values(n * k), [n, k], n),
        ),
      // P_i follows in third prev(i) (leader prev(i), helper next(i)), helps in third next(i)
      // (follower prev(i)) and leads third i, where it hears nothing.
      expected: (i) => [
        [0, 1, 2].map((
          j,
        ) => (j === prev(i) ? 8 * (2 * k + 1) * len(n, prev(i)) : j === next(i) ? 8 * k * len(n, prev(i)) : 0)),
        [0, 1, 2].map((j) => (j === prev(i) ? 8 * k * len(n, next(i)) : 0)),
      ],
    }))
  ),
];

deviceTest(
  "exact silence: where a party must receive nothing it receives 0 bytes, per round and per peer",
  async () => {
    const received: Received[][] = [[], [], []];
    const starts = await runParties(async (p) => {
      const s: number[] = [];
      for (const c of CASES) {
        s.push(p.mesh.rounds);
        (await c.run(p)).dispose();
      }
      return s;
    }, { received });
    for (const i of [0, 1, 2]) {
      CASES.forEach((c, k) => {
        const got: Table = Array.from({ length: c.rounds }, () => [0, 0, 0]);
        for (const m of received[i]) {
          const r = m.round - starts[i][k];
          if (r >= 0 && r < c.rounds) got[r][m.from] += m.payload.length;
        }
        assert.deepEqual(got, c.expected(i), `${c.name}: bytes party ${i} received [round][from]`);
      });
    }
  },
);
