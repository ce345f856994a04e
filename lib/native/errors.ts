import { statusNames } from "./symbols.ts";

export type StatusName = (typeof statusNames)[number];

/** A native call that failed: the status and the library's one-line message. */
export class NativeError extends Error {
  readonly status: StatusName;
  constructor(code: number, message: string) {
    const status = statusNames[code] ?? "CG_EINTERNAL";
    super(message || `native call failed with ${status}`);
    this.name = "NativeError";
    this.status = status;
  }
}
