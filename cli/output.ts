/** Output helpers shared by the subcommands. */

/** One line: the message, then its causes, without stack traces. */
export function errorLine(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e; cur !== undefined && parts.length < 4; cur = (cur as Error)?.cause) {
    parts.push(cur instanceof Error ? cur.message.split("\n")[0] : String(cur));
  }
  return `cryptgpu: error: ${parts.join(": ")}`;
}

/** A Markdown table from a header and rows (also readable in a terminal). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? "-".repeat(w) : "-".repeat(w - 1) + ":")).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** A number with an SI prefix: 8.1e9 -> "8.10 G". */
export function si(v: number, digits = 3): string {
  const units = ["", "k", "M", "G", "T", "P"];
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toPrecision(digits)} ${units[i]}`.trimEnd();
}
