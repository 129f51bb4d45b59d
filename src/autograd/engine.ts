// Reverse-mode differentiation over the recorded graph.
import { fmt, sameShape } from "./shape.ts";
import { keep, Tensor, tidy, withGradMode } from "./tensor.ts";
import { add, onesLike } from "./ops/elementwise.ts";
import { reshape } from "./ops/movement.ts";

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
 * Core pass: propagates from `root` and calls `sink(t, g)` once per tensor with its total gradient.
 * Returns nothing; what sink keeps it must keep().
 */
function propagate(root: Tensor, seed: Tensor | undefined, createGraph: boolean, sink: (t: Tensor, g: Tensor) => void) {
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
  withGradMode(createGraph, () => {
    grads.set(root, seed ? reshape(seed, root.shape) : onesLike(root));
    for (const t of order) {
      let g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      for (const h of t.hooks) {
        const r = h(g);
        if (r) g = r;
      }
      sink(t, g);
      if (!t.node) continue;
      const ins = t.node.inputs;
      const gs = t.node.backward(g, ins.map((x) => x.requiresGrad));
      for (let i = 0; i < ins.length; i++) {
        const x = ins[i], gx = gs[i];
        if (!gx || !x.requiresGrad) continue;
        if (gx.size !== x.size) {
          throw new Error(`backward of ${t.node.op}: gradient ${fmt(gx.shape)} for input ${fmt(x.shape)}`);
        }
        const prev = grads.get(x);
        // (Gradient tensors are never changed in place, so one may stand for several inputs.)
        grads.set(x, prev ? add(prev, gx) : gx.groups === x.groups && sameShape(gx.shape, x.shape) ? gx : reshape(gx, x.shape));
      }
    }
  });
}

/** Accumulate d(root)/d(leaf) into leaf.grad for every leaf (and retained intermediate). */
export function backward(root: Tensor, opts: GradOptions = {}): void {
  const createGraph = opts.createGraph ?? false;
  const run = () => {
    propagate(root, opts.seed, createGraph, (t, g) => {
      if (!(t.isLeaf || t.retainsGrad)) return;
      const next = t.grad ? add(t.grad, g) : own(g, createGraph);
      t.grad?.dispose();
      t.grad = keep(next);
    });
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
    });
    return out;
  };
  return createGraph ? run() : tidy(run);
}
