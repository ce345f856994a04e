/**
 * `RingTensor`: a tensor over Z_2^64 in native memory. It knows its shape,
 * its dtype (u64 words, or packed bits), its backend and a view (strides and
 * offset) onto a reference-counted native buffer. Every operation is one or a
 * few native calls; nothing here loops over elements.
 *
 * Memory is released deterministically: `dispose()`, `using`, or `scope()`.
 * Views (permute, slice, reshape of contiguous data) share their buffer, which
 * is freed when the last view is disposed.
 *
 * This file owns the tensor itself: creation, views and layout, reading back,
 * writing in place, and matmul. Three groups of methods are one-line
 * delegations to their own modules: elementwise arithmetic with broadcasting
 * (binary, unary and the operations named after them) and sum over an axis to
 * elementwise.ts, the windowed operations (conv2d and its gradients,
 * im2col/col2im, sum pooling) to windows.ts, and the packed-bit operations to
 * bits.ts. Operand checks and dense access, shared with those modules, are in
 * operand.ts.
 */
import type { Backend, MatmulOptions } from "../native/backend.ts";
import type { AesImpl, BinaryOp, Method, UnaryOp } from "../native/symbols.ts";
import * as bitOps from "./bits.ts";
import * as elementwise from "./elementwise.ts";
import { expectShape, requireDtype, withDense } from "./operand.ts";
import { checkShape, contiguousStrides, fmt, normAxis, type Shape, size } from "./shape.ts";
import { track } from "./scope.ts";
import * as windows from "./windows.ts";
import type { Conv2dOptions } from "./windows.ts";

export { type Conv2dOptions, outputShape, poolOutputShape } from "./windows.ts";

/** "u64": one ring element per word. "bit": packed bits, 64 per word. */
export type DType = "u64" | "bit";

class Storage {
  refs = 1;
  constructor(readonly backend: Backend, readonly handle: bigint, readonly words: number) {}
  release(): void {
    if (--this.refs === 0) this.backend.free(this.handle);
  }
}

/** AES-CTR's initial counter block: the 128-bit counter, big-endian. */
function counterBlock(counter: bigint): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(0, BigInt.asUintN(64, counter >> 64n));
  new DataView(iv.buffer).setBigUint64(8, BigInt.asUintN(64, counter));
  return iv;
}

/** Native words that n elements of the dtype occupy. */
export function wordsFor(dtype: DType, n: number): number {
  return dtype === "u64" ? n : Math.ceil(n / 64);
}

export class RingTensor {
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  #storage: Storage | null;

  private constructor(storage: Storage, shape: Shape, strides: readonly number[], offset: number, dtype: DType) {
    this.#storage = storage;
    this.shape = shape;
    this.strides = strides;
    this.offset = offset;
    this.dtype = dtype;
    track(this);
  }

  // ------------------------------------------------------------ creation

  /** A tensor of the shape with undefined contents (every word is written before it is read). */
  static empty(backend: Backend, shape: Shape, dtype: DType = "u64"): RingTensor {
    checkShape(shape);
    const words = wordsFor(dtype, size(shape));
    const storage = new Storage(backend, backend.alloc(words), words);
    return new RingTensor(storage, [...shape], contiguousStrides(shape), 0, dtype);
  }

  static zeros(backend: Backend, shape: Shape, dtype: DType = "u64"): RingTensor {
    return RingTensor.full(backend, shape, 0n, dtype);
  }

  static full(backend: Backend, shape: Shape, value: bigint, dtype: DType = "u64"): RingTensor {
    const t = RingTensor.empty(backend, shape, dtype);
    backend.fill(t.handle, 0, t.words, value);
    return t;
  }

  /** Ring elements given as words (bigints are reduced mod 2^64). */
  static from(backend: Backend, values: BigUint64Array | readonly bigint[], shape?: Shape): RingTensor {
    const data = values instanceof BigUint64Array ? values : BigUint64Array.from(values, (v) => BigInt.asUintN(64, v));
    const s = shape ?? [data.length];
    checkShape(s);
    if (size(s) !== data.length) throw new RangeError(`from: ${data.length} values do not fill shape ${fmt(s)}`);
    const t = RingTensor.empty(backend, s);
    backend.upload(t.handle, 0, data);
    return t;
  }

