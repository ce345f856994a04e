/**
 * Layers that run forward and backward on shared tensors, each beside its
 * float64 twin.
 * A layer names its parameters and their shapes; a model binds them, shared
 * (`AShare`, fixed point) for the private pass and `PlainTensor` for the twin.
 * Fixed-point bookkeeping: every product of two f-bit values is truncated by f
 * right away, so activations always carry f fractional bits.
 */
import { createCipheriv, createHash } from "node:crypto";
import { encodeFixed } from "../ring/fixed.ts";
import type { AShare } from "../mpc/arithmetic.ts";
import { mul, mulFixed, multiplyWith } from "../mpc/multiply.ts";
import { revealProductTo } from "../mpc/reveal_product.ts";
import { RingTensor } from "../ring/tensor.ts";
import { relu as privateRelu } from "../mpc/relu.ts";
import { avgPool2d, maxPool2d } from "../mpc/pool.ts";
import { softmax as privateSoftmax } from "../mpc/softmax.ts";
import { truncate } from "../mpc/truncate.ts";
import { msb } from "../mpc/msb.ts";
import { bitInjectComplement } from "../mpc/bitinject.ts";
import type { BShare } from "../mpc/binary.ts";
import * as plain from "./plain.ts";
import * as grad from "./plain_grad.ts";
import { PlainTensor } from "./plain.ts";
import type { Breakdown, LayerKind } from "./breakdown.ts";
import type { Grads, Tape } from "./tape.ts";

export type { LayerKind } from "./breakdown.ts";

export interface Params<T> {
  get(name: string): T;
}

export interface Layer {
  readonly kind: LayerKind;
  readonly label: string;
  /** Parameter names (relative to the layer) and shapes, in file order. */
  paramShapes(): [string, number[]][];
  /** Output shape for an input shape, checked. */
  outputShape(input: readonly number[]): number[];
  /**
   * The private forward pass. With a tape (training), the layer saves there
   * what its backward pass needs; a breakdown is kept by composite layers.
   */
  forward(x: AShare, p: Params<AShare>, breakdown?: Breakdown, tape?: Tape): Promise<AShare>;
  /** The plaintext twin, saving on the tape like `forward`. */
  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor;
  /**
   * Given dL/dy, sets dL/dparam in `grads` and returns dL/dx (null when
   * `needInput` is false: the first layer's input is data).
   */
  backward(
    dy: AShare,
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    needInput: boolean,
    breakdown?: Breakdown,
  ): Promise<AShare | null>;
  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor;
  /**
   * Inference only, for a layer whose output is a product plus a bias: the output opened to party r without
   * resharing or truncating it (revealProductTo), at the product's scale 2f; null at the other parties.
   */
  openTo?(x: AShare, p: Params<AShare>, r: number): Promise<RingTensor | null>;
}

/** A bias shared at scale f, lifted to a product's scale 2f (local). */
export const atProductScale = (bias: AShare): AShare => bias.mulPublic(1n << BigInt(bias.party.fracBits));

/** A copy of x that outlives the caller's disposal of x. */
const kept = (x: AShare): AShare => x.map((t) => t.clone());

/** Sum over every axis but 1 of [n, c, ...]: a convolution's bias gradient. */
function sumChannels(dy: AShare): AShare {
  const [n, c] = dy.shape;
  using r = dy.reshape([n, c, dy.size / (n * c)]);
  using s = r.sum(2);
  return s.sum(0);
}

const shapeError = (label: string, input: readonly number[], want: string) =>
  new RangeError(`${label}: input of shape [${input}] does not fit (expected ${want})`);

