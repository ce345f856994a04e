import { RingTensor } from "./lib/ring/tensor.ts";
import { shareInput } from "./lib/mpc/input.ts";
import { relu } from "./lib/mpc/relu.ts";
import { runParties } from "./tests/mpc/harness.ts";
import { NativeBackend } from "./lib/native/backend.ts";
const n = 1_000_000;
const xs = Float64Array.from({ length: n }, () => Math.random() * 2000 - 1000);
const acc: Record<string, [number, number]> = {};
for (const name of Object.getOwnPropertyNames(NativeBackend.prototype)) {
  if (name === "constructor" || name === "sync") continue;
  const f = (NativeBackend.prototype as any)[name];
  if (typeof f !== "function") continue;
  (NativeBackend.prototype as any)[name] = function (...a: unknown[]) {
    const t = performance.now();
    try {
      return f.apply(this, a);
    } finally {
      const e = acc[name] ??= [0, 0];
      e[0] += performance.now() - t;
      e[1]++;
    }
  };
}
await runParties(async (p) => {
  using x = await shareInput(p, 0, p.index === 0 ? RingTensor.encode(p.backend, xs, 20) : null, [n]);
  for (let k = 0; k < 2; k++) {
    for (const key in acc) delete acc[key];
    const t0 = performance.now();
    using y = await relu(x);
    if (p.index === 2 && k === 1) {
      console.log("relu total (3 parties)", (performance.now() - t0).toFixed(1));
      console.log(
        Object.entries(acc).sort((a, b) => b[1][0] - a[1][0]).map(([k, v]) => `${k} ${v[0].toFixed(1)}ms x${v[1]}`)
          .join("\n"),
      );
    }
  }
}, { insecure: true });
