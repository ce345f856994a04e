/**
 * What the importer knows of each ONNX value while it walks the graph: an activation with its shape (the first
 * axis usually the symbolic batch), a float or integer constant, or a value that cannot be used. Also reads
 * tensor protos (initializers, Constant nodes) into constants, and the small shape helpers everything shares.
 */
import { type TensorProto, TensorProto_DataLocation, TensorProto_DataType as DataType } from "./onnx_pb.ts";

/** A dimension: a size, or the graph's symbolic batch size. */
export type Dim = number | "batch";

export type Value =
  /** Produced by a GraphSpec node (or the graph input). */
  | { kind: "act"; shape: Dim[] }
  | { kind: "float"; dims: number[]; data: Float64Array }
  /** Integer tensors hold shapes, axes and pads; an entry can be the symbolic batch (from Shape). */
  | { kind: "int"; dims: number[]; data: Dim[] }
  /** A value that cannot be used, with the reason (reported once, at its first use). */
  | { kind: "bad"; reason: string }
  /** The output of a refused node: its consumers stay quiet, the refusal already says why. */
  | { kind: "broken" };

export type Act = Extract<Value, { kind: "act" }>;
export type FloatConst = Extract<Value, { kind: "float" }>;
export type IntConst = Extract<Value, { kind: "int" }>;
export type Const = FloatConst | IntConst;

export const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
export const showShape = (shape: Dim[]) => `[${shape.join(", ")}]`;

/** A product of dimensions; the batch survives only alone among 1s, otherwise it merges with other axes. */
export function product(dims: Dim[]): Dim | null {
  const numeric = dims.filter((d): d is number => d !== "batch");
  const batches = dims.length - numeric.length;
  const n = numeric.reduce((a, b) => a * b, 1);
  if (batches === 0) return n;
  return batches === 1 && n === 1 ? "batch" : null;
}

/** Reads a tensor proto as a constant value (float or integer). */
export function tensorValue(t: TensorProto): Value {
  const dims = t.dims.map(Number);
  const count = size(dims);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
    return { kind: "bad", reason: `tensor "${t.name}" keeps its data in an external file, which is not supported` };
  }
  const raw = t.rawData.length > 0 ? t.rawData : null;
  // raw_data may be a view at any offset into the file: copy it before viewing it as wider numbers.
  const rawCopy = (width: number) => raw && raw.length === count * width ? raw.slice().buffer : null;
  const wrongLength = (width: number): Value => ({
    kind: "bad",
    reason: `tensor "${t.name}" has ${raw!.length} bytes of raw data for dims ${showShape(dims)} (${width} each)`,
  });
  const floats = (data: ArrayLike<number>): Value =>
    data.length === count
      ? { kind: "float", dims, data: Float64Array.from(data) }
      : { kind: "bad", reason: `tensor "${t.name}" has ${data.length} values for dims ${showShape(dims)}` };
  const ints = (data: ArrayLike<number | bigint>): Value =>
    data.length === count
      ? { kind: "int", dims, data: Array.from(data, Number) }
      : { kind: "bad", reason: `tensor "${t.name}" has ${data.length} values for dims ${showShape(dims)}` };
  switch (t.dataType) {
    case DataType.FLOAT:
      if (raw) return rawCopy(4) ? floats(new Float32Array(rawCopy(4)!)) : wrongLength(4);
      return floats(t.floatData);
    case DataType.DOUBLE:
      if (raw) return rawCopy(8) ? floats(new Float64Array(rawCopy(8)!)) : wrongLength(8);
      return floats(t.doubleData);
    case DataType.INT64:
      if (raw) return rawCopy(8) ? ints(new BigInt64Array(rawCopy(8)!)) : wrongLength(8);
      return ints(t.int64Data);
    case DataType.INT32:
      if (raw) return rawCopy(4) ? ints(new Int32Array(rawCopy(4)!)) : wrongLength(4);
      return ints(t.int32Data);
    case DataType.BOOL:
      // Booleans (Dropout's training_mode) are stored as bytes in raw_data, else in int32_data.
      if (raw) return raw.length === count ? ints(raw) : wrongLength(1);
      return ints(t.int32Data);
    default:
      return {
        kind: "bad",
        reason: `tensor "${t.name}" has data type ${DataType[t.dataType] ?? t.dataType}, which is not supported`,
      };
  }
}

/** A constant that broadcasts as one row of n entries (a scalar, [n], [1, n], ...), as n values. */
export function rowOf(t: FloatConst, n: number): Float64Array | undefined {
  const count = size(t.dims);
  if (count === 1) return new Float64Array(n).fill(t.data[0]);
  if (count === n && t.dims[t.dims.length - 1] === n) return Float64Array.from(t.data);
  return undefined;
}
