/**
 * The ranges plaintext values must stay in before they are shared. A value x
 * is the word round(x 2^f); a product of two carries 2^(2f) and is truncated
 * back, and the truncation is only right while the product stays below 2^62
 * in magnitude (protocols.md, Truncation). So an input or weight v is refused
 * when |v| >= 2^(62 - 2f): even its product with a value of magnitude 1 would
 * leave the safe range, and private results would come back silently wrong.
 * A layer's sum of products can pass the bound while every value is below it;
 * that is only likely, not certain, so it is a warning.
 */

/** The fractional bits `share` and the party commands accept. */
export const MIN_FRAC_BITS = 8, MAX_FRAC_BITS = 32;

/** 2^(62 - 2f): the largest magnitude whose product with a value of 1 stays in the ring at f bits. */
export function valueBound(fracBits: number): number {
  return 2 ** (62 - 2 * fracBits);
}

/** The most fractional bits in [MIN_FRAC_BITS, MAX_FRAC_BITS] at which |v| is below the bound, or null. */
export function fracBitsFor(v: number): number | null {
  for (let f = MAX_FRAC_BITS; f >= MIN_FRAC_BITS; f--) if (Math.abs(v) < valueBound(f)) return f;
  return null;
}

/** Three significant digits, as in every message here. */
export const g3 = (x: number): string => x.toPrecision(3);

export class ValueRangeError extends Error {}

/** What a value is, for the messages: an input's partner in a product is a weight, a weight's an activation. */
export type ValueRole = "input" | "weight" | "dataset";

const partner = (role: ValueRole) => role === "weight" ? "an activation" : "a weight";

function advice(v: number): string {
  const f = fracBitsFor(v);
  return f === null
    ? `no --frac-bits from ${MIN_FRAC_BITS} up fits it: scale the values down`
    : `use --frac-bits ${f} (bound ${g3(valueBound(f))})`;
}

/**
 * Refuses (with one line: the value, where it is, the bound and the flag that
 * moves it) a value that is not finite or is at or past the bound; returns the
 * largest magnitude seen, for the statistical check.
 */
export function checkValues(
  source: string,
  role: ValueRole,
  tensor: string,
  data: ArrayLike<number>,
  fracBits: number,
): number {
  const bound = valueBound(fracBits);
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a < bound) { // false for NaN too
      if (a > max) max = a;
      continue;
    }
    const v = data[i];
    const where = `${role} value ${v} at index ${i} of tensor ${tensor}`;
    if (!Number.isFinite(v)) throw new ValueRangeError(`${source}: ${where} is not a finite number`);
    throw new ValueRangeError(
      `${source}: ${where} exceeds ${g3(bound)}, the largest magnitude whose product with ${partner(role)} ` +
        `of 1 stays in the ring at ${fracBits} fractional bits; ${advice(v)}`,
    );
  }
  return max;
}

export interface Values {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** checkValues over every tensor; returns each tensor's largest magnitude. */
export function checkTensors(
  source: string,
  role: ValueRole,
  tensors: Map<string, Values>,
  fracBits: number,
): Map<string, number> {
  return new Map([...tensors].map(([name, t]) => [name, checkValues(source, role, name, t.data, fracBits)]));
}

/**
 * The statistical check of a model's weights: a weight tensor [out, ...]
 * feeds sums of size / out products (its fan-in), each up to max |w| with an
 * activation of 1, so such a sum can reach max |w| times the fan-in. Returns
 * one warning line for the tensor that comes nearest past the bound, or null.
 * (Activations above 1 scale this further; the share command cannot see them.)
 */
export function sumWarning(
  source: string,
  tensors: Map<string, Values>,
  maxima: Map<string, number>,
  fracBits: number,
): string | null {
  const bound = valueBound(fracBits);
  let worst: { name: string; fanIn: number; max: number; sum: number } | null = null;
  for (const [name, t] of tensors) {
    if (t.shape.length < 2 || t.shape[0] === 0) continue; // biases and scales are added, not summed over
    const fanIn = t.data.length / t.shape[0], max = maxima.get(name) ?? 0, sum = max * fanIn;
    if (sum >= bound && (!worst || sum > worst.sum)) worst = { name, fanIn, max, sum };
  }
  if (!worst) return null;
  return `${source}: warning: ${worst.name} has weights up to ${g3(worst.max)} over a fan-in of ${worst.fanIn}, ` +
    `so a sum of their products with activations of 1 can reach ${g3(worst.sum)}, past ${g3(bound)} at ` +
    `${fracBits} fractional bits; ${advice(worst.sum)}`;
}
