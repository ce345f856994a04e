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
 * This file owns the tensor and its storage: creation, views and layout,
 * reading back, writing in place. Operations that need only the tensor's
 * public surface are one-line delegations to modules beside it: elementwise
 * arithmetic with broadcasting and sum over an axis (elementwise.ts), matmul
 * (matmul.ts), the windowed operations: conv2d and its gradients,
 * im2col/col2im, sum pooling (windows.ts), the packed-bit operations
 * (bits.ts), and the host encodings: from, encode, decode, bytes
 * (encoding.ts). The views' checks and stride arithmetic are in layout.ts;
 * operand checks and dense access, shared by all of these, in operand.ts.
 */
import type { Backend } from "../native/backend.ts";
import type { AesImpl, BinaryOp, Method, UnaryOp } from "../native/symbols.ts";
import * as bitOps from "./bits.ts";
import * as elementwise from "./elementwise.ts";
import * as encoding from "./encoding.ts";
import * as layout from "./layout.ts";
import * as matmulOps from "./matmul.ts";
import { expectShape, requireDtype, withDense } from "./operand.ts";
import { checkShape, contiguousStrides, type Shape, size } from "./shape.ts";
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

  /** A new tensor on this one's storage (one more reference to it), of the same dtype. */
  #share(view: layout.View): RingTensor {
    this.#live.refs++;
    return new RingTensor(this.#live, view.shape, view.strides, view.offset, this.dtype);
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
    return encoding.fromWords(backend, values, shape);
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
    return encoding.encode(backend, values, fracBits, shape);
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
    return encoding.decode(this, fracBits);
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
    return encoding.toBytes(this);
  }

  /** Overwrites a dense tensor from bytes (little-endian words). */
  setBytes(bytes: Uint8Array): void {
    encoding.setBytes(this, bytes);
  }

  /** Packed bits as 0/1 numbers (for tests and small results). */
  toBits(): Uint8Array {
    return bitOps.toBits(this);
  }

  // ------------------------------------------------------------ views and layout

  /** Same data, new shape: a view when contiguous, else a copy. */
  reshape(shape: Shape): RingTensor {
    const resolved = layout.resolveReshape(this.shape, shape);
    if (this.dtype === "bit" || this.isContiguous()) {
      return this.#share({ shape: resolved, strides: contiguousStrides(resolved), offset: this.offset });
    }
    const c = this.contiguous();
    const r = c.reshape(resolved);
    c.dispose();
    return r;
  }

  /** A view with the axes reordered. */
  permute(axes: readonly number[]): RingTensor {
    return this.#share(layout.permuted(this, axes));
  }

  /** A view with two axes swapped (the last two by default). */
  transpose(a = -2, b = -1): RingTensor {
    return this.permute(layout.swappedAxes(this.rank, a, b));
  }

  /** A view of [start, end) along an axis. */
  slice(axis: number, start: number, end: number): RingTensor {
    return this.#share(layout.sliced(this, axis, start, end));
  }

  /**
   * This tensor as a dense native buffer: itself (a new reference), a view
   * handle on its words where they are contiguous at an offset (a slice along
   * the first axis: no copy, and writes show through), or a copy.
   */
  contiguous(): RingTensor {
    if (this.isDense) return this.#share({ shape: this.shape, strides: this.strides, offset: 0 });
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
    const { shape, axis: a } = layout.concatenated(tensors, axis);
    const out = RingTensor.empty(tensors[0].backend, shape);
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
    const { shape, at } = layout.padded(this, pads);
    const out = RingTensor.full(this.backend, shape, value);
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

  // ------------------------------------------------------------ bilinear (matmul.ts)

  /**
   * Matrix product over the last two axes, exact mod 2^64: [m, k] . [k, n],
   * batched [b, m, k] . [b, k, n], or one side 2-D shared by every batch entry.
   * Transposed views are passed to the kernel as transposes, not copied.
   */
  matmul(other: RingTensor, method?: Method): RingTensor {
    return matmulOps.matmul(this, other, method);
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
}
