/**
 * A graph's ops on sharings and on their float64 twin: one entry per op,
 * forward and backward. Ops that a zoo layer already implements exactly (ReLU,
 * global average pooling, batch normalization, softmax) run that layer, so
 * a graph and a Sequential of the same network compute the same thing.
 * Fixed point as in layers.ts: every product of two f-bit values is truncated
 * by f at once.
 */
import type { AShare } from "../mpc/arithmetic.ts";
import { AShare as AShareClass } from "../mpc/arithmetic.ts";
import { mulFixed, multiplyWith } from "../mpc/multiply.ts";
import { revealProductTo } from "../mpc/reveal_product.ts";
import { avgPool2d, maxPool2d, sumPool2d } from "../mpc/pool.ts";
import { truncate } from "../mpc/truncate.ts";
import { msb } from "../mpc/msb.ts";
import { bitInjectComplement } from "../mpc/bitinject.ts";
import type { BShare } from "../mpc/binary.ts";
import { encodeFixed } from "../ring/fixed.ts";
import { type Conv2dOptions, RingTensor } from "../ring/tensor.ts";
import { atProductScale, BatchNorm2d, GlobalAvgPool, type Params, ReLU, Softmax } from "./layers.ts";
import { BatchNorm } from "./batchnorm.ts";
import type { LayerKind } from "./breakdown.ts";
import type { GraphNode, GraphOp } from "./graph_spec.ts";
import { normAxis, outputShape, windowOut } from "./graph_shapes.ts";
import * as plainOps from "./plain_ops.ts";
import * as plainWindows from "./plain_windows.ts";
import type { PlainTensor } from "./plain.ts";
import type { Grads, Tape } from "./tape.ts";

type NodeOf<K extends GraphOp> = Extract<GraphNode, { op: K }>;
type Shape = readonly number[];

/** One op: its Table V kind, and its passes. Backward returns dL/d(input i), null where `need[i]` is false. */
export interface GraphOpImpl<N extends GraphNode> {
  kind: LayerKind;
  forward(n: N, xs: AShare[], p: Params<AShare>, tape?: Tape): Promise<AShare>;
  plain(n: N, xs: PlainTensor[], p: Params<PlainTensor>, tape?: Tape): PlainTensor;
  backward(
    n: N,
    dy: AShare,
    p: Params<AShare>,
    tape: Tape,
    grads: Grads<AShare>,
    need: boolean[],
  ): Promise<(AShare | null)[]>;
  plainBackward(n: N, dy: PlainTensor, p: Params<PlainTensor>, tape: Tape, grads: Grads<PlainTensor>): PlainTensor[];
  /** Inference, a product plus a bias: the output opened to party r at scale 2f, as Layer.openTo. */
  openTo?(n: N, xs: AShare[], p: Params<AShare>, r: number): Promise<RingTensor | null>;
}

const clone = (x: AShare): AShare => x.map((t) => t.clone());

/** Ops without a backward pass (softmax: a model trains on its logits, the loss applies softmax). */
function noBackward(n: GraphNode): never {
  throw new Error(`node ${JSON.stringify(n.name)} (${n.op}) has no backward pass: it cannot be trained through`);
}

const convOptions = (n: NodeOf<"conv">): Conv2dOptions => ({
  stride: n.stride,
  padding: n.padding,
  dilation: n.dilation,
  groups: n.groups,
});
const convGeometry = (n: NodeOf<"conv">): plainWindows.ConvGeometry => ({
  stride: n.stride,
  padding: n.padding,
  dilation: n.dilation,
  groups: n.groups,
});

/** a . b^T (the matmul kernel reads the transpose as a view). */
function matmulBT(a: RingTensor, b: RingTensor): RingTensor {
  using bt = b.transpose();
  return a.matmul(bt);
}
function matmulAT(a: RingTensor, b: RingTensor): RingTensor {
  using at = a.transpose();
  return at.matmul(b);
}

/** Sum over every axis but 1 of [n, c, ...]: a convolution's bias gradient. */
function sumChannels(dy: AShare): AShare {
  const [n, c] = dy.shape;
  using r = dy.reshape([n, c, dy.size / (n * c)]);
  using s = r.sum(2);
  return s.sum(0);
}

