/**
 * Windowed operations on NCHW `RingTensor`s: 2-D convolution and its two
 * gradients, the im2col window gather and its adjoint col2im, and sum pooling
 * and its adjoint; with the geometry they share (options -> `Conv2dGeometry`,
 * validation, output shapes). Each operation is one native call on dense
 * operands. `RingTensor`'s methods of the same names delegate here; tensor.ts
 * re-exports `Conv2dOptions`, `outputShape` and `poolOutputShape`.
 *
 * tensor.ts and this module import each other; that is safe because neither
 * uses the other while it is being evaluated, only inside functions.
 */
import type { Conv2dGeometry } from "../native/backend.ts";
import { expectShape, withDense } from "./operand.ts";
import { fmt, type Shape } from "./shape.ts";
import { RingTensor } from "./tensor.ts";

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

const pair = (v: number | [number, number] | undefined, dflt: number): [number, number] =>
  v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : v;

// ------------------------------------------------------------ convolution

/** 2-D convolution (cross-correlation) of x [n, c, h, w] with weight [oc, c/groups, kh, kw]. */
export function conv2d(x: RingTensor, weight: RingTensor, options: Conv2dOptions): RingTensor {
  const g = convGeometry(x.shape, weight.shape, options);
  return withDense(x, (xd) =>
    withDense(weight, (w) => {
      const out = RingTensor.empty(xd.backend, outputShape(g));
      xd.backend.conv2dForward(out.handle, xd.handle, w.handle, g);
      return out;
    }));
}

/** Gradient of sum(dy * conv2d(x, weight)) with respect to x. */
export function conv2dBackwardInput(
  dy: RingTensor,
  weight: RingTensor,
  inputShape: Shape,
  options: Conv2dOptions,
): RingTensor {
  const g = convGeometry(inputShape, weight.shape, options);
  expectShape(dy, outputShape(g), "conv2dBackwardInput: dy");
  return withDense(dy, (d) =>
    withDense(weight, (w) => {
      const dx = RingTensor.empty(d.backend, inputShape);
      d.backend.conv2dBackwardInput(dx.handle, d.handle, w.handle, g);
      return dx;
    }));
}

/** Gradient of sum(dy * conv2d(x, weight)) with respect to the weight. */
export function conv2dBackwardWeight(
  x: RingTensor,
  dy: RingTensor,
  weightShape: Shape,
  options: Conv2dOptions,
): RingTensor {
  const g = convGeometry(x.shape, weightShape, options);
  expectShape(dy, outputShape(g), "conv2dBackwardWeight: dy");
  return withDense(x, (xd) =>
    withDense(dy, (d) => {
      const dw = RingTensor.empty(xd.backend, weightShape);
      xd.backend.conv2dBackwardWeight(dw.handle, xd.handle, d.handle, g);
      return dw;
    }));
}

// ------------------------------------------------------------ windows and pooling

/** Window gather: x [n, c, h, w] -> [n, c*kh*kw, oh*ow]. */
export function im2col(x: RingTensor, kernel: [number, number], options: Conv2dOptions): RingTensor {
  const g = poolGeometry(x.shape, kernel, options);
  return withDense(x, (xd) => {
    const out = RingTensor.empty(xd.backend, [g.n, g.c * g.kh * g.kw, outputShape(g)[2] * outputShape(g)[3]]);
    xd.backend.im2col(out.handle, xd.handle, g);
    return out;
  });
}

/** The adjoint of im2col: cols [n, c*kh*kw, oh*ow] summed into [n, c, h, w]. */
export function col2im(
  cols: RingTensor,
  imageShape: Shape,
  kernel: [number, number],
  options: Conv2dOptions,
): RingTensor {
  const g = poolGeometry(imageShape, kernel, options);
  const [, , oh, ow] = outputShape(g);
  expectShape(cols, [g.n, g.c * g.kh * g.kw, oh * ow], "col2im: columns");
  return withDense(cols, (c) => {
    const out = RingTensor.empty(c.backend, imageShape);
    c.backend.col2im(out.handle, c.handle, g);
    return out;
  });
}

