/**
 * The float64 plaintext kernels (im2col conv2d, its adjoints, linear, matmul,
 * average pooling's adjoint) against the direct-loop references they replaced,
 * and the conv2d adjoints against finite differences.
 */
import assert from "node:assert/strict";
import { conv2d, linear, PlainTensor } from "../../lib/nn/plain.ts";
import { avgPoolBackward, conv2dBackwardInput, conv2dBackwardWeight, matmul } from "../../lib/nn/plain_grad.ts";
import {
  referenceAvgPoolBackward,
  referenceConv2d,
  referenceConv2dBackwardInput,
  referenceConv2dBackwardWeight,
  referenceLinear,
  referenceMatmul,
} from "./plain_reference.ts";

/** Seeded uniform values in [-1, 1) (mulberry32), with a fraction `zeros` of exact zeros. */
function random(shape: readonly number[], seed: number, zeros = 0): PlainTensor {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = shape.reduce((a, b) => a * b, 1);
  return new PlainTensor(shape, Float64Array.from({ length: n }, () => (next() < zeros ? 0 : 2 * next() - 1)));
}

/** Same shape, and max |got - want| <= 1e-12 max |want|. */
function assertClose(got: PlainTensor, want: PlainTensor, what: string): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  let diff = 0, mag = 0;
  for (let i = 0; i < want.size; i++) {
    diff = Math.max(diff, Math.abs(got.data[i] - want.data[i]));
    mag = Math.max(mag, Math.abs(want.data[i]));
  }
  assert.ok(mag > 0, `${what}: reference is all zeros`);
  assert.ok(diff <= 1e-12 * mag, `${what}: max error ${diff} vs magnitude ${mag}`);
}

interface ConvCase {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  kh: number;
  kw: number;
  stride: number;
  padding: number;
  groups: number;
}

const convCases: ConvCase[] = [
  { n: 2, c: 1, h: 28, w: 28, oc: 4, kh: 5, kw: 5, stride: 1, padding: 0, groups: 1 }, // LeNet conv1 shape
  { n: 3, c: 6, h: 12, w: 10, oc: 5, kh: 5, kw: 5, stride: 1, padding: 0, groups: 1 }, // LeNet conv2 shape
  { n: 2, c: 3, h: 9, w: 13, oc: 4, kh: 3, kw: 3, stride: 2, padding: 1, groups: 1 },
  { n: 2, c: 4, h: 11, w: 7, oc: 6, kh: 5, kw: 5, stride: 2, padding: 2, groups: 1 },
  { n: 2, c: 4, h: 8, w: 9, oc: 6, kh: 3, kw: 3, stride: 1, padding: 1, groups: 2 },
  { n: 3, c: 6, h: 7, w: 10, oc: 4, kh: 1, kw: 1, stride: 1, padding: 0, groups: 2 },
  { n: 2, c: 5, h: 6, w: 5, oc: 3, kh: 1, kw: 1, stride: 2, padding: 2, groups: 1 }, // padding wider than the kernel
  { n: 2, c: 3, h: 35, w: 31, oc: 4, kh: 11, kw: 11, stride: 4, padding: 2, groups: 1 }, // AlexNet conv1 style
  { n: 2, c: 2, h: 13, w: 12, oc: 2, kh: 11, kw: 11, stride: 1, padding: 5, groups: 1 },
  { n: 2, c: 4, h: 9, w: 11, oc: 4, kh: 3, kw: 5, stride: 2, padding: 1, groups: 4 }, // depthwise, non-square kernel
  { n: 1, c: 3, h: 4, w: 4, oc: 2, kh: 5, kw: 5, stride: 1, padding: 2, groups: 1 }, // kernel wider than the image
];

const describe = (k: ConvCase) =>
  `x [${k.n},${k.c},${k.h},${k.w}] w [${k.oc},${
    k.c / k.groups
  },${k.kh},${k.kw}] s${k.stride} p${k.padding} g${k.groups}`;

Deno.test("conv2d equals the direct-loop reference (stride, padding, groups, 1x1 to 11x11 kernels)", () => {
  convCases.forEach((k, t) => {
    const x = random([k.n, k.c, k.h, k.w], 100 + t);
    const w = random([k.oc, k.c / k.groups, k.kh, k.kw], 200 + t);
    const bias = random([k.oc], 300 + t);
    for (const b of [bias, null]) {
      assertClose(
        conv2d(x, w, b, k.stride, k.padding, k.groups),
        referenceConv2d(x, w, b, k.stride, k.padding, k.groups),
        `${describe(k)} bias ${b !== null}`,
      );
    }
  });
});

