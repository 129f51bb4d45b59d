// Tensor: a shape, a dtype and a storage on a backend, plus the autograd node that made it.
import type { Backend, Data, DerivAct, DType } from "../kernels/backend.ts";
import { fmt, type Shape, sizeOf } from "./shape.ts";

/**
 * An input's gradient that is zero outside a box of the input: `g` fills the box whose first
 * corner is `begin` (what a slice's backward gives). The engine gathers an input's boxes until it
 * needs the input's whole gradient; where they tile one axis exactly, it joins them with one
 * concat, else it pads each to the input's shape (`padded`) and adds them, as it adds gradients.
 */
export class BoxGrad {
  /** The gradients `padded` reads. */
  readonly holds: readonly Tensor[];
  constructor(readonly g: Tensor, readonly begin: readonly number[], readonly padded: () => Tensor) {
    this.holds = [g];
  }
}
/**
 * An input's gradient that a product (a convolution's input gradient) has not computed yet. The
 * engine computes it (`value`), unless it is the whole gradient of an activation's output that no
 * one else asks for (no hooks, not a leaf, not retained or asked for, no graph recorded): then
 * that activation's node takes it (Node.takes), and `times(act, z)` computes the activation's
 * input gradient in one op, the product times the derivative at z (null: not fused here).
 */
export class ProductGrad {
  /** `holds`: the gradients `value` and `times` read (the engine frees them only once this one is computed). */
  constructor(readonly value: () => Tensor, readonly times: (act: DerivAct, z: Tensor) => Tensor | null, readonly holds: readonly Tensor[]) {}
}
/**
 * Makes view t's node (a reshape, batch or unbatch: its input's elements in the same order) pass a
 * product's gradient on uncomputed (Node.takes): `back` maps a gradient of t to its input's (what
 * its backward does), `fwd` an activation input z of the input's shape to t's.
 */
export function passesProducts(t: Tensor, back: (g: Tensor) => Tensor, fwd: (z: Tensor) => Tensor): Tensor {
  if (t.node) {
    t.node.takes = (d) => [new ProductGrad(() => back(d.value()), (act, z) => {
      const r = d.times(act, fwd(z));
      return r && back(r);
    }, d.holds)];
  }
  return t;
}
/** Gradients of the inputs given the output gradient; `needs[i]` says whether input i wants one. */
export type GradFn = (g: Tensor, needs: boolean[]) => (Tensor | BoxGrad | ProductGrad | null)[];
export interface Node {
  op: string;
  inputs: Tensor[];
  backward: GradFn;
  /** Optional: the inputs' gradients from an output gradient not yet computed (ProductGrad): in one op, or passed on uncomputed (a view); null where it cannot. */
  takes?: (d: ProductGrad) => (Tensor | ProductGrad | null)[] | null;
}
export type Hook = (g: Tensor) => Tensor | void;

let nextId = 1;
let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run f with graph recording off (no tensor made inside requires grad). */
export function noGrad<T>(f: () => T): T {
  return withGradMode(false, f);
}

export function withGradMode<T>(on: boolean, f: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try {
    return f();
  } finally {
    gradEnabled = prev;
  }
}

/** Storages are shared by views (reshape, detach) and released when the last holder goes. */
interface StorageRef {
  backend: Backend;
  s: unknown;
  refs: number;
}
function unref(r: StorageRef): void {
  if (--r.refs === 0) r.backend.release(r.s);
}
/**
 * Releases the storage of a tensor that was dropped without dispose(). Only tensors no tidy()
 * scope owns are registered: a scope disposes what it owns when it ends, and registers what
 * leaves it (its result, when no outer scope takes it; keep(); everything it still holds, when
 * it ends by an error).
 * Registering every tensor cost a sixth of a feature pass's JavaScript time. The held value is
 * a cell holding the tensor's storage, so assign() (every parameter, moment and clipped
 * gradient of an optimiser step: 360 of a Glow step's tensors) swaps the storage in the cell
 * instead of unregistering the tensor and registering it again.
 */
