/**
 * Layers that run forward on shared tensors, each beside its float64 twin.
 * A layer names its parameters and their shapes; a model binds them, shared
 * (`AShare`, fixed point) for the private pass and `PlainTensor` for the twin.
 * Fixed-point bookkeeping: every product of two f-bit values is truncated by f
 * right away, so activations always carry f fractional bits.
 */
import { encodeFixed } from "../ring/fixed.ts";
import type { AShare } from "../mpc/arithmetic.ts";
import { mulFixed } from "../mpc/multiply.ts";
import type { RingTensor } from "../ring/tensor.ts";
import { relu as privateRelu } from "../mpc/relu.ts";
import { avgPool2d, maxPool2d } from "../mpc/pool.ts";
import { softmax as privateSoftmax } from "../mpc/softmax.ts";
import { truncate } from "../mpc/truncate.ts";
import * as plain from "./plain.ts";
import type { PlainTensor } from "./plain.ts";

/** The layer types of the paper's Table V breakdown. */
export type LayerKind = "linear" | "pool" | "relu" | "softmax" | "other";

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
  forward(x: AShare, p: Params<AShare>): Promise<AShare>;
  plain(x: PlainTensor, p: Params<PlainTensor>): PlainTensor;
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
  async forward(x: AShare, p: Params<AShare>): Promise<AShare> {
    const o = { stride: this.stride, padding: this.padding };
    using y = await mulFixed(x, p.get("weight"), (a, b) => a.conv2d(b, o));
    if (this.opts.bias === false) return y.map((t) => t.clone());
    using bias = p.get("bias").reshape([this.outChannels, 1, 1]);
    return y.add(bias);
  }
  plain(x: PlainTensor, p: Params<PlainTensor>): PlainTensor {
    return plain.conv2d(x, p.get("weight"), this.opts.bias === false ? null : p.get("bias"), this.stride, this.padding);
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
  async forward(x: AShare, p: Params<AShare>): Promise<AShare> {
    // x [n, in] . W^T: W is stored [out, in], the kernel takes the transpose as a flag
    const product = (a: RingTensor, b: RingTensor) => {
      using bt = b.transpose();
      return a.matmul(bt);
    };
    using y = await mulFixed(x, p.get("weight"), product);
    if (!this.bias) return y.map((t) => t.clone());
    return y.add(p.get("bias"));
  }
  plain(x: PlainTensor, p: Params<PlainTensor>): PlainTensor {
    return plain.linear(x, p.get("weight"), this.bias ? p.get("bias") : null);
  }
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
  forward(x: AShare): Promise<AShare> {
    return privateRelu(x);
  }
  plain(x: PlainTensor): PlainTensor {
    return plain.relu(x);
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
  async forward(x: AShare): Promise<AShare> {
    const k: [number, number] = [this.kernel, this.kernel], o = { stride: this.stride, padding: this.padding };
    return this.op === "avg" ? await avgPool2d(x, k, o) : (await maxPool2d(x, k, o)).y;
  }
  plain(x: PlainTensor): PlainTensor {
    return plain.pool2d(x, this.kernel, this.stride, this.padding, this.op);
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
  async forward(x: AShare): Promise<AShare> {
    const [n, c, h, w] = x.shape;
    using flat = x.reshape([n, c, h * w]);
    using sum = flat.sum(2);
    using scaled = sum.mulPublic(encodeFixed(1 / (h * w), x.party.fracBits));
    using mean = await truncate(scaled, x.party.fracBits);
    return mean.reshape([n, c, 1, 1]);
  }
  plain(x: PlainTensor): PlainTensor {
    return plain.globalAvgPool(x);
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
  async forward(x: AShare, p: Params<AShare>): Promise<AShare> {
    using scale = p.get("scale").reshape([this.channels, 1, 1]);
    using shift = p.get("shift").reshape([this.channels, 1, 1]);
    using y = await mulFixed(x, scale);
    return y.add(shift);
  }
  plain(x: PlainTensor, p: Params<PlainTensor>): PlainTensor {
    return plain.channelAffine(x, p.get("scale"), p.get("shift"));
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
  forward(x: AShare): Promise<AShare> {
    return Promise.resolve(x.reshape(this.outputShape(x.shape)));
  }
  plain(x: PlainTensor): PlainTensor {
    return x.reshape(this.outputShape(x.shape));
  }
}

/** Identity at inference. */
export class Dropout implements Layer {
  readonly kind = "other";
  readonly label = "Dropout";
  paramShapes(): [string, number[]][] {
    return [];
  }
  outputShape(s: readonly number[]): number[] {
    return [...s];
  }
  forward(x: AShare): Promise<AShare> {
    return Promise.resolve(x.map((t) => t.clone()));
  }
  plain(x: PlainTensor): PlainTensor {
    return x;
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
}
