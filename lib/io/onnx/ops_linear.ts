/**
 * Handlers of the ops that become a GraphSpec linear (Gemm; MatMul of an activation by a constant [in, out]
 * matrix) and of BatchNormalization, which folds into the conv or linear before it where it can (fusions.ts).
 */
import { foldScaleShift } from "./fusions.ts";
import { type Handler, initializerOf, type NodeContext, type Params } from "./node_context.ts";
import { foldBinary } from "./ops_arithmetic.ts";
import { type Dim, type FloatConst, rowOf, showShape, size } from "./values.ts";
import { BN_EPS, BN_MAX_VAR } from "../../nn/batchnorm.ts";

export const batchNormalization: Handler = (c) => {
  const x = c.act(0);
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => c.floatConst(i, ["", "scale", "B", "mean", "var"][i]));
  if (c.int("training_mode", 0) === 1) c.problem("training_mode 1 is not supported (inference only)");
  if (c.extraOutputsUsed().length > 0) c.problem("the running statistics outputs are not supported (inference only)");
  if (!x || !gamma || !beta || !mean || !variance || c.failed) return;
  const channels = x.shape[1];
  if (typeof channels !== "number") return c.problem(`input of shape ${showShape(x.shape)} has no channel axis`);
  if ([gamma, beta, mean, variance].some((t) => size(t.dims) !== channels)) {
    return c.problem(`parameters do not have ${channels} entries (one per channel)`);
  }
  const eps = c.float("epsilon", 1e-5);
  if (c.imp.options.batchNorm === "train") return trainableBatchNorm(c, x.shape, [gamma, beta, mean, variance], eps);
  const scale = new Float64Array(channels), shift = new Float64Array(channels);
  for (let i = 0; i < channels; i++) {
    scale[i] = gamma.data[i] / Math.sqrt(variance.data[i] + eps);
    shift[i] = beta.data[i] - mean.data[i] * scale[i];
  }
  const producer = c.imp.soleProducer(c.inputName(0));
  if (producer?.op === "conv") return foldScaleShift(c, producer, scale, shift, x.shape);
  // BatchNorm1d after a Linear on [N, features]: the channel axis is the linear's output axis.
  if (producer?.op === "linear" && x.shape.length === 2) return foldScaleShift(c, producer, scale, shift, x.shape);
  c.emit({ op: "batchnorm", inputs: [c.inputName(0)], output: c.output(), channels }, {
    scale: { shape: [channels], data: scale },
    shift: { shape: [channels], data: shift },
  });
  c.setAct(x.shape);
};

/**
 * BatchNormalization kept as batch normalization with statistics (import option batchNorm "train"): its
 * parameters keep their initializers' names. ONNX's momentum m updates running = running m + batch (1 - m);
 * ours is PyTorch's, 1 - m. An epsilon below BN_EPS is raised to it (the private inverse square root's range
 * starts there), and the import says so; the range's top, maxVar, covers 16 times the file's running variances.
 */
function trainableBatchNorm(c: NodeContext, shape: Dim[], consts: FloatConst[], epsilon: number): void {
  const channels = shape[1] as number;
  if (shape.length !== 4) {
    return c.problem(`batch statistics in training need an [n, c, h, w] input, not ${showShape(shape)}`);
  }
  // a float32 attribute: 7 significant digits, so that 0.9 gives 0.1
  const momentum = Number((1 - c.float("momentum", 0.9)).toPrecision(7));
  if (!(momentum >= 0 && momentum <= 1)) return c.problem(`momentum ${1 - momentum} is outside [0, 1]`);
  const eps = Math.max(epsilon, BN_EPS);
  if (eps > epsilon) {
    c.imp.notes.push(
      `${c.label}: epsilon ${
        Number(epsilon.toPrecision(7))
      } raised to ${eps} (2^-10, the smallest batch normalization takes)`,
    );
  }
  // the batch variances the inverse square root must take: 2^10 as the zoo's, or 16 times the file's largest
  // running variance (a first layer on 0-255 pixels has variances in the thousands) rounded up to a power of 2
  const top = Math.max(...consts[3].data), maxVar = Math.max(BN_MAX_VAR, 2 ** Math.ceil(Math.log2(16 * top)));
  const params: Params = {};
  ["weight", "bias", "running_mean", "running_var"].forEach((name, i) => {
    params[name] = { shape: [channels], data: consts[i].data, initializer: initializerOf(c, i + 1) };
  });
  c.emit({
    op: "batchnorm_stats",
    inputs: [c.inputName(0)],
    output: c.output(),
    channels,
    eps,
    momentum,
    maxVar,
  }, params);
  c.setAct(shape);
}

