/**
 * Support for the fault suite (fault_test.ts): party processes started one by
 * one and signalled, the files they share (models, inputs, two `certs` runs),
 * parties files with chosen ports, relays between two parties (passive,
 * recording or tampering), a forged handshake peer, and the one-line report
 * of each case (exit codes, seconds to stop, the message).
 */
import { join } from "node:path";
import { type KeyObject, X509Certificate } from "node:crypto";
import { CLI_MAIN, CLI_PERMISSIONS } from "../../cli/permissions.ts";
import { fingerprint, privateKey, signTranscript } from "../../lib/net/auth.ts";
import { runCli } from "../helpers.ts";

const encoder = new TextEncoder(), decoder = new TextDecoder();

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until ok() holds, or throws naming what it waited for. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!(await ok())) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------- ports

/**
 * Whether a TCP socket listens on this port, without connecting to it (a
 * probe would be a stranger to the party): /proc/net/tcp where Deno may read
 * it (it asks for --allow-all), else `ss`.
 */
export async function listening(port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  try {
    const tables = ["/proc/net/tcp", "/proc/net/tcp6"].map((t) => Deno.readTextFileSync(t)).join("\n");
    return tables.split("\n").some((line) => {
      const f = line.trim().split(/\s+/);
      return f.length > 3 && f[1].endsWith(`:${hex}`) && f[3] === "0A";
    });
  } catch {
    const out = await new Deno.Command("ss", { args: ["-ltnH", `sport = :${port}`], stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) throw new Error("cannot tell whether a port listens: neither /proc/net/tcp nor ss");
    return decoder.decode(out.stdout).trim() !== "";
  }
}

function free(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Below Linux's ephemeral range (32768-60999) and the in-process harness's (20000-32000). */
let nextPort = 10000 + Math.floor(Math.random() * 10000);

/** n consecutive free loopback ports (a parties file from `certs` uses port, port + 1, port + 2). */
export function freePorts(n = 3): number[] {
  for (let tries = 0; tries < 200; tries++) {
    const base = nextPort;
    nextPort = nextPort + n + 1 > 20000 ? 10000 : nextPort + n + 1;
    const ports = Array.from({ length: n }, (_, i) => base + i);
    if (ports.every(free)) return ports;
  }
  throw new Error("no free ports");
}

// ---------------------------------------------------------------- processes

export interface Exit {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** When the process ended (performance.now()). */
  at: number;
  /** Seconds from its start to its end. */
  seconds: number;
}

/** One `cryptgpu` process: its output as it comes, signals, and its end. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly started = performance.now();
  readonly done: Promise<Exit>;
  stdout = "";
  stderr = "";
  #ended = false;

  constructor(readonly name: string, args: string[], env: Record<string, string> = {}, cwd?: string) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", CRYPTGPU_THREADS: "1", ...env },
      cwd,
    }).spawn();
    const read = async (s: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this[into] += chunk;
    };
    this.done = Promise.all([read(this.child.stdout, "stdout"), read(this.child.stderr, "stderr"), this.child.status])
      .then(([, , status]) => {
        this.#ended = true;
        const at = performance.now();
        return {
          code: status.code,
          signal: status.signal,
          stdout: this.stdout,
          stderr: this.stderr,
          at,
          seconds: (at - this.started) / 1000,
        };
      });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Whether it still runs (a stopped process runs). */
  alive(): boolean {
    return !this.#ended;
  }

  signal(s: Deno.Signal): void {
    try {
      this.child.kill(s);
    } catch { /* already gone */ }
  }

  /** The error line the command ended with (`cryptgpu: error: ...`), or its last stderr line. */
  message(): string {
    const lines = this.stderr.trim().split("\n");
    return lines.findLast((l) => l.startsWith("cryptgpu: error:")) ?? lines.at(-1) ?? "";
  }

  /** Stops it whatever its state (a stopped process is killed too) and waits for its end. */
  async kill(): Promise<Exit> {
    this.signal("SIGKILL");
    return await this.done;
  }
}

/** Kills every process still running; for finally blocks. */
export async function killAll(procs: (Proc | undefined)[]): Promise<void> {
  await Promise.all(procs.filter((p): p is Proc => p !== undefined).map((p) => p.kill()));
}

// ---------------------------------------------------------------- files

export interface Fixture {
  dir: string;
  /** LeNet shares, f = 20: w.p{i}.share. */
  model: string;
  /** Four 28x28 images: x.p{i}.share. */
  input: string;
  /** LeNet shares and 256 embedded digits, f = 16, for training runs. */
  trainModel: string;
  data: string;
  /** The genuine `certs` run, another one (another CA: a stranger, an attacker), each with its parties.json. */
  certs: string;
  otherCerts: string;
}

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`cryptgpu ${args.join(" ")} failed: ${r.stderr}`);
}

