/**
 * The `cryptgpu` command. One file per subcommand; this one wires them up and
 * turns any error into one line on stderr and a non-zero exit.
 */
import { Command, CommanderError } from "commander";
import { errorLine } from "./output.ts";
import { unwatchParent, watchParent } from "./parent_watch.ts";

/**
 * Each subcommand's module, loaded on demand: a run loads only the one it names (module loading is most of a
 * process's start, and `local` starts four), help and unknown names load them all.
 */
const subcommands: [string, () => Promise<Command[]>][] = [
  ["info", async () => [(await import("./info.ts")).infoCommand()]],
  ["bench", async () => [(await import("./bench.ts")).benchCommand()]],
  ["demo", async () => [(await import("./demo.ts")).demoCommand()]],
  ["local", async () => [(await import("./local.ts")).localCommand()]],
  ["certs", async () => [(await import("./certs.ts")).certsCommand()]],
  ["share", async () => [(await import("./share.ts")).shareCommand()]],
  ["reconstruct", async () => [(await import("./share.ts")).reconstructCommand()]],
  ["inspect", async () => [(await import("./inspect.ts")).inspectCommand()]],
  ["infer", async () => [(await import("./infer.ts")).inferCommand()]],
  ["train", async () => [(await import("./train.ts")).trainCommand()]],
];

const program = new Command()
  .name("cryptgpu")
  .description("Private inference and training among three servers (replicated secret sharing over Z_2^64)")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

const named = subcommands.find(([name]) => name === Deno.args[0]);
for (const [, load] of named ? [named] : subcommands) for (const c of await load()) program.addCommand(c);

watchParent();
try {
  await program.parseAsync(Deno.args, { from: "user" });
  unwatchParent();
} catch (e) {
  if (e instanceof CommanderError) Deno.exit(e.exitCode);
  console.error(errorLine(e));
  Deno.exit(1);
}
