/**
 * The local steps of the protocols: what one party computes on its own shares
 * between two rounds, one native kernel each (cg_replicated_product,
 * cg_bit_inject, cg_carry_and, cg_carry_merge). They take RingTensors and
 * check their shapes here; the formulas are in the kernels, the protocols in
 * multiply.ts, and.ts, msb.ts, bitinject.ts and carry.ts.
 */
import type { Backend } from "../native/backend.ts";
import type { CarryLayout, InjectRole } from "../native/symbols.ts";
import { fmt, sameShape, type Shape } from "../ring/shape.ts";
import { type DType, RingTensor } from "../ring/tensor.ts";

// ------------------------------------------------------------ replicated product

/**
 * This party's 3-out-of-3 share of x o y for a bilinear o (a matmul, a convolution, a broadcast product), without the
 * zero share: x_i o y_i + x_i o y_next + x_next o y_i, as op(x_i + x_next, y_i) + op(x_i, y_next) when x is the
 * smaller operand and op(x_i, y_i + y_next) + op(x_next, y_i) otherwise. The two are the same word for word; the sum
 * goes to the smaller side because it is a pass over it each time (at batch-1 inference the weights are the larger:
 * summing AlexNet's 2.45 million weight words cost 1.35 ms a forward on every party).
 */
export function localProduct(
  x: readonly [RingTensor, RingTensor],
  y: readonly [RingTensor, RingTensor],
  op: (a: RingTensor, b: RingTensor) => RingTensor,
): RingTensor {
  if (x[0].words < y[0].words) {
    using xSum = x[0].add(x[1]);
    using t1 = op(xSum, y[0]);
    using t2 = op(x[0], y[1]);
    return t1.add(t2);
  }
  using ySum = y[0].add(y[1]);
  using t1 = op(x[0], ySum);
  using t2 = op(x[1], y[0]);
  return t1.add(t2);
}

/**
 * The local half of a replicated product in one pass (cg_replicated_product):
 * ring: x0 (y0 + y1) + x1 y0 + (r0 - r1); bits: x0 & (y0 ^ y1) ^ x1 & y0 ^ r0 ^ r1.
 * All six operands have one shape and dtype (bits may be u64 words too).
 */
