/**
 * Key re-draw test (issue 18, item 1). Every message P_r receives must be
 * masked by the one key P_r lacks, k_next(r) (shared by the other two). So
 * run every protocol of privacy_cases.ts twice on the same inputs and shares,
 * under keys K and K' that differ only in k_next(r): every 64-bit word P_r
 * receives must change, and no two words may change by the same amount (as a
 * difference mod 2^64, up to sign, or as an xor): a shared change is a shared
 * mask. All protocols run in one session, so that one nonce counter spans
 * them and the check covers collisions across protocols too.
 *
 * Mutations tried in lib/mpc, each reverted; M1-M3 in a copy of the tree
 * without the nonce ledger's guards (randomness.ts, ledger.ts), which refuse
 * M2 and M3 at the draw and M1 at the ledger check before this test looks:
 *   M1 a mask under the receiver's key (truncate.ts: P0's y_0 drawn "own",
 *      k_0, which P1 holds): P1's words of the local truncation unchanged.
 *   M2 a reused nonce (truncate.ts: the corrected truncation's masks w drawn
 *      with y_0's nonce c, so w_0 = y_0): P1's first offers unchanged.
 *   M3 a reused nonce (bitinject.ts: s' drawn with s's nonce): B and A's
 *      first column changed by the same amounts (the collision check).
 *   M4 a dropped zero share (multiply.ts: multiplyWith's z_i without a_i):
 *      matmul's and conv2d's words unchanged, for every party.
 *   M5 a dropped zero share in msb's third j (msb.ts: P_next(j)'s generate
 *      share without F(k_next(j))): P_j's words of that round unchanged.
 *   M6 the wrap bit in the clear (truncate_corrected.ts: P0's two offers
 *      without the masks w, so their difference, the correction, is open to
 *      P1): offers 0 and 1 of an element changed by the same amount.
 *   M7 P2 receiving y_1 in the corrected truncation: P2's new words unchanged
 *      (and privacy_silence_test.ts counts its bytes).
 *   M8 a mask scaled by 2 (truncate.ts: m_0 = A' - 2 y_0): bit 0 of P1's
 *      words never flips.
 *   M9 a dropped zero share in the preprocessed product (truncate_preprocessed.ts:
 *      mulTruncate's t_i without a_i): every party's words of that round unchanged.
 *  M10 the preprocessed truncation opening z + 2^62 without r: the opened
 *      words unchanged.
 *  M11 the masked comparison opening x without r (msb_masked.ts): the opened
 *      words unchanged (privacy_views_test.ts fails too).
 *  M12 the masked DReLU's opened bit without its zero share (carry.ts,
 *      lastCarryShare): passes here and in privacy_views_test.ts (the bit
 *      stays masked by other shares, but is tied to the opened c); the
 *      lastCarryShare test in msb_masked_test.ts fails on it.
 * Every one of M1-M11 failed this test; privacy_silence_test.ts failed on M7 only.
 */
import assert from "node:assert/strict";
import { deviceTest, M64, Rng } from "../helpers.ts";
import { type Received, runParties } from "./harness.ts";
import { CASES } from "./privacy_cases.ts";

/** A fixed 128-bit key from a seed (test keys, not secret). */
function key(seed: number): Uint8Array {
  const rng = new Rng(seed), k = new Uint8Array(16);
  new DataView(k.buffer).setBigUint64(0, rng.next(), true);
  new DataView(k.buffer).setBigUint64(8, rng.next(), true);
  return k;
}

const BASE = [key(1), key(2), key(3)];

interface View {
  received: Received[];
  /** Each case's first round, in order. */
  starts: { name: string; round: number }[];
}

/** One session running every case; returns each party's view. */
async function session(keys: Uint8Array[]): Promise<View[]> {
  const received: Received[][] = [[], [], []];
  const starts = await runParties(async (p) => {
    const s: View["starts"] = [];
    for (const c of CASES) {
      s.push({ name: c.name, round: p.mesh.rounds });
      await c.run(p);
    }
    return s;
  }, { keys, received });
  return [0, 1, 2].map((i) => ({ received: received[i], starts: starts[i] }));
}

const caseOf = (v: View, round: number) => v.starts.findLast((s) => s.round <= round)!.name;
const words = (b: Uint8Array) => new BigUint64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));

let base: Promise<View[]> | null = null;

