/**
 * Structure-aware mutations of a JSON document: a node (any value, the root
 * included) is replaced by a huge or negative number, a string, null, nested
 * arrays, a long or odd unicode string, a copy of another node; numbers are
 * nudged, arrays and objects lose, gain or duplicate members, keys are
 * renamed or given twice. What JSON.stringify cannot write (NaN, 1e999, -0,
 * deep nesting, duplicate keys) goes in as raw text through placeholders.
 */
import type { Rng } from "./rng.ts";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Slot = { parent: Json[] | { [k: string]: Json } | null; key: string | number };

export interface JsonMutateOptions {
  /** The longest string to insert (e.g. past the format's cap, so that size checks are reached). */
  maxString: number;
  /** Key names worth adding or duplicating besides the document's own. */
  keys?: readonly string[];
}

const NUMBERS = [
  0,
  1,
  -1,
  2,
  3,
  0.5,
  -0.5,
  62,
  63,
  64,
  255,
  256,
  4096,
  4097,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 63,
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
  -(2 ** 31),
  -(2 ** 53),
];
const RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "-0", "0x10", "01", "1.", ".5", "+1", "1e-999"];
const ODD_STRINGS = [
  "",
  "\u0000",
  "a\nb",
  "\r\n",
  "\u001b[31m",
  "\u2028",
  "\u202e",
  "é",
  "😀",
  "\ud800",
  "\udfff",
  "\\",
  '"',
  "%s%n",
  "-----BEGIN CERTIFICATE-----",
  "0".repeat(64),
  "F".repeat(64),
  "f".repeat(63),
  "f".repeat(65),
];
const ODD_KEYS = ["__proto__", "toString", "valueOf", "constructor", "hasOwnProperty", "", "a\nb", "length", "0"];

/** Every slot of the tree (root first), so that one can be picked uniformly. */
function slots(root: { v: Json }): Slot[] {
  const out: Slot[] = [{ parent: root as unknown as { [k: string]: Json }, key: "v" }];
  const walk = (v: Json) => {
    if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), walk(x)));
    else if (v !== null && typeof v === "object") {
      for (const k of Object.keys(v)) out.push({ parent: v, key: k }), walk(v[k]);
    }
  };
  walk(root.v);
  return out;
}

/** Sets a member as an own property, whatever its name ("__proto__" included, which `=` would treat apart). */
function put(o: { [k: string]: Json }, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function get(s: Slot): Json {
  return (s.parent as Record<string | number, Json>)[s.key];
}
function set(s: Slot, v: Json): void {
  if (Array.isArray(s.parent)) s.parent[s.key as number] = v;
  else put(s.parent as { [k: string]: Json }, String(s.key), v);
}

class Raw {
  texts: string[] = [];
  /** A string that stands for raw JSON text until render(). */
  add(text: string): string {
    this.texts.push(text);
    return `\u0001raw${this.texts.length - 1}\u0001`;
  }
  /** A key that stands for raw text (a name the object already has, to give it twice). */
  key(text: string): string {
    this.texts.push(text);
    return `\u0002key${this.texts.length - 1}\u0002`;
  }
  render(doc: Json): string {
    // JSON.stringify escapes U+0001 and U+0002 as \u0001 and \u0002, so a placeholder never collides with the
    // document's own text, which keeps those characters escaped.
    return JSON.stringify(doc).replace(
      /"\\u000([12])(?:raw|key)(\d+)\\u000[12]"/g,
      (_, _k, i) => this.texts[Number(i)],
    );
  }
}

function longString(rng: Rng, max: number): string {
  const n = rng.chance(0.5) ? max : rng.range(1, max);
  return rng.pick(["x", "é", "😀", "\u0000", "f"]).repeat(Math.max(1, n >> 1)).slice(0, n);
}

function value(rng: Rng, o: JsonMutateOptions, raw: Raw, others: Json[]): Json {
  switch (rng.int(12)) {
    case 0:
    case 1:
      return rng.pick(NUMBERS) * (rng.chance(0.2) ? -1 : 1);
    case 2:
      return raw.add(rng.pick(RAW_NUMBERS));
    case 3:
      return rng.pick(ODD_STRINGS);
    case 4:
      return longString(rng, o.maxString);
    case 5:
      return rng.pick([null, true, false, "", "1", "null"]);
    case 6: {
      const depth = rng.pick([1, 2, 8, 100, 1000, 10000]);
      return raw.add("[".repeat(depth) + (rng.chance(0.5) ? "1" : "") + "]".repeat(depth));
    }
    case 7:
      return new Array(rng.pick([0, 1, 2, 3, 100, 10000])).fill(rng.pick([0, 1, -1, 2 ** 31, "a", null]));
    case 8: {
      const obj = {};
      put(obj, rng.pick(ODD_KEYS), rng.pick([1, {}, null, "x"]));
      return obj;
    }
    case 9:
      return rng.chance(0.5) ? [] : {};
    default:
      return others.length ? structuredClone(rng.pick(others)) : null;
  }
}

function edit(rng: Rng, s: Slot, o: JsonMutateOptions, raw: Raw, all: Json[], keys: string[]): void {
  const v = get(s);
  const op = rng.int(10);
  if (typeof v === "number" && op < 4) {
    const f = rng.pick([(x: number) => x + 1, (x: number) => x - 1, (x: number) => -x, (x: number) => x * 2]);
    set(s, rng.chance(0.8) ? f(v) : rng.pick([v / 2, v * 1e6, v + 0.5, v * 2 ** 32]));
  } else if (Array.isArray(v) && op < 5) {
    const i = rng.int(v.length + 1);
    if (op === 0 && v.length) v.splice(rng.int(v.length), 1);
    else if (op === 1 && v.length) v.splice(i, 0, structuredClone(v[rng.int(v.length)]));
    else if (op === 2) v.length = 0;
    else if (op === 3) v.reverse();
    else v.splice(i, 0, value(rng, o, raw, all));
  } else if (v !== null && typeof v === "object" && !Array.isArray(v) && op < 6) {
    const own = Object.keys(v);
    if (op <= 1 && own.length) delete v[rng.pick(own)];
    else if (op === 2 && own.length) {
      // rename a key (to an odd name, another known key, or the same name changed)
      const k = rng.pick(own), to = rng.chance(0.5) ? rng.pick([...ODD_KEYS, ...keys]) : k + rng.pick(["", "s", "X"]);
      const x = v[k];
      delete v[k];
      put(v, to, x);
    } else if (op === 3 && own.length) {
      // give a key twice: JSON.parse keeps the later value
      put(v, raw.key(JSON.stringify(rng.pick(own))), value(rng, o, raw, all));
    } else put(v, rng.pick([...ODD_KEYS, ...keys]), value(rng, o, raw, all));
  } else set(s, value(rng, o, raw, all));
}

/**
 * 1 to 3 structural edits of a copy of doc, rendered as JSON text (which may
 * no longer be JSON, by design).
 */
export function mutateJson(rng: Rng, doc: unknown, o: JsonMutateOptions): string {
  const root = { v: structuredClone(doc) as Json };
  const raw = new Raw();
  const keys = [...(o.keys ?? [])];
  const n = rng.chance(0.6) ? 1 : rng.range(2, 3);
  for (let i = 0; i < n; i++) {
    const all = slots(root);
    const values = all.map(get);
    for (const v of values) if (v !== null && typeof v === "object" && !Array.isArray(v)) keys.push(...Object.keys(v));
    edit(rng, rng.pick(all), o, raw, values, keys);
  }
  return raw.render(root.v);
}
