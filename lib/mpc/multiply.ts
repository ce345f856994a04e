/**
 * Multiplication of two sharings under any bilinear map o (elementwise
 * product, matmul, convolution): z_i = x_i o y_i + x_i o y_next(i) + x_next(i) o y_i
 * + a_i, with a_i a zero-share (two local products, local_steps.ts localProduct); P_i sends z_i to P_prev(i), so every party
 * ends with (z_i, z_next(i)). Two local products, 1 round, 1 word per output
 * element per party. The result has the product's scale: fixed-point values
 * then need `truncate` by f.
 */
import type { RingTensor } from "../ring/tensor.ts";
import { sameShape } from "../ring/shape.ts";
import { localProduct, replicatedProduct } from "./local_steps.ts";
import type { Party } from "./party.ts";
import type { Conv2dOptions } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import { exchange } from "./transfer.ts";
import { truncate } from "./truncate.ts";
import { mulTruncate } from "./truncate_preprocessed.ts";

export type Bilinear = (a: RingTensor, b: RingTensor) => RingTensor;

export function multiplyWith(x: AShare, y: AShare, op: Bilinear, step = "multiply"): Promise<AShare> {
  return reshare(x.party, step, () => {
    using t = localProduct([x.cur, x.next], [y.cur, y.next], op);
    using a = x.party.rand.zeroShare(t.shape);
    return t.add(a);
  });
}

/** Elementwise product (shapes equal, or broadcastable as RingTensor.mul allows). */
export function mul(x: AShare, y: AShare): Promise<AShare> {
  if (!sameShape(x.shape, y.shape)) return multiplyWith(x, y, (a, b) => a.mul(b), "multiply");
  return reshare(x.party, "multiply", () => {
    const [r0, r1] = x.party.rand.zeroShareParts(x.shape);
    using _r0 = r0, _r1 = r1;
    return replicatedProduct("ring", [x.cur, x.next], [y.cur, y.next], [r0, r1]);
  });
}

/** Computes this party's z_i and completes the round: send z_i to P_prev, receive z_next. */
async function reshare(p: Party, step: string, local: () => RingTensor): Promise<AShare> {
  const before = p.setStep(step);
  try {
    const z = local();
    const [zNext] = await exchange(p.mesh, p.backend, [{ to: p.prev, tensor: z }], [{ from: p.next, shape: z.shape }]);
    return new AShare(p, z, zNext);
  } finally {
    p.setStep(before);
  }
}
export const matmul = (x: AShare, y: AShare) => multiplyWith(x, y, (a, b) => a.matmul(b), "matmul");
export const conv2d = (x: AShare, w: AShare, o: Conv2dOptions = {}) =>
  multiplyWith(x, w, (a, b) => a.conv2d(b, o), "conv2d");

/**
 * Fixed-point product: multiply, then truncate by the party's f. 2 rounds, at most 2 words per element; with
 * preprocessed truncation both in 1 round, 2 words per element (truncate_preprocessed.ts).
 */
export async function mulFixed(x: AShare, y: AShare, op: Bilinear = (a, b) => a.mul(b)): Promise<AShare> {
  const p = x.party, f = p.fracBits;
  if (p.truncation === "preprocessed") {
    return await mulTruncate(x, y, op, (shape) => p.pairs.take(f, shape.reduce((a, b) => a * b, 1)));
  }
  using z = await multiplyWith(x, y, op);
  return await truncate(z, x.party.fracBits);
}