/**
 * Re-draws of the missing key. One is the test; the others find the live
 * bits of packed-bit messages: a message of L packed bits ends in a word
 * whose bits from L mod 64 up are zero padding (public, never masked), and a
 * word of t live bits stays unchanged under one re-draw with probability
 * 2^-t. So every word must flip each bit below its highest flipping bit in
 * one of the re-draws (all 64 for a u64 word; false alarm 2^-24 per bit,
 * about 2^-6 for the whole test), bits above it must be zero in every
 * session and occur only in a message's last word, and the single re-draw
 * checks (changed, by its own amount) apply to words of more than 32 live bits.
 */
const REDRAWS = 24;
const SHORT = 32;

const bitLength = (x: bigint) => x.toString(2).length - (x === 0n ? 1 : 0);

for (const r of [0, 1, 2]) {
  deviceTest(`re-drawing the key party ${r} lacks changes every word it receives, each by its own amount`, async () => {
    base ??= session(BASE);
    const a = (await base)[r];
    const others: View[] = [];
    for (let t = 0; t < REDRAWS; t++) {
      const redrawn = BASE.slice();
      redrawn[(r + 1) % 3] = key(100 + 20 * r + t); // k_next(r), shared by P_next(r) and P_prev(r)
      others.push((await session(redrawn))[r]);
    }
    const problems: string[] = [];
    const diffs = new Map<bigint, string>(), xors = new Map<bigint, string>();
    const counts = new Map<string, number>();
    let short = 0, tails = 0;
    for (const b of others) assert.equal(b.received.length, a.received.length, "the same messages in every session");
    a.received.forEach((m, k) => {
      const got = others.map((b) => b.received[k]);
      for (const n of got) {
        assert.deepEqual([n.round, n.from, n.payload.length], [m.round, m.from, m.payload.length], `message ${k}`);
      }
      assert.equal(m.payload.length % 8, 0, `message ${k}: whole words`);
      const name = caseOf(a, m.round);
      const wa = words(m.payload), wb = got.map((n) => words(n.payload));
      counts.set(name, (counts.get(name) ?? 0) + wa.length);
      wa.forEach((x, i) => {
        const where = `${name}: round ${m.round} (${m.step}), message ${k} from party ${m.from}, word ${i}`;
        const ys = wb.map((w) => w[i]);
        const flipped = ys.reduce((o, y) => o | (x ^ y), 0n), live = bitLength(flipped);
        if (flipped === 0n) {
          return void problems.push(`${where}: unchanged under ${REDRAWS} re-draws (${x.toString(16)})`);
        }
        const mask = (1n << BigInt(live)) - 1n;
        if (live < 64) { // the last word of a packed-bit message, zero above its live bits: see REDRAWS
          tails++;
          if (i !== wa.length - 1) problems.push(`${where}: only ${live} bits change, not at a message's end`);
          if ([x, ...ys].some((y) => y & ~mask)) problems.push(`${where}: padding above bit ${live} not zero`);
        }
        // every live bit flips in some re-draw: a mask scaled by 2^j, or cut short, leaves bits open
        if (flipped !== mask) problems.push(`${where}: bits ${(mask ^ flipped).toString(2)} never change`);
        if (live <= SHORT) return void short++; // one re-draw leaves it unchanged with probability 2^-live
        if (ys.some((y) => y === x)) problems.push(`${where}: unchanged under a re-draw (${x.toString(16)})`);
        const d = (ys[0] - x) & M64, up = d > M64 - d + 1n ? (M64 - d + 1n) & M64 : d; // up to sign
        const sameD = diffs.get(up), sameX = xors.get(ys[0] ^ x);
        if (sameD) problems.push(`${where}: changed by the same difference as ${sameD}`);
        if (sameX) problems.push(`${where}: changed by the same xor as ${sameX}`);
        diffs.set(up, where);
        xors.set(ys[0] ^ x, where);
      });
    });
    const total = [...counts.values()].reduce((x, y) => x + y, 0);
    console.log(
      `party ${r}: ${total} words (${tails} packed tails, ${short} of them of <= ${SHORT} bits): ${
        [...counts].map(([c, n]) => `${c}: ${n}`).join("; ")
      }`,
    );
    assert.ok(total > 0, `party ${r} received nothing at all`);
    assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problems in ${total} words`);
  });
}