export const gemm: Handler = (c) => {
  const a = c.act(0);
  const b = c.floatConst(1, "B");
  const bias = c.has(2) ? c.floatConst(2, "C") : undefined;
  if (c.int("transA", 0) !== 0) c.problem("transA 1 is not supported");
  if (!a || !b || c.failed) return;
  if (a.shape.length !== 2 || b.dims.length !== 2) return c.problem("A and B must be 2-D");
  const transB = c.int("transB", 0) === 1;
  const [outF, inF] = transB ? b.dims : [b.dims[1], b.dims[0]];
  if (a.shape[1] !== inF) {
    return c.problem(`input of shape ${showShape(a.shape)} does not match B ${showShape(b.dims)}`);
  }
  const alpha = c.float("alpha", 1), beta = c.float("beta", 1);
  const weight = transB ? b.data.map((v) => v * alpha) : transpose2d(b.data, inF, outF, alpha);
  let biasData: Float64Array | undefined;
  if (bias) {
    const row = rowOf(bias, outF);
    if (!row) return c.problem(`C of shape ${showShape(bias.dims)} is not a bias of ${outF} entries`);
    biasData = row.map((v) => v * beta);
  }
  emitLinear(c, a.shape, {
    inF,
    outF,
    weight,
    bias: biasData,
    // Only parameters kept exactly as stored still are their initializers.
    weightFrom: alpha === 1 && transB ? initializerOf(c, 1) : undefined,
    biasFrom: beta === 1 && bias?.dims.length === 1 ? initializerOf(c, 2) : undefined,
  });
};

/** B [rows, cols] -> B^T * factor (torch's [out, in] from ONNX's [in, out]). */
function transpose2d(data: Float64Array, rows: number, cols: number, factor = 1): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j] * factor;
  return out;
}

function emitLinear(
  c: NodeContext,
  shape: Dim[],
  p: { inF: number; outF: number; weight: Float64Array; bias?: Float64Array; weightFrom?: string; biasFrom?: string },
): void {
  const params: Params = { weight: { shape: [p.outF, p.inF], data: p.weight, initializer: p.weightFrom } };
  if (p.bias) params.bias = { shape: [p.outF], data: p.bias, initializer: p.biasFrom };
  const spec = { inFeatures: p.inF, outFeatures: p.outF, bias: p.bias !== undefined };
  c.emit({ op: "linear", inputs: [c.inputName(0)], output: c.output(), ...spec }, params);
  c.setAct([...shape.slice(0, -1), p.outF]);
}

export const matMul: Handler = (c) => {
  const a = c.value(0), b = c.value(1);
  if (!a || !b) return;
  if (a.kind !== "act" && b.kind !== "act") return foldBinary(c, a, b);
  if (a.kind !== "act" || b.kind === "act") return c.problem("only activation x constant [in, out] is supported");
  const w = c.asFloat(b, "the right side");
  if (!w) return;
  if (w.dims.length !== 2) return c.problem(`the right side of shape ${showShape(w.dims)} must be 2-D`);
  if (a.shape.length < 2) return c.problem(`input of shape ${showShape(a.shape)} must have at least 2 axes`);
  const [inF, outF] = w.dims;
  if (a.shape[a.shape.length - 1] !== inF) {
    return c.problem(`input of shape ${showShape(a.shape)} does not match ${showShape(w.dims)}`);
  }
  emitLinear(c, a.shape, { inF, outF, weight: transpose2d(w.data, inF, outF) });
};
