/**
 * Scopes: every tensor created while `scope(fn)` runs is disposed when fn
 * returns, except what fn returns (a tensor, or an array or object of them)
 * and what it passes to `keep`. Training loops wrap an iteration in a scope so
 * that native memory stays flat from one iteration to the next.
 */

interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

const stack: Set<Disposable>[] = [];

/** Called by every tensor constructor. */
export function track(t: Disposable): void {
  stack.at(-1)?.add(t);
}

/** Moves t out of the current scope into the enclosing one (or none). */
export function keep<T extends Disposable>(t: T): T {
  const top = stack.at(-1);
  if (top?.delete(t)) stack.at(-2)?.add(t);
  return t;
}

function collect(value: unknown, into: Set<unknown>): void {
  if (value === null || typeof value !== "object" || into.has(value)) return;
  into.add(value);
  if (Array.isArray(value)) value.forEach((v) => collect(v, into));
  else if (Object.getPrototypeOf(value) === Object.prototype) Object.values(value).forEach((v) => collect(v, into));
}

export function scope<T>(fn: () => T): T {
  if (fn.constructor.name === "AsyncFunction") {
    throw new TypeError("scope: fn must be synchronous; use scopeAsync for async work");
  }
  stack.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of stack.pop()!) t.dispose();
    throw e;
  }
  return close(result);
}

/** scope for async work. Tensors made by other tasks meanwhile land in this scope too: don't interleave. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  stack.push(new Set());
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    for (const t of stack.pop()!) t.dispose();
    throw e;
  }
  return close(result);
}

function close<T>(result: T): T {
  const created = stack.pop()!;
  const kept = new Set<unknown>();
  collect(result, kept);
  const outer = stack.at(-1);
  for (const t of created) {
    if (kept.has(t)) outer?.add(t);
    else t.dispose();
  }
  return result;
}