/** The sum of t over the axes that broadcasting expanded from `shape` (a broadcast operand's gradient). */
function reduceToShape(t: AShare, shape: Shape): AShare {
  let r = clone(t);
  const lead = t.shape.length - shape.length;
  for (let a = t.shape.length - 1; a >= 0; a--) {
    const target = a < lead ? 1 : shape[a - lead];
    if (target === 1 && r.shape[a] !== 1) {
      using before = r;
      r = before.sum(a, true);
    }
  }
  using full = r;
  return full.reshape([...shape]);
}

/** The public fixed-point 1/count for each output cell of an average pooling that ignores padding. */
function inverseCounts(p: AShare["party"], n: NodeOf<"avgpool">, x: Shape): RingTensor {
  const [, , h, w] = x, [kh, kw] = n.kernel, [sh, sw] = n.stride, [ph, pw] = n.padding;
  const oh = windowOut(h, kh, sh, ph), ow = windowOut(w, kw, sw, pw);
  const inside = (o: number, s: number, pad: number, k: number, len: number) =>
    Math.min(o * s - pad + k, len) - Math.max(o * s - pad, 0);
  const values = new BigUint64Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      const count = inside(i, sh, ph, kh, h) * inside(j, sw, pw, kw, w);
      values[i * ow + j] = BigInt.asUintN(64, encodeFixed(1 / count, p.fracBits));
    }
  }
  return RingTensor.from(p.backend, values, [oh, ow]);
}

const conv: GraphOpImpl<NodeOf<"conv">> = {
  kind: "linear",
  async forward(n, [x], p, tape) {
    tape?.save("x", clone(x));
    using y = await mulFixed(x, p.get("weight"), (a, b) => a.conv2d(b, convOptions(n)));
    if (!n.bias) return clone(y);
    using bias = p.get("bias").reshape([n.outChannels, 1, 1]);
    return y.add(bias);
  },
  async openTo(n, [x], p, r) {
    using bias = n.bias ? p.get("bias").reshape([n.outChannels, 1, 1]) : undefined;
    using lifted = bias && atProductScale(bias);
    return await revealProductTo(x, p.get("weight"), (a, b) => a.conv2d(b, convOptions(n)), r, lifted);
  },
  plain(n, [x], p, tape) {
    tape?.save("x", x);
    return plainWindows.conv2dFull(x, p.get("weight"), n.bias ? p.get("bias") : null, convGeometry(n));
  },
  async backward(n, dy, p, tape, grads, [need]) {
    const x = tape.get<AShare>("x"), w = p.get("weight"), o = convOptions(n);
    grads.set("weight", await mulFixed(x, dy, (a, b) => a.conv2dBackwardWeight(b, w.shape, o)));
    if (n.bias) grads.set("bias", sumChannels(dy));
    return [need ? await mulFixed(dy, w, (a, b) => a.conv2dBackwardInput(b, x.shape, o)) : null];
  },
  plainBackward(n, dy, p, tape, grads) {
    const x = tape.get<PlainTensor>("x"), w = p.get("weight");
    grads.set("weight", plainWindows.conv2dFullBackwardWeight(x, dy, w.shape, convGeometry(n)));
    if (n.bias) grads.set("bias", plainOps.reduceToShape(dy, [1, n.outChannels, 1, 1]).reshape([n.outChannels]));
    return [plainWindows.conv2dFullBackwardInput(dy, w, x.shape, convGeometry(n))];
  },
};

/** x [..., in] as the matrix [rows, in]. */
const rows = (x: AShare) => x.reshape([x.size / x.shape[x.shape.length - 1], x.shape[x.shape.length - 1]]);

