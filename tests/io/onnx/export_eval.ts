/**
 * A float64 evaluator of GraphSpecs written from graph_spec.ts's definitions
 * alone, loop by loop, as the export test's reference: it shares no code with
 * the exporter or with the private layers' plaintext twin.
 */
import type { GraphNode, GraphSpec } from "../../../lib/nn/graph_spec.ts";

export interface Tensor {
  shape: number[];
  data: Float64Array;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) [s[i], acc] = [acc, acc * shape[i]];
  return s;
}

/** The multi-index of flat position `flat` in `shape`. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

/** A tensor of `shape` whose element at each multi-index is f(index). */
function build(shape: number[], f: (idx: number[]) => number): Tensor {
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = f(unravel(i, shape));
  return { shape, data };
}

const at = (t: Tensor, idx: readonly number[]) => t.data[idx.reduce((off, v, i) => off * t.shape[i] + v, 0)];
const map = (t: Tensor, f: (v: number) => number): Tensor => ({ shape: t.shape, data: t.data.map(f) });
const axisOf = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** x + c or x * c, c broadcasting against x from the right. */
function withConstant(x: Tensor, c: Tensor, f: (a: number, b: number) => number): Tensor {
  return build(x.shape, (idx) => {
    const cIdx = c.shape.map((d, i) => (d === 1 ? 0 : idx[idx.length - c.shape.length + i]));
    return f(at(x, idx), at(c, cIdx));
  });
}

function conv(x: Tensor, w: Tensor, bias: Tensor | null, node: Extract<GraphNode, { op: "conv" }>): Tensor {
  const [n, , h, wd] = x.shape, [oc, cg, kh, kw] = w.shape;
  const [sh, sw] = node.stride, [ph, pw] = node.padding, [dh, dw] = node.dilation;
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const outPerGroup = oc / node.groups;
  return build([n, oc, oh, ow], ([b, o, oy, ox]) => {
    const g = Math.floor(o / outPerGroup);
    let s = bias ? bias.data[o] : 0;
    for (let ci = 0; ci < cg; ci++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const y = oy * sh - ph + i * dh, xx = ox * sw - pw + j * dw;
          if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
          s += at(x, [b, g * cg + ci, y, xx]) * at(w, [o, ci, i, j]);
        }
      }
    }
    return s;
  });
}

function pool(x: Tensor, node: Extract<GraphNode, { op: "maxpool" | "avgpool" }>): Tensor {
  const [n, c, h, w] = x.shape, [kh, kw] = node.kernel, [sh, sw] = node.stride, [ph, pw] = node.padding;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  return build([n, c, oh, ow], ([b, ch, oy, ox]) => {
    let best = -Infinity, sum = 0, inside = 0;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const y = oy * sh - ph + i, xx = ox * sw - pw + j;
        if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
        const v = at(x, [b, ch, y, xx]);
        best = Math.max(best, v);
        sum += v;
        inside++;
      }
    }
    if (node.op === "maxpool") return best;
    return sum / (node.countIncludePad ? kh * kw : inside);
  });
}

/** x . W^T + b over the last axis, W [out, in]. */
function linear(x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const [out, inF] = w.shape;
  return build([...x.shape.slice(0, -1), out], (idx) => {
    const o = idx[idx.length - 1], row = idx.slice(0, -1);
    let s = bias ? bias.data[o] : 0;
    for (let i = 0; i < inF; i++) s += at(x, [...row, i]) * w.data[o * inF + i];
    return s;
  });
}

function softmax(x: Tensor, axis: number): Tensor {
  const a = axisOf(axis, x.shape.length), d = x.shape[a], stride = stridesOf(x.shape)[a];
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < x.data.length; i++) {
    // the first element of i's row along the axis
    const start = i - (Math.floor(i / stride) % d) * stride;
    let m = -Infinity, s = 0;
    for (let k = 0; k < d; k++) m = Math.max(m, x.data[start + k * stride]);
    for (let k = 0; k < d; k++) s += Math.exp(x.data[start + k * stride] - m);
    out[i] = Math.exp(x.data[i] - m) / s;
  }
  return { shape: x.shape, data: out };
}

function reshape(x: Tensor, target: readonly (number | "batch")[]): Tensor {
  const dims = target.map((t, i) => (t === "batch" ? x.shape[0] : t === 0 ? x.shape[i] : t));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const shape = dims.map((d) => (d === -1 ? x.data.length / known : d));
  if (sizeOf(shape) !== x.data.length) throw new RangeError(`reshape [${x.shape}] -> [${target}]`);
  return { shape, data: x.data };
}

