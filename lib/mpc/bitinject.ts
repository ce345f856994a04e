/**
 * Bit injection: from a shared bit <b> and [[a]], the product [[b * a]].
 *
 * One part of the tensor has a leader L, its follower F = next(L) and helper
 * H = prev(L). L holds b_L and b_F, so it knows c = b_L ^ b_F; F and H both
 * hold d = b_H. L knows u = a_L + a_F; F and H both hold a_H. Then
 *   b * a = (c ^ d)(u + a_H) = c u + d (1 - 2c) u + d a_H + c (1 - 2d) a_H,
 * and each cross term is a value L knows times one that F and H both know.
 * With masks s, s', r, r' from k_H (L and H hold it, F does not):
 * Round 1:
 *   - L sends F: A = (1 - 2c) u + s, B = c + s', T = c u - r;
 *   - H sends F: W = -d s - (1 - 2d) a_H s' - r'.
 *   F adds d A + (1 - 2d) a_H B + T + W + d a_H = b a - r - r'.
 * Round 2: with f = F(k_L) (L and F), the shares are
 *   share L = r + r' (L, H), share F = f (L, F), share H = b a - r - r' - f,
 *   which F sends to H.
 * Every message is masked by a key its receiver lacks: F sees four values
 * under k_H, H one under k_L, and L receives nothing.
 *
 * The leader sends 3 words per element and the others 1, so the tensor is cut
 * in thirds and party j leads third j: 5/3 words per element from every
 * party, 2 rounds (INJECT_WORDS).
 */
import { RingTensor } from "../ring/tensor.ts";
import { AShare } from "./arithmetic.ts";
import type { BShare } from "./binary.ts";
import { injectStep } from "./local_steps.ts";
import type { Party } from "./party.ts";
import { exchange, exchangeInto, type TensorRecv, type TensorSend } from "./transfer.ts";

/**
 * Words each party sends per bit when a bit multiplies a row of k elements:
 * the leader's 2k + 1 and the others' k each, averaged over the three thirds.
 */
export const injectWords = (k: number): number => (4 * k + 1) / 3;

/** [lo, hi) of the third of n rows that party j leads. */
export function third(n: number, j: number): [number, number] {
  return [Math.floor((j * n) / 3), Math.floor(((j + 1) * n) / 3)];
}

/**
 * b: a binary sharing of n packed bits ([n, 1]); a: an arithmetic sharing of
 * n * k elements, read as n rows of k: bit e multiplies row e (k = 1 for one
 * bit per element).
 */
export function bitInject(b: BShare, a: AShare): Promise<AShare> {
  return inject(b, a, false);
}

/** [[(1 - b) * a]]: the same protocol with the leader flipping c, so b ^ 1 costs nothing (ReLU = (1 - msb) x). */
export function bitInjectComplement(b: BShare, a: AShare): Promise<AShare> {
  return inject(b, a, true);
}

async function inject(b: BShare, a: AShare, complement: boolean): Promise<AShare> {
  const p = a.party;
  const shape = a.shape, n = b.shape[0] * (b.shape[1] ?? 1);
  // nothing to inject: shapes are public, so every party returns here
  if (n === 0 && a.size === 0) return a.map((t) => t.clone());
  if (n === 0 || a.size % n !== 0) throw new RangeError(`bitInject: ${n} bits for ${a.size} elements`);
  const before = p.setStep("bit injection");
  const held: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (held.push(t), t);
  try {
    const rows = own(a.reshape([n, a.size / n]));
    // The result's two shares; each third's roles write their part of them.
    const cur = own(RingTensor.empty(p.backend, rows.shape)), next = own(RingTensor.empty(p.backend, rows.shape));
    // Every party draws the same nonces for every third, whatever its role there.
    const parts = [0, 1, 2].map((leader) => {
      const [lo, hi] = third(n, leader);
      const nonces = [p.rand.nonce(), p.rand.nonce(), p.rand.nonce(), p.rand.nonce(), p.rand.nonce()] as Nonces;
      const slice = (t: RingTensor) => own(t.slice(0, lo, hi));
      const part: Part = {
        a: new AShare(p, slice(rows.cur), slice(rows.next)),
        bits: b,
        bitOffset: lo,
        out: [slice(cur), slice(next)],
        nonces,
        complement,
      };
      return roles[(p.index - leader + 3) % 3](p, part, own);
    });
    const first = await exchange(p.mesh, p.backend, parts.flatMap((r) => r.sends), parts.flatMap((r) => r.recvs));
    first.forEach((t) => own(t));
    let at = 0;
    const seconds = parts.map((r) => r.second(first.slice(at, at += r.recvs.length)));
    await exchangeInto(p.mesh, seconds.flatMap((s) => s.sends), seconds.flatMap((s) => s.recvs));
    return new AShare(p, cur.reshape(shape), next.reshape(shape));
  } finally {
    held.forEach((t) => t.dispose());
    p.setStep(before);
  }
}

