import assert from "node:assert/strict";
import { NativeBackend } from "../../lib/native/backend.ts";
import { LibraryLoadError, openLibrary } from "../../lib/native/library.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { scope } from "../../lib/ring/scope.ts";
import { backend, currentDevice, deviceTest, Rng } from "../helpers.ts";

deviceTest("a loop of 1,000 operations ends with the same native allocation count", () => {
  const be = backend(), rng = new Rng(30);
  const before = be.liveBuffers();
  using x = RingTensor.from(be, rng.words(256), [16, 16]);
  for (let i = 0; i < 1000; i++) {
    scope(() => {
      const y = x.mul(x).add(i === 0 ? 1n : BigInt(i)).transpose();
      const z = y.matmul(x).sum(0).sar(3);
      RingTensor.concat([z, z]).pad([[1, 1]]).xor(5n);
    });
  }
  x.dispose();
  assert.deepEqual(be.liveBuffers(), before);
});

deviceTest("upload, download and copy at offsets; fill", () => {
  const be = backend();
  const h = be.alloc(8), g = be.alloc(8);
  try {
    be.fill(h, 0, 8, -1n);
    be.upload(h, 3, BigUint64Array.of(1n, 2n));
    assert.deepEqual([...be.download(h, 2, 4)], [(1n << 64n) - 1n, 1n, 2n, (1n << 64n) - 1n]);
    be.fill(g, 0, 8, 0n);
    be.copy(g, 5, h, 3, 3);
    assert.deepEqual([...be.download(g, 0, 8)], [0n, 0n, 0n, 0n, 0n, 1n, 2n, (1n << 64n) - 1n]);
    assert.equal(be.words(h), 8);
    assert.throws(() => be.download(h, 6, 3), /needs words \[6, 6\+3\) of a buffer of 8 words/);
    assert.throws(() => be.copy(h, 0, h, 2, 4), /overlap/);
  } finally {
    be.free(h);
    be.free(g);
  }
});

deviceTest("a view handle shares its buffer's words, and the memory outlives whichever is freed first", () => {
  const be = backend();
  const before = be.liveBuffers();
  const h = be.alloc(10);
  be.upload(h, 0, BigUint64Array.from({ length: 10 }, (_, i) => BigInt(i)));
  const v = be.view(h, 3, 4), w = be.view(v, 1, 2); // a view of a view is a view of h
  assert.equal(be.words(v), 4);
  assert.deepEqual([...be.download(v, 0, 4)], [3n, 4n, 5n, 6n]);
  be.fill(w, 0, 2, 99n); // writes h's words 4 and 5
  assert.deepEqual([...be.download(h, 0, 10)], [0n, 1n, 2n, 3n, 99n, 99n, 6n, 7n, 8n, 9n]);
  assert.deepEqual(be.liveBuffers(), { count: before.count + 3, words: before.words + 16 });
  assert.throws(() => be.view(h, 8, 3), /needs words \[8, 8\+3\) of a buffer of 10 words/);
  assert.throws(() => be.download(v, 2, 3), /of a buffer of 4 words/);
  be.free(h); // the views keep the memory
  assert.throws(() => be.download(h, 0, 1), /freed or unknown/);
  assert.deepEqual([...be.download(w, 0, 2)], [99n, 99n]);
  const out = be.alloc(4);
  be.binary("add", out, v, v, 4, 4, 1);
  assert.deepEqual([...be.download(out, 0, 4)], [6n, 198n, 198n, 12n]);
  be.free(out);
  be.free(v);
  be.free(w);
  assert.deepEqual(be.liveBuffers(), before);
});

deviceTest("host views stay right past the view cache's capacity and across reused addresses", () => {
  const be = backend();
  if (be.device === "cuda") return; // no host views on a GPU
  for (let round = 0; round < 2; round++) { // the second round gets the first round's freed blocks back
    const ts = Array.from({ length: 300 }, (_, i) => RingTensor.zeros(be, [1 + (i % 40)]));
    try {
      ts.forEach((t, i) => {
        const words = new BigUint64Array(t.hostBytes()!.slice().buffer);
        assert.equal(words.length, t.size);
        const view = t.hostBytes()!;
        new DataView(view.buffer, view.byteOffset, view.byteLength).setBigUint64(0, BigInt(1000 * round + i), true);
      });
      ts.forEach((t, i) => assert.equal(t.toBigUint64Array()[0], BigInt(1000 * round + i)));
    } finally {
      ts.forEach((t) => t.dispose());
    }
  }
});

