/**
 * Privacy sanity: what each party receives during a protocol, and its own
 * share pair, look uniform and do not depend on the secret. A chi-square test
 * on byte values (255 degrees of freedom: a false alarm about once in 10^8 checks at 400) for
 * each view, and a two-sample test between the views under two secrets.
 */
import assert from "node:assert/strict";
import { RingTensor } from "../../lib/ring/tensor.ts";
import type { AShare } from "../../lib/mpc/arithmetic.ts";
import { shareInput } from "../../lib/mpc/input.ts";
import { mulFixed } from "../../lib/mpc/multiply.ts";
import { truncate } from "../../lib/mpc/truncate.ts";
import { msb } from "../../lib/mpc/msb.ts";
import { relu } from "../../lib/mpc/relu.ts";
import { maxLastAxis } from "../../lib/mpc/max.ts";
import type { TruncationMode } from "../../lib/mpc/party.ts";
import { deviceTest } from "../helpers.ts";
import { runParties } from "./harness.ts";

// 255 degrees of freedom. At the 99.99th percentile (347) this file's ~170 checks failed about once in a hundred runs
// with nothing wrong (a fresh-clone CI run did); 400 is past the 1 - 10^-8 point (Wilson-Hilferty), while a missing
// mask scores in the thousands.
const CHI2_LIMIT = 400;

function histogram(chunks: Uint8Array[]): number[] {
  const h = new Array(256).fill(0);
  for (const c of chunks) for (const b of c) h[b]++;
  return h;
}

function chiUniform(h: number[]): number {
  const n = h.reduce((a, b) => a + b, 0), e = n / 256;
  return h.reduce((s, o) => s + (o - e) ** 2 / e, 0);
}

function chiTwoSample(a: number[], b: number[]): number {
  const na = a.reduce((x, y) => x + y, 0), nb = b.reduce((x, y) => x + y, 0);
  let s = 0;
  for (let i = 0; i < 256; i++) {
    const tot = a[i] + b[i];
    if (tot === 0) continue;
    const ea = (tot * na) / (na + nb), eb = (tot * nb) / (na + nb);
    s += (a[i] - ea) ** 2 / ea + (b[i] - eb) ** 2 / eb;
  }
  return s;
}

const protocols: [string, (x: AShare) => Promise<{ dispose(): void }>, TruncationMode?][] = [
  ["fixed-point multiply", (x) => mulFixed(x, x)],
  ["truncate", (x) => truncate(x, 20)],
  ["truncate, corrected", (x) => truncate(x, 20), "corrected"],
  ["fixed-point multiply, corrected truncation", (x) => mulFixed(x, x), "corrected"],
  ["msb", (x) => msb(x)],
  ["msb, carry-save", (x) => msb(x, "carry-save")],
  ["ReLU", (x) => relu(x)],
  ["max", async (x) => (await maxLastAxis(x.reshape([x.size / 8, 8]))).max],
];

async function views(
  secret: Float64Array,
  run: (x: AShare) => Promise<{ dispose(): void }>,
  truncation: TruncationMode = "local",
) {
  return await runParties(async (p) => {
    using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, secret, 20) : null, [secret.length]);
    const received: Uint8Array[] = [];
    p.mesh.onReceive = (_from, payload) => received.push(payload.slice());
    (await run(x)).dispose();
    p.mesh.onReceive = null;
    return { received, shares: [x.cur.toBytes(), x.next.toBytes()] };
  }, { truncation });
}

for (const [name, run, truncation] of protocols) {
  deviceTest(`privacy sanity: ${name}: each party's view is uniform and independent of the secret`, async () => {
    const n = 16384;
    const zeros = new Float64Array(n);
    const large = Float64Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * (1000 + i));
    const a = await views(zeros, run, truncation), b = await views(large, run, truncation);
    for (let i = 0; i < 3; i++) {
      const ha = histogram(a[i].received), hb = histogram(b[i].received);
      if (ha.reduce((x, y) => x + y, 0) < 4096) continue; // a party that receives (almost) nothing
      assert.ok(chiUniform(ha) < CHI2_LIMIT, `${name}: party ${i}'s view under secret 0: chi2 ${chiUniform(ha)}`);
      assert.ok(chiUniform(hb) < CHI2_LIMIT, `${name}: party ${i}'s view under secret 1: chi2 ${chiUniform(hb)}`);
      assert.ok(chiTwoSample(ha, hb) < CHI2_LIMIT, `${name}: party ${i}'s views differ: chi2 ${chiTwoSample(ha, hb)}`);
      for (const v of [a[i], b[i]]) {
        for (const s of v.shares) assert.ok(chiUniform(histogram([s])) < CHI2_LIMIT, `${name}: party ${i}'s share`);
      }
    }
  });
}
