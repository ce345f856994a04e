/**
 * Correlated randomness without a dealer (protocols.md): P_i draws a 128-bit
 * key k_i and sends it to P_next(i), so k_i is known to exactly P_i and
 * P_next(i). F(k, nonce) is AES-128-CTR with the nonce in the counter block's
 * high 64 bits and the block index in the low 64.
 *
 * Nonces come from one counter that every party advances identically: a
 * protocol step takes a nonce whether or not this party draws with it, so the
 * words drawn depend only on the protocol's public shape, never on which party
 * happens to use a key.
 *
 * Every draw starts at block 0 of its nonce, so two draws under one key and
 * nonce give the same words: a mask used twice. Every build refuses that (and
 * a nonce the counter has not issued yet, which a later step would be given):
 * one bit per issued nonce and key records which were drawn from. Tests also
 * turn on `Randomness.recording`, which keeps a ledger of every draw for the
 * checks in tests/mpc/ledger.ts; off, it costs one branch per draw.
 */
import type { Backend } from "../native/backend.ts";
import type { Shape } from "../ring/shape.ts";
import { type DType, RingTensor } from "../ring/tensor.ts";

export type KeyName = "own" | "prev";

/** One draw: `to - from` AES blocks of F(key, nonce) from block `from`, in protocol step `step` at round `round`. */
export interface Draw {
  key: KeyName;
  nonce: bigint;
  from: number;
  to: number;
  step: string;
  round: number;
}

/** Where draws happen, for the ledger and errors: the mesh (its step name and round count). */
export interface DrawSite {
  readonly step: string;
  readonly rounds: number;
}

export class Randomness {
  /** Record every draw in `ledger`; read at construction (tests set it before the parties are set up). */
  static recording = false;

  /** Every draw in order while recording, else null. */
  readonly ledger: Draw[] | null = Randomness.recording ? [] : null;
  #nonce = 0n;
  #used = { own: new Uint8Array(64), prev: new Uint8Array(64) };

  /** own = k_i (shared with P_next), prev = k_prev(i) (shared with P_prev). */
  constructor(
    readonly backend: Backend,
    readonly own: Uint8Array,
    readonly prev: Uint8Array,
    readonly site: DrawSite = { step: "", rounds: 0 },
  ) {}

  /** A fresh nonce; every party calls this at the same points of a protocol. */
  nonce(): bigint {
    return this.#nonce++;
  }

  /** F(k, nonce): `own` is common with P_next, `prev` with P_prev. */
  draw(key: KeyName, shape: Shape, nonce: bigint, dtype: DType = "u64"): RingTensor {
    const t = RingTensor.empty(this.backend, shape, dtype);
    try {
      this.drawInto(key, t, nonce);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /** The same words as `draw` of out's shape, written into out (a tensor or a slice). */
  drawInto(key: KeyName, out: RingTensor, nonce: bigint): void {
    this.#take(key, nonce, RingTensor.prfBlocks(out.words));
    out.assignPrf(key === "own" ? this.own : this.prev, nonce << 64n);
  }

  /** The two draws of a zero-share, F(k_i) and F(k_prev), for fused kernels. */
  zeroShareParts(shape: Shape, dtype: DType = "u64"): [RingTensor, RingTensor] {
    const c = this.nonce();
    return [this.draw("own", shape, c, dtype), this.draw("prev", shape, c, dtype)];
  }

  /** Arithmetic zero-share: a_i = F(k_i) - F(k_prev); a_0 + a_1 + a_2 = 0. */
  zeroShare(shape: Shape): RingTensor {
    const c = this.nonce();
    using a = this.draw("own", shape, c), b = this.draw("prev", shape, c);
    return a.sub(b);
  }

  /** Binary zero-share: b_i = F(k_i) ^ F(k_prev). */
  zeroShareBits(shape: Shape, dtype: DType = "u64"): RingTensor {
    const c = this.nonce();
    using a = this.draw("own", shape, c, dtype), b = this.draw("prev", shape, c, dtype);
    return a.xor(b);
  }

  /** Marks (key, nonce) drawn from, refusing a second draw or an unissued nonce; records the draw if asked. */
  #take(key: KeyName, nonce: bigint, blocks: number): void {
    if (nonce < 0n || nonce >= this.#nonce) {
      throw new RangeError(
        `randomness: nonce ${nonce} drawn ${this.#where()} was never issued by nonce() (${this.#nonce} issued so far); ` +
          "a made-up nonce collides with one a later step takes",
      );
    }
    const n = Number(nonce), byte = Math.floor(n / 8), bit = 1 << (n % 8);
    let used = this.#used[key];
    if (byte >= used.length) {
      used = new Uint8Array(Math.max(2 * used.length, byte + 1));
      used.set(this.#used[key]);
      this.#used[key] = used;
    }
    if (used[byte] & bit) {
      throw new Error(
        `randomness: nonce ${nonce} was already drawn from under the '${key}' key; drawing it again ${this.#where()} ` +
          "would repeat the same mask (every draw starts at block 0); take a fresh rand.nonce() for each draw",
      );
    }
    used[byte] |= bit;
    this.ledger?.push({ key, nonce, from: 0, to: blocks, step: this.site.step, round: this.site.rounds });
  }

  #where(): string {
    return `in step '${this.site.step}' (round ${this.site.rounds})`;
  }
}
