/**
 * `cryptgpu demo`: the README's main job. Private training is not built yet
 * (it is its own issue); until then the demo shows the native library and a
 * short ring benchmark, and says so.
 */
import { Command } from "commander";
import { systemInfo } from "../lib/native/system.ts";
import { runRing } from "./bench.ts";

export function demoCommand(): Command {
  return new Command("demo")
    .description("the main job on one machine (for now: library info and a short ring benchmark)")
    .action(async () => {
      console.log("cryptgpu demo: private training of LeNet is not built yet; this demo shows the native");
      console.log("library and a short benchmark of its ring kernels instead.\n");
      const info = systemInfo();
      for (const b of info.backends) {
        const found = b.available ? b.devices.map((d) => d.name).join(", ") || "built, but no device found" : b.reason;
        console.log(`${b.device} backend: ${found}`);
      }
      console.log("");
      await runRing({ device: "cpu", quick: true, write: false });
    });
}
