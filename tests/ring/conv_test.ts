import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import {
  assertWordsEqual,
  backend,
  convOut,
  type ConvRef,
  deviceTest,
  dot,
  idx,
  refConv,
  Rng,
  wrap,
} from "../helpers.ts";

const geom = (p: Partial<ConvRef> & Pick<ConvRef, "n" | "c" | "h" | "w" | "oc" | "kh" | "kw">): ConvRef => ({
  sh: 1,
  sw: 1,
  ph: 0,
  pw: 0,
  dh: 1,
  dw: 1,
  groups: 1,
  ...p,
});

const opts = (g: ConvRef) => ({
  stride: [g.sh, g.sw] as [number, number],
  padding: [g.ph, g.pw] as [number, number],
  dilation: [g.dh, g.dw] as [number, number],
  groups: g.groups,
});

const smallCases: ConvRef[] = [
  geom({ n: 1, c: 1, h: 5, w: 5, oc: 1, kh: 3, kw: 3 }),
  geom({ n: 2, c: 3, h: 7, w: 6, oc: 4, kh: 3, kw: 2, sh: 2, sw: 1, ph: 1, pw: 2 }),
  geom({ n: 1, c: 4, h: 9, w: 9, oc: 6, kh: 3, kw: 3, dh: 2, dw: 3, ph: 2, pw: 1 }),
  geom({ n: 2, c: 6, h: 6, w: 5, oc: 9, kh: 2, kw: 3, groups: 3, sh: 2, sw: 2, ph: 1, pw: 1 }),
  geom({ n: 1, c: 4, h: 4, w: 4, oc: 4, kh: 3, kw: 3, groups: 4, ph: 1, pw: 1 }), // depthwise
  geom({ n: 1, c: 2, h: 3, w: 3, oc: 3, kh: 3, kw: 3 }), // 1x1 output
];

deviceTest("conv2d forward equals the BigInt reference (stride, padding, dilation, groups)", () => {
  const be = backend(), rng = new Rng(50);
  for (const g of smallCases) {
    const xa = rng.words(g.n * g.c * g.h * g.w), wa = rng.words(g.oc * (g.c / g.groups) * g.kh * g.kw);
    using x = RingTensor.from(be, xa, [g.n, g.c, g.h, g.w]);
    using w = RingTensor.from(be, wa, [g.oc, g.c / g.groups, g.kh, g.kw]);
    using y = x.conv2d(w, opts(g));
    assert.deepEqual(y.shape, [g.n, g.oc, ...convOut(g)]);
    assertWordsEqual(y.toBigUint64Array(), refConv(xa, wa, g), JSON.stringify(g));
  }
});

deviceTest("both conv2d gradients are the adjoints of the forward pass, exactly", () => {
  const be = backend(), rng = new Rng(51);
  for (const g of smallCases) {
    const xs = [g.n, g.c, g.h, g.w], ws = [g.oc, g.c / g.groups, g.kh, g.kw], ys = [g.n, g.oc, ...convOut(g)];
    const xa = rng.words(xs.reduce((a, b) => a * b)), wa = rng.words(ws.reduce((a, b) => a * b));
    const dya = rng.words(ys.reduce((a, b) => a * b));
    using x = RingTensor.from(be, xa, xs);
    using w = RingTensor.from(be, wa, ws);
    using dy = RingTensor.from(be, dya, ys);
    const yDot = dot(dya, refConv(xa, wa, g)); // <dy, conv(x, w)>
    using dx = dy.conv2dBackwardInput(w, xs, opts(g));
    using dw = x.conv2dBackwardWeight(dy, ws, opts(g));
    assert.equal(dot(dx.toBigUint64Array(), xa), yDot, `<dx, x> ${JSON.stringify(g)}`);
    assert.equal(dot(dw.toBigUint64Array(), wa), yDot, `<dw, w> ${JSON.stringify(g)}`);
  }
});

deviceTest("gradients against a direct BigInt definition on one small case", () => {
  const be = backend(), rng = new Rng(52);
  const g = smallCases[1];
  const xs = [g.n, g.c, g.h, g.w], ws = [g.oc, g.c, g.kh, g.kw];
  const [oh, ow] = convOut(g);
  const xa = rng.small(xs.reduce((a, b) => a * b), 1000), wa = rng.small(ws.reduce((a, b) => a * b), 1000);
  const dya = rng.small(g.n * g.oc * oh * ow, 1000);
  const dx = new BigUint64Array(xa.length), dw = new BigUint64Array(wa.length);
  for (let b = 0; b < g.n; b++) {
    for (let o = 0; o < g.oc; o++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const d = dya[idx([g.n, g.oc, oh, ow], b, o, oy, ox)];
          for (let c = 0; c < g.c; c++) {
            for (let ki = 0; ki < g.kh; ki++) {
              for (let kj = 0; kj < g.kw; kj++) {
                const iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                const xi = idx(xs, b, c, iy, ix), wi = idx(ws, o, c, ki, kj);
                dx[xi] = wrap(dx[xi] + d * wa[wi]);
                dw[wi] = wrap(dw[wi] + d * xa[xi]);
              }
            }
          }
        }
      }
    }
  }
  using w = RingTensor.from(be, wa, ws);
  using x = RingTensor.from(be, xa, xs);
  using dy = RingTensor.from(be, dya, [g.n, g.oc, oh, ow]);
  assertWordsEqual(dy.conv2dBackwardInput(w, xs, opts(g)).toBigUint64Array(), dx, "dx");
  assertWordsEqual(x.conv2dBackwardWeight(dy, ws, opts(g)).toBigUint64Array(), dw, "dw");
});

