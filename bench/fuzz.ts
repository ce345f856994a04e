/**
 * The parsers that read bytes from other parties or from files, fuzzed with
 * mutations of valid inputs (bench/fuzz/): the handshake hello, the
 * channel's frames, tensor and share files, the parties file. A run reports,
 * per parser, the cases, what was accepted, the refusals by error class, the
 * crashes (must be 0) and other findings, the slowest case and the largest
 * allocation a length field could drive.
 */
import { channelTarget } from "./fuzz/channel.ts";
import { fuzz, type FuzzReport, type RunOptions } from "./fuzz/harness.ts";
import { helloTarget } from "./fuzz/hello.ts";
import { partiesTarget } from "./fuzz/parties.ts";
import { tensorFileTarget } from "./fuzz/tensor_file.ts";

export type { FuzzReport };
export const PARSERS = ["hello", "channel", "tensor-file", "parties"] as const;
export type ParserName = typeof PARSERS[number];

export async function fuzzParser(name: ParserName, o: RunOptions): Promise<FuzzReport> {
  switch (name) {
    case "hello":
      return await fuzz(helloTarget(), o);
    case "channel":
      return await fuzz(await channelTarget(), o);
    case "tensor-file":
      return await fuzz(await tensorFileTarget(), o);
    case "parties":
      return await fuzz(partiesTarget(), o);
  }
}

export function fuzzMarkdown(
  record: { date: string; commit: string; dirty: boolean; machine: { cpu: string; cores: number }; seed: string },
  reports: FuzzReport[],
  table: (head: string[], rows: string[][]) => string,
): string {
  const head = `# Parser fuzzing\n\n` +
    `${record.machine.cpu}, ${record.machine.cores} cores; commit ${record.commit}${
      record.dirty ? " (uncommitted changes)" : ""
    }; seed ${record.seed}; ${record.date}.\n` +
    `Each case is a valid input under 1 to 8 stacked mutations (bit flips, interesting bytes and words, insertions, ` +
    `deletions, truncations, duplicated chunks, splices, structure-aware JSON edits). A crash is any throw outside ` +
    `the parser's error classes; a refusal must be one printable line; "other" counts refusals of several lines, ` +
    `reads past the cap and inconsistent acceptances. "Slowest alone" is the worst of the run's 30 slowest cases ` +
    `replayed alone (best of 3); the run's own times include garbage collection and the machine's other work. ` +
    `"Largest alloc" is the largest buffer a length field could size: the largest read asked of the link, or ` +
    `tensorBytes' copy.\n\n`;
  const rows = reports.map((r) => [
    r.parser,
    String(r.cases),
    String(r.accepted),
    Object.entries(r.refused).map(([k, v]) => `${k} ${v}`).join(", "),
    String(r.crashes),
    String(Object.values(r.findings).reduce((a, b) => a + b, 0) - r.crashes),
    `${r.slowestReplayMs.toFixed(2)} ms`,
    `${r.slowestMs.toFixed(1)} ms`,
    r.largestAllocation ? `${r.largestAllocation} B` : "n/a",
  ]);
  const columns = ["parser", "cases", "accepted", "refused", "crashes", "other", "slowest alone", "slowest in run"];
  const body = table([...columns, "largest alloc"], rows);
  const details = reports.map((r) => {
    const accepted = Object.entries(r.acceptedAs).map(([k, v]) => `${k}: ${v}`).join("; ");
    // JSON string escapes: a detail may hold a peer's control characters, which have no place in a Markdown file.
    const examples = r.examples.map((f) => {
      const detail = JSON.stringify(f.detail);
      return `- ${f.kind}, case ${f.case}: ${detail.length > 200 ? `${detail.slice(0, 200)}..."` : detail}`;
    }).join("\n");
    const findings = Object.entries(r.findings).map(([k, v]) => `${k} ${v}`).join(", ");
    return `\n## ${r.parser}\n\nAccepted: ${accepted || "none"}.\n\nFindings: ${findings}. ` +
      `Allocation cap: ${r.allocationCap}. Longest refusal: ${r.longestMessage} characters. ` +
      `Slowest: case ${r.slowestReplayCase} alone, case ${r.slowestCase} in the run. ${r.seconds.toFixed(1)} s.\n` +
      (examples
        ? `\nExamples (replay: \`cryptgpu bench fuzz --seed ${r.seed} --only P --case I\`):\n\n${examples}\n`
        : "");
  });
  return head + body + "\n" + details.join("");
}
