/**
 * The nonce ledger and the serial order of protocol calls (issue 18, items 2
 * and 5). runParties records every party's draws and checks the ledgers
 * after every run of every test (harness.ts, ledger.ts); here each protocol is
 * checked on its own, and each guard is shown to refuse what it guards.
 *
 * Mutations tried, each in a copy of the tree (the tests named failed):
 *   1. truncate.ts, corrected mode: one nonce for the output shares and the
 *      transfer's masks, `truncateCorrectedRole(p, z, d, c, c)`, so that
 *      P0's mask w begins with its output share y0 and P1 receives
 *      A' - down unmasked: a leak that truncate_test.ts's value checks do
 *      not see (with both guards off they pass). The refusal failed both
 *      corrected-truncation tests there and "each protocol (corrected ...)"
 *      here: "nonce 1 was already drawn from under the 'prev' key; drawing
 *      it again in step 'truncate' (round 1) would repeat the same mask".
 *      With the refusal's throw removed too, runParties' ledger check failed
 *      the same three: "P0 'prev' key: nonce 1 blocks [0, 20000) in step
 *      'truncate' (round 1) reuses the blocks of nonce 1 blocks [0, 10000)".
 *   2. truncate.ts, local mode: P2 draws its two shares under a fresh nonce
 *      instead of c, so its counter runs one ahead. The ledger check failed
 *      "each protocol (local ...)" and truncate_test.ts's first test: "key
 *      k_1: draw 3 is nonce 4 ... at P1 ('own') but nonce 5 ... at P2
 *      ('prev')". Without the check, truncate_test.ts and basic_test.ts
 *      pass: they open the result at P0 only, which never uses P2's shares.
 *   3. randomness.ts: the refusal's throw removed: "drawInto refuses ..."
 *      failed (Missing expected exception).
 *   4. mesh.ts: the overlap guard removed: "two protocol calls ..." failed;
 *      the two relu calls' frames interleaved on the links and both calls
 *      failed ("party 2 failed (malformed frame from party 2 (bad magic
 *      ...)) while receiving in step 'msb' (round 2)").
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { reveal } from "../../lib/mpc/reveal.ts";
import { mul, mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { msb } from "../../lib/mpc/msb.ts";
import { drelu, relu } from "../../lib/mpc/relu.ts";
import { maxLastAxis } from "../../lib/mpc/max.ts";
import { maxAllPairs } from "../../lib/mpc/max_pairs.ts";
import { lessThan } from "../../lib/mpc/compare.ts";
import { exp } from "../../lib/mpc/exp.ts";
import { softmax } from "../../lib/mpc/softmax.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import type { Party, TruncationMode } from "../../lib/mpc/party.ts";
import { type Draw, Randomness } from "../../lib/mpc/randomness.ts";
import { backend, deviceTest, Rng } from "../helpers.ts";
import { runParties } from "./harness.ts";
import { ledgerProblems } from "./ledger.ts";

type Protocol = (x: AShare, y: AShare) => Promise<{ dispose(): void } | { dispose(): void }[]>;

const PROTOCOLS: [string, Protocol][] = [
  ["mul", (x, y) => mul(x, y)],
  ["mulFixed", (x, y) => mulFixed(x, y)],
  ["truncate", (x) => truncate(x, 20)],
  ["msb", (x) => msb(x)],
  ["msb carry-save", (x) => msb(x, "carry-save")],
  ["relu", (x) => relu(x)],
  ["drelu", (x) => drelu(x)],
  ["lessThan", (x, y) => lessThan(x, y)],
  ["max with argmax", async (x) => Object.values(await maxLastAxis(x.reshape([10, 5]), true))],
  ["max of all pairs", async (x) => Object.values(await maxAllPairs(x.reshape([10, 5]), { argmax: true }))],
  ["exp", (x) => exp(x)],
  ["softmax", (x) => softmax(x.reshape([10, 5]))],
];

/** Each party's draws during each protocol, in PROTOCOLS order. */
function drawsPerProtocol(truncation: TruncationMode): Promise<Draw[][][]> {
  const rng = new Rng(18), f = 20, n = 50;
  const xs = Float64Array.from({ length: n }, () => (rng.int(2000) - 1000) / 100);
  return runParties(async (p: Party) => {
    const input = (owner: number) =>
      shareInput(p, owner, p.index === owner ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
    const ledger = p.rand.ledger!;
    let at = ledger.length;
    using x = await input(0), y = await input(1);
    const per: Draw[][] = [ledger.slice(at)];
    for (const [, run] of PROTOCOLS) {
      at = ledger.length;
      [await run(x, y)].flat().forEach((t) => t.dispose());
      per.push(ledger.slice(at));
    }
    return per;
  }, { fracBits: f, truncation });
}

for (const truncation of ["local", "corrected"] as const) {
  deviceTest(`each protocol (${truncation} truncation): key holders draw alike and no mask repeats`, async () => {
    const per = await drawsPerProtocol(truncation);
    ["input", ...PROTOCOLS.map(([name]) => name)].forEach((name, k) => {
      const ledgers = per.map((party) => party[k]);
      assert.ok(ledgers.every((l) => l.length > 0), `${name} drew nothing at some party`);
      assert.deepEqual(ledgerProblems(ledgers), [], name);
    });
  });
}

deviceTest("the ledger check finds a repeated mask and a party whose counter runs ahead", async () => {
  const d = (key: "own" | "prev", nonce: bigint, to: number, step = "s"): Draw => ({
    key,
    nonce,
    from: 0,
    to,
    step,
    round: 0,
  });
  // P0 draws nonce 0 under `own` twice (in two steps): one mask for two uses.
  const reused = [[d("own", 0n, 4, "a"), d("own", 0n, 2, "b")], [d("prev", 0n, 4, "a"), d("prev", 0n, 2, "b")], []];
  assert.match(ledgerProblems(reused).join("\n"), /P0 'own' key: nonce 0 blocks \[0, 2\) in step 'b'.*reuses/);
  // A real run in which P2 takes one nonce more than the others before an input.
  await assert.rejects(
    runParties(async (p) => {
      if (p.index === 2) p.rand.nonce();
      using _x = await shareInput(p, 0, p.index === 0 ? RingTensor.zeros(p.backend, [8]) : null, [8]);
    }),
    /randomness ledger check failed:\n {2}key k_2: draw 0 is nonce 1 .* at P2 \('own'\) but nonce 0 .* at P0 \('prev'\)/,
  );
});

deviceTest("drawInto refuses a second draw under one key and nonce, and a nonce not yet issued", () => {
  const keys = [new Uint8Array(16).fill(1), new Uint8Array(16).fill(2)];
  const rand = new Randomness(backend(), keys[0], keys[1], { step: "test", rounds: 7 });
  using t = RingTensor.empty(backend(), [8]);
  using lo = t.slice(0, 0, 4), hi = t.slice(0, 4, 8);
  const c = rand.nonce();
  rand.drawInto("own", lo, c);
  // The hazard: every draw starts at block 0, so hi would get lo's words.
  assert.throws(
    () => rand.drawInto("own", hi, c),
    /nonce 0 was already drawn from under the 'own' key; drawing it again in step 'test' \(round 7\)/,
  );
  assert.throws(() => rand.draw("own", [4], c), /already drawn/);
  rand.drawInto("prev", hi, c); // the other key: another stream
  assert.throws(() => rand.drawInto("own", hi, c + 1n), /nonce 1 .* was never issued by nonce\(\) \(1 issued so far\)/);
  using _z = rand.zeroShare([3]); // takes nonce 1
  assert.deepEqual(rand.ledger!.map(({ key, nonce, to }) => [key, nonce, to]), [
    ["own", 0n, 2], // lo: 4 words, 2 blocks
    ["prev", 0n, 2],
    ["own", 1n, 2], // the zero share's 3 words
    ["prev", 1n, 2],
  ]);
});

deviceTest("two protocol calls that overlap on one Party are refused; the first runs to the end", async () => {
  const f = 20, n = 30;
  const xs = Float64Array.from({ length: n }, (_, i) => i - 15);
  const results = await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, f, [n]) : null, [n]);
    // allSettled, not all: the first call must finish before runParties closes the backends under it.
    const [first, second] = await Promise.allSettled([relu(x), relu(x)]);
    assert.equal(first.status, "fulfilled");
    using y = (first as PromiseFulfilledResult<AShare>).value;
    using opened = await reveal(y);
    return { values: opened.decode(f), refusal: second.status === "rejected" ? String(second.reason) : "" };
  }, { fracBits: f });
  results.forEach((r, i) => {
    assert.deepEqual([...r.values], [...xs].map((v) => Math.max(v, 0)));
    assert.match(
      r.refusal,
      new RegExp(
        `two protocol calls overlap on party ${i}: round \\d+ of step 'msb' started while round \\d+ of step 'msb' runs; ` +
          "protocol calls on one Party must be awaited one after another",
      ),
    );
  });
});
