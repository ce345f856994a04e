/**
 * cg_reserve: memory faulted in before a run, so that a process's first forward pass does not pay a page fault per
 * fresh page (bench/results/latency.md). The CPU build cuts blocks from one mapped arena; these tests see that
 * through the blocks' addresses, which glibc's allocator never places back to back (its chunks carry headers).
 */
import assert from "node:assert/strict";
import process from "node:process";
import { NativeBackend } from "../../lib/native/backend.ts";
import { reserveBytes } from "../../lib/mpc/session.ts";
import { currentDevice, deviceTest, Rng } from "../helpers.ts";

const MiB = 2 ** 20;

/** Minor page faults of this process so far (getrusage). */
const minorFaults = (): number => process.resourceUsage().minorPageFault;

const address = (be: NativeBackend, h: bigint) => BigInt(Deno.UnsafePointer.value(be.hostPointer(h)));

Deno.test("[cpu] reserved memory: blocks are cut back to back from the arena, whose pages take few faults", () => {
  const be = new NativeBackend({ device: "cpu", threads: 1 });
  try {
    be.reserve(32 * MiB);
    const words = 256 * 1024; // 2 MiB a buffer
    const before = minorFaults();
    const bufs = Array.from({ length: 8 }, () => be.alloc(words));
    bufs.forEach((h) => be.fill(h, 0, words, 7n)); // writes every page
    const faults = minorFaults() - before;
    for (let i = 1; i < bufs.length; i++) {
      assert.equal(address(be, bufs[i]) - address(be, bufs[i - 1]), BigInt(words * 8), `buffer ${i} follows ${i - 1}`);
    }
    // 16 MiB of fresh 4 KiB heap pages would be 4,096 faults; the arena was touched by reserve (and, where the kernel
    // allows, mapped in 2 MiB pages, which alone would keep this low)
    assert.ok(faults < 500, `touching 16 MiB of reserved buffers took ${faults} page faults`);
    assert.deepEqual([...be.download(bufs[7], words - 2, 2)], [7n, 7n]);
    bufs.forEach((h) => be.free(h));
  } finally {
    be.dispose();
  }
});

Deno.test("[cpu] reserved memory: a freed block is reused, and past the arena's end allocation goes on", () => {
  const be = new NativeBackend({ device: "cpu", threads: 1 }), rng = new Rng(5);
  try {
    be.reserve(1 * MiB);
    const before = be.liveBuffers();
    const a = be.alloc(1000), at = address(be, a);
    be.free(a);
    const b = be.alloc(1000);
    assert.equal(address(be, b), at, "the same block back from the cache");
    // 4 x 512 KiB on a 1 MiB arena: the last ones come from the heap, with the same contents semantics
    const big = Array.from({ length: 4 }, () => be.alloc(64 * 1024));
    const values = big.map(() => rng.words(64 * 1024));
    big.forEach((h, i) => be.upload(h, 0, values[i]));
    big.forEach((h, i) => assert.deepEqual(be.download(h, 0, 64 * 1024), values[i], `buffer ${i}`));
    [b, ...big].forEach((h) => be.free(h));
    assert.deepEqual(be.liveBuffers(), before);
  } finally {
    be.dispose(); // frees the heap blocks, unmaps the arena (its blocks in the cache are never handed to free())
  }
});

deviceTest("reserve: once per context, at most 1 GiB, a whole number of bytes; 0 does nothing", () => {
  const be = new NativeBackend({ device: currentDevice(), threads: 1 });
  try {
    assert.throws(() => be.reserve(2 ** 30 + 1), /cg_reserve: at most 1 GiB, asked for 1073741825 bytes/);
    assert.throws(() => be.reserve(-1), /non-negative whole number of bytes, got -1/);
    assert.throws(() => be.reserve(1.5), /non-negative whole number of bytes, got 1.5/);
    be.reserve(0);
    be.reserve(MiB);
    assert.throws(() => be.reserve(MiB), /cg_reserve: this context already has its reserved memory/);
    const h = be.alloc(16); // the context still works after a refused call
    be.fill(h, 0, 16, 3n);
    assert.deepEqual([...be.download(h, 15, 1)], [3n]);
    be.free(h);
  } finally {
    be.dispose();
  }
});

Deno.test("CRYPTGPU_RESERVE_MB: the default, an override, 0, and a one-line refusal of anything else", () => {
  const saved = Deno.env.get("CRYPTGPU_RESERVE_MB");
  try {
    Deno.env.delete("CRYPTGPU_RESERVE_MB");
    assert.equal(reserveBytes(), 64 * MiB);
    Deno.env.set("CRYPTGPU_RESERVE_MB", "256");
    assert.equal(reserveBytes(), 256 * MiB);
    Deno.env.set("CRYPTGPU_RESERVE_MB", "0");
    assert.equal(reserveBytes(), 0);
    for (const bad of ["-1", "1.5", "lots", "2048"]) {
      Deno.env.set("CRYPTGPU_RESERVE_MB", bad);
      assert.throws(
        () => reserveBytes(),
        new RegExp(`CRYPTGPU_RESERVE_MB must be a whole number of MiB from 0 to 1024, got ${bad}`),
      );
    }
  } finally {
    if (saved === undefined) Deno.env.delete("CRYPTGPU_RESERVE_MB");
    else Deno.env.set("CRYPTGPU_RESERVE_MB", saved);
  }
});
