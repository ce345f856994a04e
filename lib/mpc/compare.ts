/**
 * Comparisons through the sign bit: x < y is msb(x - y), exact while
 * |x - y| < 2^63. As arithmetic 0/1 sharings they cost msb (8 rounds) and a
 * bit injection (2 rounds).
 */
import type { AShare } from "./arithmetic.ts";
import type { BShare } from "./binary.ts";
import { msb } from "./msb.ts";
import { bitToArithmetic } from "./bitinject.ts";

/** <x < y> as packed bits [n, 1]. */
export async function lessThanBits(x: AShare, y: AShare): Promise<BShare> {
  using d = x.sub(y);
  return await msb(d);
}

/** [[x < y]] as 0/1. */
export async function lessThan(x: AShare, y: AShare): Promise<AShare> {
  using bits = await lessThanBits(x, y);
  return await bitToArithmetic(bits, x);
}

/** [[x > y]] as 0/1. */
export function greaterThan(x: AShare, y: AShare): Promise<AShare> {
  return lessThan(y, x);
}

/** [[x >= y]] = 1 - [[x < y]]. */
export async function greaterEqual(x: AShare, y: AShare): Promise<AShare> {
  using lt = await lessThan(x, y);
  using neg = lt.neg();
  return neg.addPublic(1n);
}