deviceTest("freed, foreign and unknown handles are refused, never dereferenced", () => {
  const be = backend();
  const other = new NativeBackend({ device: currentDevice(), threads: 1 });
  try {
    const h = be.alloc(4);
    be.free(h);
    assert.throws(() => be.download(h, 0, 1), /is freed or unknown/);
    assert.throws(() => be.free(h), /freed or unknown/);
    const foreign = other.alloc(4);
    assert.throws(() => be.fill(foreign, 0, 4, 1n), /belongs to another context/);
    assert.throws(() => be.binary("add", 0n, 0n, 0n, 1, 1, 1), /null buffer handle/);
    assert.throws(() => be.unary("neg", 0xdeadbeefn, 0xdeadbeefn, 1), /another context|freed or unknown/);
    const reused = be.alloc(4); // may reuse the freed slot: the old handle must still be dead
    assert.throws(() => be.download(h, 0, 1), /freed or unknown/);
    be.free(reused);
    other.free(foreign);
  } finally {
    other.dispose();
  }
  assert.throws(() => other.alloc(1), /disposed/);
});

deviceTest("shape mismatches and bad arguments give one-line errors with the cause", () => {
  const be = backend();
  using a = RingTensor.zeros(be, [3, 4]);
  using b = RingTensor.zeros(be, [5, 4]);
  assert.throws(() => a.matmul(b), /do not multiply/);
  assert.throws(() => be.binary("add", a.handle, a.handle, b.handle, 12, 5, 1), /does not tile 12/);
  assert.throws(
    () => be.binary("add", a.handle, a.handle, b.handle, 20, 20, 1),
    /needs words \[0, 0\+20\) of a buffer of 12/,
  );
  assert.throws(() => be.unary("shl", a.handle, a.handle, 12, 64), /outside \[0, 63\]/);
  assert.throws(() => be.alloc(2 ** 50), /more than this build allocates/);
  assert.throws(() => RingTensor.zeros(be, [2, -1]), /not a non-negative integer/);
});

deviceTest("NULL pointers at the C ABI return CG_ENULL with a message, never crash", () => {
  const lib = openLibrary(currentDevice());
  const out = new BigUint64Array(1);
  assert.equal(lib.symbols.cg_ctx_create(0, 1, out), 0);
  const ctx = Deno.UnsafePointer.create(out[0]);
  try {
    assert.equal(lib.symbols.cg_alloc(ctx, 4n, null), 4);
    assert.equal(lib.symbols.cg_alloc(ctx, 4n, out), 0);
    const h = out[0];
    assert.equal(lib.symbols.cg_upload(ctx, h, 0n, null, 4n), 4);
    assert.match(Deno.UnsafePointerView.getCString(lib.symbols.cg_last_error(ctx)!), /cg_upload: host source is NULL/);
    assert.equal(lib.symbols.cg_im2col(ctx, h, h, null), 4);
    assert.equal(lib.symbols.cg_aes128_ctr(ctx, h, 0n, 2n, null, null, 0), 4);
    assert.equal(lib.symbols.cg_encode_fixed(ctx, h, null, 1n, 20), 4);
    assert.equal(lib.symbols.cg_alloc(null, 4n, out), 4);
    assert.equal(lib.symbols.cg_free(ctx, h), 0);
  } finally {
    lib.symbols.cg_ctx_destroy(ctx);
  }
});

Deno.test("a missing library fails to load with the path and a hint", () => {
  const saved = Deno.env.get("CRYPTGPU_LIB");
  Deno.env.set("CRYPTGPU_LIB", "/nonexistent/libcryptgpu_cpu.so");
  try {
    assert.throws(() => new NativeBackend({ device: "cpu" }), (e: unknown) => {
      assert.ok(e instanceof LibraryLoadError);
      assert.match(e.message, /cannot load the cpu library \/nonexistent\/libcryptgpu_cpu\.so: check the path/);
      assert.ok(e.cause instanceof Error);
      return true;
    });
  } finally {
    if (saved === undefined) Deno.env.delete("CRYPTGPU_LIB");
    else Deno.env.set("CRYPTGPU_LIB", saved);
  }
});

deviceTest("the host pointer of a CPU buffer views its words (null where memory is on a GPU)", () => {
  const be = backend();
  using t = RingTensor.from(be, [1n, 2n, (1n << 64n) - 1n]);
  const bytes = t.hostBytes();
  if (be.device === "cuda") {
    assert.equal(bytes, null);
    return;
  }
  assert.ok(bytes);
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, 3);
  assert.deepEqual([...words], [1n, 2n, (1n << 64n) - 1n]);
  words[1] = 42n; // writing the view writes the tensor
  assert.deepEqual([...t.toBigUint64Array()], [1n, 42n, (1n << 64n) - 1n]);
  // one ArrayBuffer per address is kept: asking again returns a view of the same one, of the asked length
  const again = t.hostBytes()!;
  assert.equal(again.buffer, bytes.buffer);
  assert.equal(again.length, 24);
  using s = t.slice(0, 1, 3);
  using d = s.contiguous(); // a view handle on words 1 and 2
  assert.deepEqual([...new BigUint64Array(d.hostBytes()!.slice().buffer)], [42n, (1n << 64n) - 1n]);
});
