/**
 * Arithmetic replicated sharing [[x]]: x = x_0 + x_1 + x_2 mod 2^64, and
 * party P_i holds the pair (x_i, x_next(i)) as (cur, next). Linear operations
 * are local; everything that needs the network lives in its own protocol file.
 */
import type { Shape } from "../ring/shape.ts";
import { RingTensor } from "../ring/tensor.ts";
import type { Party } from "./party.ts";

export class AShare {
  constructor(readonly party: Party, readonly cur: RingTensor, readonly next: RingTensor) {}

  get shape(): Shape {
    return this.cur.shape;
  }
  get size(): number {
    return this.cur.size;
  }

  /** Applies a local map to both shares (a linear map of the secret). */
  map(f: (share: RingTensor) => RingTensor): AShare {
    return new AShare(this.party, f(this.cur), f(this.next));
  }

  add(o: AShare): AShare {
    return new AShare(this.party, this.cur.add(o.cur), this.next.add(o.next));
  }
  sub(o: AShare): AShare {
    return new AShare(this.party, this.cur.sub(o.cur), this.next.sub(o.next));
  }
  neg(): AShare {
    return this.map((s) => s.neg());
  }

  /** x + c for a public c: added to share 0 only, by the two parties that hold it. */
  addPublic(c: RingTensor | bigint): AShare {
    const [curIndex, nextIndex] = [this.party.index, this.party.next];
    return new AShare(
      this.party,
      curIndex === 0 ? this.cur.add(c) : this.cur.clone(),
      nextIndex === 0 ? this.next.add(c) : this.next.clone(),
    );
  }

  /** x * c for a public integer (or integer tensor) c; no truncation. */
  mulPublic(c: RingTensor | bigint): AShare {
    return this.map((s) => s.mul(c));
  }

  /** A view of [start, end) along an axis. */
  slice(axis: number, start: number, end: number): AShare {
    return this.map((s) => s.slice(axis, start, end));
  }

  /** Dense copies of both shares (after slicing or permuting). */
  contiguous(): AShare {
    return this.map((s) => s.contiguous());
  }

  static concat(parts: readonly AShare[], axis: number): AShare {
    return new AShare(
      parts[0].party,
      RingTensor.concat(parts.map((x) => x.cur), axis),
      RingTensor.concat(parts.map((x) => x.next), axis),
    );
  }

  reshape(shape: Shape): AShare {
    return this.map((s) => s.reshape(shape));
  }
  transpose(a = -2, b = -1): AShare {
    return this.map((s) => s.transpose(a, b));
  }
  sum(axis: number, keepDims = false): AShare {
    return this.map((s) => s.sum(axis, keepDims));
  }

  dispose(): void {
    this.cur.dispose();
    this.next.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
