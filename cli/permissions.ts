/** The Deno permissions the cryptgpu command runs with (deno.json's task uses the same set). */
export const CLI_PERMISSIONS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
] as const;

/**
 * V8 flags of the command (deno.json's task passes the same): `gc()` exposed, so that a rehearsal and the
 * preprocessing collect their garbage at setup instead of leaving it to the first forwards (lib/mpc/demand.ts).
 */
export const CLI_V8_FLAGS = ["--v8-flags=--expose-gc"] as const;

export const CLI_MAIN: string = new URL("./main.ts", import.meta.url).pathname;
