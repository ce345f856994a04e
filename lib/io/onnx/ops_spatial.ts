/**
 * Handlers of the 4-D (N, C, H, W) ops: Conv, MaxPool, AveragePool, GlobalAveragePool, and Pad (which also
 * pads other ranks). GraphSpec's conv and pooling take symmetric padding only: a zero Pad before them folds in
 * where it can (fusions.ts), and asymmetric pads of their own become a separate pad node before them.
 */
import { absorbPad, foldablePad, nonNegative, type PaddedInput, symmetric } from "./fusions.ts";
import { type Handler, initializerOf, type NodeContext, type Params } from "./node_context.ts";
import { type Act, type Dim, showShape, size } from "./values.ts";

/** Spatial attributes of Conv and pooling, checked; pads as [top, left, bottom, right]. */
function spatialAttrs(c: NodeContext, kernel: [number, number]) {
  const autoPad = c.string("auto_pad", "NOTSET");
  if (autoPad !== "NOTSET" && autoPad !== "VALID") c.problem(`auto_pad ${autoPad} is not supported`);
  const strides = c.ints("strides") ?? [1, 1];
  const pads = autoPad === "VALID" ? [0, 0, 0, 0] : c.ints("pads") ?? [0, 0, 0, 0];
  const dilations = c.ints("dilations") ?? [1, 1];
  if (strides.length !== 2 || pads.length !== 4 || dilations.length !== 2) {
    c.problem("only 2-D kernels are supported (strides, pads, dilations of 2-D)");
  }
  if (pads.some((p) => p < 0)) c.problem(`negative pads [${pads}] are not supported`);
  return {
    kernel,
    stride: [strides[0], strides[1]] as [number, number],
    pads,
    dilation: [dilations[0], dilations[1]] as [number, number],
  };
}

function spatialInput(c: NodeContext): { x: Act; n: Dim; ch: number; h: number; w: number } | undefined {
  const x = c.act(0);
  if (!x) return undefined;
  if (x.shape.length !== 4) {
    return void c.problem(`input of shape ${showShape(x.shape)}: only 4-D (N, C, H, W) is supported`);
  }
  const [n, ch, h, w] = x.shape;
  if (ch === "batch" || h === "batch" || w === "batch") return void c.problem("the batch axis must be the first");
  return { x, n, ch, h, w };
}

const outSize = (n: number, pad: number, k: number, s: number, d: number, ceil = false) =>
  (ceil ? Math.ceil : Math.floor)((n + pad - d * (k - 1) - 1) / s) + 1;

/** Emits a zero `pad` node before a node whose own pads are asymmetric; returns the padded value (read with no pads of its own). */
function padBefore(c: NodeContext, x: string, shape: Dim[], pads: number[]): PaddedInput {
  const name = c.imp.freshValue(`${c.output()}_pad`);
  const [n, ch, h, w] = shape;
  c.emit(
    { op: "pad", inputs: [x], output: name, pads: [[0, 0], [0, 0], [pads[0], pads[2]], [pads[1], pads[3]]] },
    {},
    "_pad",
  );
  const padded = [n, ch, (h as number) + pads[0] + pads[2], (w as number) + pads[1] + pads[3]];
  c.setAct(padded, name);
  return { x: name, pads: [0, 0, 0, 0], h: padded[2] as number, w: padded[3] as number };
}

export const conv: Handler = (c) => {
  const input = spatialInput(c);
  const w = c.floatConst(1, "the weight");
  const b = c.has(2) ? c.floatConst(2, "the bias") : undefined;
  if (!input || !w || c.failed) return;
  if (w.dims.length !== 4) {
    return c.problem(`weight of shape ${showShape(w.dims)}: only 2-D convolutions are supported`);
  }
  const [outC, inPerGroup, kh, kw] = w.dims;
  const declared = c.ints("kernel_shape");
  if (declared && (declared[0] !== kh || declared[1] !== kw)) {
    c.problem(`kernel_shape [${declared}] does not match the weight`);
  }
  const groups = c.int("group", 1);
  const a = spatialAttrs(c, [kh, kw]);
  if (input.ch !== inPerGroup * groups) {
    c.problem(`input has ${input.ch} channels, the weight expects ${inPerGroup} x ${groups} groups`);
  }
  if (b && size(b.dims) !== outC) c.problem(`bias of shape ${showShape(b.dims)} for ${outC} output channels`);
  if (c.failed) return;
  let x = c.inputName(0), pads = a.pads, h = input.h, wd = input.w;
  const fold = foldablePad(c, x, pads);
  if (fold) ({ x, pads, h, w: wd } = absorbPad(c, fold));
  else if (!symmetric(pads)) ({ x, pads, h, w: wd } = padBefore(c, x, input.x.shape, pads));
  const oh = outSize(h, 2 * pads[0], kh, a.stride[0], a.dilation[0]);
  const ow = outSize(wd, 2 * pads[1], kw, a.stride[1], a.dilation[1]);
  if (oh < 1 || ow < 1) return c.problem(`the kernel does not fit the ${h}x${wd} input`);
  const params: Params = { weight: { shape: w.dims, data: w.data, initializer: initializerOf(c, 1) } };
  if (b) params.bias = { shape: [outC], data: b.data, initializer: initializerOf(c, 2) };
  c.emit({
    op: "conv",
    inputs: [x],
    output: c.output(),
    inChannels: input.ch,
    outChannels: outC,
    kernel: [kh, kw],
    stride: a.stride,
    padding: [pads[0], pads[1]],
    dilation: a.dilation,
    groups,
    bias: b !== undefined,
  }, params);
  c.setAct([input.n, outC, oh, ow]);
};