const linear: GraphOpImpl<NodeOf<"linear">> = {
  kind: "linear",
  async forward(n, [x], p, tape) {
    tape?.save("x", clone(x));
    using x2 = rows(x);
    using y = await mulFixed(x2, p.get("weight"), matmulBT);
    using withBias = n.bias ? y.add(p.get("bias")) : clone(y);
    return withBias.reshape([...x.shape.slice(0, -1), n.outFeatures]);
  },
  async openTo(n, [x], p, r) {
    using x2 = rows(x), lifted = n.bias ? atProductScale(p.get("bias")) : undefined;
    using y = await revealProductTo(x2, p.get("weight"), matmulBT, r, lifted);
    return y && y.reshape([...x.shape.slice(0, -1), n.outFeatures]);
  },
  plain(n, [x], p, tape) {
    tape?.save("x", x);
    return plainOps.linearLastAxis(x, p.get("weight"), n.bias ? p.get("bias") : null);
  },
  async backward(n, dy, p, tape, grads, [need]) {
    const x = tape.get<AShare>("x");
    using x2 = rows(x), dy2 = rows(dy);
    // dW [out, in] = dy^T x; dx = dy W
    grads.set("weight", await mulFixed(dy2, x2, matmulAT));
    if (n.bias) grads.set("bias", dy2.sum(0));
    if (!need) return [null];
    using dx = await mulFixed(dy2, p.get("weight"), (a, b) => a.matmul(b));
    return [dx.reshape(x.shape)];
  },
  plainBackward(n, dy, p, tape, grads) {
    const x = tape.get<PlainTensor>("x"), w = p.get("weight");
    const inF = n.inFeatures, outF = n.outFeatures, m = x.size / inF;
    const dyT = plainOps.transpose(dy.reshape([m, outF]), [1, 0]);
    // dW = dy^T x as a linear map of x's columns: (x^T dy)^T
    grads.set("weight", plainOps.linearLastAxis(dyT, plainOps.transpose(x.reshape([m, inF]), [1, 0]), null));
    if (n.bias) grads.set("bias", plainOps.reduceToShape(dy.reshape([m, outF]), [outF]));
    return [plainOps.linearLastAxis(dy, plainOps.transpose(w, [1, 0]), null)];
  },
};

const add: GraphOpImpl<NodeOf<"add">> = {
  kind: "other",
  forward: (_n, [a, b]) => Promise.resolve(a.add(b)),
  plain: (_n, [a, b]) => plainOps.broadcastAdd(a, b),
  backward: (_n, dy, _p, _t, _g, need) => Promise.resolve(need.map((k) => (k ? clone(dy) : null))),
  plainBackward: (_n, dy) => [dy, dy],
};

const addConst: GraphOpImpl<NodeOf<"add_const">> = {
  kind: "other",
  forward: (_n, [x], p) => Promise.resolve(x.add(p.get("value"))),
  plain: (_n, [x], p) => plainOps.broadcastAdd(x, p.get("value")),
  backward(n, dy, _p, _t, grads, [need]) {
    grads.set("value", reduceToShape(dy, n.shape));
    return Promise.resolve([need ? clone(dy) : null]);
  },
  plainBackward(n, dy, _p, _t, grads) {
    grads.set("value", plainOps.reduceToShape(dy, n.shape));
    return [dy];
  },
};

const mulConst: GraphOpImpl<NodeOf<"mul_const">> = {
  kind: "other",
  async forward(_n, [x], p, tape) {
    tape?.save("x", clone(x));
    return await mulFixed(x, p.get("value"));
  },
  plain(_n, [x], p, tape) {
    tape?.save("x", x);
    return plainOps.broadcastMul(x, p.get("value"));
  },
  async backward(n, dy, p, tape, grads, [need]) {
    using prod = await multiplyWith(dy, tape.get<AShare>("x"), (a, b) => a.mul(b));
    using summed = reduceToShape(prod, n.shape);
    grads.set("value", await truncate(summed, dy.party.fracBits));
    return [need ? await mulFixed(dy, p.get("value")) : null];
  },
  plainBackward(n, dy, p, tape, grads) {
    grads.set("value", plainOps.reduceToShape(plainOps.broadcastMul(dy, tape.get<PlainTensor>("x")), n.shape));
    return [plainOps.broadcastMul(dy, p.get("value"))];
  },
};

