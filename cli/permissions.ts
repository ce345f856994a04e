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

export const CLI_MAIN: string = new URL("./main.ts", import.meta.url).pathname;
