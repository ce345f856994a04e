/**
 * The `cryptgpu` command. One file per subcommand; this one wires them up and
 * turns any error into one line on stderr and a non-zero exit.
 */
import { Command, CommanderError } from "commander";
import { infoCommand } from "./info.ts";
import { benchCommand } from "./bench.ts";
import { demoCommand } from "./demo.ts";
import { localCommand } from "./local.ts";
import { certsCommand } from "./certs.ts";
import { inferCommand } from "./infer.ts";
import { trainCommand } from "./train.ts";
import { reconstructCommand, shareCommand } from "./share.ts";
import { inspectCommand } from "./inspect.ts";
import { errorLine } from "./output.ts";
import { unwatchParent, watchParent } from "./parent_watch.ts";

const program = new Command()
  .name("cryptgpu")
  .description("Private inference and training among three servers (replicated secret sharing over Z_2^64)")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

program.addCommand(infoCommand());
program.addCommand(benchCommand());
program.addCommand(demoCommand());
program.addCommand(localCommand());
program.addCommand(certsCommand());
program.addCommand(shareCommand());
program.addCommand(reconstructCommand());
program.addCommand(inspectCommand());
program.addCommand(inferCommand());
program.addCommand(trainCommand());

watchParent();
try {
  await program.parseAsync(Deno.args, { from: "user" });
  unwatchParent();
} catch (e) {
  if (e instanceof CommanderError) Deno.exit(e.exitCode);
  console.error(errorLine(e));
  Deno.exit(1);
}