const neg: GraphOpImpl<NodeOf<"neg">> = {
  kind: "other",
  forward: (_n, [x]) => Promise.resolve(x.neg()),
  plain: (_n, [x]) => x.map((v) => -v),
  backward: (_n, dy, _p, _t, _g, [need]) => Promise.resolve([need ? dy.neg() : null]),
  plainBackward: (_n, dy) => [dy.map((v) => -v)],
};

/** An op that a zoo layer implements exactly, on its one input. */
function layerOp<N extends GraphNode>(
  kind: LayerKind,
  layer: (n: N) => ReLU | GlobalAvgPool | BatchNorm2d | BatchNorm | Softmax,
): GraphOpImpl<N> {
  return {
    kind,
    forward: (n, [x], p, tape) => layer(n).forward(x, p, undefined, tape),
    plain: (n, [x], p, tape) => layer(n).plain(x, p, tape),
    backward: async (n, dy, p, tape, grads, [need]) => [await layer(n).backward(dy, p, tape, grads, need)],
    plainBackward: (n, dy, p, tape, grads) => [layer(n).plainBackward(dy, p, tape, grads)],
  };
}

/**
 * clip(x) = min + ReLU(x - min) - ReLU(x - max), both ReLUs in one call; a bound
 * that is absent drops its term. Training keeps both sign bits: the gradient
 * passes where min <= x < max.
 */
const clip: GraphOpImpl<NodeOf<"clip">> = {
  kind: "relu",
  async forward(n, [x], _p, tape) {
    const f = x.party.fracBits, lo = n.min !== undefined, hi = n.max !== undefined;
    const shifted: AShare[] = [];
    if (lo) shifted.push(x.addPublic(encodeFixed(-n.min!, f)));
    if (hi) shifted.push(x.addPublic(encodeFixed(-n.max!, f)));
    using both = AShareClass.concat(shifted, 0);
    shifted.forEach((s) => s.dispose());
    using sign = await msb(both);
    using relus = await bitInjectComplement(sign, both);
    tape?.save("sign", sign.map((s) => s.clone()));
    const m = x.shape[0];
    if (lo && hi) {
      using a = relus.slice(0, 0, m), b = relus.slice(0, m, 2 * m);
      using diff = a.sub(b);
      return diff.addPublic(encodeFixed(n.min!, f));
    }
    if (lo) return relus.addPublic(encodeFixed(n.min!, f));
    // only a maximum: x - ReLU(x - max)
    return x.sub(relus);
  },
  plain(n, [x], _p, tape) {
    tape?.save("x", x);
    return plainOps.clip(x, n.min ?? -Infinity, n.max ?? Infinity);
  },
  async backward(n, dy, _p, tape, _g, [need]) {
    if (!need) return [null];
    const sign = tape.get<BShare>("sign"), lo = n.min !== undefined, hi = n.max !== undefined;
    const copies = lo && hi ? [dy, dy] : [dy];
    using both = AShareClass.concat(copies, 0);
    using passed = await bitInjectComplement(sign, both);
    const m = dy.shape[0];
    if (lo && hi) {
      using a = passed.slice(0, 0, m), b = passed.slice(0, m, 2 * m);
      return [a.sub(b)];
    }
    return [lo ? clone(passed) : dy.sub(passed)];
  },
  plainBackward: (
    n,
    dy,
    _p,
    tape,
  ) => [plainOps.clipBackward(dy, tape.get<PlainTensor>("x"), n.min ?? -Infinity, n.max ?? Infinity)],
};

const poolGeometry = (n: NodeOf<"maxpool"> | NodeOf<"avgpool">): plainWindows.PoolGeometry => ({
  kernel: n.kernel,
  stride: n.stride,
  padding: n.padding,
});

