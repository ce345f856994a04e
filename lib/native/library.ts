/**
 * Finding and opening the native library. `CRYPTGPU_LIB` overrides the path;
 * otherwise the build folder beside this checkout is used. Each path is opened
 * once per process: closing a library while a call runs crashes the process,
 * so opened libraries stay open until exit.
 */
import { type NativeLib, symbols } from "./symbols.ts";

export type Device = "cpu" | "cuda";

const buildDir = new URL("../../build/", import.meta.url);

/** The file a device's build is expected at, honouring `CRYPTGPU_LIB` for the CPU build
 * and `CRYPTGPU_CUDA_LIB` for the CUDA build. */
export function libraryPath(device: Device): string {
  const override = Deno.env.get(device === "cpu" ? "CRYPTGPU_LIB" : "CRYPTGPU_CUDA_LIB");
  if (override) return override;
  return new URL(`libcryptgpu_${device}.so`, buildDir).pathname;
}

export class LibraryLoadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LibraryLoadError";
  }
}

const opened = new Map<string, NativeLib>();

export function openLibrary(device: Device): NativeLib {
  const path = libraryPath(device);
  const cached = opened.get(path);
  if (cached) return cached;
  let lib: NativeLib;
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (cause) {
    const hint = Deno.env.get(device === "cpu" ? "CRYPTGPU_LIB" : "CRYPTGPU_CUDA_LIB")
      ? "check the path in the environment variable"
      : "build it with `deno task build`";
    throw new LibraryLoadError(`cannot load the ${device} library ${path}: ${hint}`, { cause });
  }
  opened.set(path, lib);
  return lib;
}

/** Whether the library for a device exists on disk (it may still fail to load). */
export function libraryExists(device: Device): boolean {
  try {
    return Deno.statSync(libraryPath(device)).isFile;
  } catch {
    return false;
  }
}

export function readCString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

export function buildInfo(lib: NativeLib): Record<string, unknown> {
  return JSON.parse(readCString(lib.symbols.cg_build_info()));
}
