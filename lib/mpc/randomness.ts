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
 */
import type { Backend } from "../native/backend.ts";
import type { Shape } from "../ring/shape.ts";
import { type DType, RingTensor } from "../ring/tensor.ts";

export class Randomness {
  #nonce = 0n;

  /** own = k_i (shared with P_next), prev = k_prev(i) (shared with P_prev). */
  constructor(readonly backend: Backend, readonly own: Uint8Array, readonly prev: Uint8Array) {}

  /** A fresh nonce; every party calls this at the same points of a protocol. */
  nonce(): bigint {
    return this.#nonce++;
  }

  /** F(k, nonce): `own` is common with P_next, `prev` with P_prev. */
  draw(key: "own" | "prev", shape: Shape, nonce: bigint, dtype: DType = "u64"): RingTensor {
    return RingTensor.prf(this.backend, shape, key === "own" ? this.own : this.prev, nonce << 64n, dtype);
  }

  /** The same words as `draw` of out's shape, written into out (a tensor or a slice). */
  drawInto(key: "own" | "prev", out: RingTensor, nonce: bigint): void {
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
}
