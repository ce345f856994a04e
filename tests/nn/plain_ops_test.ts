/**
 * The full-geometry plaintext kernels of lib/nn/plain_ops.ts and lib/nn/plain_windows.ts against direct-loop
 * references written here from the definitions, against the square-geometry kernels of plain.ts / plain_grad.ts,
 * and their backward passes against central finite differences and the adjoint identity <A x, y> = <x, A^T y>.
 */
import assert from "node:assert/strict";
import { conv2d, PlainTensor, pool2d, softmax } from "../../lib/nn/plain.ts";
import {
  avgPoolBackward,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPoolBackward,
  maxPoolWithArgmax,
} from "../../lib/nn/plain_grad.ts";
import {
  broadcastAdd,
  broadcastMul,
  clip,
  clipBackward,
  concat,
  inversePerm,
  linearLastAxis,
  pad,
  reduceToShape,
  softmaxAxis,
  split,
  transpose,
  unpad,
} from "../../lib/nn/plain_ops.ts";
import {
  avgPool2dFullBackward,
  conv2dFull,
  conv2dFullBackwardInput,
  conv2dFullBackwardWeight,
  type ConvGeometry,
  maxPool2dFullBackward,
  pool2dFull,
  type PoolGeometry,
} from "../../lib/nn/plain_windows.ts";

/** Seeded uniform values in [-1, 1) (mulberry32). */
function random(shape: readonly number[], seed: number): PlainTensor {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = shape.reduce((a, b) => a * b, 1);
  return new PlainTensor(shape, Float64Array.from({ length: n }, () => 2 * next() - 1));
}

/** Same shape, and max |got - want| <= tol * max |want|. */
function assertClose(got: PlainTensor, want: PlainTensor, what: string, tol = 1e-12): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  let diff = 0, mag = 0;
  for (let i = 0; i < want.size; i++) {
    diff = Math.max(diff, Math.abs(got.data[i] - want.data[i]));
    mag = Math.max(mag, Math.abs(want.data[i]));
  }
  assert.ok(mag > 0, `${what}: reference is all zeros`);
  assert.ok(diff <= tol * mag, `${what}: max error ${diff} vs magnitude ${mag}`);
}

const dot = (a: PlainTensor, b: PlainTensor): number => {
  assert.equal(a.size, b.size);
  let s = 0;
  for (let i = 0; i < a.size; i++) s += a.data[i] * b.data[i];
  return s;
};

/** <A x, y> = <x, A^T y> up to rounding. */
function assertAdjoint(ax: PlainTensor, y: PlainTensor, x: PlainTensor, aty: PlainTensor, what: string): void {
  const l = dot(ax, y), r = dot(x, aty);
  assert.ok(Math.abs(l - r) <= 1e-12 * Math.max(1, Math.abs(l)), `${what}: <Ax, y> ${l} vs <x, A^T y> ${r}`);
}

/**
 * Central differences (step 1e-6) of f at every entry of t against the analytic gradient:
 * max |numeric - analytic| < 1e-6 max |analytic|.
 */