const maxpool: GraphOpImpl<NodeOf<"maxpool">> = {
  kind: "pool",
  async forward(n, [x], _p, tape) {
    tape?.save("shape", x.shape);
    const o = { stride: n.stride, padding: n.padding, withArgmax: tape !== undefined };
    const { y, argmax } = await maxPool2d(x, n.kernel, o);
    if (tape) tape.save("argmax", argmax);
    return y;
  },
  plain(n, [x], _p, tape) {
    tape?.save("shape", x.shape);
    const { y, argmax } = plainWindows.pool2dFull(x, poolGeometry(n), "max");
    tape?.save("argmax", argmax);
    return y;
  },
  /** dy routed to each window's maximum through the kept one-hots (no truncation), then summed into place. */
  async backward(n, dy, _p, tape, _g, [need]) {
    if (!need) return [null];
    const shape = tape.get<number[]>("shape"), [nb, c] = shape;
    const argmax = tape.get<AShare>("argmax"), [, , L, kk] = argmax.shape;
    const o = { stride: n.stride, padding: n.padding };
    using dyCol = dy.reshape([nb, c, L, 1]);
    using routed = await multiplyWith(argmax, dyCol, (a, b) => a.mul(b), "maxpool backward");
    return [routed.map((s) => {
      using t = s.permute([0, 1, 3, 2]);
      using cols = t.contiguous();
      using flat = cols.reshape([nb, c * kk, L]);
      return flat.col2im(shape, n.kernel, o);
    })];
  },
  plainBackward: (_n, dy, _p, tape) => [
    plainWindows.maxPool2dFullBackward(dy, tape.get<Int32Array>("argmax"), tape.get<number[]>("shape")),
  ],
};

/** Whether an average pooling's divisor is the same for every cell: k*k, or no window reaches the padding. */
const uniformDivisor = (n: NodeOf<"avgpool">) => n.countIncludePad || (n.padding[0] === 0 && n.padding[1] === 0);

const avgpool: GraphOpImpl<NodeOf<"avgpool">> = {
  kind: "pool",
  async forward(n, [x], _p, tape) {
    tape?.save("shape", x.shape);
    const o = { stride: n.stride, padding: n.padding };
    if (uniformDivisor(n)) return await avgPool2d(x, n.kernel, o);
    using sum = sumPool2d(x, n.kernel, o);
    using inverse = inverseCounts(x.party, n, x.shape);
    using scaled = sum.mulPublic(inverse);
    return await truncate(scaled, x.party.fracBits);
  },
  plain(n, [x], _p, tape) {
    tape?.save("shape", x.shape);
    return plainWindows.pool2dFull(x, poolGeometry(n), "avg", n.countIncludePad).y;
  },
  /** dy times each cell's 1/count (1 truncation), spread over its window. */
  async backward(n, dy, _p, tape, _g, [need]) {
    if (!need) return [null];
    const shape = tape.get<number[]>("shape"), o = { stride: n.stride, padding: n.padding };
    using inverse = uniformDivisor(n) ? null : inverseCounts(dy.party, n, shape);
    using scaled = inverse
      ? dy.mulPublic(inverse)
      : dy.mulPublic(encodeFixed(1 / (n.kernel[0] * n.kernel[1]), dy.party.fracBits));
    using spread = await truncate(scaled, dy.party.fracBits);
    return [spread.map((s) => s.sumPool2dBackward(shape, n.kernel, o))];
  },
  plainBackward: (n, dy, _p, tape) => [
    plainWindows.avgPool2dFullBackward(dy, tape.get<number[]>("shape"), poolGeometry(n), n.countIncludePad),
  ],
};

/** Reshapes (flatten, reshape): the output shape is computed from the node, the backward restores the input's. */
function viewOp<N extends NodeOf<"flatten"> | NodeOf<"reshape">>(): GraphOpImpl<N> {
  return {
    kind: "other",
    forward(n, [x], _p, tape) {
      tape?.save("shape", x.shape);
      return Promise.resolve(x.reshape(outputShape(n, [x.shape])));
    },
    plain(n, [x], _p, tape) {
      tape?.save("shape", x.shape);
      return x.reshape(outputShape(n, [x.shape]));
    },
    backward: (_n, dy, _p, tape, _g, [need]) =>
      Promise.resolve([need ? dy.reshape(tape.get<number[]>("shape")) : null]),
    plainBackward: (_n, dy, _p, tape) => [dy.reshape(tape.get<number[]>("shape"))],
  };
}

