/**
 * The op table: which handler converts each ONNX op type (default domain) the importer supports. A type that
 * is not here is refused. The handlers live in ops_*.ts by kind; Identity and Dropout are renamed away before
 * the walk, so their handler only checks what would make that wrong.
 */
import type { Handler } from "./node_context.ts";
import { add, clip, div, mul, neg, relu, softmax, sub } from "./ops_arithmetic.ts";
import { batchNormalization, gemm, matMul } from "./ops_linear.ts";
import {
  cast,
  concat,
  constant,
  flatten,
  gather,
  reshape,
  shape,
  slice,
  squeeze,
  transpose,
  unsqueeze,
} from "./ops_shape.ts";
import { conv, globalAveragePool, pad, pool } from "./ops_spatial.ts";

/** Identity and Dropout were renamed away before the walk; here only what could make that wrong is checked. */
const passThrough: Handler = (c) => {
  if (c.node.opType === "Dropout") {
    if (c.extraOutputsUsed().length > 0) c.problem("the mask output is not supported");
    if (c.has(2)) {
      const training = c.intConst(2, "training_mode");
      if (training && training[0] !== 0) c.problem("training_mode true is not supported (inference only)");
    }
  }
  c.value(0);
};

export const HANDLERS: Record<string, Handler> = {
  Conv: conv,
  Gemm: gemm,
  MatMul: matMul,
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Neg: neg,
  Relu: relu,
  Clip: clip,
  MaxPool: pool("max"),
  AveragePool: pool("avg"),
  GlobalAveragePool: globalAveragePool,
  BatchNormalization: batchNormalization,
  Flatten: flatten,
  Reshape: reshape,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Transpose: transpose,
  Concat: concat,
  Softmax: softmax,
  Dropout: passThrough,
  Identity: passThrough,
  Constant: constant,
  Shape: shape,
  Gather: gather,
  Cast: cast,
  Slice: slice,
  Pad: pad,
};