let fixture: Promise<Fixture> | null = null;

/** The files every case uses, made once per test file (and removed when the process ends). */
export function files(): Promise<Fixture> {
  return fixture ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "cryptgpu-fault-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const f: Fixture = {
      dir,
      model: join(dir, "w"),
      input: join(dir, "x"),
      trainModel: join(dir, "tw"),
      data: join(dir, "d"),
      certs: join(dir, "certs"),
      otherCerts: join(dir, "other"),
    };
    const images = 4;
    const data = Array.from({ length: images * 784 }, (_, i) => ((i * 7 + Math.floor(i / 784) * 5) % 13) / 13);
    await Deno.writeTextFile(join(dir, "in.json"), JSON.stringify({ shape: [images, 1, 28, 28], data }));
    const hosts = "127.0.0.1,127.0.0.1,127.0.0.1";
    await Promise.all([
      cli(["share", "--model", "lenet", "--seed", "3", "--out", f.model]),
      cli(["share", "--input", join(dir, "in.json"), "--out", f.input]),
      cli(["share", "--model", "lenet", "--seed", "1", "--frac-bits", "16", "--out", f.trainModel]),
      cli(["share", "--dataset", "mnist", "--limit", "256", "--frac-bits", "16", "--out", f.data]),
      cli(["certs", "--out", f.certs, "--hosts", hosts, "--port", "7400"]),
      cli(["certs", "--out", f.otherCerts, "--hosts", hosts, "--port", "7400"]),
    ]);
    await Deno.remove(join(dir, "in.json"));
    return f;
  })();
}

let fileCount = 0;

/**
 * A parties file of the `certs` run in `certsDir` with these ports, written
 * beside its certificates (their paths are relative to it); `edit` may change
 * the document (e.g. where party 0 is said to listen, or drop the TLS material).
 */
export async function partiesFile(
  certsDir: string,
  ports: number[],
  edit: (doc: { parties: { host: string; port: number }[] }) => void = () => {},
): Promise<string> {
  const doc = JSON.parse(await Deno.readTextFile(join(certsDir, "parties.json")));
  doc.parties.forEach((p: { port: number }, i: number) => (p.port = ports[i]));
  edit(doc);
  const file = join(certsDir, `case-${++fileCount}.json`);
  await Deno.writeTextFile(file, JSON.stringify(doc, null, 2));
  return file;
}

/** Every name under dir, recursively (hidden temporaries included). */
export async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await listAll(join(dir, e.name))).map((n) => `${e.name}/${n}`));
  }
  return out.sort();
}

/** An empty folder for one case's outputs: what is in it afterwards is what the parties left. */
export async function caseDir(): Promise<string> {
  const f = await files();
  return await Deno.makeTempDir({ dir: f.dir, prefix: "case-" });
}

// ---------------------------------------------------------------- commands

export interface InferRun {
  parties: string[];
  /** Reveal to party 0 and print JSON (default), or write output shares under this prefix. */
  out?: string;
  connectTimeout?: number;
  roundTimeout?: number;
  extra?: (party: number) => string[];
  env?: Record<string, string>;
  /** The parties' working folder: whatever they write there is checked. */
  cwd?: string;
}