/** Max and average pooling: kernel, strides, pads (a foldable zero Pad before them included), ceil_mode. */
export function pool(kind: "max" | "avg"): Handler {
  return (c) => {
    const input = spatialInput(c);
    const kernel = c.ints("kernel_shape");
    if (!input) return;
    if (!kernel || kernel.length !== 2) return c.problem("kernel_shape must be given, 2-D");
    const a = spatialAttrs(c, [kernel[0], kernel[1]]);
    if (a.dilation[0] !== 1 || a.dilation[1] !== 1) c.problem(`dilations [${a.dilation}] are not supported`);
    if (c.int("storage_order", 0) !== 0) c.problem("storage_order 1 is not supported");
    if (c.extraOutputsUsed().length > 0) c.problem("the indices output is not supported");
    let countIncludePad = c.int("count_include_pad", 0) === 1;
    let x = c.inputName(0), pads = a.pads, h = input.h, w = input.w;
    // Zero padding counts as values; for max pooling it may be dropped only where the input cannot be negative.
    const fold = foldablePad(c, x, pads);
    const zerosAllowed = kind === "avg"
      ? countIncludePad || a.pads.every((p) => p === 0)
      : fold !== null && nonNegative(c.imp, fold.pad.inputs[0]);
    if (fold && zerosAllowed) {
      ({ x, pads, h, w } = absorbPad(c, fold));
      if (kind === "avg") countIncludePad = true;
    } else if (!symmetric(pads)) {
      if (kind === "max" || !countIncludePad) return c.problem(`asymmetric pads [${pads}] are not supported here`);
      ({ x, pads, h, w } = padBefore(c, x, input.x.shape, pads));
    }
    if (c.failed) return;
    const oh = outSize(h, 2 * pads[0], kernel[0], a.stride[0], 1);
    const ow = outSize(w, 2 * pads[1], kernel[1], a.stride[1], 1);
    if (c.int("ceil_mode", 0) === 1) {
      const ceilH = outSize(h, 2 * pads[0], kernel[0], a.stride[0], 1, true);
      const ceilW = outSize(w, 2 * pads[1], kernel[1], a.stride[1], 1, true);
      if (ceilH !== oh || ceilW !== ow) {
        return c.problem("ceil_mode 1 is not supported (it changes the output size here)");
      }
    }
    if (oh < 1 || ow < 1) return c.problem(`the kernel does not fit the ${h}x${w} input`);
    const geometry = { kernel: a.kernel, stride: a.stride, padding: [pads[0], pads[1]] as [number, number] };
    if (kind === "max") c.emit({ op: "maxpool", inputs: [x], output: c.output(), ...geometry });
    else c.emit({ op: "avgpool", inputs: [x], output: c.output(), ...geometry, countIncludePad });
    c.setAct([input.n, input.ch, oh, ow]);
  };
}

export const globalAveragePool: Handler = (c) => {
  const input = spatialInput(c);
  if (!input) return;
  c.emit({ op: "globalavgpool", inputs: [c.inputName(0)], output: c.output() });
  c.setAct([input.n, input.ch, 1, 1]);
};

export const pad: Handler = (c) => {
  const x = c.act(0);
  const mode = c.string("mode", "constant");
  if (mode !== "constant") c.problem(`mode ${mode} is not supported`);
  let pads: number[] | undefined, value = 0;
  if (c.opset < 11) {
    pads = c.ints("pads");
    value = c.float("value", 0);
  } else {
    pads = c.intConst(1, "pads") as number[] | undefined;
    if (c.has(2)) {
      const v = c.floatConst(2, "constant_value");
      if (v) value = v.data[0] ?? 0;
    }
  }
  if (!x || !pads || c.failed) return;
  if (value !== 0) return c.problem(`padding value ${value} is not supported (only 0)`);
  const rank = x.shape.length;
  let axes = x.shape.map((_, i) => i);
  if (c.opset >= 18 && c.has(3)) {
    const given = c.intConst(3, "axes") as number[] | undefined;
    if (!given) return;
    axes = given.map((a) => (a < 0 ? a + rank : a));
  }
  if (pads.length !== 2 * axes.length) return c.problem(`pads [${pads}] do not match ${axes.length} axes`);
  if (pads.some((p) => p < 0)) return c.problem(`negative pads [${pads}] (cropping) are not supported`);
  const perAxis: [number, number][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, j) => (perAxis[a] = [pads![j], pads![j + axes.length]]));
  if (x.shape.some((d, i) => d === "batch" && perAxis[i][0] + perAxis[i][1] > 0)) {
    return c.problem("padding the batch axis is not supported");
  }
  c.emit({ op: "pad", inputs: [c.inputName(0)], output: c.output(), pads: perAxis });
  c.setAct(x.shape.map((d, i) => (d === "batch" ? d : d + perAxis[i][0] + perAxis[i][1])));
};
