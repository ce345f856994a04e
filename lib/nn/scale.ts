/**
 * Multiplication of a fixed-point sharing by a public real c: x * C >> k with
 * C = round(c 2^k), k chosen so that C carries about 2^-20 relative precision
 * of c (a learning rate over a batch size of 1e-4 needs more than f bits).
 * The product stays small (|x| 2^(f+20)), so the truncation's failure chance
 * stays near |x| 2^(f+20-64). The plaintext twin uses `value`, the constant
 * the parties really apply.
 */
import type { AShare } from "../mpc/arithmetic.ts";

export interface PublicScale {
  /** The integer multiplier C. */
  multiplier: bigint;
  /** The truncation k. */
  shift: number;
  /** C / 2^k, the real constant applied. */
  value: number;
}

export function publicScale(c: number, fracBits: number): PublicScale {
  if (!Number.isFinite(c)) throw new RangeError(`public scale ${c} is not finite`);
  if (c === 0) return { multiplier: 0n, shift: fracBits, value: 0 };
  const shift = Math.min(62, Math.max(fracBits, Math.ceil(20 - Math.log2(Math.abs(c)))));
  const multiplier = BigInt(Math.round(c * 2 ** shift));
  return { multiplier, shift, value: Number(multiplier) / 2 ** shift };
}

/** x * C (no truncation yet): sums of such terms share one truncation by `shift`. */
export const scaledTerm = (x: AShare, s: PublicScale): AShare => x.mulPublic(BigInt.asUintN(64, s.multiplier));