/** Sum over each pooling window: x [n, c, h, w] -> [n, c, oh, ow]. */
export function sumPool2d(x: RingTensor, kernel: [number, number], options: Conv2dOptions): RingTensor {
  const g = poolGeometry(x.shape, kernel, options);
  return withDense(x, (xd) => {
    const out = RingTensor.empty(xd.backend, outputShape(g));
    xd.backend.sumPool2dForward(out.handle, xd.handle, g);
    return out;
  });
}

/** The adjoint of sumPool2d. */
export function sumPool2dBackward(
  dy: RingTensor,
  inputShape: Shape,
  kernel: [number, number],
  options: Conv2dOptions,
): RingTensor {
  const g = poolGeometry(inputShape, kernel, options);
  expectShape(dy, outputShape(g), "sumPool2dBackward: dy");
  return withDense(dy, (d) => {
    const out = RingTensor.empty(d.backend, inputShape);
    d.backend.sumPool2dBackward(out.handle, d.handle, g);
    return out;
  });
}

// ------------------------------------------------------------ geometry

function convGeometry(input: Shape, weight: Shape, o: Conv2dOptions): Conv2dGeometry {
  if (input.length !== 4 || weight.length !== 4) {
    throw new RangeError(`conv2d: input ${fmt(input)} and weight ${fmt(weight)} must both be 4-D (NCHW, OIHW)`);
  }
  const groups = o.groups ?? 1;
  const [n, c, h, w] = input, [oc, cg, kh, kw] = weight;
  if (!Number.isInteger(groups) || groups < 1 || c % groups || oc % groups || cg * groups !== c) {
    throw new RangeError(`conv2d: weight ${fmt(weight)} with ${groups} groups does not fit input ${fmt(input)}`);
  }
  const [sh, sw] = pair(o.stride, 1), [ph, pw] = pair(o.padding, 0), [dh, dw] = pair(o.dilation, 1);
  const g = { n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups };
  checkGeometry(g, "conv2d");
  return g;
}

function poolGeometry(input: Shape, kernel: [number, number], o: Conv2dOptions): Conv2dGeometry {
  if (input.length !== 4) throw new RangeError(`pooling: input ${fmt(input)} must be 4-D (NCHW)`);
  const [n, c, h, w] = input;
  const [sh, sw] = pair(o.stride, kernel[0]), [ph, pw] = pair(o.padding, 0), [dh, dw] = pair(o.dilation, 1);
  const g = { n, c, h, w, oc: c, kh: kernel[0], kw: kernel[1], sh, sw, ph, pw, dh, dw, groups: 1 };
  checkGeometry(g, "pooling");
  return g;
}

function checkGeometry(g: Conv2dGeometry, what: string): void {
  const positive = [g.kh, g.kw, g.sh, g.sw, g.dh, g.dw];
  if (positive.some((v) => !Number.isInteger(v) || v < 1) || [g.ph, g.pw].some((v) => !Number.isInteger(v) || v < 0)) {
    throw new RangeError(`${what}: window, stride and dilation must be positive integers, padding non-negative`);
  }
  const [, , oh, ow] = outputShape(g);
  if (oh < 1 || ow < 1) {
    throw new RangeError(`${what}: a ${g.kh}x${g.kw} window does not fit a ${g.h}x${g.w} input with this padding`);
  }
}

/** Output shape of a pooling window over an NCHW input (stride defaults to the window). */
export function poolOutputShape(input: Shape, kernel: [number, number], o: Conv2dOptions = {}): number[] {
  return outputShape(poolGeometry(input, kernel, o));
}

export function outputShape(g: Conv2dGeometry): [number, number, number, number] {
  const oh = Math.floor((g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh) + 1;
  const ow = Math.floor((g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw) + 1;
  return [g.n, g.oc, oh, ow];
}