Deno.test("conv2d's input and weight gradients equal the direct-loop references", () => {
  convCases.filter((k) => k.groups === 1).forEach((k, t) => {
    const x = random([k.n, k.c, k.h, k.w], 400 + t);
    const w = random([k.oc, k.c, k.kh, k.kw], 500 + t);
    const oh = Math.floor((k.h + 2 * k.padding - k.kh) / k.stride) + 1;
    const ow = Math.floor((k.w + 2 * k.padding - k.kw) / k.stride) + 1;
    for (const zeros of [0, 0.5]) { // dense, and ReLU-like sparse upstream gradients
      const dy = random([k.n, k.oc, oh, ow], 600 + t, zeros);
      assertClose(
        conv2dBackwardInput(dy, w, x.shape, k.stride, k.padding),
        referenceConv2dBackwardInput(dy, w, x.shape, k.stride, k.padding),
        `dx ${describe(k)} zeros ${zeros}`,
      );
      assertClose(
        conv2dBackwardWeight(x, dy, w.shape, k.stride, k.padding),
        referenceConv2dBackwardWeight(x, dy, w.shape, k.stride, k.padding),
        `dw ${describe(k)} zeros ${zeros}`,
      );
    }
  });
});

Deno.test("conv2d's gradients match central finite differences", () => {
  for (const [stride, padding] of [[1, 0], [2, 1], [2, 0]]) {
    const x = random([2, 2, 5, 6], 700 + stride + padding), w = random([3, 2, 3, 3], 800 + stride + padding);
    const bias = random([3], 900);
    const y = conv2d(x, w, bias, stride, padding);
    const dy = random(y.shape, 1000 + stride + padding);
    const loss = (xx: PlainTensor, ww: PlainTensor) => {
      const out = conv2d(xx, ww, bias, stride, padding);
      let s = 0;
      for (let i = 0; i < out.size; i++) s += dy.data[i] * out.data[i];
      return s;
    };
    const eps = 1e-4;
    const numeric = (t: PlainTensor, f: (p: PlainTensor) => number) =>
      Float64Array.from(t.data, (v, i) => {
        const plus = new Float64Array(t.data), minus = new Float64Array(t.data);
        plus[i] = v + eps;
        minus[i] = v - eps;
        return (f(new PlainTensor(t.shape, plus)) - f(new PlainTensor(t.shape, minus))) / (2 * eps);
      });
    const dx = conv2dBackwardInput(dy, w, x.shape, stride, padding);
    const dw = conv2dBackwardWeight(x, dy, w.shape, stride, padding);
    const wantDx = numeric(x, (p) => loss(p, w)), wantDw = numeric(w, (p) => loss(x, p));
    wantDx.forEach((v, i) => assert.ok(Math.abs(dx.data[i] - v) < 1e-8, `dx[${i}] ${dx.data[i]} vs ${v}`));
    wantDw.forEach((v, i) => assert.ok(Math.abs(dw.data[i] - v) < 1e-8, `dw[${i}] ${dw.data[i]} vs ${v}`));
    if (stride === 2 && padding === 0) { // the last column lies under no window: its gradient is exactly zero
      for (let r = 0; r < 2 * 2 * 5; r++) assert.equal(dx.data[r * 6 + 5], 0);
    }
  }
});

Deno.test("linear and matmul equal the direct-loop references", () => {
  for (const [n, k, m, t] of [[1, 1, 1, 0], [5, 7, 3, 1], [8, 80, 50, 2], [17, 33, 9, 3]]) {
    const x = random([n, k], 1100 + t), w = random([m, k], 1200 + t), bias = random([m], 1300 + t);
    assertClose(linear(x, w, bias), referenceLinear(x, w, bias), `linear ${n}x${k} -> ${m}`);
    assertClose(linear(x, w, null), referenceLinear(x, w, null), `linear ${n}x${k} -> ${m} no bias`);
    for (const zeros of [0, 0.5]) {
      const a = random([n, k], 1400 + t, zeros), b = random([k, m], 1500 + t);
      if (a.data.every((v) => v === 0)) a.data[0] = 1;
      assertClose(matmul(a, b), referenceMatmul(a, b), `matmul ${n}x${k} . ${k}x${m} zeros ${zeros}`);
    }
  }
});

Deno.test("avgPoolBackward equals the direct-loop reference", () => {
  for (const [h, w, k, stride, padding, t] of [[8, 8, 2, 2, 0, 0], [7, 9, 3, 2, 1, 1], [6, 5, 3, 1, 1, 2]]) {
    const oh = Math.floor((h + 2 * padding - k) / stride) + 1, ow = Math.floor((w + 2 * padding - k) / stride) + 1;
    const dy = random([2, 3, oh, ow], 1600 + t);
    assertClose(
      avgPoolBackward(dy, [2, 3, h, w], k, stride, padding),
      referenceAvgPoolBackward(dy, [2, 3, h, w], k, stride, padding),
      `avgPoolBackward ${h}x${w} k${k} s${stride} p${padding}`,
    );
  }
});
