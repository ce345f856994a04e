/**
 * Training bookkeeping: the tape holds what each layer's forward pass keeps
 * for its backward pass (inputs, DReLU sign bits, max pooling's one-hots),
 * one child tape per sub-layer; `Grads` collects parameter gradients under the
 * parameters' full names. Both serve the private pass and the plaintext twin.
 */

/** Public values of one training iteration that layers draw from (the same at every party and in the twin). */
export interface TapeContext {
  /**
   * Dropout's public randomness: the training run's public seed and this
   * iteration's number. A Dropout layer derives its mask from them and its
   * tape's path, so a resumed run draws the masks an uninterrupted one does.
   */
  dropout?: { seed: number; iteration: number };
}

export class Tape {
  #values = new Map<string, unknown>();
  #children = new Map<string, Tape>();

  /**
   * @param context shared by every child tape
   * @param path the chain of child keys from the root ("0.main.3"): a stable identity of the layer in the network
   */
  constructor(readonly context: TapeContext = {}, readonly path = "") {}

  child(key: string): Tape {
    let t = this.#children.get(key);
    if (!t) this.#children.set(key, t = new Tape(this.context, this.path === "" ? key : `${this.path}.${key}`));
    return t;
  }

  save<T>(key: string, value: T): T {
    if (this.#values.has(key)) throw new Error(`tape: '${key}' saved twice (forward run twice on one tape?)`);
    this.#values.set(key, value);
    return value;
  }

  get<T>(key: string): T {
    if (!this.#values.has(key)) throw new Error(`tape: nothing saved as '${key}' (backward before forward?)`);
    return this.#values.get(key) as T;
  }

  /** Frees every saved native tensor, here and below. */
  dispose(): void {
    for (const v of this.#values.values()) (v as { dispose?: () => void })?.dispose?.();
    for (const c of this.#children.values()) c.dispose();
    this.#values.clear();
    this.#children.clear();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Parameter gradients by full parameter name. */
export class Grads<T> {
  constructor(readonly map = new Map<string, T>(), readonly prefix = "") {}

  /** The sink for a sub-layer whose parameters are named `${key}.*`. */
  child(key: string): Grads<T> {
    return new Grads(this.map, `${this.prefix}${key}.`);
  }

  set(name: string, g: T): void {
    const full = this.prefix + name;
    if (this.map.has(full)) throw new Error(`gradient of ${full} set twice`);
    this.map.set(full, g);
  }
}
