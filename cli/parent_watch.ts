/**
 * The watchdog of a party started by `cryptgpu local`. A launcher killed with
 * SIGKILL cannot stop its parties, but its end of their stdin pipe closes
 * with it: the party sees the end of its input and stops, instead of waiting
 * out its connect timeout or running on alone.
 */
import { stdinPipe } from "../lib/net/stdin_pipe.ts";

/** The environment variable by which the launcher says that stdin is its pipe. */
export const PARENT_PIPE_ENV = "CRYPTGPU_PARENT_PIPE";

export function watchParent(): void {
  if (Deno.env.get(PARENT_PIPE_ENV) !== "1") return;
  stdinPipe.ended().then(() => {
    try {
      console.error("cryptgpu: the launcher is gone; stopping");
    } catch {
      // the launcher read our stderr: that pipe is gone with it
    }
    Deno.exit(1);
  });
}

/** Called when the command is done: a pending read of stdin would keep the process alive. */
export function unwatchParent(): void {
  stdinPipe.stop();
}