function assertGradient(f: (t: PlainTensor) => number, t: PlainTensor, analytic: PlainTensor, what: string): void {
  const h = 1e-6;
  let diff = 0, mag = 0;
  for (let i = 0; i < t.size; i++) {
    const plus = new Float64Array(t.data), minus = new Float64Array(t.data);
    plus[i] += h;
    minus[i] -= h;
    const num = (f(new PlainTensor(t.shape, plus)) - f(new PlainTensor(t.shape, minus))) / (2 * h);
    diff = Math.max(diff, Math.abs(num - analytic.data[i]));
    mag = Math.max(mag, Math.abs(analytic.data[i]));
  }
  assert.ok(mag > 0, `${what}: analytic gradient is all zeros`);
  assert.ok(diff < 1e-6 * mag, `${what}: finite-difference error ${diff} vs magnitude ${mag}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Direct-loop references

function refConv(x: PlainTensor, w: PlainTensor, bias: PlainTensor | null, g: ConvGeometry): PlainTensor {
  const [n, c, h, wd] = x.shape, [oc, cg, kh, kw] = w.shape;
  const [sh, sw] = g.stride, [ph, pw] = g.padding, [dh, dw] = g.dilation;
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const og = oc / g.groups, out = new Float64Array(n * oc * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      const grp = Math.floor(o / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = bias ? bias.data[o] : 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const y = oy * sh - ph + i * dh, xx = ox * sw - pw + j * dw;
                if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
                s += x.data[((b * c + grp * cg + ci) * h + y) * wd + xx] * w.data[((o * cg + ci) * kh + i) * kw + j];
              }
            }
          }
          out[((b * oc + o) * oh + oy) * ow + ox] = s;
        }
      }
    }
  }
  return new PlainTensor([n, oc, oh, ow], out);
}

function refPool(x: PlainTensor, g: PoolGeometry, op: "avg" | "max", countIncludePad: boolean): PlainTensor {
  const [n, c, h, w] = x.shape, [kh, kw] = g.kernel, [sh, sw] = g.stride, [ph, pw] = g.padding;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = op === "max" ? -Infinity : 0, cells = 0;
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const y = oy * sh - ph + i, xx = ox * sw - pw + j;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            const v = x.data[(p * h + y) * w + xx];
            s = op === "max" ? Math.max(s, v) : s + v;
            cells++;
          }
        }
        out[(p * oh + oy) * ow + ox] = op === "max" ? s : s / (countIncludePad ? kh * kw : cells);
      }
    }
  }
  return new PlainTensor([n, c, oh, ow], out);
}

/** The multi-index of flat index i in shape. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = i % shape[a];
    i = Math.floor(i / shape[a]);
  }
  return idx;
}

const ravel = (idx: readonly number[], shape: readonly number[]): number =>
  idx.reduce((acc, v, a) => acc * shape[a] + v, 0);

/** A tensor of the given shape whose entry at each multi-index is f(index). */
function build(shape: readonly number[], f: (idx: number[]) => number): PlainTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new PlainTensor(shape, Float64Array.from({ length: n }, (_, i) => f(unravel(i, shape))));
}

const at = (t: PlainTensor, idx: readonly number[]): number => t.data[ravel(idx, t.shape)];

const refTranspose = (x: PlainTensor, perm: readonly number[]) => {
  return build(perm.map((p) => x.shape[p]), (idx) => {
    const src = new Array<number>(perm.length);
    perm.forEach((p, i) => src[p] = idx[i]);
    return at(x, src);
  });
};

const refPad = (x: PlainTensor, pads: readonly (readonly [number, number])[]) =>
  build(x.shape.map((v, a) => v + pads[a][0] + pads[a][1]), (idx) => {
    const src = idx.map((v, a) => v - pads[a][0]);
    return src.every((v, a) => v >= 0 && v < x.shape[a]) ? at(x, src) : 0;
  });

function refConcat(xs: readonly PlainTensor[], axis: number): PlainTensor {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, t) => s + t.shape[axis], 0);
  return build(shape, (idx) => {
    let k = 0, pos = idx[axis];
    while (pos >= xs[k].shape[axis]) pos -= xs[k++].shape[axis];
    const src = [...idx];
    src[axis] = pos;
    return at(xs[k], src);
  });
}

/** b's entry that a's entry at idx meets under right-aligned broadcasting. */
const broadcastAt = (b: PlainTensor, idx: readonly number[]) => {
  const lead = idx.length - b.shape.length;
  return at(b, b.shape.map((v, a) => (v === 1 ? 0 : idx[lead + a])));
};

function refSoftmaxAxis(x: PlainTensor, axis: number): PlainTensor {
  return build(x.shape, (idx) => {
    let s = 0;
    for (let j = 0; j < x.shape[axis]; j++) {
      const o = [...idx];
      o[axis] = j;
      s += Math.exp(at(x, o));
    }
    return Math.exp(at(x, idx)) / s;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution

interface ConvCase {
  x: number[];
  oc: number;
  k: [number, number];
  g: ConvGeometry;
}

const conv = (
  x: number[],
  oc: number,
  k: [number, number],
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
  groups: number,
): ConvCase => ({ x, oc, k, g: { stride, padding, dilation, groups } });

const convCases: ConvCase[] = [
  conv([2, 3, 9, 8], 4, [3, 2], [2, 1], [1, 0], [1, 1], 1), // non-square kernel, per-axis stride and padding
  conv([2, 2, 10, 9], 3, [3, 3], [1, 2], [2, 1], [2, 2], 1), // dilation 2
  conv([2, 4, 8, 9], 6, [2, 3], [1, 1], [0, 1], [2, 1], 2), // groups 2, dilation on one axis
  conv([1, 4, 11, 10], 8, [3, 3], [2, 2], [1, 1], [2, 2], 4), // depthwise (multiplier 2), dilation 2
  conv([2, 3, 7, 7], 2, [3, 3], [2, 2], [0, 0], [2, 2], 1), // dilated windows fit exactly: (7 - 5) / 2 + 1 = 2
  conv([2, 2, 5, 6], 3, [1, 1], [3, 2], [2, 0], [1, 1], 1), // 1x1 kernel, padding wider than the kernel
  conv([1, 2, 4, 5], 2, [5, 4], [1, 1], [2, 1], [1, 1], 2), // kernel larger than the image
];

const convName = (k: ConvCase) =>
  `x [${k.x}] k [${k.k}] s [${k.g.stride}] p [${k.g.padding}] d [${k.g.dilation}] g ${k.g.groups}`;

const weightShape = (k: ConvCase) => [k.oc, k.x[1] / k.g.groups, ...k.k];

Deno.test("conv2dFull equals the direct-loop reference (non-square, per-axis, dilation, groups, depthwise)", () => {
  convCases.forEach((k, t) => {
    const x = random(k.x, 10 + t), w = random(weightShape(k), 20 + t), bias = random([k.oc], 30 + t);
    for (const b of [bias, null]) assertClose(conv2dFull(x, w, b, k.g), refConv(x, w, b, k.g), convName(k));
  });
  // The exactly fitting case: two windows per axis, the last one's final tap on the last row and column.
  const fit = convCases[4], fx = random(fit.x, 1), fw = random(weightShape(fit), 2);
  const fy = conv2dFull(fx, fw, null, fit.g);
  assert.deepEqual([...fy.shape], [2, 2, 2, 2]);
  const fdx = conv2dFullBackwardInput(fy.map(() => 1), fw, fx.shape, fit.g);
  assert.notEqual(fdx.data[fx.size - 1], 0, "the bottom-right input is under a window");
});

Deno.test("conv2dFull and its gradients equal plain.ts's conv2d in the square case", () => {
  for (const [c, h, w, oc, k, s, p, groups, t] of [[3, 9, 8, 4, 3, 2, 1, 1, 0], [4, 7, 7, 6, 3, 1, 1, 2, 1]]) {
    const g: ConvGeometry = { stride: [s, s], padding: [p, p], dilation: [1, 1], groups };
    const x = random([2, c, h, w], 40 + t), wt = random([oc, c / groups, k, k], 50 + t), bias = random([oc], 60 + t);
    const y = conv2dFull(x, wt, bias, g);
    assertClose(y, conv2d(x, wt, bias, s, p, groups), `conv2d square s${s} p${p} g${groups}`);
    if (groups !== 1) continue; // plain_grad's adjoints take no groups
    const dy = random(y.shape, 70 + t);
    assertClose(conv2dFullBackwardInput(dy, wt, x.shape, g), conv2dBackwardInput(dy, wt, x.shape, s, p), "dx");
    assertClose(conv2dFullBackwardWeight(x, dy, wt.shape, g), conv2dBackwardWeight(x, dy, wt.shape, s, p), "dw");
  }
});

Deno.test("conv2dFull's gradients satisfy the adjoint identity and match central finite differences", () => {
  convCases.forEach((k, t) => {
    const x = random(k.x, 80 + t), w = random(weightShape(k), 90 + t), bias = random([k.oc], 100 + t);
    const y = conv2dFull(x, w, null, k.g), dy = random(y.shape, 110 + t);
    const dx = conv2dFullBackwardInput(dy, w, x.shape, k.g), dw = conv2dFullBackwardWeight(x, dy, w.shape, k.g);
    assertAdjoint(y, dy, x, dx, `dx ${convName(k)}`);
    assertAdjoint(y, dy, w, dw, `dw ${convName(k)}`);
    if (t < 4) { // finite differences on the first cases (the loss includes the bias, which drops out)
      const loss = (xx: PlainTensor, ww: PlainTensor) => dot(conv2dFull(xx, ww, bias, k.g), dy);
      assertGradient((p) => loss(p, w), x, dx, `fd dx ${convName(k)}`);
      assertGradient((p) => loss(x, p), w, dw, `fd dw ${convName(k)}`);
    }
  });
});

Deno.test("conv2dFull rejects shapes that do not fit with a RangeError", () => {
  const x = random([1, 4, 5, 5], 1),
    ok: ConvGeometry = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
  const bad: [string, () => unknown][] = [
    ["kernel too big", () => conv2dFull(x, random([2, 4, 6, 3], 2), null, ok)],
    ["dilated kernel too big", () => conv2dFull(x, random([2, 4, 3, 3], 2), null, { ...ok, dilation: [3, 1] })],
    ["groups do not divide c", () => conv2dFull(x, random([3, 4, 3, 3], 2), null, { ...ok, groups: 3 })],
    ["wrong c/groups", () => conv2dFull(x, random([2, 4, 3, 3], 2), null, { ...ok, groups: 2 })],
    ["stride 0", () => conv2dFull(x, random([2, 4, 3, 3], 2), null, { ...ok, stride: [0, 1] })],
    ["negative padding", () => conv2dFull(x, random([2, 4, 3, 3], 2), null, { ...ok, padding: [-1, 0] })],
    ["bias length", () => conv2dFull(x, random([2, 4, 3, 3], 2), random([3], 3), ok)],
    ["rank 3 input", () => conv2dFull(random([4, 5, 5], 1), random([2, 4, 3, 3], 2), null, ok)],
    ["dy shape", () => conv2dFullBackwardInput(random([1, 2, 2, 3], 1), random([2, 4, 3, 3], 2), x.shape, ok)],
    ["dy shape (weight)", () => conv2dFullBackwardWeight(x, random([1, 2, 3, 2], 1), [2, 4, 3, 3], ok)],
  ];
  for (const [what, f] of bad) assert.throws(f, RangeError, what);
});

// ---------------------------------------------------------------------------------------------------------------
// Pooling

const poolCases: { x: number[]; g: PoolGeometry }[] = [
  { x: [2, 3, 7, 8], g: { kernel: [2, 3], stride: [2, 1], padding: [1, 1] } },
  { x: [1, 2, 9, 9], g: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] } },
  { x: [2, 2, 7, 6], g: { kernel: [3, 2], stride: [2, 2], padding: [0, 0] } }, // windows fit exactly: 3 x 3 outputs
  { x: [1, 3, 6, 10], g: { kernel: [4, 3], stride: [1, 3], padding: [2, 1] } },
];

const poolName = (k: { x: number[]; g: PoolGeometry }) =>
  `x [${k.x}] k [${k.g.kernel}] s [${k.g.stride}] p [${k.g.padding}]`;

Deno.test("pool2dFull equals the direct-loop reference for avg (both divisors) and max", () => {
  poolCases.forEach((k, t) => {
    const x = random(k.x, 200 + t);
    for (const cip of [true, false]) {
      assertClose(pool2dFull(x, k.g, "avg", cip).y, refPool(x, k.g, "avg", cip), `avg ${cip} ${poolName(k)}`);
    }
    const { y, argmax } = pool2dFull(x, k.g, "max");
    assertClose(y, refPool(x, k.g, "max", true), `max ${poolName(k)}`);
    assert.ok(argmax !== null && argmax.every((a, o) => x.data[a] === y.data[o]), `argmax ${poolName(k)}`);
    assert.equal(pool2dFull(x, k.g, "avg").argmax, null);
  });
  assert.deepEqual(pool2dFull(random([2, 2, 7, 6], 1), poolCases[2].g, "max").y.shape, [2, 2, 3, 3]);
});

Deno.test("pool2dFull with countIncludePad false divides border windows by their cells inside the input", () => {
  const ones = new PlainTensor([1, 1, 4, 5], new Float64Array(20).fill(1));
  const g: PoolGeometry = { kernel: [3, 3], stride: [1, 2], padding: [1, 1] };
  const exclude = pool2dFull(ones, g, "avg", false).y, include = pool2dFull(ones, g, "avg", true).y;
  assert.deepEqual([...exclude.shape], [1, 1, 4, 3]);
  assert.ok(exclude.data.every((v) => Math.abs(v - 1) < 1e-15), "exclude: every window averages ones to 1");
  // Rows 0 and 3 and columns 0 and 2 of the output have windows hanging over the border.
  const cells = [4, 6, 4, 6, 9, 6, 6, 9, 6, 4, 6, 4];
  cells.forEach((k, o) => assert.ok(Math.abs(include.data[o] - k / 9) < 1e-15, `include ${o}: ${include.data[o]}`));
});

Deno.test("pool2dFull and its gradients equal plain.ts's pool2d in the square case", () => {
  for (const [h, w, k, s, p, t] of [[8, 8, 2, 2, 0, 0], [7, 9, 3, 2, 1, 1]]) {
    const x = random([2, 3, h, w], 300 + t), g: PoolGeometry = { kernel: [k, k], stride: [s, s], padding: [p, p] };
    assertClose(pool2dFull(x, g, "avg").y, pool2d(x, k, s, p, "avg"), `avg k${k} s${s} p${p}`);
    const mx = pool2dFull(x, g, "max"), old = maxPoolWithArgmax(x, k, s, p);
    assertClose(mx.y, pool2d(x, k, s, p, "max"), `max k${k} s${s} p${p}`);
    assert.deepEqual(mx.argmax, old.argmax);
    const dy = random(mx.y.shape, 310 + t);
    assertClose(avgPool2dFullBackward(dy, x.shape, g, true), avgPoolBackward(dy, x.shape, k, s, p), "avg backward");
    assertClose(maxPool2dFullBackward(dy, mx.argmax!, x.shape), maxPoolBackward(dy, old.argmax, x.shape), "max back");
  }
});

Deno.test("pooling gradients satisfy the adjoint identity and match central finite differences", () => {
  poolCases.forEach((k, t) => {
    const x = random(k.x, 400 + t);
    for (const cip of [true, false]) {
      const y = pool2dFull(x, k.g, "avg", cip).y, dy = random(y.shape, 410 + t);
      const dx = avgPool2dFullBackward(dy, x.shape, k.g, cip);
      assertAdjoint(y, dy, x, dx, `avg ${cip} ${poolName(k)}`);
      assertGradient((p) => dot(pool2dFull(p, k.g, "avg", cip).y, dy), x, dx, `fd avg ${cip} ${poolName(k)}`);
    }
    const { y, argmax } = pool2dFull(x, k.g, "max"), dy = random(y.shape, 420 + t);
    const dx = maxPool2dFullBackward(dy, argmax!, x.shape);
    assertGradient((p) => dot(pool2dFull(p, k.g, "max").y, dy), x, dx, `fd max ${poolName(k)}`);
  });
});

Deno.test("pool2dFull rejects shapes that do not fit with a RangeError", () => {
  const x = random([1, 2, 4, 4], 1);
  const bad: [string, () => unknown][] = [
    ["kernel too big", () => pool2dFull(x, { kernel: [5, 2], stride: [1, 1], padding: [0, 0] }, "avg")],
    ["padding not below kernel", () => pool2dFull(x, { kernel: [2, 2], stride: [1, 1], padding: [0, 2] }, "max")],
    ["stride 0", () => pool2dFull(x, { kernel: [2, 2], stride: [1, 0], padding: [0, 0] }, "max")],
    ["rank 2", () => pool2dFull(random([4, 4], 1), { kernel: [2, 2], stride: [1, 1], padding: [0, 0] }, "max")],
    [
      "dy shape",
      () =>
        avgPool2dFullBackward(
          random([1, 2, 2, 2], 1),
          x.shape,
          { kernel: [2, 2], stride: [1, 1], padding: [0, 0] },
          true,
        ),
    ],
    ["argmax length", () => maxPool2dFullBackward(random([1, 2, 2, 2], 1), new Int32Array(3), x.shape)],
  ];
  for (const [what, f] of bad) assert.throws(f, RangeError, what);
});

// ---------------------------------------------------------------------------------------------------------------
// Layout

Deno.test("transpose equals the reference, inverts with inversePerm, and is its own adjoint's inverse", () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[3, 4], [1, 0]],
    [[2, 3, 4], [2, 0, 1]],
    [[5], [0]],
    [[2, 1, 3, 2, 2], [4, 1, 3, 0, 2]],
  ];
  cases.forEach(([shape, perm], t) => {
    const x = random(shape, 500 + t), y = transpose(x, perm);
    assertClose(y, refTranspose(x, perm), `transpose [${shape}] by [${perm}]`, 0);
    assertClose(transpose(y, inversePerm(perm)), x, `round trip [${perm}]`, 0);
    const dy = random(y.shape, 510 + t);
    assertAdjoint(y, dy, x, transpose(dy, inversePerm(perm)), `transpose adjoint [${perm}]`);
  });
  assert.deepEqual(inversePerm([2, 0, 1]), [1, 2, 0]);
  assert.throws(() => transpose(random([2, 3], 1), [0, 0]), RangeError);
  assert.throws(() => transpose(random([2, 3], 1), [0, 1, 2]), RangeError);
  assert.throws(() => inversePerm([0, 2]), RangeError);
});

Deno.test("pad equals the reference; unpad is its adjoint and inverse", () => {
  const cases: [number[], [number, number][]][] = [
    [[2, 3, 4, 5], [[0, 0], [0, 0], [1, 2], [3, 0]]],
    [[3, 4], [[2, 1], [0, 3]]],
    [[4], [[1, 1]]],
    [[2, 2, 3], [[1, 0], [0, 0], [0, 0]]],
  ];
  cases.forEach(([shape, pads], t) => {
    const x = random(shape, 600 + t), y = pad(x, pads);
    assertClose(y, refPad(x, pads), `pad [${shape}] by ${JSON.stringify(pads)}`, 0);
    assertClose(unpad(y, pads), x, `unpad round trip ${JSON.stringify(pads)}`, 0);
    const dy = random(y.shape, 610 + t);
    assertAdjoint(y, dy, x, unpad(dy, pads), `pad adjoint ${JSON.stringify(pads)}`);
  });
  assert.throws(() => pad(random([2, 3], 1), [[0, 0]]), RangeError);
  assert.throws(() => pad(random([2, 3], 1), [[0, 0], [-1, 0]]), RangeError);
  assert.throws(() => unpad(random([2, 3], 1), [[0, 0], [2, 2]]), RangeError);
});

Deno.test("concat equals the reference; split is its adjoint and inverse", () => {
  const cases: [number[][], number][] = [
    [[[2, 3, 4], [2, 1, 4], [2, 5, 4]], 1],
    [[[2, 3], [4, 3]], 0],
    [[[2, 3, 2], [2, 3, 3]], -1],
    [[[1, 2, 2, 2], [1, 3, 2, 2]], 1],
  ];
  cases.forEach(([shapes, axis], t) => {
    const xs = shapes.map((s, i) => random(s, 700 + 10 * t + i)), ax = axis < 0 ? axis + shapes[0].length : axis;
    const y = concat(xs, axis);
    assertClose(y, refConcat(xs, ax), `concat ${JSON.stringify(shapes)} axis ${axis}`, 0);
    const sizes = shapes.map((s) => s[ax]), parts = split(y, sizes, axis);
    parts.forEach((p, i) => assertClose(p, xs[i], `split part ${i}`, 0));
    const dy = random(y.shape, 790 + t), dxs = split(dy, sizes, axis);
    const l = dot(y, dy), r = xs.reduce((s, x, i) => s + dot(x, dxs[i]), 0);
    assert.ok(Math.abs(l - r) <= 1e-12 * Math.abs(l), `concat adjoint: ${l} vs ${r}`);
  });
  assert.throws(() => concat([random([2, 3], 1), random([3, 3], 2)], 1), RangeError);
  assert.throws(() => concat([random([2, 3], 1)], 2), RangeError);
  assert.throws(() => concat([], 0), RangeError);
  assert.throws(() => split(random([2, 5], 1), [2, 2], 1), RangeError);
});

// ---------------------------------------------------------------------------------------------------------------
// Broadcasting, clip, softmax, linear

Deno.test("broadcastAdd / broadcastMul equal the reference; reduceToShape is broadcasting's adjoint", () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 5], [3, 1, 1]], // per-channel
    [[2, 3, 4, 5], [5]],
    [[2, 3, 4], [2, 1, 4]],
    [[3, 4], [1, 1]],
    [[3, 4], [3, 4]],
    [[2, 3, 4], []], // a scalar
    [[4, 1, 3], [1, 3]],
  ];
  cases.forEach(([as, bs], t) => {
    const a = random(as, 800 + t), b = random(bs, 810 + t), what = `[${as}] with [${bs}]`;
    assertClose(broadcastAdd(a, b), build(as, (i) => at(a, i) + broadcastAt(b, i)), `add ${what}`, 0);
    assertClose(broadcastMul(a, b), build(as, (i) => at(a, i) * broadcastAt(b, i)), `mul ${what}`, 0);
    // Broadcasting b is the linear map broadcastAdd(0, b); its adjoint is reduceToShape.
    const zero = new PlainTensor(as, new Float64Array(a.size)), dy = random(as, 820 + t);
    assertAdjoint(broadcastAdd(zero, b), dy, b, reduceToShape(dy, bs), `reduceToShape ${what}`);
    // d/db sum(dy * a * b) = reduceToShape(dy * a), against finite differences.
    const db = reduceToShape(broadcastMul(dy, a), bs);
    assertGradient((p) => dot(broadcastMul(a, p), dy), b, db, `fd mul ${what}`);
  });
  assert.throws(() => broadcastAdd(random([2, 3], 1), random([2], 2)), RangeError);
  assert.throws(() => broadcastMul(random([3], 1), random([2, 3], 2)), RangeError);
  assert.throws(() => reduceToShape(random([2, 3], 1), [4, 3]), RangeError);
});

Deno.test("clip and clipBackward", () => {
  const x = random([3, 4, 5], 900), y = clip(x, -0.3, 0.5);
  assertClose(y, x.map((v) => Math.min(0.5, Math.max(-0.3, v))), "clip", 0);
  const dy = random(x.shape, 901), dx = clipBackward(dy, x, -0.3, 0.5);
  assertClose(dx, dy.map((g, i) => (x.data[i] > -0.3 && x.data[i] < 0.5 ? g : 0)), "clipBackward", 0);
  assertGradient((p) => dot(clip(p, -0.3, 0.5), dy), x, dx, "fd clip");
  // At the bounds themselves the gradient is cut.
  const edge = new PlainTensor([3], Float64Array.of(-0.3, 0, 0.5)),
    ones = new PlainTensor([3], Float64Array.of(1, 1, 1));
  assert.deepEqual([...clipBackward(ones, edge, -0.3, 0.5).data], [0, 1, 0]);
  assert.throws(() => clip(x, 1, 0), RangeError);
});

Deno.test("softmaxAxis equals the reference on every axis and plain.ts's softmax on the last", () => {
  const x = random([2, 3, 4, 5], 1000).map((v) => 4 * v);
  for (const axis of [0, 1, 2, 3, -1, -3]) {
    const ax = axis < 0 ? axis + 4 : axis;
    assertClose(softmaxAxis(x, axis), refSoftmaxAxis(x, ax), `softmax axis ${axis}`);
  }
  assertClose(softmaxAxis(x, 3), softmax(x), "softmax last axis");
  const big = new PlainTensor([1, 3], Float64Array.of(1000, 1001, 999)); // no overflow: shifted by the maximum
  assert.ok(softmaxAxis(big, 1).data.every(Number.isFinite));
  assert.throws(() => softmaxAxis(x, 4), RangeError);
});

Deno.test("linearLastAxis equals the reference at ranks 1 to 4", () => {
  const w = random([6, 5], 1100), bias = random([6], 1101);
  [[5], [3, 5], [2, 3, 5], [2, 1, 3, 5]].forEach((shape, t) => {
    const x = random(shape, 1110 + t), lead = shape.slice(0, -1);
    for (const b of [bias, null]) {
      const want = build([...lead, 6], (idx) => {
        const o = idx[idx.length - 1];
        let s = b ? b.data[o] : 0;
        for (let l = 0; l < 5; l++) s += at(x, [...idx.slice(0, -1), l]) * w.data[o * 5 + l];
        return s;
      });
      assertClose(linearLastAxis(x, w, b), want, `linear [${shape}] bias ${b !== null}`);
    }
  });
  assert.throws(() => linearLastAxis(random([2, 4], 1), w, null), RangeError);
  assert.throws(() => linearLastAxis(random([2, 5], 1), w, random([5], 2)), RangeError);
});
