/**
 * A plain float64 evaluator of a GraphSpec, written from the node definitions in graph_spec.ts with
 * straightforward loops: the import tests compare it with ONNX Runtime, independently of the MPC runtime.
 */
import type { GraphNode, GraphSpec } from "../../../lib/nn/graph_spec.ts";

export interface Tensor {
  shape: number[];
  data: Float64Array;
}

type Weights = Map<string, { shape: number[]; data: Float64Array }>;

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function stridesOf(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Calls f with each multi-index of `shape` and its flat position, in row-major order. */
function forEachIndex(shape: number[], f: (index: number[], flat: number) => void): void {
  const index = new Array<number>(shape.length).fill(0);
  const total = count(shape);
  for (let flat = 0; flat < total; flat++) {
    f(index, flat);
    for (let a = shape.length - 1; a >= 0 && ++index[a] === shape[a]; a--) index[a] = 0;
  }
}

export function evalSpec(spec: GraphSpec, weights: Weights, input: Tensor): Tensor {
  const values = new Map<string, Tensor>([[spec.input.name, input]]);
  const param = (node: GraphNode, name: string) => {
    const w = weights.get(`${node.name}.${name}`);
    if (!w) throw new Error(`missing weight ${node.name}.${name}`);
    return w;
  };
  for (const node of spec.nodes) {
    const xs = node.inputs.map((i) => {
      const v = values.get(i);
      if (!v) throw new Error(`node ${node.name}: no value ${i}`);
      return v;
    });
    values.set(node.output, evalNode(node, xs, (name) => param(node, name)));
  }
  return values.get(spec.output)!;
}

function evalNode(node: GraphNode, xs: Tensor[], param: (name: string) => Tensor): Tensor {
  const x = xs[0];
  switch (node.op) {
    case "conv":
      return conv(x, param("weight"), node.bias ? param("bias") : undefined, node);
    case "linear":
      return linear(x, param("weight"), node.bias ? param("bias") : undefined);
    case "add":
      return map2(x, xs[1], (a, b) => a + b);
    case "add_const":
      return broadcastRight(x, param("value"), (a, b) => a + b);
    case "mul_const":
      return broadcastRight(x, param("value"), (a, b) => a * b);
    case "neg":
      return { shape: x.shape, data: x.data.map((v) => -v) };
    case "relu":
      return { shape: x.shape, data: x.data.map((v) => Math.max(v, 0)) };
    case "clip":
      return {
        shape: x.shape,
        data: x.data.map((v) => Math.min(Math.max(v, node.min ?? -Infinity), node.max ?? Infinity)),
      };
    case "maxpool":
      return pool(x, node.kernel, node.stride, node.padding, "max", false);
    case "avgpool":
      return pool(x, node.kernel, node.stride, node.padding, "avg", node.countIncludePad);
    case "globalavgpool":
      return pool(x, [x.shape[2], x.shape[3]], [1, 1], [0, 0], "avg", true);
    case "batchnorm":
      return batchnorm(x, param("scale"), param("shift"));
    case "batchnorm_stats": {
      // inference: scale = weight / sqrt(running var + eps), shift = bias - running mean * scale
      const w = param("weight"), b = param("bias"), m = param("running_mean"), v = param("running_var");
      const scale = w.data.map((g, c) => g / Math.sqrt(v.data[c] + node.eps));
      const shift = b.data.map((bb, c) => bb - m.data[c] * scale[c]);
      return batchnorm(x, { shape: w.shape, data: scale }, { shape: b.shape, data: shift });
    }
    case "flatten": {
      const axis = node.axis < 0 ? node.axis + x.shape.length : node.axis;
      return { shape: [count(x.shape.slice(0, axis)), count(x.shape.slice(axis))], data: x.data };
    }
    case "reshape":
      return reshape(x, node.shape);
    case "transpose":
      return transpose(x, node.perm);
    case "concat":
      return concat(xs, node.axis < 0 ? node.axis + x.shape.length : node.axis);
    case "softmax":
      return softmax(x, node.axis < 0 ? node.axis + x.shape.length : node.axis);
    case "pad":
      return pad(x, node.pads);
  }
}

function conv(
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  o: { stride: number[]; padding: number[]; dilation: number[]; groups: number },
): Tensor {
  const [n, c, h, wd] = x.shape;
  const [oc, cg, kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0]) + 1;
  const ow = Math.floor((wd + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1]) + 1;
  const out = new Float64Array(n * oc * oh * ow);
  const ocPerGroup = oc / o.groups;
  for (let b0 = 0; b0 < n; b0++) {
    for (let f = 0; f < oc; f++) {
      const g = Math.floor(f / ocPerGroup);
      for (let y = 0; y < oh; y++) {
        for (let z = 0; z < ow; z++) {
          let sum = b ? b.data[f] : 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const yy = y * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const zz = z * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (yy < 0 || yy >= h || zz < 0 || zz >= wd) continue;
                const xv = x.data[((b0 * c + g * cg + ci) * h + yy) * wd + zz];
                sum += xv * w.data[((f * cg + ci) * kh + i) * kw + j];
              }
            }
          }
          out[((b0 * oc + f) * oh + y) * ow + z] = sum;
        }
      }
    }
  }
  return { shape: [n, oc, oh, ow], data: out };
}