export function replicatedProduct(
  kind: "ring" | "bits",
  x: [RingTensor, RingTensor],
  y: [RingTensor, RingTensor],
  r: [RingTensor, RingTensor],
): RingTensor {
  const out = RingTensor.empty(x[0].backend, x[0].shape, x[0].dtype);
  try {
    assignReplicatedProduct(out, kind, x, y, r);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** `replicatedProduct` written into `out` (a tensor or a slice), which must not overlap an operand. */
export function assignReplicatedProduct(
  out: RingTensor,
  kind: "ring" | "bits",
  x: [RingTensor, RingTensor],
  y: [RingTensor, RingTensor],
  r: [RingTensor, RingTensor],
): void {
  writable(out, "replicatedProduct");
  for (const t of [...x, ...y, ...r]) {
    if (!sameShape(t.shape, out.shape) || t.dtype !== out.dtype) {
      throw new RangeError(
        `replicatedProduct: operands must share shape and dtype ${fmt(out.shape)} ${out.dtype}, got ${
          fmt(t.shape)
        } ${t.dtype}`,
      );
    }
  }
  if (kind === "ring" && out.dtype !== "u64") throw new TypeError("replicatedProduct: ring products need u64 words");
  const dense = [out, ...x, ...y, ...r].map((t) => t.contiguous()); // slices as view handles
  try {
    const [o, x0, x1, y0, y1, r0, r1] = dense.map((t) => t.handle);
    out.backend.replicatedProduct(kind, o, [x0, x1], [y0, y1], [r0, r1], out.words);
  } finally {
    dense.forEach((t) => t.dispose());
  }
}

// ------------------------------------------------------------ bit injection

/** What each bit-injection role passes to injectStep: E a [rows, k] tensor, R one word per row. */
const INJECT_OPERANDS: Record<InjectRole, { bits: number; inputs: string; outputs: string }> = {
  leader: { bits: 2, inputs: "EEEREE", outputs: "EREE" }, // a_L a_F s s' r r' | A B T L
  follower: { bits: 1, inputs: "EEREEE", outputs: "E" }, // a_H A B T W f | H
  helper: { bits: 1, inputs: "EEREE", outputs: "EE" }, // a_H s s' r r' | W L
};

/**
 * The local arithmetic of one third of a bit injection, written into
 * `outputs` (cg_bit_inject has the formulas, bitinject.ts the protocol).
 * `bits` are packed [n, 1] streams, read from row `bitOffset`; the ring
 * tensors are [rows, k] (E) or one per row (R), in the order INJECT_OPERANDS
 * gives for the role. Outputs may be slices of a larger tensor.
 */
export function injectStep(
  role: InjectRole,
  bits: readonly RingTensor[],
  bitOffset: number,
  inputs: readonly RingTensor[],
  outputs: readonly RingTensor[],
  flip = false,
): void {
  const want = INJECT_OPERANDS[role];
  if (bits.length !== want.bits || inputs.length !== want.inputs.length || outputs.length !== want.outputs.length) {
    throw new RangeError(
      `injectStep: the ${role} takes ${want.bits} bit streams, ${want.inputs.length} inputs and ${want.outputs.length} outputs`,
    );
  }
  const [rows, k] = inputs[0].rank === 2 ? inputs[0].shape : [inputs[0].size, 1];
  for (const b of bits) {
    requireDtype(b, "bit", "injectStep: bits");
    if (!Number.isInteger(bitOffset) || bitOffset < 0 || bitOffset + rows > b.size) {
      throw new RangeError(`injectStep: rows [${bitOffset}, ${bitOffset + rows}) are outside ${b.size} bits`);
    }
  }
  const check = (ts: readonly RingTensor[], kinds: string, what: string) =>
    ts.forEach((t, i) => expectShape(t, kinds[i] === "R" ? [rows, 1] : [rows, k], `injectStep: ${what} ${i}`));
  check(inputs, want.inputs, "input");
  check(outputs, want.outputs, "output");
  outputs.forEach((t) => writable(t, "injectStep"));
  const dense = [...bits, ...inputs, ...outputs].map((t) => t.contiguous()); // slices as view handles
  try {
    bits[0].backend.bitInject(role, dense.map((t) => t.handle), rows, k, bitOffset, flip);
  } finally {
    dense.forEach((t) => t.dispose());
  }
}

// ------------------------------------------------------------ carry levels

/** A carry level's layout, its size argument and the shape of its result. */
function carryLevel(t: RingTensor, what: string): { layout: CarryLayout; n: number; out: Shape } {
  if (t.dtype === "u64") return { layout: "words", n: t.size, out: [t.size, 64] };
  if (t.rank !== 2 || t.shape[1] % 4 !== 0) {
    throw new RangeError(`${what}: units must be [rows, width] with width a multiple of 4, got ${fmt(t.shape)}`);
  }
  return { layout: "units", n: t.size, out: [t.shape[0], t.shape[1] / 2] };
}

/**
 * The local half of one parallel-prefix carry level's AND (cg_carry_and).
 * A unit is a (propagate, generate) bit pair; the level pairs adjacent units.
 * With g: p and g are words of propagate and generate bits, read as units
 * (0, 0), (p_0, g_0), ..., (p_62, g_62), and the result is [n, 64] bits of
 * 32 units per word. Without g: p is [rows, width] packed units (width a
 * multiple of 4) and the result [rows, width / 2]. r: the zero-share draws,
 * shaped like the result.
 */
export function carryAnd(
  p: [RingTensor, RingTensor],
  g: [RingTensor, RingTensor] | null,
  r: [RingTensor, RingTensor],
): RingTensor {
  const level = carryLevel(p[0], "carryAnd");
  const operands = [...p, ...(g ?? [])];
  for (const t of operands) {
    if (!sameShape(t.shape, p[0].shape) || t.dtype !== p[0].dtype) {
      throw new RangeError(`carryAnd: operands must share shape and dtype, got ${fmt(t.shape)} ${t.dtype}`);
    }
  }
  if ((g === null) !== (level.layout === "units")) {
    throw new TypeError("carryAnd: generate words go with propagate words, and units come alone");
  }
  for (const t of r) {
    requireDtype(t, "bit", "carryAnd: r");
    expectShape(t, level.out, "carryAnd: r");
  }
  const dense = [...operands, ...r].map((t) => t.contiguous());
  try {
    const h = dense.map((t) => t.handle);
    const rh = h.slice(-2) as [bigint, bigint];
    return bitsFrom(
      p[0].backend,
      level.out,
      (out) => p[0].backend.carryAnd(level.layout, out, [h[0], h[1]], g ? [h[2], h[3]] : null, rh, level.n),
    );
  } finally {
    dense.forEach((t) => t.dispose());
  }
}

/**
 * One share of a carry level's units (cg_carry_merge), from the same share of
 * its input (the generate words, or the units) and of its AND.
 */
export function carryMerge(a: RingTensor, z: RingTensor): RingTensor {
  const level = carryLevel(a, "carryMerge");
  requireDtype(z, "bit", "carryMerge");
  expectShape(z, level.out, "carryMerge: z");
  using da = a.contiguous(), dz = z.contiguous();
  return bitsFrom(
    a.backend,
    level.out,
    (out) => a.backend.carryMerge(level.layout, out, da.handle, dz.handle, level.n),
  );
}

// ------------------------------------------------------------ checks

/** A fresh packed-bit tensor that `fill` writes, freed again if it throws. */
function bitsFrom(backend: Backend, shape: Shape, fill: (out: bigint) => void): RingTensor {
  const out = RingTensor.empty(backend, shape, "bit");
  try {
    fill(out.handle);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

function requireDtype(t: RingTensor, dtype: DType, what: string): void {
  if (t.dtype !== dtype) throw new TypeError(`${what}: needs a ${dtype} tensor, got ${t.dtype}`);
}

function expectShape(t: RingTensor, shape: Shape, what: string): void {
  if (!sameShape(t.shape, shape)) throw new RangeError(`${what} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
}

function writable(t: RingTensor, what: string): void {
  if (!t.isContiguous()) throw new Error(`${what}: writes only into a contiguous tensor or slice`);
}
