/** Checks of a share file's header that need no session: run before any protocol starts. */
import { dims, FileFormatError, type Header, quoted, readTensorFile } from "./format.ts";

/** The header of `path`, which must be party `party`'s share file of the given kind. */
export async function checkShareFile(path: string, party: number, kind: Header["kind"]): Promise<Header> {
  const { header } = await readTensorFile(path);
  if (!header.share) throw new FileFormatError(`${path} is not a share file`);
  if (header.share.party !== party) {
    throw new FileFormatError(`${path} is party ${header.share.party}'s share file, not party ${party}'s`);
  }
  if (header.kind !== kind) throw new FileFormatError(`${path} holds a ${header.kind}, not a ${kind}`);
  return header;
}

/** That a model file's tensors are exactly the parameters of its model (names and shapes). */
export function checkModelTensors(path: string, h: Header, paramShapes: [string, number[]][]): void {
  const expected = new Map(paramShapes.map(([n, s]) => [n, s.join()]));
  for (const t of h.tensors) {
    if (expected.get(t.name) !== t.shape.join()) {
      throw new FileFormatError(`${path}: tensor ${quoted(t.name)} ${dims(t.shape)} is not in ${quoted(h.model)}`);
    }
  }
  const missing = [...expected.keys()].filter((n) => !h.tensors.some((t) => t.name === n));
  if (missing.length) throw new FileFormatError(`${path}: ${h.model} needs ${missing.join(", ")}, not in the file`);
}