/** The nonces of one third: s, s', r, r' (under k_H) and f (under k_L). */
type Nonces = [bigint, bigint, bigint, bigint, bigint];

/**
 * One third of the rows as this party holds them: its shares of a, its shares
 * of all the bits (packed; the third's start at bitOffset), and the slices of
 * the result's (cur, next) shares that its role writes.
 */
interface Part {
  a: AShare;
  bits: BShare;
  bitOffset: number;
  out: [RingTensor, RingTensor];
  nonces: Nonces;
  /** Inject 1 - b: the leader alone flips its c = b_L ^ b_F. */
  complement: boolean;
}

type Own = <T extends { dispose(): void }>(t: T) => T;

/** A role's round-1 messages and how it goes on with what it received. */
interface Round1 {
  sends: TensorSend[];
  recvs: TensorRecv[];
  second(got: RingTensor[]): Round2;
}
/** Round 2's messages; what arrives is received straight into the result's slice. */
interface Round2 {
  sends: TensorSend[];
  recvs: { from: number; into: RingTensor }[];
}

const nothing: TensorRecv[] = [];

const roles: [
  (p: Party, x: Part, own: Own) => Round1,
  (p: Party, x: Part, own: Own) => Round1,
  (
    p: Party,
    x: Part,
    own: Own,
  ) => Round1,
] = [
  // Leader L: holds (b_L, b_F) and (a_L, a_F); its `prev` key is k_H, its `own` key k_L.
  (p, { a, bits, bitOffset, out: [shareL, shareF], nonces: [s, s2, r, r2, f], complement }, own) => {
    const shape = a.shape, col = [shape[0], 1];
    const masks = [p.rand.draw("prev", shape, s), p.rand.draw("prev", col, s2)].map(own);
    const [rMask, r2Mask] = [p.rand.draw("prev", shape, r), p.rand.draw("prev", shape, r2)].map(own);
    const [A, B, T] = [shape, col, shape].map((sh) => own(RingTensor.empty(p.backend, sh)));
    // c = b_L ^ b_F (^ 1), u = a_L + a_F: A = (1 - 2c) u + s, B = c + s', T = c u - r, share L = r + r'
    injectStep(
      "leader",
      [bits.cur, bits.next],
      bitOffset,
      [a.cur, a.next, ...masks, rMask, r2Mask],
      [A, B, T, shareL],
      complement,
    );
    p.rand.drawInto("own", shareF, f);
    return {
      sends: [A, B, T].map((tensor) => ({ to: p.next, tensor })),
      recvs: nothing,
      second: () => ({ sends: [], recvs: [] }),
    };
  },
  // Follower F: holds (b_F, b_H) and (a_F, a_H); its `prev` key is k_L.
  (p, { a, bits, bitOffset, out: [shareF, shareH], nonces: [, , , , f] }) => {
    const shape = a.shape, col = [shape[0], 1];
    return {
      sends: [],
      recvs: [
        { from: p.prev, shape },
        { from: p.prev, shape: col },
        { from: p.prev, shape },
        { from: p.next, shape },
      ],
      second: ([A, B, T, W]) => {
        p.rand.drawInto("prev", shareF, f);
        // d = b_H: share H = d A + (1 - 2d) a_H B + T + W + d a_H - f
        injectStep("follower", [bits.next], bitOffset, [a.next, A, B, T, W, shareF], [shareH]);
        return { sends: [{ to: p.next, tensor: shareH }], recvs: [] };
      },
    };
  },
  // Helper H: holds (b_H, b_L) and (a_H, a_L); its `own` key is k_H.
  (p, { a, bits, bitOffset, out: [shareH, shareL], nonces: [s, s2, r, r2] }, own) => {
    const shape = a.shape, col = [shape[0], 1];
    const masks = [p.rand.draw("own", shape, s), p.rand.draw("own", col, s2)].map(own);
    const [rMask, r2Mask] = [p.rand.draw("own", shape, r), p.rand.draw("own", shape, r2)].map(own);
    const W = own(RingTensor.empty(p.backend, shape));
    // d = b_H: W = -(d s + (1 - 2d) a_H s' + r'), share L = r + r'
    injectStep("helper", [bits.cur], bitOffset, [a.cur, ...masks, rMask, r2Mask], [W, shareL]);
    return {
      sends: [{ to: p.prev, tensor: W }],
      recvs: nothing,
      second: () => ({ sends: [], recvs: [{ from: p.prev, into: shareH }] }),
    };
  },
];

/** [[b]] as an arithmetic 0/1 sharing shaped like `like` (a bit injection into 1). */
export async function bitToArithmetic(b: BShare, like: AShare): Promise<AShare> {
  using zero = like.map((s) => s.mul(0n));
  using one = zero.addPublic(1n);
  return await bitInject(b, one);
}