deviceTest("a convolution equals its im2col matmul on larger shapes", () => {
  const be = backend();
  for (
    const g of [
      geom({ n: 3, c: 16, h: 20, w: 18, oc: 24, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }),
      geom({ n: 2, c: 20, h: 12, w: 12, oc: 50, kh: 5, kw: 5 }),
    ]
  ) {
    const [oh, ow] = convOut(g);
    using x = RingTensor.prf(be, [g.n, g.c, g.h, g.w], new Uint8Array(16).fill(3), 0n);
    using w = RingTensor.prf(be, [g.oc, g.c, g.kh, g.kw], new Uint8Array(16).fill(4), 0n);
    using y = x.conv2d(w, opts(g));
    using cols = x.im2col([g.kh, g.kw], opts(g)); // [n, c*kh*kw, oh*ow]
    using w2 = w.reshape([g.oc, g.c * g.kh * g.kw]);
    using viaMatmul = w2.matmul(cols); // broadcast over the batch: [n, oc, oh*ow]
    assertWordsEqual(y.toBigUint64Array(), viaMatmul.toBigUint64Array(), JSON.stringify(g));
    assert.deepEqual(viaMatmul.shape, [g.n, g.oc, oh * ow]);
  }
});

deviceTest("col2im is the adjoint of im2col", () => {
  const be = backend(), rng = new Rng(53);
  for (const g of smallCases) {
    const [oh, ow] = convOut(g);
    const xa = rng.words(g.n * g.c * g.h * g.w), ca = rng.words(g.n * g.c * g.kh * g.kw * oh * ow);
    using x = RingTensor.from(be, xa, [g.n, g.c, g.h, g.w]);
    using cols = RingTensor.from(be, ca, [g.n, g.c * g.kh * g.kw, oh * ow]);
    using ix = x.im2col([g.kh, g.kw], opts(g));
    using cx = cols.col2im([g.n, g.c, g.h, g.w], [g.kh, g.kw], opts(g));
    assert.equal(dot(ix.toBigUint64Array(), ca), dot(cx.toBigUint64Array(), xa), JSON.stringify(g));
  }
});

deviceTest("sum pooling forward against a reference, backward as its adjoint", () => {
  const be = backend(), rng = new Rng(54);
  for (const [k, s, p] of [[2, 2, 0], [3, 2, 1], [3, 1, 1], [2, 1, 0]]) {
    const g = geom({ n: 2, c: 3, h: 7, w: 6, oc: 3, kh: k, kw: k, sh: s, sw: s, ph: p, pw: p });
    const [oh, ow] = convOut(g);
    const xa = rng.words(2 * 3 * 7 * 6);
    using x = RingTensor.from(be, xa, [2, 3, 7, 6]);
    using y = x.sumPool2d([k, k], { stride: s, padding: p });
    const expected = new BigUint64Array(2 * 3 * oh * ow);
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < 3; c++) {
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            let sum = 0n;
            for (let i = 0; i < k; i++) {
              for (let j = 0; j < k; j++) {
                const iy = oy * s - p + i, ix = ox * s - p + j;
                if (iy >= 0 && iy < 7 && ix >= 0 && ix < 6) sum += xa[idx([2, 3, 7, 6], b, c, iy, ix)];
              }
            }
            expected[idx([2, 3, oh, ow], b, c, oy, ox)] = wrap(sum);
          }
        }
      }
    }
    assertWordsEqual(y.toBigUint64Array(), expected, `pool k${k} s${s} p${p}`);
    const dya = rng.words(expected.length);
    using dy = RingTensor.from(be, dya, [2, 3, oh, ow]);
    using dx = dy.sumPool2dBackward([2, 3, 7, 6], [k, k], { stride: s, padding: p });
    assert.equal(dot(dx.toBigUint64Array(), xa), dot(dya, expected), "adjoint");
  }
});

deviceTest("convolution geometry errors are clear", () => {
  const be = backend();
  using x = RingTensor.zeros(be, [1, 3, 4, 4]);
  using w = RingTensor.zeros(be, [2, 2, 3, 3]);
  assert.throws(() => x.conv2d(w), /does not fit input/);
  using w2 = RingTensor.zeros(be, [2, 3, 5, 5]);
  assert.throws(() => x.conv2d(w2), /window does not fit/);
  using w3 = RingTensor.zeros(be, [2, 3, 3, 3]);
  assert.throws(() => x.conv2d(w3, { stride: 0 }), /positive integers/);
  const g = { n: 1, c: 3, h: 4, w: 4, oc: 2, kh: 3, kw: 3, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 };
  assert.throws(() => be.conv2dForward(x.handle, x.handle, w3.handle, g), /cg_conv2d_forward/);
  const y = be.alloc(2);
  try {
    assert.throws(() => be.conv2dForward(y, x.handle, w3.handle, g), /cg_conv2d_forward/);
  } finally {
    be.free(y);
  }
});
