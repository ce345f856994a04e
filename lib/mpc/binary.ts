/**
 * Binary replicated sharing <x>: x = x_0 ^ x_1 ^ x_2, on 64-bit words or on
 * packed bit rows ("bit" tensors of shape [n, width]). P_i holds
 * (x_i, x_next(i)) as (cur, next). XOR and NOT are local.
 */
import type { Shape } from "../ring/shape.ts";
import { type DType, RingTensor } from "../ring/tensor.ts";
import type { Party } from "./party.ts";

export class BShare {
  constructor(readonly party: Party, readonly cur: RingTensor, readonly next: RingTensor) {}

  get shape(): Shape {
    return this.cur.shape;
  }
  get dtype(): DType {
    return this.cur.dtype;
  }

  map(f: (share: RingTensor) => RingTensor): BShare {
    return new BShare(this.party, f(this.cur), f(this.next));
  }

  xor(o: BShare): BShare {
    return new BShare(this.party, this.cur.xor(o.cur), this.next.xor(o.next));
  }

  /** x ^ c for public c: applied to share 0 only. */
  xorPublic(c: RingTensor | bigint): BShare {
    return new BShare(
      this.party,
      this.party.index === 0 ? this.cur.xor(c) : this.cur.clone(),
      this.party.next === 0 ? this.next.xor(c) : this.next.clone(),
    );
  }

  /** !x: share 0 flipped. */
  not(): BShare {
    const p = this.party;
    return new BShare(
      p,
      p.index === 0 ? this.cur.not() : this.cur.clone(),
      p.next === 0 ? this.next.not() : this.next.clone(),
    );
  }

  /** Bits start, start + step, ... (count of them) of every row, packed: [rows, count]. */
  gatherBits(start: number, step: number, count: number): BShare {
    return this.map((s) => s.gatherBits(start, step, count));
  }

  dispose(): void {
    this.cur.dispose();
    this.next.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * A sharing whose share j is share(j) for the shares this party holds,
   * zero where share(j) is null: e.g. an arithmetic share x_j re-read as the
   * binary sharing <x_j>.
   */
  static fromShares(p: Party, shape: Shape, dtype: DType, share: (j: number) => RingTensor | null): BShare {
    const pick = (j: number) => share(j)?.clone() ?? RingTensor.zeros(p.backend, shape, dtype);
    return new BShare(p, pick(p.index), pick(p.next));
  }
}