export async function inferArgs(party: number, o: InferRun): Promise<string[]> {
  const f = await files();
  return [
    "infer",
    "--party",
    String(party),
    "--parties",
    o.parties[party],
    "--model",
    `${f.model}.p${party}.share`,
    "--input",
    `${f.input}.p${party}.share`,
    ...(o.out ? ["--out", o.out] : ["--reveal-to", "0", "--json"]),
    "--connect-timeout",
    String(o.connectTimeout ?? 3),
    "--round-timeout",
    String(o.roundTimeout ?? 3),
    ...(o.extra?.(party) ?? []),
  ];
}

export async function infer(party: number, o: InferRun): Promise<Proc> {
  return new Proc(`party ${party}`, await inferArgs(party, o), o.env, o.cwd);
}

/** Private training of LeNet on 256 digits, batch 64 (4 iterations, a few seconds), writing model and checkpoint. */
export async function train(
  party: number,
  parties: string,
  out: string,
  o: { connectTimeout?: number; roundTimeout?: number; cwd?: string } = {},
): Promise<Proc> {
  const f = await files();
  return new Proc(
    `party ${party}`,
    [
      "train",
      "--party",
      String(party),
      "--parties",
      parties,
      "--model",
      `${f.trainModel}.p${party}.share`,
      "--data",
      `${f.data}.p${party}.share`,
      "--epochs",
      "1",
      "--batch",
      "64",
      "--out",
      join(out, "trained"),
      "--checkpoint",
      join(out, "ck"),
      "--connect-timeout",
      String(o.connectTimeout ?? 5),
      "--round-timeout",
      String(o.roundTimeout ?? 3),
    ],
    {},
    o.cwd,
  );
}

export interface Prediction {
  predictions: number[];
  logits: number[];
}

/** What party 0 printed with --json. */
export function prediction(stdout: string): Prediction {
  const at = stdout.indexOf("{");
  if (at < 0) throw new Error(`no JSON result in: ${stdout}`);
  const r = JSON.parse(stdout.slice(at, stdout.lastIndexOf("}") + 1));
  return { predictions: r.predictions, logits: r.logits };
}

// ---------------------------------------------------------------- report

export interface CaseReport {
  name: string;
  codes: (number | string)[];
  /** Seconds to stop, as the case defines it (from the fault, or from the start of the parties that had to stop). */
  seconds: number;
  bound?: number;
  message: string;
}

export const reports: CaseReport[] = [];

/** One line per case in the test output, for the README's table. */
export function report(r: CaseReport): void {
  reports.push(r);
  const bound = r.bound !== undefined ? ` (bound ${r.bound} s)` : "";
  console.log(
    `  [fault] ${r.name} | exit codes ${r.codes.join(", ")} | ${r.seconds.toFixed(2)} s${bound} | ${r.message}`,
  );
}

export const exitCode = (e: Exit) => (e.signal ? `${e.code} (${e.signal})` : e.code);

// ---------------------------------------------------------------- relays

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function closeQuietly(c: { close(): void } | undefined): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

/**
 * Finds, in the byte stream of one direction of a link, where a frame of a
 * protocol round begins and how long it is: after `messages` length-prefixed
 * handshake messages come frames (16-byte header: magic, round, length;
 * payload; a 16-byte tag on secure links). `flipAt` is the stream offset of
 * the middle byte of the first round frame of at least `minBytes`.
 */
export class FrameWalker {
  #buf = new Uint8Array(1 << 16);
  #len = 0;
  #cursor = 0;
  #messages: number;
  flipAt: number | null = null;
  frames: { round: number; bytes: number }[] = [];

  constructor(messages: number, readonly tagBytes: number, readonly minBytes = 1024) {
    this.#messages = messages;
  }