export class Conv2d implements Layer {
  readonly kind = "linear";
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly opts: { stride?: number; padding?: number; bias?: boolean } = {},
  ) {}
  get label(): string {
    return `Conv2d(${this.inChannels}, ${this.outChannels}, ${this.kernel})`;
  }
  get stride(): number {
    return this.opts.stride ?? 1;
  }
  get padding(): number {
    return this.opts.padding ?? 0;
  }
  paramShapes(): [string, number[]][] {
    const w: [string, number[]] = ["weight", [this.outChannels, this.inChannels, this.kernel, this.kernel]];
    return this.opts.bias === false ? [w] : [w, ["bias", [this.outChannels]]];
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 4 || s[1] !== this.inChannels) throw shapeError(this.label, s, `[n, ${this.inChannels}, h, w]`);
    const o = (d: number) => Math.floor((d + 2 * this.padding - this.kernel) / this.stride) + 1;
    if (o(s[2]) < 1 || o(s[3]) < 1) {
      throw shapeError(this.label, s, `at least ${this.kernel}x${this.kernel} after padding`);
    }
    return [s[0], this.outChannels, o(s[2]), o(s[3])];
  }
  async forward(x: AShare, p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    const o = { stride: this.stride, padding: this.padding };
    tape?.save("x", kept(x));
    using y = await mulFixed(x, p.get("weight"), (a, b) => a.conv2d(b, o));
    if (this.opts.bias === false) return kept(y);
    using bias = p.get("bias").reshape([this.outChannels, 1, 1]);
    return y.add(bias);
  }
  async openTo(x: AShare, p: Params<AShare>, r: number): Promise<RingTensor | null> {
    const o = { stride: this.stride, padding: this.padding };
    using bias = this.opts.bias === false ? undefined : p.get("bias").reshape([this.outChannels, 1, 1]);
    using lifted = bias && atProductScale(bias);
    return await revealProductTo(x, p.get("weight"), (a, b) => a.conv2d(b, o), r, lifted);
  }
  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("x", x);
    return plain.conv2d(x, p.get("weight"), this.opts.bias === false ? null : p.get("bias"), this.stride, this.padding);
  }
  async backward(dy: AShare, p: Params<AShare>, tape: Tape, grads: Grads<AShare>, needInput: boolean) {
    const x = tape.get<AShare>("x"), w = p.get("weight"), o = { stride: this.stride, padding: this.padding };
    grads.set("weight", await mulFixed(x, dy, (a, b) => a.conv2dBackwardWeight(b, w.shape, o)));
    if (this.opts.bias !== false) grads.set("bias", sumChannels(dy));
    return needInput ? await mulFixed(dy, w, (a, b) => a.conv2dBackwardInput(b, x.shape, o)) : null;
  }
  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const x = tape.get<PlainTensor>("x"), w = p.get("weight");
    grads.set("weight", grad.conv2dBackwardWeight(x, dy, w.shape, this.stride, this.padding));
    if (this.opts.bias !== false) grads.set("bias", grad.sumExcept(dy, 1));
    return grad.conv2dBackwardInput(dy, w, x.shape, this.stride, this.padding);
  }
}

