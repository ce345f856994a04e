/**
 * The ring benchmark: elementwise bandwidth against the device's own copy
 * bandwidth, matmul and convolution throughput (u64 multiply-adds per second)
 * per method and size, AES-CTR and bit-compaction throughput. Each figure is
 * measured beside its reference in the same run.
 */
import type { Backend, Conv2dGeometry, Handle } from "../lib/native/backend.ts";
import type { Method } from "../lib/native/symbols.ts";
import { outputShape } from "../lib/ring/tensor.ts";
import { measure } from "./timing.ts";

export interface RingBenchOptions {
  /** A short run for the demo and smoke tests. */
  quick?: boolean;
  progress?: (line: string) => void;
}

export interface Row {
  group: "elementwise" | "matmul" | "conv2d" | "aes" | "bits";
  name: string;
  method?: string;
  size: string;
  seconds: number;
  runs: number;
  /** bytes per second moved, or multiply-adds per second, per `unit` */
  rate: number;
  unit: "B/s" | "MAC/s";
  /** rate relative to the group's reference row, where one exists */
  vsReference?: number;
}

interface Conv2dCase {
  name: string;
  g: Conv2dGeometry;
}

const conv = (
  name: string,
  [n, c, h, w]: number[],
  [oc, kh, kw]: number[],
  stride = 1,
  pad = 0,
): Conv2dCase => ({
  name,
  g: { n, c, h, w, oc, kh, kw, sh: stride, sw: stride, ph: pad, pw: pad, dh: 1, dw: 1, groups: 1 },
});

