/**
 * Pooling on sharings. Sum pooling is local; average pooling multiplies by
 * the public fixed-point 1/k^2 and truncates (1 round). Max pooling gathers
 * each window (local im2col of both shares) and runs the max tree over the
 * k*k entries (10 rounds a level), or on small tensors compares all pairs at
 * once (max_pairs.ts: 12 rounds for 2x2, whatever the window); training keeps
 * the window's one-hot argmax for the backward pass.
 */
import { encodeFixed } from "../ring/fixed.ts";
import { RingTensor } from "../ring/tensor.ts";
import { type Conv2dOptions, poolOutputShape } from "../ring/tensor.ts";
import type { AShare } from "./arithmetic.ts";
import { maxLastAxis } from "./max.ts";
import { maxAllPairs, preferPairs } from "./max_pairs.ts";
import { relu } from "./relu.ts";
import { truncate } from "./truncate.ts";

export function sumPool2d(x: AShare, kernel: [number, number], o: Conv2dOptions = {}): AShare {
  return x.map((s) => s.sumPool2d(kernel, o));
}

export async function avgPool2d(x: AShare, kernel: [number, number], o: Conv2dOptions = {}): Promise<AShare> {
  const p = x.party;
  using sum = sumPool2d(x, kernel, o);
  using scaled = sum.mulPublic(encodeFixed(1 / (kernel[0] * kernel[1]), p.fracBits));
  return await truncate(scaled, p.fracBits);
}

export interface MaxPoolResult {
  y: AShare;
  /** [n, c, oh*ow, kh*kw] one-hot of each window's maximum (training). */
  argmax?: AShare;
}

/**
 * Max pooling. Padding takes no part in the maximum: padded window entries
 * get a public large negative value before the comparison. With `relu`, the
 * result is ReLU of the pooled maximum (= max pooling of ReLU(x)); the
 * all-pairs variant then folds the ReLU into its comparisons (argmax rows are
 * zero where the maximum is not positive). `variant` overrides the choice
 * between the tree and all pairs (`preferPairs`).
 */
export async function maxPool2d(
  x: AShare,
  kernel: [number, number],
  o: Conv2dOptions & { withArgmax?: boolean; relu?: boolean; variant?: "tree" | "pairs" } = {},
): Promise<MaxPoolResult> {
  const p = x.party;
  const [n, c, h, w] = x.shape;
  const kk = kernel[0] * kernel[1];
  // [n, c*kk, L] -> [n, c, kk, L] -> [n, c, L, kk]
  using cols = x.map((s) => s.im2col(kernel, o));
  const L = cols.shape[2];
  using windows = cols.map((s) => {
    using r = s.reshape([n, c, kk, L]);
    using t = r.permute([0, 1, 3, 2]);
    return t.contiguous();
  });
  let input = windows;
  using padded = hasPadding(o) ? windows.addPublic(paddingPenalty(p.backend, [n, c, h, w], kernel, o)) : null;
  if (padded) input = padded;
  const [, , oh, ow] = poolOutputShape([n, c, h, w], kernel, o);
  const withArgmax = o.withArgmax ?? false, withRelu = o.relu ?? false;
  if (withRelu && withArgmax) throw new RangeError("maxPool2d: the argmax of a max pooling fused with ReLU");
  if (o.variant === "pairs" || (!o.variant && preferPairs(n * c * L, kk, withRelu))) {
    const { max, argmax } = await maxAllPairs(input, { relu: withRelu, argmax: withArgmax });
    using m = max;
    return { y: m.reshape([n, c, oh, ow]), argmax };
  }
  const { max, argmax } = await maxLastAxis(input, withArgmax);
  using m = max;
  const y = m.reshape([n, c, oh, ow]);
  if (!withRelu) return { y, argmax };
  using pooled = y;
  return { y: await relu(pooled), argmax };
}

function hasPadding(o: Conv2dOptions): boolean {
  const pad = o.padding ?? 0;
  return typeof pad === "number" ? pad > 0 : pad[0] > 0 || pad[1] > 0;
}

/**
 * Added at padded window entries: -2^50 in the ring (-2^(50-f) as a real), far
 * below any activation while differences stay clear of 2^63.
 */
const PADDING_PENALTY = 1n << 50n;

/** The penalty at padded window entries, 0 elsewhere: [n, c, L, kk]. */
function paddingPenalty(
  backend: RingTensor["backend"],
  [n, c, h, w]: number[],
  kernel: [number, number],
  o: Conv2dOptions,
): RingTensor {
  const kk = kernel[0] * kernel[1];
  using ones = RingTensor.full(backend, [1, 1, h, w], 1n);
  using inside = ones.im2col(kernel, o); // [1, kk, L]: 1 inside the image, 0 in the padding
  using outside = inside.sub(1n); // 0 inside, -1 in the padding
  using big = outside.mul(PADDING_PENALTY);
  const L = inside.shape[2];
  using r = big.reshape([1, 1, kk, L]);
  using t = r.permute([0, 1, 3, 2]);
  using tc = t.contiguous();
  using zeros = RingTensor.zeros(backend, [n, c, L, kk]);
  return zeros.add(tc);
}
