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
    `the parser's error classes; a refusal must be one printable line.\n\n`;
  const rows = reports.map((r) => [
    r.parser,
    String(r.cases),
    String(r.accepted),
    Object.entries(r.refused).map(([k, v]) => `${k} ${v}`).join(", "),
    String(r.crashes),
    String(r.findings["multi-line"]),
    String(r.findings["over-allocation"] + r.findings.inconsistent),
    `${r.slowestMs.toFixed(2)} ms (case ${r.slowestCase})`,
    `${r.largestAllocation} B`,
  ]);
  const body = table(
    [
      "parser",
      "cases",
      "accepted",
      "refused",
      "crashes",
      "multi-line",
      "over-alloc / inconsistent",
      "slowest",
      "largest alloc",
    ],
    rows,
  );
  const details = reports.map((r) => {
    const accepted = Object.entries(r.acceptedAs).map(([k, v]) => `${k}: ${v}`).join("; ");
    const examples = r.examples.map((f) => `- ${f.kind}, case ${f.case}: ${f.detail.replace(/\n/g, "\\n")}`).join("\n");
    return `\n## ${r.parser}\n\nAccepted: ${accepted || "none"}. Allocation cap: ${r.allocationCap}. ` +
      `Longest refusal: ${r.longestMessage} characters. ${r.seconds.toFixed(1)} s.\n` +
      (examples ? `\nFindings (replay: same seed, the case's index):\n\n${examples}\n` : "");
  });
  return head + body + "\n" + details.join("");
}
