/**
 * Checks on the three parties' randomness ledgers (Randomness.recording),
 * which runParties applies after every run:
 *   (a) within one party, no two draws under one key and nonce cover a
 *       common AES block: the same mask would serve two uses;
 *   (b) P_i's draws under `own` and P_next(i)'s under `prev`, both under the
 *       key k_i they share, are the same nonces, block ranges and steps: the
 *       two counters stayed in step, so the two compute the same masks.
 * (b) compares the draws in nonce order, which is the order the counters
 * issued them at both parties. The order in which a party draws may differ
 * from its partner's without harm: bit injection's follower draws f after
 * round 1, its leader before; corrected truncation's P2 draws its mask before
 * its output share, P0 the other way round.
 */
import type { Draw } from "../../lib/mpc/randomness.ts";

const show = (d: Draw) => `nonce ${d.nonce} blocks [${d.from}, ${d.to}) in step '${d.step}' (round ${d.round})`;

const byNonce = (a: Draw, b: Draw) => (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : a.from - b.from);

/** What is wrong with the ledgers of P0, P1, P2 (empty when nothing is); at most `limit` lines. */
export function ledgerProblems(ledgers: readonly (readonly Draw[])[], limit = 10): string[] {
  const problems: string[] = [];
  for (let i = 0; i < 3; i++) {
    for (const key of ["own", "prev"] as const) {
      const draws = ledgers[i].filter((d) => d.key === key).sort(byNonce);
      for (let k = 1; k < draws.length; k++) {
        const [a, b] = [draws[k - 1], draws[k]];
        if (a.nonce === b.nonce && b.from < a.to && a.from < b.to) {
          problems.push(`P${i} '${key}' key: ${show(b)} reuses the blocks of ${show(a)}`);
        }
      }
    }
    const next = (i + 1) % 3;
    const mine = ledgers[i].filter((d) => d.key === "own").sort(byNonce);
    const theirs = ledgers[next].filter((d) => d.key === "prev").sort(byNonce);
    for (let k = 0; k < Math.max(mine.length, theirs.length); k++) {
      const [a, b] = [mine[k], theirs[k]];
      if (a && b && a.nonce === b.nonce && a.from === b.from && a.to === b.to && a.step === b.step) continue;
      problems.push(
        `key k_${i}: draw ${k} is ${a ? show(a) : "missing"} at P${i} ('own') but ${
          b ? show(b) : "missing"
        } at P${next} ('prev')`,
      );
      break; // one mismatch shifts every later draw
    }
  }
  return problems.slice(0, limit);
}

/** Throws with the problems of ledgerProblems, if any. */
export function assertLedgers(ledgers: readonly (readonly Draw[])[]): void {
  const problems = ledgerProblems(ledgers);
  if (problems.length > 0) throw new Error(`randomness ledger check failed:\n  ${problems.join("\n  ")}`);
}