function linear(x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
  const [outF, inF] = w.shape;
  const rows = count(x.shape) / inF;
  const out = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let sum = b ? b.data[o] : 0;
      for (let i = 0; i < inF; i++) sum += x.data[r * inF + i] * w.data[o * inF + i];
      out[r * outF + o] = sum;
    }
  }
  return { shape: [...x.shape.slice(0, -1), outF], data: out };
}

function map2(a: Tensor, b: Tensor, f: (x: number, y: number) => number): Tensor {
  if (a.shape.join() !== b.shape.join()) throw new Error(`add of ${a.shape} and ${b.shape}`);
  return { shape: a.shape, data: a.data.map((v, i) => f(v, b.data[i])) };
}

/** value broadcasts against x from the right (numpy rules, never growing x). */
function broadcastRight(x: Tensor, value: Tensor, f: (x: number, y: number) => number): Tensor {
  const offset = x.shape.length - value.shape.length;
  const vs = stridesOf(value.shape);
  const out = new Float64Array(x.data.length);
  forEachIndex(x.shape, (index, flat) => {
    let k = 0;
    for (let a = 0; a < value.shape.length; a++) if (value.shape[a] !== 1) k += index[a + offset] * vs[a];
    out[flat] = f(x.data[flat], value.data[k]);
  });
  return { shape: x.shape, data: out };
}

function pool(
  x: Tensor,
  k: number[],
  s: number[],
  p: number[],
  op: "max" | "avg",
  countIncludePad: boolean,
): Tensor {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1, ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  const out = new Float64Array(n * c * oh * ow);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < oh; y++) {
      for (let z = 0; z < ow; z++) {
        let acc = op === "max" ? -Infinity : 0, inside = 0;
        for (let i = 0; i < k[0]; i++) {
          for (let j = 0; j < k[1]; j++) {
            const yy = y * s[0] - p[0] + i, zz = z * s[1] - p[1] + j;
            if (yy < 0 || yy >= h || zz < 0 || zz >= w) continue;
            const v = x.data[(plane * h + yy) * w + zz];
            acc = op === "max" ? Math.max(acc, v) : acc + v;
            inside++;
          }
        }
        out[(plane * oh + y) * ow + z] = op === "max" ? acc : acc / (countIncludePad ? k[0] * k[1] : inside);
      }
    }
  }
  return { shape: [n, c, oh, ow], data: out };
}

function batchnorm(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const c = x.shape[1], inner = count(x.shape.slice(2));
  return {
    shape: x.shape,
    data: x.data.map((v, i) => {
      const ch = Math.floor(i / inner) % c;
      return v * scale.data[ch] + shift.data[ch];
    }),
  };
}

function reshape(x: Tensor, target: (number | "batch")[]): Tensor {
  const shape = target.map((d, i) => (d === "batch" ? x.shape[0] : d === 0 ? x.shape[i] : d));
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return { shape: shape.map((d) => (d === -1 ? count(x.shape) / known : d)), data: x.data };
}

function transpose(x: Tensor, perm: number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const xs = stridesOf(x.shape);
  const out = new Float64Array(x.data.length);
  forEachIndex(shape, (index, flat) => {
    let src = 0;
    for (let a = 0; a < shape.length; a++) src += index[a] * xs[perm[a]];
    out[flat] = x.data[src];
  });
  return { shape, data: out };
}

function concat(xs: Tensor[], axis: number): Tensor {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((a, t) => a + t.shape[axis], 0);
  const outer = count(shape.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const t of xs) {
      const chunk = count(t.shape.slice(axis));
      for (let k = 0; k < chunk; k++) out.push(t.data[o * chunk + k]);
    }
  }
  return { shape, data: Float64Array.from(out) };
}

function softmax(x: Tensor, axis: number): Tensor {
  const n = x.shape[axis], inner = count(x.shape.slice(axis + 1)), outer = count(x.shape.slice(0, axis));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (i: number) => (o * n + i) * inner + k;
      let max = -Infinity, sum = 0;
      for (let i = 0; i < n; i++) max = Math.max(max, x.data[at(i)]);
      for (let i = 0; i < n; i++) sum += Math.exp(x.data[at(i)] - max);
      for (let i = 0; i < n; i++) out[at(i)] = Math.exp(x.data[at(i)] - max) / sum;
    }
  }
  return { shape: x.shape, data: out };
}

function pad(x: Tensor, pads: [number, number][]): Tensor {
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const os = stridesOf(shape);
  const out = new Float64Array(count(shape));
  forEachIndex(x.shape, (index, flat) => {
    let dst = 0;
    for (let a = 0; a < shape.length; a++) dst += (index[a] + pads[a][0]) * os[a];
    out[dst] = x.data[flat];
  });
  return { shape, data: out };
}
