/**
 * DReLU and ReLU on fixed-point sharings: DReLU(x) = 1 - msb(x) and
 * ReLU(x) = (1 - msb(x)) * x, the complement injected directly. msb (8
 * rounds) then one bit injection (2 rounds): 10 rounds; every party sends 190 / 8 bytes (msb) and 5/3 words
 * (bit injection), 37.08 bytes per element. Under preprocessed truncation both open x masked instead
 * (msb_masked.ts): DReLU 7 rounds, ReLU 8, 31.75 bytes.
 */
import type { AShare } from "./arithmetic.ts";
import type { BShare } from "./binary.ts";
import { bitInjectComplement } from "./bitinject.ts";
import { msb } from "./msb.ts";
import { dreluMasked, reluMasked } from "./msb_masked.ts";

/** Rounds of relu: msb, then the bit injection. */
export const RELU_ROUNDS = 10;

/** ReLU(x), and the DReLU bits <1 - msb> kept for the backward pass if asked. */
export async function relu(x: AShare): Promise<AShare> {
  if (x.party.truncation === "preprocessed") return await reluMasked(x); // 8 rounds
  using sign = await msb(x);
  return await bitInjectComplement(sign, x);
}

/** msb as returned by `msb` turned into the arithmetic 0/1 sharing of DReLU(x) = 1 - msb(x). */
export async function drelu(x: AShare): Promise<AShare> {
  if (x.party.truncation === "preprocessed") return await dreluMasked(x); // 7 rounds
  using sign = await msb(x);
  return await dreluFromSign(sign, x);
}

export async function dreluFromSign(sign: BShare, like: AShare): Promise<AShare> {
  using zero = like.map((s) => s.mul(0n));
  using one = zero.addPublic(1n);
  return await bitInjectComplement(sign, one);
}
