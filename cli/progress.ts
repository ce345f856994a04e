/**
 * A progress line on stderr: redrawn in place on a terminal, a line every
 * tenth of the way otherwise (logs, CI), so neither floods.
 */
export class Progress {
  #tty = Deno.stderr.isTerminal();
  #lastTenth = -1;
  #start = performance.now();
  constructor(readonly total: number, readonly label: string) {}

  update(done: number, detail: string): void {
    const elapsed = (performance.now() - this.#start) / 1000, rate = done / Math.max(elapsed, 1e-9);
    const width = 24, filled = Math.round((width * done) / this.total);
    const line = `${this.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${this.total} ` +
      `${rate.toFixed(2)} it/s ${detail}`;
    const enc = new TextEncoder();
    if (this.#tty) {
      Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line}${done === this.total ? "\n" : ""}`));
      return;
    }
    const tenth = Math.floor((10 * done) / this.total);
    if (tenth !== this.#lastTenth || done === this.total) {
      this.#lastTenth = tenth;
      Deno.stderr.writeSync(enc.encode(`${line}\n`));
    }
  }
}