export class Linear implements Layer {
  readonly kind = "linear";
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly bias = true) {}
  get label(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures})`;
  }
  paramShapes(): [string, number[]][] {
    const w: [string, number[]] = ["weight", [this.outFeatures, this.inFeatures]];
    return this.bias ? [w, ["bias", [this.outFeatures]]] : [w];
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 2 || s[1] !== this.inFeatures) throw shapeError(this.label, s, `[n, ${this.inFeatures}]`);
    return [s[0], this.outFeatures];
  }
  async forward(x: AShare, p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    tape?.save("x", kept(x));
    // x [n, in] . W^T: W is stored [out, in], the kernel takes the transpose as a flag
    using y = await mulFixed(x, p.get("weight"), (a, b) => matmulT(a, b, false, true));
    if (!this.bias) return kept(y);
    return y.add(p.get("bias"));
  }
  async openTo(x: AShare, p: Params<AShare>, r: number): Promise<RingTensor | null> {
    using lifted = this.bias ? atProductScale(p.get("bias")) : undefined;
    return await revealProductTo(x, p.get("weight"), (a, b) => matmulT(a, b, false, true), r, lifted);
  }
  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("x", x);
    return plain.linear(x, p.get("weight"), this.bias ? p.get("bias") : null);
  }
  async backward(dy: AShare, p: Params<AShare>, tape: Tape, grads: Grads<AShare>, needInput: boolean) {
    const x = tape.get<AShare>("x");
    // dW [out, in] = dy^T x; dx [n, in] = dy W
    grads.set("weight", await mulFixed(dy, x, (a, b) => matmulT(a, b, true, false)));
    if (this.bias) grads.set("bias", dy.sum(0));
    return needInput ? await mulFixed(dy, p.get("weight"), (a, b) => a.matmul(b)) : null;
  }
  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const x = tape.get<PlainTensor>("x");
    grads.set("weight", grad.matmul(grad.transpose2d(dy), x));
    if (this.bias) grads.set("bias", grad.sumExcept(dy, 1));
    return grad.matmul(dy, p.get("weight"));
  }
}

/** a . b with either side transposed as a view (the matmul kernel reads transposes in place). */
function matmulT(a: RingTensor, b: RingTensor, ta: boolean, tb: boolean): RingTensor {
  using at = ta ? a.transpose() : null, bt = tb ? b.transpose() : null;
  return (at ?? a).matmul(bt ?? b);
}

export class ReLU implements Layer {
  readonly kind = "relu";
  readonly label = "ReLU";
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    return [...s];
  }
  async forward(x: AShare, _p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    if (!tape) return await privateRelu(x);
    // ReLU(x) = (1 - msb(x)) x, keeping <msb(x)> for the backward pass
    const sign = tape.save("sign", await msb(x));
    return await bitInjectComplement(sign, x);
  }
  plain(x: PlainTensor, _p?: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("x", x);
    return plain.relu(x);
  }
  /** dx = DReLU(x) dy = (1 - msb(x)) dy: one bit injection (2 rounds), no truncation. */
  backward(dy: AShare, _p: Params<AShare>, tape: Tape): Promise<AShare> {
    return bitInjectComplement(tape.get<BShare>("sign"), dy);
  }
  plainBackward(dy: PlainTensor, _p: Params<PlainTensor>, tape: Tape): PlainTensor {
    return grad.reluBackward(dy, tape.get<PlainTensor>("x"));
  }
}

export class Pool2d implements Layer {
  readonly kind = "pool";
  constructor(readonly op: "avg" | "max", readonly kernel: number, readonly stride = kernel, readonly padding = 0) {}
  get label(): string {
    return `${this.op === "avg" ? "AvgPool2d" : "MaxPool2d"}(${this.kernel})`;
  }
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 4) throw shapeError(this.label, s, "[n, c, h, w]");
    const o = (d: number) => Math.floor((d + 2 * this.padding - this.kernel) / this.stride) + 1;
    if (o(s[2]) < 1 || o(s[3]) < 1) throw shapeError(this.label, s, `at least ${this.kernel}x${this.kernel}`);
    return [s[0], s[1], o(s[2]), o(s[3])];
  }
  async forward(x: AShare, _p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    const k: [number, number] = [this.kernel, this.kernel], o = { stride: this.stride, padding: this.padding };
    tape?.save("shape", x.shape);
    if (this.op === "avg") return await avgPool2d(x, k, o);
    const { y, argmax } = await maxPool2d(x, k, { ...o, withArgmax: tape !== undefined });
    if (tape) tape.save("argmax", argmax);
    return y;
  }
  /** ReLU of this max pooling (inference), for a ReLU that ran after it in evaluationOrder. */
  async forwardWithRelu(x: AShare): Promise<AShare> {
    const k: [number, number] = [this.kernel, this.kernel];
    const { y } = await maxPool2d(x, k, { stride: this.stride, padding: this.padding, relu: true });
    return y;
  }
  plain(x: PlainTensor, _p?: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("shape", x.shape);
    if (this.op === "avg" || !tape) return plain.pool2d(x, this.kernel, this.stride, this.padding, this.op);
    const { y, argmax } = grad.maxPoolWithArgmax(x, this.kernel, this.stride, this.padding);
    tape.save("argmax", argmax);
    return y;
  }
  /**
   * Average: dy / k^2 spread over each window (1 truncation). Max: dy routed
   * to each window's maximum through the kept one-hots (1 multiplication by
   * 0/1 values, no truncation), then summed back into place (col2im).
   */
  async backward(dy: AShare, _p: Params<AShare>, tape: Tape) {
    const shape = tape.get<number[]>("shape"), [n, c] = shape;
    const k: [number, number] = [this.kernel, this.kernel], o = { stride: this.stride, padding: this.padding };
    if (this.op === "avg") {
      using scaled = dy.mulPublic(encodeFixed(1 / (this.kernel * this.kernel), dy.party.fracBits));
      using spread = await truncate(scaled, dy.party.fracBits);
      return spread.map((s) => s.sumPool2dBackward(shape, k, o));
    }
    const argmax = tape.get<AShare>("argmax"), [, , L, kk] = argmax.shape;
    using dyCol = dy.reshape([n, c, L, 1]);
    using routed = await multiplyWith(argmax, dyCol, (a, b) => a.mul(b), "maxpool backward");
    return routed.map((s) => {
      using t = s.permute([0, 1, 3, 2]);
      using cols = t.contiguous();
      using flat = cols.reshape([n, c * kk, L]);
      return flat.col2im(shape, k, o);
    });
  }
  plainBackward(dy: PlainTensor, _p: Params<PlainTensor>, tape: Tape): PlainTensor {
    const shape = tape.get<number[]>("shape");
    return this.op === "avg"
      ? grad.avgPoolBackward(dy, shape, this.kernel, this.stride, this.padding)
      : grad.maxPoolBackward(dy, tape.get<Int32Array>("argmax"), shape);
  }
}

/** Mean over the spatial axes (adaptive average pooling to 1x1). */
export class GlobalAvgPool implements Layer {
  readonly kind = "pool";
  readonly label = "GlobalAvgPool";
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 4) throw shapeError(this.label, s, "[n, c, h, w]");
    return [s[0], s[1], 1, 1];
  }
  async forward(x: AShare, _p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    tape?.save("shape", x.shape);
    const [n, c, h, w] = x.shape;
    using flat = x.reshape([n, c, h * w]);
    using sum = flat.sum(2);
    using scaled = sum.mulPublic(encodeFixed(1 / (h * w), x.party.fracBits));
    using mean = await truncate(scaled, x.party.fracBits);
    return mean.reshape([n, c, 1, 1]);
  }
  plain(x: PlainTensor, _p?: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("shape", x.shape);
    return plain.globalAvgPool(x);
  }
  async backward(dy: AShare, _p: Params<AShare>, tape: Tape) {
    const shape = tape.get<number[]>("shape"), [n, c, h, w] = shape;
    using scaled = dy.mulPublic(encodeFixed(1 / (h * w), dy.party.fracBits));
    using mean = await truncate(scaled, dy.party.fracBits);
    using col = mean.reshape([n, c, 1]);
    return col.map((s) => {
      using zeros = RingTensor.zeros(s.backend, [n, c, h * w]);
      using spread = zeros.add(s);
      return spread.reshape(shape);
    });
  }
  plainBackward(dy: PlainTensor, _p: Params<PlainTensor>, tape: Tape): PlainTensor {
    return grad.globalAvgPoolBackward(dy, tape.get<number[]>("shape"));
  }
}

/** Batch normalization at inference, folded by the model owner into y = scale x + shift per channel. */
export class BatchNorm2d implements Layer {
  readonly kind = "other";
  constructor(readonly channels: number) {}
  get label(): string {
    return `BatchNorm2d(${this.channels})`;
  }
  paramShapes(): [string, number[]][] {
    return [["scale", [this.channels]], ["shift", [this.channels]]];
  }
  outputShape(s: readonly number[]): number[] {
    if (s.length !== 4 || s[1] !== this.channels) throw shapeError(this.label, s, `[n, ${this.channels}, h, w]`);
    return [...s];
  }
  async forward(x: AShare, p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    tape?.save("x", kept(x));
    using scale = p.get("scale").reshape([this.channels, 1, 1]);
    using shift = p.get("shift").reshape([this.channels, 1, 1]);
    using y = await mulFixed(x, scale);
    return y.add(shift);
  }
  plain(x: PlainTensor, p: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("x", x);
    return plain.channelAffine(x, p.get("scale"), p.get("shift"));
  }
  /**
   * Training keeps the affine form (the statistics frozen, scale and shift
   * learned): dx = scale dy, dscale = sum dy x, dshift = sum dy.
   */
  async backward(dy: AShare, p: Params<AShare>, tape: Tape, grads: Grads<AShare>, needInput: boolean) {
    const x = tape.get<AShare>("x");
    using prod = await mul(dy, x);
    using prodSum = sumChannels(prod);
    grads.set("scale", await truncate(prodSum, dy.party.fracBits));
    grads.set("shift", sumChannels(dy));
    if (!needInput) return null;
    using scale = p.get("scale").reshape([this.channels, 1, 1]);
    return await mulFixed(dy, scale);
  }
  plainBackward(dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor {
    const { dx, dscale, dshift } = grad.channelAffineBackward(dy, tape.get<PlainTensor>("x"), p.get("scale"));
    grads.set("scale", dscale);
    grads.set("shift", dshift);
    return dx;
  }
}

export class Flatten implements Layer {
  readonly kind = "other";
  readonly label = "Flatten";
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    return [s[0], s.slice(1).reduce((a, b) => a * b, 1)];
  }
  forward(x: AShare, _p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    tape?.save("shape", x.shape);
    return Promise.resolve(x.reshape(this.outputShape(x.shape)));
  }
  plain(x: PlainTensor, _p?: Params<PlainTensor>, tape?: Tape): PlainTensor {
    tape?.save("shape", x.shape);
    return x.reshape(this.outputShape(x.shape));
  }
  backward(dy: AShare, _p: Params<AShare>, tape: Tape): Promise<AShare> {
    return Promise.resolve(dy.reshape(tape.get<number[]>("shape")));
  }
  plainBackward(dy: PlainTensor, _p: Params<PlainTensor>, tape: Tape): PlainTensor {
    return dy.reshape(tape.get<number[]>("shape"));
  }
}

/** Dropout's public randomness for one iteration (`TapeContext.dropout`). */
export interface DropoutContext {
  seed: number;
  iteration: number;
}

const DROPOUT_NO_CONTEXT = "Dropout in training needs the run's public seed and the iteration: pass " +
  "dropout: { seed, iteration } to trainStep/plainTrainStep (or build the tape as new Tape({ dropout: { seed, iteration } }))";

/**
 * The keep-mask of a Dropout layer (1 = kept, probability 1 - p), a public
 * function of (seed, iteration, path): AES-128-CTR from counter 0 under the
 * first 16 bytes of SHA-256("cryptgpu/dropout/v1", seed, iteration, path),
 * one 32-bit little-endian word per entry, kept when below (1 - p) 2^32.
 */
export function dropoutKeep(ctx: DropoutContext, path: string, p: number, n: number): Uint8Array {
  for (const [name, v] of [["seed", ctx.seed], ["iteration", ctx.iteration]] as const) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`Dropout: the ${name} ${v} is not an integer`);
  }
  const key = createHash("sha256")
    .update(`cryptgpu/dropout/v1\0${ctx.seed}\0${ctx.iteration}\0${path}`)
    .digest()
    .subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, new Uint8Array(16));
  const stream = new Uint8Array(cipher.update(new Uint8Array(4 * n)));
  const words = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const threshold = Math.round((1 - p) * 2 ** 32), keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) keep[i] = words.getUint32(4 * i, true) < threshold ? 1 : 0;
  return keep;
}

/**
 * Inverted dropout: in training (a forward with a tape) y = x m / (1 - p)
 * with a Bernoulli(1 - p) keep-mask m, and dx = dy m / (1 - p); at
 * inference (no tape) the identity.
 *
 * The mask is public: every party and the twin derive the same one from
 * public values only (the run's public seed, the iteration, the layer's path
 * in the network; see `dropoutKeep`), so it costs no communication and
 * discloses nothing about the data or the weights.
 * When 1/(1 - p) is an integer (p = 0.5: 2) the scaled mask is an integer
 * and x m / (1 - p) is exact with a public multiplication (no round);
 * otherwise the mask is a fixed-point constant and the product is truncated
 * once (the truncation's rounds, forward and backward alike).
 */
export class Dropout implements Layer {
  readonly kind = "other";
  readonly label: string;
  constructor(readonly p = 0.5) {
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p = ${p} is outside [0, 1)`);
    this.label = p === 0.5 ? "Dropout" : `Dropout(${p})`;
  }
  /** 1/(1 - p), rounded to the integer it is within 1e-12 of (then the private product is exact). */
  get scale(): number {
    const k = 1 / (1 - this.p);
    return Math.abs(k - Math.round(k)) < 1e-12 ? Math.round(k) : k;
  }
  get integerScale(): boolean {
    return Number.isInteger(this.scale);
  }
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    return [...s];
  }
  #keep(tape: Tape, n: number): Uint8Array {
    const ctx = tape.context.dropout;
    if (!ctx) throw new Error(DROPOUT_NO_CONTEXT);
    return dropoutKeep(ctx, tape.path, this.p, n);
  }
  /** x times the public mask tensor: exact for an integer scale, else one truncation. */
  async #apply(x: AShare, mask: RingTensor): Promise<AShare> {
    if (this.integerScale) return x.mulPublic(mask);
    using scaled = x.mulPublic(mask);
    return await truncate(scaled, x.party.fracBits);
  }
  async forward(x: AShare, _p: Params<AShare>, _b?: Breakdown, tape?: Tape): Promise<AShare> {
    if (!tape) return kept(x);
    const keep = this.#keep(tape, x.size);
    const value = this.integerScale ? BigInt(this.scale) : encodeFixed(this.scale, x.party.fracBits);
    const words = BigUint64Array.from(keep, (k) => (k ? value : 0n));
    const mask = tape.save("mask", RingTensor.from(x.party.backend, words, x.shape));
    return await this.#apply(x, mask);
  }
  plain(x: PlainTensor, _p?: Params<PlainTensor>, tape?: Tape): PlainTensor {
    if (!tape) return x;
    const keep = tape.save("keep", this.#keep(tape, x.size)), k = this.scale;
    return new PlainTensor(x.shape, x.data.map((v, i) => (keep[i] ? v * k : 0)));
  }
  backward(dy: AShare, _p: Params<AShare>, tape: Tape): Promise<AShare> {
    return this.#apply(dy, tape.get<RingTensor>("mask"));
  }
  plainBackward(dy: PlainTensor, _p: Params<PlainTensor>, tape: Tape): PlainTensor {
    const keep = tape.get<Uint8Array>("keep"), k = this.scale;
    return new PlainTensor(dy.shape, dy.data.map((v, i) => (keep[i] ? v * k : 0)));
  }
}

export class Softmax implements Layer {
  readonly kind = "softmax";
  readonly label = "Softmax";
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    return [...s];
  }
  forward(x: AShare): Promise<AShare> {
    return privateSoftmax(x);
  }
  plain(x: PlainTensor): PlainTensor {
    return plain.softmax(x);
  }
  /** Training differentiates softmax only inside the loss (softmax(z) - y): a model trains on its logits. */
  backward(): Promise<AShare> {
    return Promise.reject(new Error(SOFTMAX_TRAINING));
  }
  plainBackward(): PlainTensor {
    throw new Error(SOFTMAX_TRAINING);
  }
}

const SOFTMAX_TRAINING =
  "Softmax has no backward pass of its own: train on the logits, the loss applies softmax (gradient softmax(z) - y)";
