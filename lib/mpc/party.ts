/**
 * One party's view of a three-party computation: its index, its links to the
 * other two, its native backend, its correlated randomness and the shared
 * fixed-point precision.
 */
import type { Backend } from "../native/backend.ts";
import type { Mesh } from "../net/mesh.ts";
import { Randomness } from "./randomness.ts";
import { TruncationPool } from "./truncation_pool.ts";
import { type ComparisonMasks, makeComparisonMasks, makeRandomBits, type RandomBits } from "./comparison_masks.ts";
import { Stock } from "./stock.ts";

/**
 * Which truncation protocol a session runs (truncate.ts): "local" is ABY3's
 * Pi_trunc1 (1 round, fails with probability about |z| / 2^63 per element),
 * "corrected" also corrects the wrap (2 rounds, never fails for |z| < 2^62),
 * "preprocessed" opens z masked by a preprocessed pair (1 round, never fails
 * for |z| < 2^62, and a fixed-point product's truncation shares its round).
 * "preprocessed" is the session's preprocessing mode: its comparisons also
 * open their input masked (msb_masked.ts), one round fewer each, two fewer for
 * a ReLU.
 */
export type TruncationMode = "local" | "corrected" | "preprocessed";
export const TRUNCATION_MODES: readonly TruncationMode[] = ["local", "corrected", "preprocessed"];

export class Party {
  /** Preprocessed truncation pairs ("preprocessed" truncation). */
  readonly pairs: TruncationPool = new TruncationPool(this);
  /** Preprocessed comparison masks (comparisons under "preprocessed" truncation). */
  readonly masks: Stock<"masks", ComparisonMasks> = new Stock((_, n) => makeComparisonMasks(this, n));
  /** Preprocessed random bits, shared in binary and arithmetically (the maximum's selection, same mode). */
  readonly bits: Stock<"bits", RandomBits> = new Stock((_, n) => makeRandomBits(this, n));

  private constructor(
    readonly mesh: Mesh,
    readonly backend: Backend,
    readonly rand: Randomness,
    readonly fracBits: number,
    readonly truncation: TruncationMode,
  ) {}

  get index(): number {
    return this.mesh.party;
  }
  get next(): number {
    return this.mesh.nextParty;
  }
  get prev(): number {
    return this.mesh.prevParty;
  }

  /** Sets the protocol step now running (errors name it) and returns the step it replaces, for the caller to restore. */
  setStep(step: string): string {
    const before = this.mesh.step;
    this.mesh.step = step;
    return before;
  }

  /**
   * Correlated randomness from the mesh: k_i, shared by P_i and P_next(i),
   * is the PRF key of their link, derived at setup from an authenticated key
   * exchange, so it never crossed the wire and no round is spent on it.
   */
  static setup(mesh: Mesh, backend: Backend, fracBits: number, truncation: TruncationMode = "local"): Party {
    // The mesh names the step and round of each draw in the ledger and in errors.
    const rand = new Randomness(backend, mesh.prfKey(mesh.nextParty), mesh.prfKey(mesh.prevParty), mesh);
    return new Party(mesh, backend, rand, fracBits, truncation);
  }
}
