/**
 * Standard input, read by one reader for the whole process. Two parts of a
 * party started by `cryptgpu local` want it: the parties configuration
 * (`--parties -`, a JSON document that comes first) and the watchdog that
 * stops the party when the launcher is gone (the pipe's end). A second reader
 * would steal the other's bytes, so the text is buffered here until asked for.
 */
class StdinPipe {
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #text = "";
  #taken = 0;
  #ended = false;
  #stopped = false;
  #wakers: (() => void)[] = [];

  #start(): void {
    if (this.#reader) return;
    this.#reader = Deno.stdin.readable.getReader();
    this.#pump(this.#reader);
  }

  async #pump(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.#text += decoder.decode(value, { stream: true });
        this.#wake();
      }
    } catch {
      // a stdin that cannot be read has ended, as far as either reader is concerned
    }
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const w of wakers) w();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#wakers.push(resolve));
  }

  /**
   * The next JSON document: the text up to the first newline after which it
   * parses (the launcher sends one line; a pretty-printed file piped in by
   * hand parses at its last line), or all that is left when stdin ends.
   */
  async document(): Promise<string> {
    this.#start();
    for (;;) {
      for (let nl = this.#text.indexOf("\n", this.#taken); nl >= 0; nl = this.#text.indexOf("\n", nl + 1)) {
        const candidate = this.#text.slice(this.#taken, nl + 1);
        if (!parses(candidate)) continue;
        this.#taken = nl + 1;
        return candidate;
      }
      if (this.#ended) {
        const rest = this.#text.slice(this.#taken);
        this.#taken = this.#text.length;
        return rest;
      }
      await this.#changed();
    }
  }

  /** Resolves when stdin reaches its end; never, once stop() was called. */
  async ended(): Promise<void> {
    this.#start();
    while (!this.#ended) await this.#changed();
    if (this.#stopped) await new Promise(() => {});
  }

  /** Stops reading, so that a pending read does not keep the process alive after its work is done. */
  stop(): void {
    this.#stopped = true;
    this.#reader?.cancel().catch(() => {});
  }
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export const stdinPipe: StdinPipe = new StdinPipe();
