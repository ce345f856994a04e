/**
 * A small writer of ONNX ModelProto bytes for tests: fixtures are built in
 * code (the shapes PyTorch's exporter produces) rather than kept as binary
 * files, so a test says what its model is.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type AttributeProto,
  AttributeProto_AttributeType as AttrType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType as DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from "../../../lib/io/onnx/onnx_pb.ts";

export type TensorType = "float" | "double" | "int64" | "int32";

export interface InitializerOptions {
  type?: TensorType;
  /** "raw" (raw_data, the exporters' default) or "typed" (float_data, int64_data, ...). */
  encoding?: "raw" | "typed";
  /** Mark the tensor as stored outside the file (the importer must refuse it). */
  external?: boolean;
}

/** Attribute values: integers become INT(S), other numbers FLOAT(S); use `float`/`floats` to force floats. */
export type AttrValue =
  | number
  | number[]
  | string
  | Float32Array
  | { float: number }
  | { floats: number[] }
  | { tensor: TensorProto };

export const float = (f: number): AttrValue => ({ float: f });
export const floats = (fs: number[]): AttrValue => ({ floats: fs });

/** A TensorProto (for Constant nodes' `value` attribute or initializers). */
export function tensor(
  name: string,
  dims: number[],
  data: ArrayLike<number>,
  { type = "float", encoding = "raw", external = false }: InitializerOptions = {},
): TensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new RangeError(`tensor ${name}: ${data.length} values for dims [${dims}]`);
  const t = create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: dataTypeOf(type) });
  if (external) {
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.externalData = [{ $typeName: "onnx.StringStringEntryProto", key: "location", value: `${name}.bin` }];
    return t;
  }
  if (encoding === "raw") t.rawData = rawBytes(type, data);
  else if (type === "float") t.floatData = Array.from(data);
  else if (type === "double") t.doubleData = Array.from(data);
  else if (type === "int64") t.int64Data = Array.from(data, (v) => BigInt(v));
  else t.int32Data = Array.from(data);
  return t;
}

function dataTypeOf(type: TensorType): DataType {
  return { float: DataType.FLOAT, double: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32 }[type];
}

/** Little-endian bytes, as ONNX's raw_data holds them. */
function rawBytes(type: TensorType, data: ArrayLike<number>): Uint8Array {
  const width = type === "float" || type === "int32" ? 4 : 8;
  const view = new DataView(new ArrayBuffer(data.length * width));
  for (let i = 0; i < data.length; i++) {
    if (type === "float") view.setFloat32(i * 4, data[i], true);
    else if (type === "int32") view.setInt32(i * 4, data[i], true);
    else if (type === "double") view.setFloat64(i * 8, data[i], true);
    else view.setBigInt64(i * 8, BigInt(data[i]), true);
  }
  return new Uint8Array(view.buffer);
}

function attribute(name: string, value: AttrValue): AttributeProto {
  const a = create(AttributeProtoSchema, { name });
  if (typeof value === "string") Object.assign(a, { type: AttrType.STRING, s: new TextEncoder().encode(value) });
  else if (typeof value === "number") {
    if (Number.isInteger(value)) Object.assign(a, { type: AttrType.INT, i: BigInt(value) });
    else Object.assign(a, { type: AttrType.FLOAT, f: value });
  } else if (value instanceof Float32Array) Object.assign(a, { type: AttrType.FLOATS, floats: Array.from(value) });
  else if (Array.isArray(value)) {
    if (value.every(Number.isInteger)) Object.assign(a, { type: AttrType.INTS, ints: value.map(BigInt) });
    else Object.assign(a, { type: AttrType.FLOATS, floats: value });
  } else if ("float" in value) Object.assign(a, { type: AttrType.FLOAT, f: value.float });
  else if ("floats" in value) Object.assign(a, { type: AttrType.FLOATS, floats: value.floats });
  else Object.assign(a, { type: AttrType.TENSOR, t: value.tensor });
  return a;
}

function valueInfo(name: string, shape: (number | string)[] | undefined, elemType = DataType.FLOAT): ValueInfoProto {
  const dims = (shape ?? []).map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === "number" ? { case: "dimValue", value: BigInt(d) } : { case: "dimParam", value: d },
    })
  );
  const tensorType = create(TypeProto_TensorSchema, {
    elemType,
    shape: shape ? create(TensorShapeProtoSchema, { dim: dims }) : undefined,
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: "tensorType", value: tensorType } }),
  });
}

export class OnnxBuilder {
  readonly #nodes: NodeProto[] = [];
  readonly #inputs: ValueInfoProto[] = [];
  readonly #outputs: ValueInfoProto[] = [];
  readonly #initializers: TensorProto[] = [];
  readonly #opsets: { domain: string; version: number }[];
  producer = "pytorch";
  producerVersion = "2.5.0";
  graphName = "main_graph";

  constructor(readonly opset = 13) {
    this.#opsets = [{ domain: "", version: opset }];
  }

  /** Another operator set (a custom domain), or none at all for the default domain with `withoutDefaultOpset`. */
  opsetImport(domain: string, version: number): this {
    this.#opsets.push({ domain, version });
    return this;
  }

  withoutDefaultOpset(): this {
    this.#opsets.splice(0, this.#opsets.length, ...this.#opsets.filter((o) => o.domain !== ""));
    return this;
  }

  input(name: string, shape: (number | string)[]): this {
    this.#inputs.push(valueInfo(name, shape));
    return this;
  }

  output(name: string, shape?: (number | string)[]): this {
    this.#outputs.push(valueInfo(name, shape));
    return this;
  }

  /** An initializer; like older exporters, `alsoInput` lists it among the graph inputs too. */
  initializer(
    name: string,
    dims: number[],
    data: ArrayLike<number>,
    options: InitializerOptions & { alsoInput?: boolean } = {},
  ): this {
    this.#initializers.push(tensor(name, dims, data, options));
    if (options.alsoInput) {
      const type = options.type ?? "float";
      this.#inputs.push(valueInfo(name, dims, dataTypeOf(type)));
    }
    return this;
  }

  node(
    op: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, AttrValue> = {},
    name = "",
    domain = "",
  ): this {
    this.#nodes.push(create(NodeProtoSchema, {
      opType: op,
      input: inputs,
      output: outputs,
      name,
      domain,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return this;
  }

  toBytes(): Uint8Array {
    const model = create(ModelProtoSchema, {
      irVersion: 8n,
      producerName: this.producer,
      producerVersion: this.producerVersion,
      opsetImport: this.#opsets.map((o) =>
        create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(o.version) })
      ),
      graph: create(GraphProtoSchema, {
        name: this.graphName,
        node: this.#nodes,
        input: this.#inputs,
        output: this.#outputs,
        initializer: this.#initializers,
      }),
    });
    return toBinary(ModelProtoSchema, model);
  }
}

/**
 * The same bytes at an odd offset of a larger buffer: decoded raw_data fields are then views at odd addresses,
 * which a Float32Array cannot be made over without a copy.
 */
export function atOddOffset(bytes: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 3);
  buffer.set(bytes, 1);
  return buffer.subarray(1, 1 + bytes.length);
}