  feed(chunk: Uint8Array): void {
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = new Uint8Array(Math.max(2 * this.#buf.length, this.#len + chunk.length));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const view = new DataView(this.#buf.buffer);
    for (;;) {
      if (this.#messages > 0) {
        if (this.#cursor + 4 > this.#len) return;
        this.#cursor += 4 + view.getUint32(this.#cursor, true);
        this.#messages--;
        continue;
      }
      if (this.#cursor + 16 > this.#len) return;
      const round = view.getUint32(this.#cursor + 4, true), bytes = Number(view.getBigUint64(this.#cursor + 8, true));
      this.frames.push({ round, bytes });
      if (this.flipAt === null && round !== 0xffff_ffff && bytes >= this.minBytes) {
        this.flipAt = this.#cursor + 16 + Math.floor(bytes / 2);
      }
      this.#cursor += 16 + bytes + this.tagBytes;
    }
  }
}

export interface RelayOptions {
  /** Parse the target-to-client stream and flip one byte in the middle of a large round frame. */
  tamper?: { messages: number; tagBytes: number; minBytes?: number };
}

/**
 * A TCP relay on a free loopback port to `target`: copies bytes both ways
 * and records them (`up`: from the dialing party, `down`: from the target).
 */
export class Relay {
  readonly port: number;
  readonly up: Uint8Array[] = [];
  readonly down: Uint8Array[] = [];
  connections = 0;
  /** The offset flipped in the target-to-client stream, and the frames seen there. */
  flipped: number | null = null;
  /** When it flipped it (performance.now()). */
  flippedAt = 0;
  walker: FrameWalker | null = null;
  #listener: Deno.Listener;
  #conns: Deno.Conn[] = [];
  #tasks: Promise<void>[] = [];

  constructor(readonly target: number, readonly options: RelayOptions = {}) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#tasks.push(this.#accept());
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      this.connections++;
      this.#conns.push(client);
      this.#tasks.push(this.#serve(client));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
    } catch {
      closeQuietly(client);
      return;
    }
    this.#conns.push(server);
    (client as Deno.TcpConn).setNoDelay(true);
    (server as Deno.TcpConn).setNoDelay(true);
    const t = this.options.tamper;
    const walker = t && this.walker === null ? new FrameWalker(t.messages, t.tagBytes, t.minBytes) : null;
    if (walker) this.walker = walker;
    let offset = 0;
    const down = (chunk: Uint8Array) => {
      if (walker) {
        walker.feed(chunk);
        const at = walker.flipAt;
        if (this.flipped === null && at !== null && at >= offset && at < offset + chunk.length) {
          chunk[at - offset] ^= 0x01;
          this.flipped = at;
          this.flippedAt = performance.now();
        }
      }
      offset += chunk.length;
    };
    await Promise.all([this.#pump(client, server, this.up), this.#pump(server, client, this.down, down)]);
    closeQuietly(client);
    closeQuietly(server);
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, record: Uint8Array[], each?: (c: Uint8Array) => void): Promise<void> {
    const buf = new Uint8Array(1 << 16);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        each?.(chunk);
        record.push(chunk);
        await writeAll(to, chunk);
      }
      await (to as Deno.TcpConn).closeWrite().catch(() => {});
    } catch {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  /** Everything recorded one way, in order. */
  bytes(way: "up" | "down"): Uint8Array {
    return concat(this[way]);
  }

  async close(): Promise<void> {
    closeQuietly(this.#listener);
    for (const c of this.#conns) closeQuietly(c);
    await Promise.all(this.#tasks);
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether `needle` occurs in `hay`. */
export function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  const first = needle[0];
  for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let k = 1;
    while (k < needle.length && hay[i + k] === needle[k]) k++;
    if (k === needle.length) return true;
  }
  return false;
}

export const bytesOf = (s: string) => encoder.encode(s);

// ---------------------------------------------------------------- a forged handshake peer

/** Party i's material from a `certs` run: certificate fingerprints, the CA's, and a key. */
export interface Material {
  caFingerprint: string;
  fingerprints: string[];
  key: (party: number) => KeyObject;
}

export async function material(certsDir: string): Promise<Material> {
  const cert = async (name: string) => new X509Certificate(await Deno.readTextFile(join(certsDir, name)));
  const ca = await cert("ca.crt");
  const certs = await Promise.all([0, 1, 2].map((i) => cert(`p${i}.crt`)));
  const keys = await Promise.all([0, 1, 2].map((i) => Deno.readTextFile(join(certsDir, `p${i}.key`))));
  return {
    caFingerprint: fingerprint(ca),
    fingerprints: certs.map(fingerprint),
    key: (i) => privateKey(keys[i], i),
  };
}

/** handshake.ts's signed transcript: length-prefixed label and hellos (written out here, as an attacker would). */
export function transcript(role: "dialer" | "listener", helloD: Uint8Array, helloL: Uint8Array): Uint8Array {
  const parts = [encoder.encode(`cryptgpu link v2 ${role}`), helloD, helloL];
  const out = new Uint8Array(parts.reduce((a, b) => a + 4 + b.length, 0));
  let at = 0;
  for (const part of parts) {
    new DataView(out.buffer).setUint32(at, part.length, true);
    out.set(part, at + 4);
    at += 4 + part.length;
  }
  return out;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export async function ephemeralKey(): Promise<string> {
  const key = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]) as CryptoKeyPair;
  return hex(new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey)));
}

export const randomHex = (n: number) => hex(crypto.getRandomValues(new Uint8Array(n)));

export async function writeMessage(conn: Deno.Conn, body: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, true);
  frame.set(body, 4);
  await writeAll(conn, frame);
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const k = await conn.read(out.subarray(off));
    if (k === null) return null;
    off += k;
  }
  return out;
}

/** One length-prefixed handshake message, or null when the peer closed first. */
export async function readMessage(conn: Deno.Conn): Promise<Uint8Array | null> {
  const len = await readExactly(conn, 4);
  if (!len) return null;
  const n = new DataView(len.buffer).getUint32(0, true);
  if (n > 1 << 16) throw new Error(`a ${n}-byte handshake message`);
  return await readExactly(conn, n);
}

/** Connects to a loopback port, retrying while nothing listens there yet. */
export async function dial(port: number, ms = 10_000): Promise<Deno.TcpConn> {
  const t0 = performance.now();
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.setNoDelay(true);
      return c;
    } catch (e) {
      if (performance.now() - t0 > ms) throw e;
      await sleep(50);
    }
  }
}

/** A hello as handshake.ts writes it. */
export function hello(o: {
  from: number;
  to: number;
  session: string;
  ephemeral: string;
  ca: string | null;
  cert: string | null;
}): Uint8Array {
  return encoder.encode(JSON.stringify({
    protocol: "cryptgpu",
    version: 2,
    from: o.from,
    to: o.to,
    session: o.session,
    secure: o.ca !== null,
    nonce: randomHex(32),
    ephemeral: o.ephemeral,
    ca: o.ca,
    cert: o.cert,
  }));
}

/**
 * A man in the middle on `listener`: for each connection, reads the dialer's
 * hello, gets an answer from `answer` (the real listener's hello, relayed, or
 * one made up), puts its own ephemeral key in it and signs the transcript
 * with `key`, as the listener would. `outcomes` says, per connection, what
 * the dialer did next: "signed" (it accepted the answer and sent its own
 * signature) or "closed".
 */
export function impersonate(
  listener: Deno.Listener,
  key: KeyObject,
  answer: (helloD: Uint8Array) => Promise<Record<string, unknown>>,
): { outcomes: string[]; done: Promise<void> } {
  const outcomes: string[] = [];
  const serve = async (c: Deno.Conn) => {
    try {
      const helloD = await readMessage(c);
      if (!helloD) return;
      const h = await answer(helloD);
      h.ephemeral = await ephemeralKey();
      const helloL = bytesOf(JSON.stringify(h));
      await writeMessage(c, helloL);
      await writeMessage(c, signTranscript(key, transcript("listener", helloD, helloL)));
      outcomes.push((await readMessage(c).catch(() => null)) ? "signed" : "closed");
    } catch (e) {
      outcomes.push(`error: ${(e as Error).message}`);
    } finally {
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  const done = (async () => {
    const tasks: Promise<void>[] = [];
    try {
      for (;;) tasks.push(serve(await listener.accept()));
    } catch { /* closed */ }
    await Promise.all(tasks);
  })();
  return { outcomes, done };
}

export const text = (b: Uint8Array) => decoder.decode(b);

export { signTranscript };
