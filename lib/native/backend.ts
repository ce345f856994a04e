/**
 * The `Backend`: one object per device context that owns native memory and
 * exposes every kernel of the C ABI. The CPU and the CUDA builds share the ABI,
 * so one class serves both; callers see only the interface.
 */
import { NativeError } from "./errors.ts";
import { buildInfo, type Device, openLibrary, readCString } from "./library.ts";
import { AesImpl, BinaryOp, CarryLayout, InjectRole, MAX_DIMS, Method, type NativeLib, UnaryOp } from "./symbols.ts";

export type Handle = bigint;

/** Geometry of a 2-D convolution or pooling window over NCHW tensors. */
export interface Conv2dGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  groups: number;
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bcastA?: boolean;
  bcastB?: boolean;
  accumulate?: boolean;
  method?: Method;
}

export interface Backend {
  readonly device: Device;
  readonly build: Record<string, unknown>;
  readonly threads: number;
  alloc(words: number): Handle;
  free(h: Handle): void;
  /** A handle on words [offset, offset + words) of h, sharing its memory (cg_view). */
  view(h: Handle, offset: number, words: number): Handle;
  words(h: Handle): number;
  upload(dst: Handle, offset: number, data: BigUint64Array): void;
  download(src: Handle, offset: number, words: number): BigUint64Array;
  copy(dst: Handle, dstOffset: number, src: Handle, srcOffset: number, words: number): void;
  fill(dst: Handle, offset: number, words: number, value: bigint): void;
  binary(op: BinaryOp, out: Handle, a: Handle, b: Handle, n: number, nb: number, inner: number): void;
  scalar(op: BinaryOp, out: Handle, a: Handle, s: bigint, n: number): void;
  unary(op: UnaryOp, out: Handle, a: Handle, n: number, k?: number): void;
  /** Local half of a replicated product (see cg_replicated_product), n words. */
  replicatedProduct(
    kind: "ring" | "bits",
    out: Handle,
    x: [Handle, Handle],
    y: [Handle, Handle],
    r: [Handle, Handle],
    n: number,
  ): void;
  copyStrided(
    dst: Handle,
    dstOffset: number,
    dstStrides: readonly number[],
    src: Handle,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
  ): void;
  sumAxis(out: Handle, input: Handle, outer: number, d: number, inner: number): void;
  im2col(out: Handle, input: Handle, g: Conv2dGeometry): void;
  col2im(out: Handle, input: Handle, g: Conv2dGeometry): void;
  matmul(out: Handle, a: Handle, b: Handle, batch: number, m: number, n: number, k: number, o?: MatmulOptions): void;
  conv2dForward(y: Handle, x: Handle, w: Handle, g: Conv2dGeometry, accumulate?: boolean): void;
  conv2dBackwardInput(dx: Handle, dy: Handle, w: Handle, g: Conv2dGeometry, accumulate?: boolean): void;
  conv2dBackwardWeight(dw: Handle, x: Handle, dy: Handle, g: Conv2dGeometry, accumulate?: boolean): void;
  sumPool2dForward(y: Handle, x: Handle, g: Conv2dGeometry): void;
  sumPool2dBackward(dx: Handle, dy: Handle, g: Conv2dGeometry): void;
  bitsGather(out: Handle, input: Handle, n: number, wIn: number, start: number, step: number, count: number): void;
  bitsScatter(out: Handle, input: Handle, n: number, wOut: number, start: number, step: number, count: number): void;
  /**
   * One level of a parallel-prefix carry (cg_carry_and): the local AND shares of
   * its unit pairs, from shares p (and, for "words", g) and zero-share draws r.
   * n: values for "words", stream bits for "units".
   */
  carryAnd(
    layout: CarryLayout,
    out: Handle,
    p: [Handle, Handle],
    g: [Handle, Handle] | null,
    r: [Handle, Handle],
    n: number,
  ): void;
  /** One share of a carry level's units from the same share of its input and of its AND (cg_carry_merge). */
  carryMerge(layout: CarryLayout, out: Handle, a: Handle, z: Handle, n: number): void;
  /** The local arithmetic of one third of a bit injection (cg_bit_inject): bufs as the role lists them. */
  bitInject(role: InjectRole, bufs: Handle[], rows: number, k: number, bitOffset: number, flip: boolean): void;
  aesCtr(out: Handle, offset: number, words: number, key: Uint8Array, iv: Uint8Array, impl?: AesImpl): void;
  encodeFixed(out: Handle, values: Float64Array, fracBits: number): void;
  decodeFixed(input: Handle, n: number, fracBits: number): Float64Array;
  /** Host address of a buffer's words where the build allows it (CPU), else null. */
  hostPointer(h: Handle): Deno.PointerValue;
  /**
   * A buffer's first `words` words as bytes of host memory, for zero-copy
   * network I/O, or null where the memory is not host-addressable (CUDA). The
   * view is valid while the buffer lives.
   */
  hostBytes(h: Handle, words: number): Uint8Array | null;
  sync(): Promise<void>;
  /**
   * Maps and touches `bytes` of the memory buffers come from, once, so that a run's first buffers take no page
   * faults (the first forward pass of a fresh process otherwise pays thousands of them).
   */
  reserve(bytes: number): void;
  liveBuffers(): { count: number; words: number };
  dispose(): void;
}

