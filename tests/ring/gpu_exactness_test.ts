/**
 * The CUDA build against the CPU build on the same data, at sizes where
 * exactness is at risk: operands with every bit set, reductions longer than
 * the limb methods' chunks, and convolution layers of the paper's networks.
 * Runs where a GPU is present; reported as ignored elsewhere.
 */
import { NativeBackend } from "../../lib/native/backend.ts";
import type { Method } from "../../lib/native/symbols.ts";
import { RingTensor } from "../../lib/ring/tensor.ts";
import { assertWordsEqual, available } from "../helpers.ts";

const gpu = available("cuda");

function both<T>(fn: (cpu: NativeBackend, cuda: NativeBackend) => T): T {
  const cpu = new NativeBackend({ device: "cpu" }), cuda = new NativeBackend({ device: "cuda" });
  try {
    return fn(cpu, cuda);
  } finally {
    cpu.dispose();
    cuda.dispose();
  }
}

const key = (b: number) => new Uint8Array(16).fill(b);

Deno.test({
  name: "[cuda] matmul equals the CPU build: all bits set, k up to 2^16 and past the limb chunks, every method",
  ignore: !gpu,
  fn: () =>
    both((cpu, cuda) => {
      for (const [m, n, k] of [[64, 64, 1 << 16], [8, 16, (1 << 19) + 77], [4, 4, (1 << 20) + 3], [129, 257, 1000]]) {
        for (const allOnes of [true, false]) {
          const a = allOnes ? RingTensor.full(cpu, [m, k], -1n) : RingTensor.prf(cpu, [m, k], key(1), 0n);
          const b = allOnes ? RingTensor.full(cpu, [k, n], -1n) : RingTensor.prf(cpu, [k, n], key(2), 0n);
          const want = a.matmul(b).toBigUint64Array();
          const ga = RingTensor.from(cuda, a.toBigUint64Array(), [m, k]),
            gb = RingTensor.from(cuda, b.toBigUint64Array(), [k, n]);
          for (const method of ["naive", "direct", "fp64", "int8", "auto"] as Method[]) {
            if (method === "naive" && m * n * k > 1 << 28) continue;
            using c = ga.matmul(gb, method);
            assertWordsEqual(c.toBigUint64Array(), want, `${m}x${n}x${k} ${method}${allOnes ? " all ones" : ""}`);
          }
          [a, b, ga, gb].forEach((t) => t.dispose());
        }
      }
    }),
});

Deno.test({
  name: "[cuda] convolutions of AlexNet, VGG-16 and ResNet-50 layers equal the CPU build, all three passes",
  ignore: !gpu,
  fn: () =>
    both((cpu, cuda) => {
      const layers: [string, number[], number[], number, number][] = [
        ["AlexNet conv1", [1, 3, 224, 224], [64, 3, 11, 11], 4, 2],
        ["AlexNet conv2", [2, 64, 27, 27], [192, 64, 5, 5], 1, 2],
        ["VGG-16 conv3", [2, 128, 56, 56], [256, 128, 3, 3], 1, 1],
        ["ResNet-50 1x1", [2, 256, 56, 56], [64, 256, 1, 1], 1, 0],
        ["ResNet-50 3x3 stride 2", [2, 128, 56, 56], [128, 128, 3, 3], 2, 1],
      ];
      for (const [name, xs, ws, stride, padding] of layers) {
        const o = { stride, padding };
        using x = RingTensor.prf(cpu, xs, key(3), 0n);
        using w = RingTensor.prf(cpu, ws, key(4), 0n);
        using y = x.conv2d(w, o);
        using dy = RingTensor.prf(cpu, y.shape, key(5), 0n);
        using gx = RingTensor.from(cuda, x.toBigUint64Array(), xs),
          gw = RingTensor.from(cuda, w.toBigUint64Array(), ws);
        using gdy = RingTensor.from(cuda, dy.toBigUint64Array(), y.shape);
        assertWordsEqual(gx.conv2d(gw, o).toBigUint64Array(), y.toBigUint64Array(), `${name} forward`);
        assertWordsEqual(
          gdy.conv2dBackwardInput(gw, xs, o).toBigUint64Array(),
          dy.conv2dBackwardInput(w, xs, o).toBigUint64Array(),
          `${name} dx`,
        );
        assertWordsEqual(
          gx.conv2dBackwardWeight(gdy, ws, o).toBigUint64Array(),
          x.conv2dBackwardWeight(dy, ws, o).toBigUint64Array(),
          `${name} dw`,
        );
      }
    }),
});

Deno.test({
  name: "[cuda] AES-CTR, bit gather and fixed-point encoding equal the CPU build on large inputs",
  ignore: !gpu,
  fn: () =>
    both((cpu, cuda) => {
      const n = (1 << 22) + 3;
      using a = RingTensor.prf(cpu, [n], key(6), (1n << 64n) - 5n);
      using g = RingTensor.prf(cuda, [n], key(6), (1n << 64n) - 5n);
      assertWordsEqual(g.toBigUint64Array(), a.toBigUint64Array(), "aes");
      for (const [start, step, count] of [[63, 1, 1], [1, 2, 31], [0, 2, 32], [5, 3, 19]]) {
        assertWordsEqual(
          g.gatherBits(start, step, count).toBigUint64Array(),
          a.gatherBits(start, step, count).toBigUint64Array(),
          `gather ${start}/${step}/${count}`,
        );
      }
      const values = Float64Array.from({ length: 100003 }, (_, i) => Math.sin(i) * 1e5);
      using ec = RingTensor.encode(cpu, values, 20), eg = RingTensor.encode(cuda, values, 20);
      assertWordsEqual(eg.toBigUint64Array(), ec.toBigUint64Array(), "encode");
    }),
});
