/** `cryptgpu info`: the native library's build, the backends found and their devices. */
import { Command } from "commander";
import { systemInfo } from "../lib/native/system.ts";

export function infoCommand(): Command {
  return new Command("info")
    .description("show the native library builds, backends and devices")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      const info = systemInfo();
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      console.log(`cryptgpu ${info.version} on ${info.os} (${info.cores} cores)`);
      for (const b of info.backends) {
        if (!b.available) {
          console.log(`  ${b.device}: not available (${b.reason})`);
          continue;
        }
        const feats = Object.entries(b.build.features ?? {}).map(([k, v]) => `${k} ${v ? "yes" : "no"}`).join(", ");
        console.log(`  ${b.device}: ${b.path}`);
        console.log(`    build: ABI ${b.build.abi}, ${b.build.compiler}${feats ? `, ${feats}` : ""}`);
        for (const d of b.devices) {
          console.log(`    device ${d.index}: ${d.name}${d.cores ? `, ${d.cores} cores` : ""}`);
        }
        if (b.devices.length === 0) console.log("    no device found");
      }
    });
}