export async function ringBench(backend: Backend, options: RingBenchOptions = {}): Promise<Row[]> {
  const quick = options.quick ?? false;
  const gpu = backend.device === "cuda";
  const say = options.progress ?? (() => {});
  const rows: Row[] = [];
  const owned: Handle[] = [];
  // Operands hold pseudorandom words: every bit in play, as in the protocols.
  const alloc = (words: number) => {
    const h = backend.alloc(words);
    owned.push(h);
    backend.aesCtr(h, 0, words, new Uint8Array(16).fill(7), new Uint8Array(16));
    return h;
  };
  const minSeconds = quick ? 0.15 : 0.5;
  const time = (fn: () => void, maxRuns = 50) => measure(backend, fn, { minSeconds, maxRuns });

  try {
    // Elementwise: two 64 MiB operands (quick: 8 MiB), bytes read plus written.
    const n = quick ? 1 << 20 : gpu ? 1 << 26 : 1 << 23;
    const a = alloc(n), b = alloc(n), out = alloc(n);
    const bytes = n * 8;
    say(`elementwise on ${n} words`);
    const copy = await time(() => backend.copy(out, 0, a, 0, n));
    const copyRate = (2 * bytes) / copy.seconds;
    rows.push({
      group: "elementwise",
      name: "memcpy (reference)",
      size: mib(bytes),
      ...copy,
      rate: copyRate,
      unit: "B/s",
    });
    for (const op of ["add", "xor", "mul"] as const) {
      const t = await time(() => backend.binary(op, out, a, b, n, n, 1));
      const rate = (3 * bytes) / t.seconds;
      rows.push({
        group: "elementwise",
        name: `${op} a, b`,
        size: mib(bytes),
        ...t,
        rate,
        unit: "B/s",
        vsReference: rate / copyRate,
      });
    }
    const bias = alloc(1024);
    const tb = await time(() => backend.binary("add", out, a, bias, n, 1024, 1));
    rows.push({
      group: "elementwise",
      name: "add row bias",
      size: mib(bytes),
      ...tb,
      rate: (2 * bytes) / tb.seconds,
      unit: "B/s",
      vsReference: (2 * bytes) / tb.seconds / copyRate,
    });

    // Matmul: the naive single-thread i-k-j loop is the reference.
    const shapes: [number, number, number][] = quick
      ? [[256, 256, 256], [512, 512, 512]]
      : [[128, 128, 128], [256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [64, 4096, 256]];
    if (gpu && !quick) shapes.push([4096, 4096, 4096]);
    for (const [m, nn, k] of shapes) {
      say(`matmul ${m}x${nn}x${k}`);
      const A = alloc(m * k), B = alloc(k * nn), C = alloc(m * nn);
      let reference = 0;
      const exact: Method[] = gpu ? ["direct", "fp64", "int8"] : ["direct"];
      const methods: Method[] = m * nn * k <= 512 ** 3 ? ["naive", ...exact] : exact;
      for (const method of methods) {
        const t = await time(() => backend.matmul(C, A, B, 1, m, nn, k, { method }), 20);
        const rate = (m * nn * k) / t.seconds;
        if (method === "naive") reference = rate;
        rows.push({
          group: "matmul",
          name: `${m}x${nn}x${k}`,
          method: method === "naive"
            ? (gpu ? "naive, a thread per output (reference)" : "naive i-k-j, 1 thread (reference)")
            : method,
          size: `${m}x${nn}x${k}`,
          ...t,
          rate,
          unit: "MAC/s",
          vsReference: reference && method !== "naive" ? rate / reference : undefined,
        });
      }
    }

    // Convolution layers of the paper's networks.
    const cases: Conv2dCase[] = quick ? [conv("LeNet conv2, batch 64", [64, 20, 12, 12], [50, 5, 5])] : [
      conv("LeNet conv1, batch 64", [64, 1, 28, 28], [20, 5, 5]),
      conv("LeNet conv2, batch 64", [64, 20, 12, 12], [50, 5, 5]),
      conv("AlexNet-CIFAR conv2, batch 8", [8, 96, 8, 8], [256, 5, 5], 1, 2),
      conv("ResNet-50 3x3, batch 1", [1, 64, 56, 56], [64, 3, 3], 1, 1),
    ];
    for (const { name, g } of cases) {
      say(`conv2d ${name}`);
      const [, oc, oh, ow] = outputShape(g);
      const X = alloc(g.n * g.c * g.h * g.w), W = alloc(g.oc * g.c * g.kh * g.kw), Y = alloc(g.n * oc * oh * ow);
      const macs = g.n * oc * oh * ow * g.c * g.kh * g.kw;
      const size = `x [${g.n},${g.c},${g.h},${g.w}] w [${g.oc},${g.c},${g.kh},${g.kw}]`;
      const passes = [
        ["forward", () => backend.conv2dForward(Y, X, W, g)],
        ["backward input", () => backend.conv2dBackwardInput(X, Y, W, g)],
        ["backward weight", () => backend.conv2dBackwardWeight(W, X, Y, g)],
      ] as const;
      for (const [pass, fn] of quick ? passes.slice(0, 1) : passes) {
        const t = await time(fn, 20);
        rows.push({
          group: "conv2d",
          name: `${name}, ${pass}`,
          method: "auto",
          size,
          ...t,
          rate: macs / t.seconds,
          unit: "MAC/s",
        });
      }
    }

    // AES-128-CTR keystream.
    const aesWords = quick ? 1 << 20 : 1 << 23;
    const K = alloc(aesWords);
    const key = crypto.getRandomValues(new Uint8Array(16)), iv = new Uint8Array(16);
    say(`aes-ctr ${mib(aesWords * 8)}`);
    let portable = 0;
    for (const impl of gpu ? (["aesni"] as const) : (["portable", "aesni"] as const)) {
      if (impl === "aesni" && !(backend.build.features as Record<string, boolean>)?.aesni) continue;
      const words = impl === "portable" ? aesWords / 8 : aesWords;
      const t = await time(() => backend.aesCtr(K, 0, words, key, iv, impl), 20);
      const rate = (words * 8) / t.seconds;
      if (impl === "portable") portable = rate;
      rows.push({
        group: "aes",
        name: impl === "portable"
          ? "AES-128-CTR, constant-time software (reference)"
          : gpu
          ? "AES-128-CTR, GPU kernel"
          : "AES-128-CTR, AES-NI",
        method: impl,
        size: mib(words * 8),
        ...t,
        rate,
        unit: "B/s",
        vsReference: impl === "portable" || !portable ? undefined : rate / portable,
      });
    }

    // Bit compaction for the msb circuit: bytes of input words read per second.
    const bn = quick ? 1 << 20 : 1 << 23;
    const bitsIn = alloc(bn), bitsOut = alloc(Math.ceil((bn * 32) / 64));
    for (
      const [name, start, step, count] of [["pack bit 63", 63, 1, 1], [
        "odd bits (step 2, 32 per word)",
        1,
        2,
        32,
      ]] as const
    ) {
      say(`bits ${name}`);
      const t = await time(() => backend.bitsGather(bitsOut, bitsIn, bn, 64, start, step, count));
      rows.push({ group: "bits", name, size: mib(bn * 8), ...t, rate: (bn * 8) / t.seconds, unit: "B/s" });
    }
  } finally {
    for (const h of owned) backend.free(h);
  }
  return rows;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
