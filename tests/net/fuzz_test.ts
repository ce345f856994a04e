/**
 * A short fuzzing run (bench/fuzz/) of the parsers of bytes that come from
 * another party: the handshake hello with its length-prefixed reader, the
 * channel's frames (plain and sealed), and the parties file. `cryptgpu bench
 * fuzz` runs 10^5 cases per parser; CI runs a few thousand. Any throw outside
 * the parser's error classes, a refusal that is not one printable line, an
 * allocation past the cap, an inconsistent acceptance or a case over 2 s
 * fails, with the seed and case index to replay (`cryptgpu bench fuzz --seed S
 * --only P --case I`). CRYPTGPU_FUZZ_SEED picks another seed.
 */
import assert from "node:assert/strict";
import { fuzzParser } from "../../bench/fuzz.ts";
import { Rng } from "../../bench/fuzz/rng.ts";
import { mutateBytes } from "../../bench/fuzz/mutate.ts";
import { mutateJson } from "../../bench/fuzz/json.ts";
import { ConfigError, parsePartiesDocument } from "../../lib/net/config.ts";
import { parseHello, RejectedConnection, SetupError } from "../../lib/net/handshake.ts";
import { oneLine } from "../../bench/fuzz/harness.ts";
import { deviceAvailable } from "../helpers.ts";
import { assertClean, CASES, FUZZ_SEED } from "./fuzz_check.ts";

Deno.test("fuzz: the handshake hello and its length-prefixed reader refuse with one line, within 4096 bytes", async () => {
  const r = await fuzzParser("hello", { cases: CASES, seed: FUZZ_SEED });
  assertClean(r, "hello");
  assert.ok(r.largestAllocation <= 4096);
  for (const k of ["RejectedConnection", "SetupError", "PeerClosedError"]) assert.ok(r.refused[k] > 0, k);
});

Deno.test("parseHello refuses, on one line, what the fuzzer found: a version that is an object or has a line break", () => {
  const found = [
    '{"protocol":"cryptgpu","version":{"toString":1}}', // `${v}` of it throws TypeError: Cannot convert object to primitive value
    '{"protocol":"cryptgpu","version":"2\\nx"}',
    `{"protocol":"cryptgpu","version":2,"from":0,"to":1,"session":"s","secure":false,"nonce":"${"0".repeat(64)}",` +
    `"ephemeral":"${"0".repeat(64)}","ca":null,"cert":null,"a\\nb":1}`, // zod names the unknown key as it is
  ];
  for (const text of found) {
    assert.throws(() => parseHello(new TextEncoder().encode(text)), (e: Error) => {
      assert.ok(e instanceof SetupError || e instanceof RejectedConnection, `${text}: ${e}`);
      assert.ok(oneLine(e.message), `${text}: ${JSON.stringify(e.message)}`);
      return true;
    });
  }
});

Deno.test({
  name: "fuzz: channel frames, plain and sealed: no read past the target or max, sealed frames never altered",
  ignore: !deviceAvailable,
  fn: async () => {
    const r = await fuzzParser("channel", { cases: CASES, seed: FUZZ_SEED });
    assertClean(r, "channel");
    assert.ok(r.refused.ChannelError > 0 && r.refused.PeerClosedError > 0);
    assert.ok((r.acceptedAs["exact bytes"] ?? 0) > 0);
  },
});

Deno.test("fuzz: the parties file's validation refuses with one line", async () => {
  const r = await fuzzParser("parties", { cases: CASES, seed: FUZZ_SEED });
  assertClean(r, "parties");
});

Deno.test("a parties file that is not JSON is refused on one line, its line breaks escaped", () => {
  assert.throws(() => parsePartiesDocument('{\n  "parties": [\n,\n]\n}', "parties file p.json"), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^parties file p\.json is not JSON: /);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});

Deno.test("fuzz: mutations replay from the seed and the case index", () => {
  const input = new TextEncoder().encode('{"a":[1,2,{"b":"c"}],"d":null}');
  for (let i = 0; i < 200; i++) {
    assert.deepEqual(mutateBytes(Rng.forCase(5n, i), input), mutateBytes(Rng.forCase(5n, i), input));
    const doc = { a: [1, 2, { b: "c" }], d: null };
    assert.equal(
      mutateJson(Rng.forCase(5n, i), doc, { maxString: 64 }),
      mutateJson(Rng.forCase(5n, i), doc, { maxString: 64 }),
    );
  }
});
