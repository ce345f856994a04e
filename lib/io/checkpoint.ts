/**
 * Training checkpoints that the three parties commit together, so that a
 * party killed at any moment leaves the three able to resume from one
 * common state. Party i's checkpoint lives at PATH (committed), with the one
 * before it at PATH.prev and a new one staged at PATH.next while it is being
 * committed:
 *
 *   1. write PATH.next (atomic: temporary, fsync, rename, fsync the folder)
 *   2. exchange "ready": now all three hold the new checkpoint durably
 *   3. rename PATH -> PATH.prev and PATH.next -> PATH, fsync the folder
 *   4. exchange "done": now all three have renamed; remove PATH.prev
 *
 * A party passes step 2 only once both others have finished step 1, so if
 * any party has touched its committed file, the new checkpoint is on all
 * three disks; until then the old one is. Resuming (`agreeOnCheckpoint`)
 * reads every candidate (PATH, PATH.prev, PATH.next) that is whole and of
 * the run, and the three pick the latest iteration they all hold.
 */
import { dirname } from "node:path";
import type { AShare } from "../mpc/arithmetic.ts";
import type { Party } from "../mpc/party.ts";
import { removeStaleTemporaries } from "./atomic.ts";
import { FileFormatError, type Header, readTensorFile } from "./format.ts";
import { saveShares } from "./share_files.ts";

export interface CheckpointMeta {
  model: string;
  /** The model's graph, for a graph model (kept so that a checkpoint is a model file of its own). */
  graph?: Header["graph"];
  /** The run's id: the same for every checkpoint of one training run, on all three parties. */
  id: string;
  training: NonNullable<Header["training"]>;
}

const candidates = (path: string) => [path, `${path}.prev`, `${path}.next`];

async function syncDirectory(path: string): Promise<void> {
  const d = await Deno.open(dirname(path), { read: true });
  try {
    await d.sync();
  } catch {
    /* a file system that cannot sync a folder: the renames are still atomic */
  } finally {
    d.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** One byte to both peers and from both: every party has reached this point. */
async function barrier(p: Party, step: string): Promise<void> {
  const before = p.setStep(step);
  const flag = new Uint8Array([1]);
  const peers = [p.next, p.prev];
  await p.mesh.round(peers.map((to) => ({ to, data: flag })), peers.map((from) => ({ from, into: new Uint8Array(1) })));
  p.setStep(before);
}

/** Writes and commits party p's checkpoint at `path` together with the other two (steps 1 to 4 above). */
export async function commitCheckpoint(
  p: Party,
  path: string,
  meta: CheckpointMeta,
  tensors: Map<string, AShare>,
): Promise<void> {
  await removeStaleTemporaries(`${path}.next`);
  await saveShares(
    p,
    `${path}.next`,
    { kind: "model", model: meta.model, graph: meta.graph, id: meta.id, training: meta.training },
    tensors,
  );
  await barrier(p, "checkpoint: ready");
  if (await exists(path)) await Deno.rename(path, `${path}.prev`);
  await Deno.rename(`${path}.next`, path);
  await syncDirectory(path);
  await barrier(p, "checkpoint: done");
  await Deno.remove(`${path}.prev`).catch(() => {});
}

export interface Candidate {
  path: string;
  header: Header;
}

/**
 * The checkpoints of `path` that are whole files of one run (the newest
 * one's), newest first; none is an error naming what was found.
 */
export async function findCheckpoints(path: string): Promise<Candidate[]> {
  const found: Candidate[] = [];
  const problems: string[] = [];
  for (const c of candidates(path)) {
    if (!(await exists(c))) continue;
    try {
      const { header } = await readTensorFile(c);
      if (!header.training || !header.share) throw new FileFormatError(`${c} is not a training checkpoint`);
      found.push({ path: c, header });
    } catch (e) {
      problems.push((e as Error).message); // a torn or foreign file is not a candidate
    }
  }
  if (!found.length) {
    throw new FileFormatError(
      problems.length ? `no usable checkpoint at ${path}: ${problems.join("; ")}` : `no checkpoint at ${path}`,
    );
  }
  found.sort((a, b) => b.header.training!.iteration - a.header.training!.iteration);
  const run = found[0].header.share!.id;
  return found.filter((c) => c.header.share!.id === run);
}

/** Slots per party in the exchange: PATH, .prev and .next. */
const SLOTS = 3;
const NONE = 0xffff_ffff_ffff_ffffn;

/**
 * The three parties' common checkpoint: each tells the others the
 * iterations it holds of the run (the run's id was compared at setup), and
 * all pick the latest that all three hold. It is then moved to PATH and
 * newer, uncommitted candidates are removed.
 */
export async function agreeOnCheckpoint(p: Party, path: string, found: Candidate[]): Promise<Candidate> {
  const mine = new Uint8Array(8 * SLOTS), view = new DataView(mine.buffer);
  for (let k = 0; k < SLOTS; k++) {
    view.setBigUint64(8 * k, k < found.length ? BigInt(found[k].header.training!.iteration) : NONE);
  }
  const peers = [p.next, p.prev], theirs = peers.map(() => new Uint8Array(8 * SLOTS));
  const before = p.setStep("checkpoint: agree");
  await p.mesh.round(peers.map((to) => ({ to, data: mine })), peers.map((from, k) => ({ from, into: theirs[k] })));
  p.setStep(before);
  const held = (bytes: Uint8Array) => {
    const v = new DataView(bytes.buffer);
    return Array.from({ length: SLOTS }, (_, k) => v.getBigUint64(8 * k)).filter((x) => x !== NONE).map(Number);
  };
  const lists = [held(mine), ...theirs.map(held)];
  const common = lists[0].filter((it) => lists.every((l) => l.includes(it)));
  if (!common.length) {
    const who = [p.index, ...peers].map((j, k) => `party ${j} holds ${lists[k].join(", ") || "none"}`);
    throw new FileFormatError(`the three parties hold no common checkpoint iteration (${who.join("; ")})`);
  }
  const chosen = found.find((c) => c.header.training!.iteration === Math.max(...common))!;
  // Make PATH the chosen one; a newer file only some parties hold was never committed.
  for (const c of found) {
    if (c !== chosen && c.header.training!.iteration > chosen.header.training!.iteration) await Deno.remove(c.path);
  }
  if (chosen.path !== path) await Deno.rename(chosen.path, path);
  // A staged file left now is torn or uncommitted (the chosen one, if staged, was just moved).
  await Deno.remove(`${path}.next`).catch(() => {});
  await removeStaleTemporaries(`${path}.next`);
  await syncDirectory(path);
  return { path, header: chosen.header };
}
