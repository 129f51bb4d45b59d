// Batched tensors: G groups computed side by side by one program, as vmap does (JAX, functorch).
// A batched tensor has `groups` = G and a `shape` that is what one group sees; its storage holds
// [G, ...shape]. Ops never read that storage directly (Tensor.storage refuses): each op's batching
// rule (next to the op) views its operands as ordinary tensors with the group axis in front
// (`unbatch`), runs the ordinary op, and views the result as batched again (`batch`). Both views are
// recorded, so the backward pass is made of ordinary ops and needs no rules of its own, and the
// gradient of a batched leaf is batched: one gradient per group.
//
// Where a rule can, it folds the group axis into the operand's first axis ([G*d0, ...]) so that
// the kernels see the shapes of an ordinary batch (data flows through a per-group pass at the cost
// of an ordinary forward). Where every batched operand is a per-group copy (a parameter's, or a
// value computed from parameters alone), the op runs once on the shared values (onCopies), as
// vmap leaves unbatched what does not depend on the batched axis.
import { fmt, sizeOf } from "./shape.ts";
import { type GramSite, isGradEnabled, noGrad, passesProducts, result, Tensor } from "./tensor.ts";
import { broadcastTo, reshape } from "./ops/movement.ts";
import { grad } from "./engine.ts";

/**
 * The batched tensor t as an ordinary one: [G, ...t.shape], or any shape of that size and layout
 * (`as`: the folded [G*d0, ...] or an aligned [G, 1, ..., ...shape]). One recorded view.
 */
export function unbatch(t: Tensor, as?: readonly number[]): Tensor {
  if (!t.groups) return t;
  const c = t.groupCopy;
  if (c && (!c.expanded || c.expanded.disposed)) {
    c.expanded = noGrad(() => broadcastTo(reshape(c.of.detach(), [1, ...c.of.shape]), [t.groups, ...c.of.shape]));
  }
  const src = c ? c.expanded! : t;
  src.physicalStorage("unbatch");
  const shape = as ?? [t.groups, ...t.shape];
  if (sizeOf(shape) !== t.groups * t.size) throw new Error(`unbatch: ${t} cannot be viewed as ${fmt(shape)}`);
  const u = result("unbatch", [t], null, shape, (g) => [batch(g, t.groups, t.shape)], t, src);
  return c ? u : passesProducts(u, (g) => batch(g, t.groups, t.shape), (z) => unbatch(z, shape));
}

/**
 * A per-group copy of p: a batched leaf of G groups, each holding p's values, whose gradient is
 * each group's gradient. Its [G, ...p.shape] storage is made on first use; matmuls may read p
 * itself (every group holds the same values) and, given gramSites, record a Gram site instead.
 */
export function groupCopy(p: Tensor, G: number, gramSites?: GramSite[]): Tensor {
  if (p.groups) throw new Error(`groupCopy: ${p} is already batched`);
  p.storage("groupCopy");
  const c = new Tensor(p.backend, null, p.shape, p.dtype, p, G);
  c.groupCopy = { of: p, gramSites };
  c.name = p.name;
  return c.requireGrad();
}

/**
 * An op on operands whose batched ones are all per-group copies: every group would compute the same
 * values, so `run` computes them once on the shared values, and the result is a per-group copy of
 * them (a derived copy; a convolution reads it as one shared weight). Its backward takes the
 * groups' gradients (batched) through run's own node at the shared values: each group's gradient
 * exactly, by the ops' batching rules, with only the gradients batched. Recording a graph of that
 * backward (higher orders), it differentiates `batched` (the op's batching rule) at fresh copies
 * of the operands' values (their detach()), each its own leaf, so the gradients are this op's alone (not also
 * through an operand made from another, nor twice for an operand given twice, and no hooks run);
 * those copies then pass what reaches them to the operands, so each group's gradient depends on
 * its own copy to every order. Null (the caller batches as usual) where a batched operand is not a
 * copy, none is batched, the group counts differ, an ordinary operand wants a gradient (it would
 * need the sum over the groups), or run makes more than one node.
 */
