/** What native builds and devices this machine has, for `cryptgpu info` and benchmark records. */
import { buildInfo, type Device, libraryExists, libraryPath, openLibrary, readCString } from "./library.ts";

export interface DeviceInfo {
  index: number;
  kind: string;
  name: string;
  cores?: number;
  [key: string]: unknown;
}

export type BackendInfo =
  | {
    device: Device;
    available: true;
    path: string;
    build: Record<string, unknown> & { abi?: number; compiler?: string; features?: Record<string, boolean> };
    devices: DeviceInfo[];
  }
  | { device: Device; available: false; path: string; reason: string };

export interface SystemInfo {
  version: string;
  os: string;
  cores: number;
  backends: BackendInfo[];
}

export function backendInfo(device: Device): BackendInfo {
  const path = libraryPath(device);
  if (!libraryExists(device)) {
    const reason = device === "cuda"
      ? "not built (needs nvcc and the CUDA sources)"
      : "not built (run `deno task build`)";
    return { device, available: false, path, reason };
  }
  try {
    const lib = openLibrary(device);
    const count = new Int32Array(1);
    const devices: DeviceInfo[] = [];
    if (lib.symbols.cg_device_count(count) === 0) {
      const buf = new Uint8Array(4096);
      for (let i = 0; i < count[0]; i++) {
        if (lib.symbols.cg_device_info(i, buf, BigInt(buf.length)) === 0) {
          devices.push(JSON.parse(readCString(Deno.UnsafePointer.of(buf))));
        }
      }
    }
    return { device, available: true, path, build: buildInfo(lib), devices };
  } catch (e) {
    return { device, available: false, path, reason: e instanceof Error ? e.message : String(e) };
  }
}

export function systemInfo(): SystemInfo {
  return {
    version: "0.1.0",
    os: `${Deno.build.os} ${Deno.build.arch}`,
    cores: navigator.hardwareConcurrency,
    backends: (["cpu", "cuda"] as const).map(backendInfo),
  };
}