const big = BigInt;

/** Host views kept for reuse (hostBytes). */
const HOST_VIEWS = 256;

function geometry(g: Conv2dGeometry): BigInt64Array {
  return BigInt64Array.of(
    ...[g.n, g.c, g.h, g.w, g.oc, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups].map(big),
  );
}

function checkKey(name: string, bytes: Uint8Array) {
  if (bytes.length !== 16) throw new RangeError(`aesCtr: ${name} must be 16 bytes, got ${bytes.length}`);
}

export interface BackendOptions {
  device?: Device;
  /** Worker threads for the CPU build; 0 means every core (or CRYPTGPU_THREADS). */
  threads?: number;
  /** GPU index for the CUDA build. */
  deviceIndex?: number;
}

export class NativeBackend implements Backend {
  readonly device: Device;
  readonly build: Record<string, unknown>;
  readonly threads: number;
  #lib: NativeLib;
  #ctx: Deno.PointerValue;
  #out = new BigUint64Array(2);
  /** Host views by address (each as long as the longest buffer seen there), least recently used first. */
  #views = new Map<number | bigint, ArrayBuffer>();

  constructor(options: BackendOptions = {}) {
    this.device = options.device ?? "cpu";
    this.#lib = openLibrary(this.device);
    this.build = buildInfo(this.#lib);
    const threads = options.threads ?? Number(Deno.env.get("CRYPTGPU_THREADS") ?? 0);
    if (!Number.isInteger(threads) || threads < 0) {
      throw new RangeError(`threads must be a non-negative integer, got ${threads}`);
    }
    const ctxOut = new BigUint64Array(1);
    const status = this.#lib.symbols.cg_ctx_create(options.deviceIndex ?? 0, threads, ctxOut);
    if (status !== 0) throw new NativeError(status, readCString(this.#lib.symbols.cg_last_error(null)));
    this.#ctx = Deno.UnsafePointer.create(ctxOut[0]);
    const t = new Int32Array(1);
    this.#check(this.#lib.symbols.cg_ctx_threads(this.#ctx, t));
    this.threads = t[0];
  }

  #check(status: number): void {
    if (status !== 0) throw new NativeError(status, readCString(this.#lib.symbols.cg_last_error(this.#ctx)));
  }

  get #live(): Deno.PointerValue {
    if (this.#ctx === null) throw new Error(`the ${this.device} backend was disposed`);
    return this.#ctx;
  }

  alloc(words: number): Handle {
    this.#check(this.#lib.symbols.cg_alloc(this.#live, big(words), this.#out));
    return this.#out[0];
  }

  free(h: Handle): void {
    this.#check(this.#lib.symbols.cg_free(this.#live, h));
  }

  view(h: Handle, offset: number, words: number): Handle {
    this.#check(this.#lib.symbols.cg_view(this.#live, h, big(offset), big(words), this.#out));
    return this.#out[0];
  }

  words(h: Handle): number {
    this.#check(this.#lib.symbols.cg_buf_words(this.#live, h, this.#out));
    return Number(this.#out[0]);
  }

  upload(dst: Handle, offset: number, data: BigUint64Array): void {
    this.#check(this.#lib.symbols.cg_upload(this.#live, dst, big(offset), data, big(data.length)));
  }

  download(src: Handle, offset: number, words: number): BigUint64Array {
    const out = new BigUint64Array(words);
    this.#check(this.#lib.symbols.cg_download(this.#live, src, big(offset), out, big(words)));
    return out;
  }

  copy(dst: Handle, dstOffset: number, src: Handle, srcOffset: number, words: number): void {
    this.#check(this.#lib.symbols.cg_copy(this.#live, dst, big(dstOffset), src, big(srcOffset), big(words)));
  }

  fill(dst: Handle, offset: number, words: number, value: bigint): void {
    this.#check(this.#lib.symbols.cg_fill(this.#live, dst, big(offset), big(words), BigInt.asUintN(64, value)));
  }

  binary(op: BinaryOp, out: Handle, a: Handle, b: Handle, n: number, nb: number, inner: number): void {
    this.#check(this.#lib.symbols.cg_binary(this.#live, BinaryOp[op], out, a, b, big(n), big(nb), big(inner)));
  }

  scalar(op: BinaryOp, out: Handle, a: Handle, s: bigint, n: number): void {
    this.#check(this.#lib.symbols.cg_scalar(this.#live, BinaryOp[op], out, a, BigInt.asUintN(64, s), big(n)));
  }

  unary(op: UnaryOp, out: Handle, a: Handle, n: number, k = 0): void {
    this.#check(this.#lib.symbols.cg_unary(this.#live, UnaryOp[op], out, a, big(n), k));
  }

  replicatedProduct(
    kind: "ring" | "bits",
    out: Handle,
    x: [Handle, Handle],
    y: [Handle, Handle],
    r: [Handle, Handle],
    n: number,
  ): void {
    this.#check(this.#lib.symbols.cg_replicated_product(
      this.#live,
      kind === "ring" ? 0 : 1,
      out,
      x[0],
      x[1],
      y[0],
      y[1],
      r[0],
      r[1],
      big(n),
    ));
  }

  copyStrided(
    dst: Handle,
    dstOffset: number,
    dstStrides: readonly number[],
    src: Handle,
    srcOffset: number,
    srcStrides: readonly number[],
    shape: readonly number[],
  ): void {
    const nd = shape.length;
    if (nd > MAX_DIMS || dstStrides.length !== nd || srcStrides.length !== nd) {
      throw new RangeError(`copyStrided: shape and strides must have the same rank, at most ${MAX_DIMS}`);
    }
    this.#check(this.#lib.symbols.cg_copy_strided(
      this.#live,
      dst,
      big(dstOffset),
      BigInt64Array.from(dstStrides, big),
      src,
      big(srcOffset),
      BigInt64Array.from(srcStrides, big),
      BigUint64Array.from(shape, big),
      nd,
    ));
  }

  sumAxis(out: Handle, input: Handle, outer: number, d: number, inner: number): void {
    this.#check(this.#lib.symbols.cg_sum_axis(this.#live, out, input, big(outer), big(d), big(inner)));
  }

  im2col(out: Handle, input: Handle, g: Conv2dGeometry): void {
    this.#check(this.#lib.symbols.cg_im2col(this.#live, out, input, geometry(g)));
  }

  col2im(out: Handle, input: Handle, g: Conv2dGeometry): void {
    this.#check(this.#lib.symbols.cg_col2im(this.#live, out, input, geometry(g)));
  }

  matmul(out: Handle, a: Handle, b: Handle, batch: number, m: number, n: number, k: number, o: MatmulOptions = {}) {
    const flags = (o.transA ? 1 : 0) | (o.transB ? 2 : 0) | (o.bcastA ? 4 : 0) | (o.bcastB ? 8 : 0) |
      (o.accumulate ? 16 : 0);
    this.#check(this.#lib.symbols.cg_matmul(
      this.#live,
      out,
      a,
      b,
      big(batch),
      big(m),
      big(n),
      big(k),
      flags,
      Method[o.method ?? "auto"],
    ));
  }

  conv2dForward(y: Handle, x: Handle, w: Handle, g: Conv2dGeometry, accumulate = false): void {
    this.#check(this.#lib.symbols.cg_conv2d_forward(this.#live, y, x, w, geometry(g), accumulate ? 16 : 0));
  }

  conv2dBackwardInput(dx: Handle, dy: Handle, w: Handle, g: Conv2dGeometry, accumulate = false): void {
    this.#check(this.#lib.symbols.cg_conv2d_backward_input(this.#live, dx, dy, w, geometry(g), accumulate ? 16 : 0));
  }

  conv2dBackwardWeight(dw: Handle, x: Handle, dy: Handle, g: Conv2dGeometry, accumulate = false): void {
    this.#check(this.#lib.symbols.cg_conv2d_backward_weight(this.#live, dw, x, dy, geometry(g), accumulate ? 16 : 0));
  }

  sumPool2dForward(y: Handle, x: Handle, g: Conv2dGeometry): void {
    this.#check(this.#lib.symbols.cg_sumpool2d_forward(this.#live, y, x, geometry(g)));
  }

  sumPool2dBackward(dx: Handle, dy: Handle, g: Conv2dGeometry): void {
    this.#check(this.#lib.symbols.cg_sumpool2d_backward(this.#live, dx, dy, geometry(g)));
  }

  bitsGather(out: Handle, input: Handle, n: number, wIn: number, start: number, step: number, count: number) {
    this.#check(this.#lib.symbols.cg_bits_gather(this.#live, out, input, big(n), wIn, start, step, count));
  }

  bitsScatter(out: Handle, input: Handle, n: number, wOut: number, start: number, step: number, count: number) {
    this.#check(this.#lib.symbols.cg_bits_scatter(this.#live, out, input, big(n), wOut, start, step, count));
  }

  carryAnd(
    layout: CarryLayout,
    out: Handle,
    p: [Handle, Handle],
    g: [Handle, Handle] | null,
    r: [Handle, Handle],
    n: number,
  ): void {
    const [g0, g1] = g ?? [0n, 0n];
    this.#check(
      this.#lib.symbols.cg_carry_and(this.#live, CarryLayout[layout], out, p[0], p[1], g0, g1, r[0], r[1], big(n)),
    );
  }

  carryMerge(layout: CarryLayout, out: Handle, a: Handle, z: Handle, n: number): void {
    this.#check(this.#lib.symbols.cg_carry_merge(this.#live, CarryLayout[layout], out, a, z, big(n)));
  }

  bitInject(role: InjectRole, bufs: Handle[], rows: number, k: number, bitOffset: number, flip: boolean): void {
    const handles = BigUint64Array.from(bufs);
    this.#check(
      this.#lib.symbols.cg_bit_inject(
        this.#live,
        InjectRole[role],
        handles,
        handles.length,
        big(rows),
        big(k),
        big(bitOffset),
        flip ? 1 : 0,
      ),
    );
  }

  aesCtr(out: Handle, offset: number, words: number, key: Uint8Array, iv: Uint8Array, impl: AesImpl = "auto") {
    checkKey("key", key);
    checkKey("iv", iv);
    this.#check(this.#lib.symbols.cg_aes128_ctr(this.#live, out, big(offset), big(words), key, iv, AesImpl[impl]));
  }

  encodeFixed(out: Handle, values: Float64Array, fracBits: number): void {
    this.#check(this.#lib.symbols.cg_encode_fixed(this.#live, out, values, big(values.length), fracBits));
  }

  decodeFixed(input: Handle, n: number, fracBits: number): Float64Array {
    const out = new Float64Array(n);
    this.#check(this.#lib.symbols.cg_decode_fixed(this.#live, out, input, big(n), fracBits));
    return out;
  }

  hostPointer(h: Handle): Deno.PointerValue {
    const status = this.#lib.symbols.cg_host_pointer(this.#live, h, this.#out);
    if (status === 7) return null; // CG_EUNSUPPORTED: device memory
    this.#check(status);
    return Deno.UnsafePointer.create(this.#out[0]);
  }

  hostBytes(h: Handle, words: number): Uint8Array | null {
    const ptr = this.hostPointer(h);
    if (ptr === null) return null;
    if (words === 0) return new Uint8Array(0);
    // The buffer cache hands out the same few addresses over and over. Every
    // new ArrayBuffer over native memory counts as external memory to V8, and
    // a new one per message brought a full GC every few rounds; so one is kept
    // per address, as long as the longest buffer seen there. Only the first
    // `words` words are ever reachable through the view returned.
    const address = Deno.UnsafePointer.value(ptr), bytes = words * 8;
    let buffer = this.#views.get(address);
    if (buffer) this.#views.delete(address); // re-inserted as the most recent
    else if (this.#views.size >= HOST_VIEWS) this.#views.delete(this.#views.keys().next().value!);
    if (!buffer || buffer.byteLength < bytes) buffer = Deno.UnsafePointerView.getArrayBuffer(ptr, bytes);
    this.#views.set(address, buffer);
    return new Uint8Array(buffer, 0, bytes);
  }

  async sync(): Promise<void> {
    this.#check(await this.#lib.symbols.cg_sync(this.#live));
  }

  reserve(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(`reserve takes a non-negative whole number of bytes, got ${bytes}`);
    }
    this.#check(this.#lib.symbols.cg_reserve(this.#live, big(bytes)));
  }

  liveBuffers(): { count: number; words: number } {
    const count = new BigUint64Array(1), words = new BigUint64Array(1);
    this.#check(this.#lib.symbols.cg_live_buffers(this.#live, count, words));
    return { count: Number(count[0]), words: Number(words[0]) };
  }

  dispose(): void {
    if (this.#ctx === null) return;
    this.#views.clear();
    this.#lib.symbols.cg_ctx_destroy(this.#ctx);
    this.#ctx = null;
  }
}
