/**
 * DReLU and ReLU on fixed-point sharings: DReLU(x) = 1 - msb(x) and
 * ReLU(x) = x - msb(x) * x. msb (8 rounds) then one bit injection (2 rounds):
 * 10 rounds; every party sends 182 / 8 + 8 / 3 bytes (msb) and 5/3 words
 * (bit injection), 38.75 bytes per element.
 */
import type { AShare } from "./arithmetic.ts";
import type { BShare } from "./binary.ts";
import { bitInject, bitToArithmetic } from "./bitinject.ts";
import { msb } from "./msb.ts";

/** ReLU(x), and the DReLU bits <1 - msb> kept for the backward pass if asked. */
export async function relu(x: AShare): Promise<AShare> {
  using sign = await msb(x);
  using negPart = await bitInject(sign, x);
  return x.sub(negPart);
}

/** msb as returned by `msb` turned into the arithmetic 0/1 sharing of DReLU(x) = 1 - msb(x). */
export async function drelu(x: AShare): Promise<AShare> {
  using sign = await msb(x);
  return await dreluFromSign(sign, x);
}

export async function dreluFromSign(sign: BShare, like: AShare): Promise<AShare> {
  using m = await bitToArithmetic(sign, like);
  using negM = m.neg();
  return negM.addPublic(1n);
}
