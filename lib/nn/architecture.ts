/**
 * A digest of a model's architecture: its name, input shape and every
 * layer's kind and settings, so that the three parties can check, before
 * any protocol, that they run the same network (lenet and lenet:max have the
 * same weights but not the same layers).
 */
import { createHash } from "node:crypto";
import type { Model } from "./model.ts";

/** Layers as JSON with each object's class named: a Conv2d and a Linear with equal fields still differ. */
function describe(model: Model): string {
  return JSON.stringify(
    { name: model.name, input: model.inputShape, params: model.paramShapes(), net: model.net },
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)
        ? { kind: v.constructor?.name ?? "Object", ...v }
        : typeof v === "bigint"
        ? v.toString()
        : v,
  );
}

export function architectureDigest(model: Model): string {
  return createHash("sha256").update(describe(model)).digest("hex");
}