const permuted = (x: AShare, perm: readonly number[]) =>
  x.map((s) => {
    using t = s.permute(perm);
    return t.contiguous();
  });

const transpose: GraphOpImpl<NodeOf<"transpose">> = {
  kind: "other",
  forward: (n, [x]) => Promise.resolve(permuted(x, n.perm)),
  plain: (n, [x]) => plainOps.transpose(x, n.perm),
  backward: (n, dy, _p, _t, _g, [need]) => Promise.resolve([need ? permuted(dy, plainOps.inversePerm(n.perm)) : null]),
  plainBackward: (n, dy) => [plainOps.transpose(dy, plainOps.inversePerm(n.perm))],
};

const concat: GraphOpImpl<NodeOf<"concat">> = {
  kind: "other",
  forward(n, xs, _p, tape) {
    const axis = normAxis(n, n.axis, xs[0].shape.length);
    tape?.save("sizes", xs.map((x) => x.shape[axis]));
    return Promise.resolve(AShareClass.concat(xs, axis));
  },
  plain(n, xs, _p, tape) {
    const axis = normAxis(n, n.axis, xs[0].shape.length);
    tape?.save("sizes", xs.map((x) => x.shape[axis]));
    return plainOps.concat(xs, axis);
  },
  backward(n, dy, _p, tape, _g, need) {
    const axis = normAxis(n, n.axis, dy.shape.length), sizes = tape.get<number[]>("sizes");
    let at = 0;
    return Promise.resolve(sizes.map((s, i) => {
      const start = at;
      at += s;
      if (!need[i]) return null;
      using part = dy.slice(axis, start, start + s);
      return part.contiguous();
    }));
  },
  plainBackward(n, dy, _p, tape) {
    return plainOps.split(dy, tape.get<number[]>("sizes"), normAxis(n, n.axis, dy.shape.length));
  },
};

const pad: GraphOpImpl<NodeOf<"pad">> = {
  kind: "other",
  forward: (n, [x]) => Promise.resolve(x.map((s) => s.pad(n.pads))),
  plain: (n, [x]) => plainOps.pad(x, n.pads),
  backward(n, dy, _p, _t, _g, [need]) {
    if (!need) return Promise.resolve([null]);
    let r = clone(dy);
    n.pads.forEach(([before, after], axis) => {
      using whole = r;
      using part = whole.slice(axis, before, whole.shape[axis] - after);
      r = part.contiguous();
    });
    return Promise.resolve([r]);
  },
  plainBackward: (n, dy) => [plainOps.unpad(dy, n.pads)],
};

/** Softmax along the last axis (outputShape refuses any other). */
const softmaxLayer = new Softmax();
const softmax: GraphOpImpl<NodeOf<"softmax">> = {
  kind: "softmax",
  forward: (_n, [x]) => softmaxLayer.forward(x),
  plain: (n, [x]) => plainOps.softmaxAxis(x, n.axis),
  backward: (n) => Promise.reject(noBackward(n)),
  plainBackward: (n) => noBackward(n),
};

const relu = new ReLU(), globalAvgPool = new GlobalAvgPool();

export const GRAPH_OPS: { [K in GraphOp]: GraphOpImpl<NodeOf<K>> } = {
  conv,
  linear,
  add,
  add_const: addConst,
  mul_const: mulConst,
  neg,
  relu: layerOp("relu", () => relu),
  clip,
  maxpool,
  avgpool,
  globalavgpool: layerOp("pool", () => globalAvgPool),
  batchnorm: layerOp("other", (n) => new BatchNorm2d(n.channels)),
  batchnorm_stats: layerOp(
    "other",
    (n) => new BatchNorm(n.channels, { eps: n.eps, momentum: n.momentum, maxVar: n.maxVar }),
  ),
  flatten: viewOp(),
  reshape: viewOp(),
  transpose,
  concat,
  softmax,
  pad,
};

/** The op's implementation for a node (the table, typed per node). */
export const opOf = <N extends GraphNode>(n: N) => GRAPH_OPS[n.op] as unknown as GraphOpImpl<N>;