  /** Packed bits from a BigUint64Array of words holding `shape`'s bits in order. */
  static fromBitWords(backend: Backend, words: BigUint64Array, shape: Shape): RingTensor {
    return bitOps.fromBitWords(backend, words, shape);
  }

  /** Fixed-point encoding of reals: round(x * 2^fracBits) in two's complement. */
  static encode(
    backend: Backend,
    values: Float64Array | readonly number[],
    fracBits: number,
    shape?: Shape,
  ): RingTensor {
    const data = values instanceof Float64Array ? values : Float64Array.from(values);
    const s = shape ?? [data.length];
    checkShape(s);
    if (size(s) !== data.length) throw new RangeError(`encode: ${data.length} values do not fill shape ${fmt(s)}`);
    const t = RingTensor.empty(backend, s);
    try {
      backend.encodeFixed(t.handle, data, fracBits);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /**
   * Pseudorandom words: AES-128-CTR under `key` from 128-bit block counter
   * `counter` (big-endian, as SP 800-38A), two words per block. The words
   * drawn depend only on the key, the counter and the size.
   */
  static prf(
    backend: Backend,
    shape: Shape,
    key: Uint8Array,
    counter: bigint,
    dtype: DType = "u64",
    impl: AesImpl = "auto",
  ): RingTensor {
    const t = RingTensor.empty(backend, shape, dtype);
    try {
      t.assignPrf(key, counter, impl);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /** Blocks of AES-CTR that `prf` consumes for a tensor of this many words. */
  static prfBlocks(words: number): number {
    return Math.ceil(words / 2);
  }

  // ------------------------------------------------------------ properties

  get backend(): Backend {
    return this.#live.backend;
  }
  get device(): Backend["device"] {
    return this.#live.backend.device;
  }
  get size(): number {
    return size(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  /** Native words this tensor's elements occupy when contiguous. */
  get words(): number {
    return wordsFor(this.dtype, this.size);
  }
  /** The native handle; valid only for a contiguous tensor at offset 0 (see `contiguous`). */
  get handle(): bigint {
    if (!this.isDense) throw new Error("handle: this view is not contiguous at offset 0; call contiguous() first");
    return this.#live.handle;
  }
  get disposed(): boolean {
    return this.#storage === null;
  }
  get #live(): Storage {
    if (this.#storage === null) throw new Error("this tensor was disposed");
    return this.#storage;
  }

  isContiguous(): boolean {
    const s = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || s[i] === this.strides[i]);
  }

  /** Contiguous and starting at word 0: native kernels take it as is. */
  get isDense(): boolean {
    return this.offset === 0 && this.isContiguous();
  }

  dispose(): void {
    if (this.#storage === null) return;
    this.#storage.release();
    this.#storage = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ------------------------------------------------------------ reading back

  /** The elements in row-major order, as words. */
  toBigUint64Array(): BigUint64Array {
    return withDense(this, (t) => t.backend.download(t.handle, 0, t.words));
  }

  /** Elements read as signed 64-bit integers. */
  toBigInt64Array(): BigInt64Array {
    return new BigInt64Array(this.toBigUint64Array().buffer);
  }

  /** Fixed-point decoding: the elements as signed integers divided by 2^fracBits. */
  decode(fracBits: number): Float64Array {
    requireDtype(this, "u64", "decode");
    return withDense(this, (t) => t.backend.decodeFixed(t.handle, t.size, fracBits));
  }

  /**
   * The tensor's bytes as a view of native memory, for zero-copy network I/O,
   * or null where the memory is not host-addressable (GPU). The view is valid
   * until the tensor is disposed; writing to it writes the tensor.
   */
  hostBytes(): Uint8Array | null {
    if (!this.isContiguous()) return null;
    // A slice is a range of its buffer's view: the backend keeps one view per
    // buffer, so slices at ever different offsets make no new ones.
    const s = this.#live, all = this.backend.hostBytes(s.handle, s.words);
    return all && all.subarray(this.offset * 8, (this.offset + this.words) * 8);
  }

  /** Copies a dense tensor's bytes to the host (a GPU tensor's too). */
  toBytes(): Uint8Array {
    const w = this.toBigUint64Array();
    return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  }

  /** Overwrites a dense tensor from bytes (little-endian words). */
  setBytes(bytes: Uint8Array): void {
    if (bytes.length !== this.words * 8) {
      throw new RangeError(`setBytes: ${bytes.length} bytes for ${this.words} words`);
    }
    const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
    this.backend.upload(this.handle, 0, new BigUint64Array(aligned.buffer, aligned.byteOffset, this.words));
  }

  /** Packed bits as 0/1 numbers (for tests and small results). */
  toBits(): Uint8Array {
    return bitOps.toBits(this);
  }

  // ------------------------------------------------------------ views and layout

  /** Same data, new shape: a view when contiguous, else a copy. */
  reshape(shape: Shape): RingTensor {
    const resolved = resolveReshape(this.shape, shape);
    if (this.dtype === "bit" || this.isContiguous()) {
      this.#live.refs++;
      return new RingTensor(this.#live, resolved, contiguousStrides(resolved), this.offset, this.dtype);
    }
    const c = this.contiguous();
    const r = c.reshape(resolved);
    c.dispose();
    return r;
  }

  /** A view with the axes reordered. */
  permute(axes: readonly number[]): RingTensor {
    requireDtype(this, "u64", "permute");
    if (axes.length !== this.rank || new Set(axes.map((a) => normAxis(a, this.rank, "permute"))).size !== this.rank) {
      throw new RangeError(`permute: ${fmt(axes)} is not a permutation of ${this.rank} axes`);
    }
    const ax = axes.map((a) => normAxis(a, this.rank, "permute"));
    this.#live.refs++;
    return new RingTensor(this.#live, ax.map((a) => this.shape[a]), ax.map((a) => this.strides[a]), this.offset, "u64");
  }

  /** A view with two axes swapped (the last two by default). */
  transpose(a = -2, b = -1): RingTensor {
    const axes = [...this.shape.keys()];
    const i = normAxis(a, this.rank, "transpose"), j = normAxis(b, this.rank, "transpose");
    [axes[i], axes[j]] = [axes[j], axes[i]];
    return this.permute(axes);
  }

  /** A view of [start, end) along an axis. */
  slice(axis: number, start: number, end: number): RingTensor {
    requireDtype(this, "u64", "slice");
    const a = normAxis(axis, this.rank, "slice");
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.shape[a] || start > end) {
      throw new RangeError(`slice: [${start}, ${end}) is outside axis ${a} of length ${this.shape[a]}`);
    }
    const shape = [...this.shape];
    shape[a] = end - start;
    this.#live.refs++;
    return new RingTensor(this.#live, shape, this.strides, this.offset + start * this.strides[a], "u64");
  }

  /**
   * This tensor as a dense native buffer: itself (a new reference), a view
   * handle on its words where they are contiguous at an offset (a slice along
   * the first axis: no copy, and writes show through), or a copy.
   */
  contiguous(): RingTensor {
    if (this.isDense) {
      this.#live.refs++;
      return new RingTensor(this.#live, this.shape, this.strides, 0, this.dtype);
    }
    if (this.isContiguous()) {
      const storage = new Storage(
        this.backend,
        this.backend.view(this.#live.handle, this.offset, this.words),
        this.words,
      );
      return new RingTensor(storage, this.shape, contiguousStrides(this.shape), 0, this.dtype);
    }
    const out = RingTensor.empty(this.backend, this.shape);
    out.assign(this);
    return out;
  }

  /** An independent copy. */
  clone(): RingTensor {
    if (!this.isContiguous()) return this.contiguous();
    const out = RingTensor.empty(this.backend, this.shape, this.dtype);
    this.backend.copy(out.handle, 0, this.#live.handle, this.offset, this.words);
    return out;
  }

  static concat(tensors: readonly RingTensor[], axis = 0): RingTensor {
    if (tensors.length === 0) throw new RangeError("concat: no tensors");
    const first = tensors[0];
    const a = normAxis(axis, first.rank, "concat");
    for (const t of tensors) {
      requireDtype(t, "u64", "concat");
      if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
        throw new RangeError(`concat: shape ${fmt(t.shape)} does not match ${fmt(first.shape)} off axis ${a}`);
      }
    }
    const shape = [...first.shape];
    shape[a] = tensors.reduce((s, t) => s + t.shape[a], 0);
    const out = RingTensor.empty(first.backend, shape);
    let at = 0;
    for (const t of tensors) {
      out.backend.copyStrided(
        out.handle,
        at * out.strides[a],
        out.strides,
        t.#live.handle,
        t.offset,
        t.strides,
        t.shape,
      );
      at += t.shape[a];
    }
    return out;
  }

  /** Zero padding: pads[d] = [before, after] for each axis (missing axes: none). */
  pad(pads: readonly (readonly [number, number])[], value = 0n): RingTensor {
    requireDtype(this, "u64", "pad");
    if (pads.length > this.rank) throw new RangeError(`pad: ${pads.length} pairs for a tensor of rank ${this.rank}`);
    const p = this.shape.map((_, d) => pads[d] ?? [0, 0]);
    if (p.some(([b, e]) => !Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0)) {
      throw new RangeError("pad: amounts must be non-negative integers");
    }
    const out = RingTensor.full(this.backend, this.shape.map((d, i) => d + p[i][0] + p[i][1]), value);
    const at = p.reduce((s, [b], i) => s + b * out.strides[i], 0);
    out.backend.copyStrided(out.handle, at, out.strides, this.#live.handle, this.offset, this.strides, this.shape);
    return out;
  }

  // ------------------------------------------------------------ writing in place

  /*
   * A protocol that works on parts of a tensor (the thirds that each party
   * leads) writes each part's result straight into a slice of the whole
   * instead of concatenating the parts afterwards. These write into `this`,
   * which must be contiguous (a slice along the first axis is); every other
   * operation returns a new tensor and leaves its operands alone.
   */

  /** Sets every element to value. */
  fill(value: bigint): void {
    this.#writable("fill");
    this.backend.fill(this.#live.handle, this.offset, this.words, value);
  }

  /** Copies src (ring elements, any view of the same shape) into this tensor. */
  assign(src: RingTensor): void {
    this.#writable("assign");
    requireDtype(this, "u64", "assign");
    requireDtype(src, "u64", "assign");
    expectShape(src, this.shape, "assign: the source");
    const strides = contiguousStrides(this.shape);
    this.backend.copyStrided(
      this.#live.handle,
      this.offset,
      strides,
      src.#live.handle,
      src.offset,
      src.strides,
      src.shape,
    );
  }

  /** Writes a op b (same shapes) into this tensor, which must not overlap a or b. */
  assignBinary(op: BinaryOp, a: RingTensor, b: RingTensor): void {
    this.#writable("assignBinary");
    expectShape(a, this.shape, `${op} into a tensor: the left operand`);
    expectShape(b, this.shape, `${op} into a tensor: the right operand`);
    if (a.dtype !== this.dtype || b.dtype !== this.dtype) throw new TypeError(`${op} into a tensor: dtypes differ`);
    using out = this.contiguous(); // this tensor itself, or a view handle on its words
    const n = this.words, nb = Math.max(1, n);
    withDense(a, (x) => withDense(b, (y) => x.backend.binary(op, out.handle, x.handle, y.handle, n, nb, 1)));
  }

  /** Overwrites this tensor with `prf` words: AES-128-CTR under key from block `counter`. */
  assignPrf(key: Uint8Array, counter: bigint, impl: AesImpl = "auto"): void {
    this.#writable("assignPrf");
    this.backend.aesCtr(this.#live.handle, this.offset, this.words, key, counterBlock(counter), impl);
  }

  #writable(what: string): void {
    if (!this.isContiguous()) throw new Error(`${what}: writes only into a contiguous tensor or slice`);
  }

  // ------------------------------------------------------------ elementwise (elementwise.ts)

  /**
   * `this op other`, where other is a tensor of the same shape, one that
   * broadcasts as a scalar, row, column or per-channel block, or a public
   * bigint. Either side may be the smaller one.
   */
  binary(op: BinaryOp, other: RingTensor | bigint): RingTensor {
    return elementwise.binary(this, op, other);
  }

  add(other: RingTensor | bigint): RingTensor {
    return this.binary("add", other);
  }
  sub(other: RingTensor | bigint): RingTensor {
    return this.binary("sub", other);
  }
  mul(other: RingTensor | bigint): RingTensor {
    return this.binary("mul", other);
  }
  xor(other: RingTensor | bigint): RingTensor {
    return this.binary("xor", other);
  }
  and(other: RingTensor | bigint): RingTensor {
    return this.binary("and", other);
  }
  or(other: RingTensor | bigint): RingTensor {
    return this.binary("or", other);
  }

  unary(op: UnaryOp, k = 0): RingTensor {
    return elementwise.unary(this, op, k);
  }

  neg(): RingTensor {
    return this.unary("neg");
  }
  not(): RingTensor {
    return this.unary("not");
  }
  shl(k: number): RingTensor {
    return this.unary("shl", k);
  }
  /** Logical shift right. */
  shr(k: number): RingTensor {
    return this.unary("shr", k);
  }
  /** Arithmetic shift right (elements read as int64). */
  sar(k: number): RingTensor {
    return this.unary("sar", k);
  }
  /** Bit k of every element, as 0/1 words. */
  bit(k: number): RingTensor {
    return this.unary("bit", k);
  }

  // ------------------------------------------------------------ reductions (elementwise.ts)

  /** Sum over one axis (the axis is removed unless keepDims). */
  sum(axis: number, keepDims = false): RingTensor {
    return elementwise.sum(this, axis, keepDims);
  }

  // ------------------------------------------------------------ bilinear

  /**
   * Matrix product over the last two axes, exact mod 2^64: [m, k] . [k, n],
   * batched [b, m, k] . [b, k, n], or one side 2-D shared by every batch entry.
   * Transposed views are passed to the kernel as transposes, not copied.
   */
  matmul(other: RingTensor, method?: Method): RingTensor {
    requireDtype(this, "u64", "matmul");
    requireDtype(other, "u64", "matmul");
    if (this.rank < 2 || this.rank > 3 || other.rank < 2 || other.rank > 3) {
      throw new RangeError(`matmul: operands must be 2-D or 3-D, got ${fmt(this.shape)} and ${fmt(other.shape)}`);
    }
    const [m, k] = this.shape.slice(-2), [k2, n] = other.shape.slice(-2);
    const ba = this.rank === 3 ? this.shape[0] : 0, bb = other.rank === 3 ? other.shape[0] : 0;
    if (k !== k2 || (ba && bb && ba !== bb)) {
      throw new RangeError(`matmul: shapes ${fmt(this.shape)} and ${fmt(other.shape)} do not multiply`);
    }
    const batch = Math.max(ba, bb, 1);
    const shape = ba || bb ? [batch, m, n] : [m, n];
    return this.#asMatrix((a, transA) =>
      other.#asMatrix((b, transB) => {
        const out = RingTensor.empty(this.backend, shape);
        out.backend.matmul(
          out.handle,
          a.handle,
          b.handle,
          batch,
          m,
          n,
          k,
          {
            transA,
            transB,
            bcastA: !ba && batch > 1,
            bcastB: !bb && batch > 1,
            method,
          } satisfies MatmulOptions,
        );
        return out;
      })
    );
  }

  // ------------------------------------------------------------ windows (windows.ts)

  /** 2-D convolution (cross-correlation) of this [n, c, h, w] with weight [oc, c/groups, kh, kw]. */
  conv2d(weight: RingTensor, options: Conv2dOptions = {}): RingTensor {
    return windows.conv2d(this, weight, options);
  }

  /** Gradient of sum(dy * conv2d(x, weight)) with respect to x, for this = dy. */
  conv2dBackwardInput(weight: RingTensor, inputShape: Shape, options: Conv2dOptions = {}): RingTensor {
    return windows.conv2dBackwardInput(this, weight, inputShape, options);
  }

  /** Gradient with respect to the weight, for this = x and the given dy. */
  conv2dBackwardWeight(dy: RingTensor, weightShape: Shape, options: Conv2dOptions = {}): RingTensor {
    return windows.conv2dBackwardWeight(this, dy, weightShape, options);
  }

  /** Window gather: [n, c, h, w] -> [n, c*kh*kw, oh*ow]. */
  im2col(kernel: [number, number], options: Conv2dOptions = {}): RingTensor {
    return windows.im2col(this, kernel, options);
  }

  /** The adjoint of im2col: this [n, c*kh*kw, oh*ow] summed into [n, c, h, w]. */
  col2im(imageShape: Shape, kernel: [number, number], options: Conv2dOptions = {}): RingTensor {
    return windows.col2im(this, imageShape, kernel, options);
  }

  /** Sum over each pooling window: [n, c, h, w] -> [n, c, oh, ow]. */
  sumPool2d(kernel: [number, number], options: Conv2dOptions = {}): RingTensor {
    return windows.sumPool2d(this, kernel, options);
  }

  /** The adjoint of sumPool2d, for this = dy. */
  sumPool2dBackward(inputShape: Shape, kernel: [number, number], options: Conv2dOptions = {}): RingTensor {
    return windows.sumPool2dBackward(this, inputShape, kernel, options);
  }

  // ------------------------------------------------------------ bits (bits.ts)

  /** Bit k of every element, packed 64 to a word: a "bit" tensor of the same shape. */
  packBit(k: number): RingTensor {
    return bitOps.packBit(this, k);
  }

  /** Packed bits back to one 0/1 word per element. */
  unpackBits(): RingTensor {
    return bitOps.unpackBits(this);
  }

  /**
   * Reads this tensor's last axis as rows of `width` bits (u64: the 64 bits of
   * each word; bit: the packed stream) and gathers bits start, start + step, ...
   * (`count` of them) of every row into a packed "bit" tensor [rows, count].
   */
  gatherBits(start: number, step: number, count: number): RingTensor {
    return bitOps.gatherBits(this, start, step, count);
  }

  /** The inverse of gatherBits: writes `bits` [rows, count] into a copy of this tensor's rows. */
  scatterBits(bits: RingTensor, start: number, step: number, count: number): RingTensor {
    return bitOps.scatterBits(this, bits, start, step, count);
  }

  // ------------------------------------------------------------ helpers

  /** Runs fn on a dense matrix (or batch of them), telling it whether it is stored transposed. */
  #asMatrix<T>(fn: (t: RingTensor, transposed: boolean) => T): T {
    const r = this.rank, s = this.strides;
    const [rows, cols] = this.shape.slice(-2);
    const transposedDense = this.offset === 0 && s[r - 2] === 1 && s[r - 1] === rows &&
      (r === 2 || s[0] === rows * cols || this.shape[0] === 1);
    if (transposedDense && !this.isContiguous()) {
      this.#live.refs++;
      const stored = new RingTensor(
        this.#live,
        [...this.shape.slice(0, -2), cols, rows],
        contiguousStrides([...this.shape.slice(0, -2), cols, rows]),
        0,
        "u64",
      );
      try {
        return fn(stored, true);
      } finally {
        stored.dispose();
      }
    }
    return withDense(this, (t) => fn(t, false));
  }
}

function resolveReshape(from: Shape, to: Shape): number[] {
  const n = size(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new RangeError(`reshape: ${fmt(to)} has more than one -1`);
  const known = size(to.filter((d) => d !== -1));
  const shape = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || size(shape) !== n) {
    throw new RangeError(`reshape: cannot view ${fmt(from)} as ${fmt(to)}`);
  }
  return shape;
}