interface Held { ref: StorageRef }
const finalizer = new FinalizationRegistry<Held>((h) => unref(h.ref));

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient on leaves, and on intermediates that called retainGrad(). */
  grad: Tensor | null = null;
  node: Node | null = null;
  /** Optional stable name (parameters get their dotted names here). */
  name = "";
  hooks: Hook[] = [];
  retainsGrad = false;
  /**
   * 0 for an ordinary tensor. G > 0 for a batched one (a per-group pass, src/autograd/batched.ts):
   * `shape` is what one group sees, the storage holds [G, ...shape], and ops apply their batching
   * rule instead of reading the storage directly.
   */
  readonly groups: number;
  /** Set on the per-group copies of one tensor (every group's slice holds its values). */
  groupCopy: GroupCopy | null = null;
  #ref: StorageRef;
  #disposed = false;
  /** The finalizer's held value and unregister token, once registered. */
  #held: Held | null = null;

  constructor(readonly backend: Backend, storage: unknown, shape: Shape, readonly dtype: DType, share?: Tensor, groups = 0) {
    this.shape = Object.freeze(Array.isArray(shape) ? shape.slice() : Array.from(shape)); // a typed array's slice would be one
    this.size = sizeOf(shape);
    this.groups = groups;
    if (share) {
      this.#ref = share.#ref;
      this.#ref.refs++;
    } else this.#ref = { backend, s: storage, refs: 1 };
    if (scopes.length) scopes[scopes.length - 1].add(this);
    else this.unowned();
  }

  /** Registers this tensor with the finalizer, once: no scope owns it any more (see `finalizer`). */
  unowned(): void {
    if (this.#held || this.#disposed) return;
    this.#held = { ref: this.#ref };
    finalizer.register(this, this.#held, this.#held);
  }

  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.#disposed;
  }
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The storage, checked: using a freed tensor is an error that names the op. */
  storage(op = "read"): unknown {
    if (this.groups) throw new Error(`${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ""} is batched over ${this.groups} groups and ${op} has no batching rule`);
    return this.physicalStorage(op);
  }

  /** The storage of any tensor, batched ones included ([groups, ...shape] values). */
  physicalStorage(op = "read"): unknown {
    if (this.groupCopy) throw new Error(`${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ""} is a per-group copy; read it through unbatch`);
    if (this.#disposed) {
      throw new Error(`${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ""} ${fmt(this.shape)} was already disposed (freed)`);
    }
    return this.#ref.s;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#held) finalizer.unregister(this.#held);
    unref(this.#ref);
    for (const s of scopes) s.delete(this);
  }

  /** Mark as a leaf that collects gradients. */
  requireGrad(on = true): this {
    if (on && this.dtype !== "float32" && this.dtype !== "float64") throw new Error("requireGrad: float tensors only");
    this.requiresGrad = on;
    return this;
  }

  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  registerHook(h: Hook): () => void {
    this.hooks.push(h);
    return () => {
      this.hooks = this.hooks.filter((x) => x !== h);
    };
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /**
   * Make this tensor hold `src`'s values (shared storage, no copy): the in-place update
   * optimisers use. Not recorded by autograd.
   */
  assign(src: Tensor): this {
    if (src.size !== this.size || src.backend !== this.backend || src.dtype !== this.dtype) {
      throw new Error(`assign: ${src} does not fit ${this}`);
    }
    src.storage("assign");
    this.storage("assign");
    const old = this.#ref;
    this.#ref = src.#ref;
    this.#ref.refs++;
    if (this.#held) this.#held.ref = this.#ref;
    unref(old);
    return this;
  }

  /** Same storage, cut from the graph (a per-group copy: a copy of the same values). */
  detach(): Tensor {
    if (this.groupCopy) {
      const c = new Tensor(this.backend, null, this.shape, this.dtype, this.groupCopy.of, this.groups);
      c.groupCopy = { of: this.groupCopy.of };
      return c;
    }
    return shareStorage(this, this.shape, "detach");
  }

  /** The values; for a batched tensor all groups' ([groups, ...shape]; a per-group copy's repeated). */
  async data(): Promise<Data> {
    if (this.groupCopy) {
      const one = await this.groupCopy.of.data();
      const all = new (one.constructor as { new (n: number): typeof one })(one.length * this.groups);
      for (let g = 0; g < this.groups; g++) all.set(one, g * one.length);
      return all;
    }
    return await this.backend.read(this.physicalStorage("data"), this.size * Math.max(1, this.groups), this.dtype);
  }

  /** Synchronous read; CPU backend only. */
  dataSync(): Data {
    const b = this.backend as Backend & { readSync?: (s: unknown) => Data };
    if (!b.readSync) throw new Error(`dataSync: not available on the ${this.backend.name} backend; use await t.data()`);
    return b.readSync(this.storage("dataSync"));
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor ${fmt(this.shape)} has ${this.size} elements, expected 1`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor#${this.id}(${this.groups ? `${this.groups} groups of ` : ""}${fmt(this.shape)}, ${this.dtype}, ${this.backend.name}${this.requiresGrad ? ", grad" : ""})`;
  }
}

/** A new tensor of another shape over the same storage (no copy), batched like t. */
export function shareStorage(t: Tensor, shape: Shape, op: string): Tensor {
  t.physicalStorage(op);
  return new Tensor(t.backend, null, shape, t.dtype, t, t.groups);
}

/** What a per-group copy leaf knows: the tensor it copies, and (norms-only passes) where matmuls record their Gram sites. */
export interface GroupCopy {
  of: Tensor;
  gramSites?: GramSite[];
  /** [G, ...of.shape], made on first use (a norms-only pass may never need it). */
  expanded?: Tensor;
}

/**
 * A product y = a W of a per-group copy W seen in a norms-only pass, kept so that each group's
 * squared gradient norm of W can be formed from a and dL/dy (the Gram form) instead of a
 * [G, ...W.shape] gradient. a [G*R, K] and y [G*R, N] are ordinary tensors, R rows per group.
 */
export interface GramSite {
  copy: Tensor;
  groups: number;
  input: Tensor;
  output: Tensor;
  /** y = a W^T (W is [N, K]) rather than y = a W (W is [K, N]). */
  transposed: boolean;
}

/**
 * Build an op's result, recording the node when grad is on and an input needs it. `share`: a view
 * of that tensor's storage; `groups`: the result is batched (only the batching views make these).
 */
export function result(op: string, inputs: Tensor[], storage: unknown, shape: Shape, backward: GradFn | null, like: Tensor, share?: Tensor, groups = 0): Tensor {
  const out = new Tensor(like.backend, storage, shape, like.dtype, share, groups);
  if (backward && gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

// ---- scopes: deterministic release of GPU memory ----

function collect(v: unknown, into: Set<Tensor>, seen = new Set<unknown>()): void {
  if (v instanceof Tensor) {
    into.add(v);
    // a copy computed from parameters reads its shared value (batched.ts onCopies)
    if (v.groupCopy) into.add(v.groupCopy.of);
  } else if (v && typeof v === "object" && !seen.has(v)) {
    seen.add(v);
    for (const x of Object.values(v as object)) collect(x, into, seen);
  }
}

/** Run f; dispose every tensor made inside that is not in its result or kept. */
export function tidy<T>(f: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let out: T;
  try {
    try {
      out = f();
    } finally {
      scopes.pop();
    }
    if (out instanceof Promise) throw new Error("tidy: f must be synchronous (await outside tidy)");
    const keepSet = new Set<Tensor>();
    collect(out, keepSet);
    for (const t of scope) {
      if (keepSet.has(t)) {
        if (scopes.length) scopes[scopes.length - 1].add(t);
        else t.unowned();
      } else t.dispose();
    }
  } catch (e) {
    abandon(scope);
    throw e;
  }
  return out;
}

/**
 * A scope that ends by an error (f threw, returned a Promise, or a dispose failed): what it still
 * holds stays alive, as it did when every tensor was registered at birth, and only the finalizer
 * frees it.
 */
function abandon(scope: Set<Tensor>): void {
  for (const t of scope) t.unowned();
}

/** Disposes t now if the innermost tidy() scope owns it (made there and not kept); else leaves it. */
export function releaseScoped(t: Tensor): void {
  if (scopes.length && scopes[scopes.length - 1].has(t)) t.dispose();
}

/** Take t out of every enclosing scope so tidy() won't free it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  t.unowned();
  return t;
}

export function assertSameBackend(op: string, ts: Tensor[]): void {
  const b = ts[0].backend, d = ts[0].dtype;
  for (const t of ts) {
    if (t.backend !== b) throw new Error(`${op}: tensors on different backends (${b.name} vs ${t.backend.name})`);
    if (t.dtype !== d) throw new Error(`${op}: dtype mismatch (${d} vs ${t.dtype})`);
  }
}