function concat(xs: Tensor[], axis: number): Tensor {
  const a = axisOf(axis, xs[0].shape.length);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  return build(shape, (idx) => {
    let k = idx[a];
    for (const t of xs) {
      if (k < t.shape[a]) return at(t, idx.map((v, i) => (i === a ? k : v)));
      k -= t.shape[a];
    }
    throw new Error("unreachable");
  });
}

function pad(x: Tensor, pads: readonly (readonly [number, number])[]): Tensor {
  const p = x.shape.map((_, i) => pads[i] ?? [0, 0]);
  const shape = x.shape.map((d, i) => d + p[i][0] + p[i][1]);
  return build(shape, (idx) => {
    const src = idx.map((v, i) => v - p[i][0]);
    return src.every((v, i) => v >= 0 && v < x.shape[i]) ? at(x, src) : 0;
  });
}

function evaluateNode(node: GraphNode, xs: Tensor[], param: (name: string) => Tensor): Tensor {
  const x = xs[0];
  switch (node.op) {
    case "conv":
      return conv(x, param("weight"), node.bias ? param("bias") : null, node);
    case "linear":
      return linear(x, param("weight"), node.bias ? param("bias") : null);
    case "add":
      return { shape: x.shape, data: x.data.map((v, i) => v + xs[1].data[i]) };
    case "add_const":
      return withConstant(x, { ...param("value"), shape: node.shape }, (a, b) => a + b);
    case "mul_const":
      return withConstant(x, { ...param("value"), shape: node.shape }, (a, b) => a * b);
    case "neg":
      return map(x, (v) => -v);
    case "relu":
      return map(x, (v) => Math.max(v, 0));
    case "clip":
      // an absent bound (optional in newer specs) limits nothing
      return map(x, (v) => Math.min(Math.max(v, node.min ?? -Infinity), node.max ?? Infinity));
    case "maxpool":
    case "avgpool":
      return pool(x, node);
    case "globalavgpool": {
      const [n, c, h, w] = x.shape;
      return build([n, c, 1, 1], ([b, ch]) => {
        let s = 0;
        for (let i = 0; i < h * w; i++) s += x.data[(b * c + ch) * h * w + i];
        return s / (h * w);
      });
    }
    case "batchnorm": {
      const scale = param("scale"), shift = param("shift");
      return build(x.shape, (idx) => scale.data[idx[1]] * at(x, idx) + shift.data[idx[1]]);
    }
    case "batchnorm_stats": {
      // inference: (x - running mean) / sqrt(running var + eps) * weight + bias
      const w = param("weight"), b = param("bias"), m = param("running_mean"), v = param("running_var");
      return build(x.shape, (idx) => {
        const c = idx[1];
        return (at(x, idx) - m.data[c]) / Math.sqrt(v.data[c] + node.eps) * w.data[c] + b.data[c];
      });
    }
    case "flatten": {
      const a = axisOf(node.axis, x.shape.length);
      return { shape: [sizeOf(x.shape.slice(0, a)), sizeOf(x.shape.slice(a))], data: x.data };
    }
    case "reshape":
      return reshape(x, node.shape);
    case "transpose":
      return build(node.perm.map((p) => x.shape[p]), (idx) => {
        const src = new Array<number>(idx.length);
        node.perm.forEach((p, i) => (src[p] = idx[i]));
        return at(x, src);
      });
    case "concat":
      return concat(xs, node.axis);
    case "softmax":
      return softmax(x, node.axis);
    case "pad":
      return pad(x, node.pads);
  }
}

/** The graph's output for `input` ([batch, ...spec.input.shape]), parameters named `${node.name}.${param}`. */
export function evaluateGraph(
  spec: GraphSpec,
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float64Array }>,
  input: Tensor,
): Tensor {
  const values = new Map<string, Tensor>([[spec.input.name, input]]);
  for (const node of spec.nodes) {
    const param = (name: string): Tensor => {
      const w = weights.get(`${node.name}.${name}`);
      if (!w) throw new Error(`no weight ${node.name}.${name}`);
      return { shape: [...w.shape], data: w.data };
    };
    values.set(node.output, evaluateNode(node, node.inputs.map((v) => values.get(v)!), param));
  }
  return values.get(spec.output)!;
}
