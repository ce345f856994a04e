/** Where benchmark results go: JSON and Markdown under bench/results/, with the machine and commit. */
import { systemInfo } from "../lib/native/system.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";

export interface Provenance {
  date: string;
  commit: string;
  dirty: boolean;
  machine: { os: string; cores: number; cpu: string; devices: string[] };
}

async function git(args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

export async function provenance(): Promise<Provenance> {
  const info = systemInfo();
  const devices = info.backends.flatMap((b) => (b.available ? b.devices.map((d) => `${b.device}: ${d.name}`) : []));
  const cpu = info.backends.find((b) => b.device === "cpu");
  return {
    date: new Date().toISOString(),
    commit: (await git(["rev-parse", "--short", "HEAD"])) || "unknown",
    dirty: (await git(["status", "--porcelain", "--untracked-files=no"])) !== "",
    machine: {
      os: info.os,
      cores: info.cores,
      cpu: cpu?.available ? cpu.devices[0]?.name ?? "unknown" : "unknown",
      devices,
    },
  };
}

export const resultsDir = new URL("./results/", import.meta.url);

/** Writes name.json and name.md; returns their paths. */
export async function writeResults(name: string, json: unknown, markdown: string): Promise<string[]> {
  await Deno.mkdir(resultsDir, { recursive: true });
  const jsonPath = new URL(`${name}.json`, resultsDir).pathname;
  const mdPath = new URL(`${name}.md`, resultsDir).pathname;
  // Results are public (they go into the repository): 0644, and atomic so that a killed run leaves the old ones whole.
  await writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + "\n", { mode: 0o644 });
  await writeFileAtomic(mdPath, markdown, { mode: 0o644 });
  return [jsonPath, mdPath];
}