export function onCopies(ts: readonly Tensor[], run: (shared: Tensor[]) => Tensor, batched: (ops: Tensor[]) => Tensor): Tensor | null {
  let G = 0;
  for (const t of ts) {
    if (t.groups) {
      if (!t.groupCopy || (G && t.groups !== G)) return null;
      G = t.groups;
    } else if (t.requiresGrad) return null;
  }
  if (!G) return null;
  const rec = isGradEnabled();
  const shared = ts.map((t) => (t.groups ? t.groupCopy!.of.detach().requireGrad(rec && t.requiresGrad) : t));
  const y = run(shared);
  const node = y.node;
  if (y.groups || (node && (node.inputs.length !== shared.length || node.inputs.some((x, i) => x !== shared[i])))) {
    y.dispose();
    return null;
  }
  const c = result(node?.op ?? "copy", [...ts], null, y.shape, node && ((g, needs) => {
    if (!isGradEnabled()) return node.backward(g, needs);
    const leaves = ts.map((t, i) => (t.groups && needs[i] ? t.detach().requireGrad() : t));
    const wrt = leaves.filter((_, i) => ts[i].groups && needs[i]);
    const gs = grad(unbatch(batched(leaves)), wrt, { seed: unbatch(g), createGraph: true });
    for (const l of wrt) l.node = { op: "copy", inputs: [ts[leaves.indexOf(l)]], backward: (h) => [h] };
    return leaves.map((l) => (wrt.includes(l) ? gs[wrt.indexOf(l)] : null));
  }), y, y, G);
  c.groupCopy = { of: y };
  return c;
}

/**
 * An ordinary tensor p [G, ...rest] as a batched one of G groups, each of shape rest; or, given G
 * and a shape, p of any shape of that size and layout (one recorded view).
 */
export function batch(p: Tensor, G = p.shape[0], shape: readonly number[] = p.shape.slice(1)): Tensor {
  if (p.groups) throw new Error(`batch: ${p} is already batched`);
  if (p.rank < 1 || !(G >= 1) || G * sizeOf(shape) !== p.size) throw new Error(`batch: ${p} is not ${G} groups of ${fmt(shape)}`);
  const from = p.shape;
  return passesProducts(result("batch", [p], null, shape, (g) => [unbatch(g, from)], p, p, G), (g) => unbatch(g, from), (z) => batch(z, G, shape));
}

/** The common group count of the batched operands (0 if none is batched); mismatches are refused. */
export function groupsOf(op: string, ts: readonly Tensor[]): number {
  let G = 0;
  for (const t of ts) {
    if (!t.groups) continue;
    if (G && t.groups !== G) throw new Error(`${op}: operands batched over ${G} and ${t.groups} groups`);
    G = t.groups;
  }
  return G;
}

/** An operand for a rule: batched -> [G, 1.., ...shape] of rank `rank` + 1; ordinary -> itself (broadcasting handles it). */
export function aligned(t: Tensor, rank: number): Tensor {
  if (!t.groups) return t;
  return unbatch(t, [t.groups, ...Array(rank - t.rank).fill(1), ...t.shape]);
}

/** Batched t [G | d0, ...rest] as an ordinary [G*d0, ...rest] (the group axis folded into the first). */
export function folded(t: Tensor): Tensor {
  if (!t.groups || t.rank < 1) throw new Error(`folded: ${t} has no first axis to fold the groups into`);
  return unbatch(t, [t.groups * t.shape[0], ...t.shape.slice(1)]);
}

/** The inverse of folded: ordinary [G*d0, ...rest] -> batched [G | d0, ...rest]. */
export function unfolded(y: Tensor, G: number): Tensor {
  if (y.rank < 1 || y.shape[0] % G) throw new Error(`unfolded: ${fmt(y.shape)} does not split into ${G} groups`);
  return batch(y, G, [y.shape[0] / G, ...y.shape.slice(1)]);
}
