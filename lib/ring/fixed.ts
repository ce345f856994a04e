/**
 * Fixed point for single public values (learning rates, constants of a
 * protocol): the same encoding the native kernels apply to whole tensors,
 * round(x * 2^f) as a two's-complement word.
 */

/** The paper's and the default fractional precision. */
export const FIXED_DEFAULT_BITS = 20;

export function checkFracBits(f: number): void {
  if (!Number.isInteger(f) || f < 0 || f > 62) throw new RangeError(`fractional bits ${f} outside [0, 62]`);
}

/** round(x * 2^f) mod 2^64, ties away from zero (as the native encoder). */
export function encodeFixed(x: number, f: number = FIXED_DEFAULT_BITS): bigint {
  checkFracBits(f);
  const scaled = x * 2 ** f;
  const rounded = Math.sign(scaled) * Math.round(Math.abs(scaled));
  if (!Number.isFinite(rounded) || Math.abs(rounded) >= 2 ** 63) {
    throw new RangeError(
      `the constant ${x} does not fit the ring at ${f} fractional bits: |x| 2^${f} must be below 2^63, ` +
        `so |x| below ${(2 ** (63 - f)).toPrecision(3)}`,
    );
  }
  return BigInt.asUintN(64, BigInt(rounded));
}

/** The word read as int64, divided by 2^f. */
export function decodeFixed(v: bigint, f: number = FIXED_DEFAULT_BITS): number {
  checkFracBits(f);
  return Number(BigInt.asIntN(64, v)) / 2 ** f;
}
