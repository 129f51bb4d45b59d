// Reverse-mode differentiation over the recorded graph.
import { fmt, sameShape } from "./shape.ts";
import { BoxGrad, keep, ProductGrad, releaseScoped, type Tensor, tidy, withGradMode } from "./tensor.ts";
import { add, onesLike } from "./ops/elementwise.ts";
import { concat, reshape } from "./ops/movement.ts";

/** A fresh tensor object for g, so that storing it never aliases another holder. */
function own(g: Tensor, createGraph: boolean): Tensor {
  return createGraph ? reshape(g, g.shape) : g.detach();
}

export interface GradOptions {
  /** Gradient of the outputs (required when an output is not a scalar). */
  seed?: Tensor;
  /** Record the backward pass so the result can be differentiated again. */
  createGraph?: boolean;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const ins = t.node?.inputs ?? [];
    if (i < ins.length) {
      top[1]++;
      const c = ins[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse(); // root first
}

/**
 * An input's boxes (BoxGrad) as one tensor of x's shape where they tile one axis of x (each whole
 * along the other axes, together covering that axis once): joined in order by one concat, which
 * equals their padded sum (at each element one box holds the value, the others add zeros; up to
 * a zero's sign). Null where they do not tile: then each is padded and added as it came.
 */
function joinBoxes(boxes: BoxGrad[], x: Tensor): Tensor | null {
  if (boxes.length < 2) return null;
  const r = x.rank;
  // (a batched x's boxes are batched alike: shapes and corners per group)
  const alike = boxes.every((b) => b.g.groups === x.groups && b.g.rank === r);
  // the axis along which the boxes differ: the first where one of them is not whole
  const axis = alike ? [...Array(r).keys()].find((i) => boxes.some((b) => b.g.shape[i] !== x.shape[i])) : undefined;
  if (axis === undefined || !boxes.every((b) => b.g.shape.every((d, i) => i === axis || (d === x.shape[i] && b.begin[i] === 0)))) return null;
  const sorted = [...boxes].sort((p, q) => p.begin[axis] - q.begin[axis]);
  let at = 0;
  for (const b of sorted) {
    if (b.begin[axis] !== at) return null; // a gap or an overlap
    at += b.g.shape[axis];
  }
  return at === x.shape[axis] ? concat(sorted.map((b) => b.g), axis) : null;
}

/**
 * Frees the intermediate gradients of a pass that records no graph as soon as nothing needs them,
 * where they all lived until the pass ended (a training step's peak memory on the wasm backend
 * 13-29% lower, bench/README.md; its speed unchanged). A gradient is needed while it waits to be
 * used (a value of the engine's maps: `live`) and while a deferred gradient that reads it (its
 * `holds`: a product's input gradient, a slice's box) has not been computed. Deferred gradients
 * settle at the end of the node's turn, when every gradient it returned is in the maps. Only
 * tensors the pass itself made are freed (releaseScoped), and none a hook has seen.
 */
class EarlyRelease {
  readonly #held = new Map<Tensor, number>();
  readonly #settled: (ProductGrad | BoxGrad)[] = [];
  readonly #dropped: Tensor[] = [];
  readonly #hooked = new Set<Tensor>();
  constructor(readonly live: (t: Tensor) => boolean) {}
  /** The deferred gradients among a node's results: what they read stays until they settle. */
  made(gs: readonly unknown[]): void {
    for (const d of gs) {
      if (d instanceof ProductGrad || d instanceof BoxGrad) for (const h of d.holds) this.#held.set(h, (this.#held.get(h) ?? 0) + 1);
    }
  }
  /** A deferred gradient computed (or passed on, or dropped): at the end of the turn, what it read is let go. */
  settle(d: ProductGrad | BoxGrad): void {
    this.#settled.push(d);
  }
  /** A gradient summed into another, or replaced by a view of itself: freed at the end of the turn where nothing needs it. */
  dropped(g: Tensor): void {
    this.#dropped.push(g);
  }
  hooked(g: Tensor): void {
    this.#hooked.add(g);
  }
  /** The end of a node's turn: `used` (the gradient it took), the dropped ones and what settled deferred ones read are freed where nothing needs them. */
  endTurn(used: Tensor | null): void {
    for (const d of this.#settled) {
      for (const h of d.holds) {
        const n = this.#held.get(h)! - 1;
        if (n > 0) this.#held.set(h, n);
        else {
          this.#held.delete(h);
          this.#free(h);
        }
      }
    }
    this.#settled.length = 0;
    if (used) this.#dropped.push(used);
    for (const t of this.#dropped) if (!this.#held.has(t)) this.#free(t);
    this.#dropped.length = 0;
  }
  #free(t: Tensor): void {
    if (!this.#hooked.has(t) && !this.live(t)) releaseScoped(t);
  }
}

/**
 * Core pass: propagates from `root` and calls `sink(t, g)` once per tensor with its total gradient
 * (`wants(t)`: whether sink keeps t's; a tensor it does not want may pass its gradient on
 * uncomputed, Node.takes). Returns nothing; what sink keeps it must keep().
 */
function propagate(root: Tensor, seed: Tensor | undefined, createGraph: boolean, sink: (t: Tensor, g: Tensor) => void, wants: (t: Tensor) => boolean) {
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input of it has requiresGrad)`);
  if (root.groups) throw new Error(`backward: ${root} is batched; differentiate an ordinary tensor (unbatch, then sum)`);
  if (!seed && root.size !== 1) {
    throw new Error(`backward: output has shape ${fmt(root.shape)}; backward on a non-scalar needs an explicit seed of that shape`);
  }
  if (seed && seed.size !== root.size) {
    throw new Error(`backward: seed shape ${fmt(seed.shape)} does not match output shape ${fmt(root.shape)}`);
  }
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  // boxes (slices' gradients) of an input that came after its last whole gradient, joined when a
  // whole one comes or the input's turn does: so the sum keeps the order in which they came
  const boxes = new Map<Tensor, BoxGrad[]>();
  const live = (t: Tensor) => {
    for (const g of grads.values()) if (g === t) return true;
    for (const bs of boxes.values()) if (bs.some((b) => b.g === t)) return true;
    return false;
  };
  const rel = createGraph ? null : new EarlyRelease(live);
  const accumulate = (x: Tensor, gx: Tensor) => {
    const prev = grads.get(x);
    // (Gradient tensors are never changed in place, so one may stand for several inputs.)
    const sum = prev ? add(prev, gx) : gx.groups === x.groups && sameShape(gx.shape, x.shape) ? gx : reshape(gx, x.shape);
    grads.set(x, sum);
    if (sum !== gx) rel?.dropped(gx);
    if (prev) rel?.dropped(prev);
  };
  // a product's gradient of an input, not yet computed: kept while it is the input's only one
  const products = new Map<Tensor, ProductGrad>();
  const flush = (x: Tensor) => {
    const d = products.get(x);
    if (d) {
      products.delete(x);
      accumulate(x, d.value());
      rel?.settle(d);
    }
    const bs = boxes.get(x);
    if (!bs) return;
    boxes.delete(x);
    const joined = joinBoxes(bs, x);
    if (joined) accumulate(x, joined);
    else for (const b of bs) accumulate(x, b.padded()); // each added as it came, as a whole gradient is
    for (const b of bs) rel?.settle(b);
  };
  withGradMode(createGraph, () => {
    grads.set(root, seed ? reshape(seed, root.shape) : onesLike(root));
    for (const t of order) {
      // t's node takes t's only gradient uncomputed, where nothing else needs it
      const d = products.get(t);
      let gs: (Tensor | BoxGrad | ProductGrad | null)[] | null = null;
      // the gradient this turn takes (freed at its end where nothing else needs it)
      let used: Tensor | null = null;
      if (d && !boxes.has(t) && !grads.has(t) && !createGraph && !t.hooks.length && !wants(t) && t.node?.takes) {
        gs = t.node.takes(d);
        if (gs) {
          products.delete(t);
          rel?.made(gs);
          rel?.settle(d);
        }
      }
      if (!gs) {
        flush(t);
        let g = grads.get(t);
        if (!g) {
          rel?.endTurn(null);
          continue;
        }
        grads.delete(t);
        for (const h of t.hooks) {
          rel?.hooked(g);
          const r = h(g);
          if (r) g = r;
          rel?.hooked(g);
        }
        sink(t, g);
        used = t === root ? null : g;
        if (!t.node) {
          rel?.endTurn(used);
          continue;
        }
        gs = t.node.backward(g, t.node.inputs.map((x) => x.requiresGrad));
        rel?.made(gs);
      }
      const ins = t.node!.inputs;
      for (let i = 0; i < ins.length; i++) {
        const x = ins[i], gx = gs[i];
        if (!gx) continue;
        if (!x.requiresGrad) {
          if (gx instanceof ProductGrad || gx instanceof BoxGrad) rel?.settle(gx);
          continue;
        }
        if (gx instanceof BoxGrad) {
          if (products.has(x)) flush(x); // an earlier product's gradient first: the order they came in
          const bs = boxes.get(x);
          if (bs) bs.push(gx);
          else boxes.set(x, [gx]);
          continue;
        }
        if (gx instanceof ProductGrad) {
          // kept only as x's first gradient; after others it is computed in its turn
          if (grads.has(x) || boxes.has(x) || products.has(x)) {
            flush(x);
            accumulate(x, gx.value());
            rel?.settle(gx);
          } else products.set(x, gx);
          continue;
        }
        if (gx.size !== x.size) {
          throw new Error(`backward of ${t.node!.op}: gradient ${fmt(gx.shape)} for input ${fmt(x.shape)}`);
        }
        flush(x);
        accumulate(x, gx);
      }
      rel?.endTurn(used);
    }
  });
}

/** Accumulate d(root)/d(leaf) into leaf.grad for every leaf (and retained intermediate). */
export function backward(root: Tensor, opts: GradOptions = {}): void {
  const createGraph = opts.createGraph ?? false;
  const run = () => {
    const wants = (t: Tensor) => t.isLeaf || t.retainsGrad;
    propagate(root, opts.seed, createGraph, (t, g) => {
      if (!wants(t)) return;
      const next = t.grad ? add(t.grad, g) : own(g, createGraph);
      t.grad?.dispose();
      t.grad = keep(next);
    }, wants);
  };
  // Without createGraph, every intermediate gradient is freed at the end.
  if (createGraph) run();
  else tidy(run);
}

/** Gradients of root w.r.t. each of `wrt` (leaves or intermediates), without touching .grad. */
export function grad(root: Tensor, wrt: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const createGraph = opts.createGraph ?? false;
  const want = new Map<Tensor, number>(wrt.map((t, i) => [t, i]));
  const out: (Tensor | null)[] = wrt.map(() => null);
  const run = () => {
    propagate(root, opts.seed, createGraph, (t, g) => {
      const i = want.get(t);
      if (i !== undefined) out[i] = own(g, createGraph);
    }, (t) => want.has(t));
    return out;
  };
  return createGraph ? run() : tidy(run);
}
