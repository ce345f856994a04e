/**
 * Test support: the backend under test (CRYPTGPU_DEVICE=cpu|cuda, cpu by
 * default), seeded random ring data with the edge values mixed in, and
 * BigInt references.
 */
import { NativeBackend } from "../lib/native/backend.ts";
import { NativeError } from "../lib/native/errors.ts";
import { CLI_MAIN, CLI_PERMISSIONS } from "../cli/permissions.ts";
import { type Device, libraryExists, libraryPath } from "../lib/native/library.ts";

export const M64 = (1n << 64n) - 1n;
export const wrap = (v: bigint) => BigInt.asUintN(64, v);

/**
 * The devices the suite runs on: CRYPTGPU_DEVICE if set, else both. The CPU
 * build must be there and load: CI builds it, and a suite that skipped every
 * native test for want of it would pass having tested nothing; so without it
 * each test file fails once, with the path and the cause. The CUDA build only
 * exists on a GPU machine: without it, or without a GPU, its tests are
 * reported as ignored. A CUDA build that exists but fails to load is an
 * error, not a skip.
 */
export const devices: Device[] = Deno.env.get("CRYPTGPU_DEVICE")
  ? [Deno.env.get("CRYPTGPU_DEVICE") as Device]
  : ["cpu", "cuda"];

/** Why the CPU build cannot be used (path and cause), or null when it loads. */
function cpuProblem(): string | null {
  try {
    new NativeBackend({ device: "cpu" }).dispose();
    return null;
  } catch (e) {
    const causes: string[] = [];
    for (let c: unknown = e; c !== undefined && causes.length < 4; c = (c as Error)?.cause) {
      causes.push(c instanceof Error ? c.message.split("\n")[0] : String(c));
    }
    return `the CPU library ${libraryPath("cpu")} cannot be used: ${causes.join(": ")}`;
  }
}

const cpuLoadError = cpuProblem();
if (cpuLoadError) {
  Deno.test("the CPU native library loads (every native test depends on it)", () => {
    throw new Error(cpuLoadError);
  });
}

const availability = new Map<Device, boolean>();
export function available(d: Device): boolean {
  if (d === "cpu") return cpuLoadError === null; // its absence already failed the file, once
  if (!availability.has(d)) {
    let ok = libraryExists(d);
    if (ok) {
      try {
        new NativeBackend({ device: d }).dispose();
      } catch (e) {
        if (!(e instanceof NativeError && e.status === "CG_EDEVICE")) throw e;
        ok = false; // built, but no GPU here
      }
    }
    availability.set(d, ok);
  }
  return availability.get(d)!;
}

/** Whether the CPU build loads (CLI and multi-host tests run on it; without it the file has failed already). */
export const deviceAvailable: boolean = available("cpu");

let current: Device = devices[0];
/** The device of the test now running. */
export function currentDevice(): Device {
  return current;
}

const shared = new Map<Device, NativeBackend>();
/** The backend of the running test's device, shared by a test file; tests assert on leaks through deltas. */
export function backend(): NativeBackend {
  let b = shared.get(current);
  if (!b) shared.set(current, b = new NativeBackend({ device: current }));
  return b;
}

/** Deno.test once per device, reported as ignored where the device is absent (the CPU's absence fails above). */
export function deviceTest(name: string, fn: () => void | Promise<void>): void {
  for (const d of devices) {
    Deno.test({
      name: `[${d}] ${name}`,
      ignore: !available(d),
      fn: async () => {
        current = d;
        await fn();
      },
      sanitizeResources: false,
    });
  }
}

/** splitmix64: reproducible test data (not for keys: tests only). */
export class Rng {
  #s: bigint;
  constructor(seed: number | bigint) {
    this.#s = wrap(BigInt(seed));
  }
  next(): bigint {
    this.#s = wrap(this.#s + 0x9e3779b97f4a7c15n);
    let z = this.#s;
    z = wrap((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = wrap((z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }
  int(n: number): number {
    return Number(this.next() % BigInt(n));
  }
  /** n words, with 0, 1, 2^63 - 1, 2^63 and 2^64 - 1 mixed in at random places. */
  words(n: number): BigUint64Array {
    const edges = [0n, 1n, (1n << 63n) - 1n, 1n << 63n, M64];
    const out = new BigUint64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(8) === 0 ? edges[this.int(edges.length)] : this.next();
    return out;
  }
  /** n small signed values in [-r, r], as words (for readable failures). */
  small(n: number, r: number): BigUint64Array {
    return BigUint64Array.from({ length: n }, () => wrap(BigInt(this.int(2 * r + 1) - r)));
  }
}

/** Row-major index helpers for references. */
export function idx(shape: readonly number[], ...i: number[]): number {
  let k = 0;
  for (let d = 0; d < shape.length; d++) k = k * shape[d] + i[d];
  return k;
}

export function assertWordsEqual(actual: BigUint64Array, expected: BigUint64Array, what = "words"): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(`${what}: index ${i} is ${actual[i].toString(16)}, expected ${expected[i].toString(16)}`);
    }
  }
}

/** Reference matmul: a [m, k] . b [k, n] mod 2^64. */
export function refMatmul(a: BigUint64Array, b: BigUint64Array, m: number, n: number, k: number): BigUint64Array {
  const c = new BigUint64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0n;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = wrap(s);
    }
  }
  return c;
}

export function transposeWords(a: BigUint64Array, rows: number, cols: number): BigUint64Array {
  const t = new BigUint64Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

export interface ConvRef {
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

export function convOut(g: ConvRef): [number, number] {
  return [
    Math.floor((g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh) + 1,
    Math.floor((g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw) + 1,
  ];
}

/** Reference convolution (cross-correlation, PyTorch semantics) mod 2^64. */
export function refConv(x: BigUint64Array, wt: BigUint64Array, g: ConvRef): BigUint64Array {
  const [oh, ow] = convOut(g);
  const cg = g.c / g.groups, og = g.oc / g.groups;
  const y = new BigUint64Array(g.n * g.oc * oh * ow);
  for (let b = 0; b < g.n; b++) {
    for (let o = 0; o < g.oc; o++) {
      const grp = Math.floor(o / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = 0n;
          for (let ci = 0; ci < cg; ci++) {
            for (let ki = 0; ki < g.kh; ki++) {
              for (let kj = 0; kj < g.kw; kj++) {
                const iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                const c = grp * cg + ci;
                s += x[idx([g.n, g.c, g.h, g.w], b, c, iy, ix)] * wt[idx([g.oc, cg, g.kh, g.kw], o, ci, ki, kj)];
              }
            }
          }
          y[idx([g.n, g.oc, oh, ow], b, o, oy, ox)] = wrap(s);
        }
      }
    }
  }
  return y;
}

/** <u, v> mod 2^64, for adjoint checks. */
export function dot(u: BigUint64Array, v: BigUint64Array): bigint {
  let s = 0n;
  for (let i = 0; i < u.length; i++) s += u[i] * v[i];
  return wrap(s);
}

/** Runs the cryptgpu command as a process, with its usual permissions and extra environment. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
