// The optimisers' fused update (the backend contract's optional momentUpdate): new values of a
// parameter and its two moments in one op, or null where the backend has no such kernel (the
// caller then runs the composed ops: src/nn/optim.ts). Not differentiable (an update, not a function of the graph).
import type { MomentUpdate } from "../../kernels/backend.ts";
import { assertSameBackend, noGrad, result, type Tensor } from "../tensor.ts";

export type { MomentUpdate };

export function momentUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, u: MomentUpdate): { p: Tensor; m: Tensor; v: Tensor } | null {
  const b = p.backend;
  if (!b.momentUpdate || p.groups || g.groups) return null;
  assertSameBackend("momentUpdate", [p, g, m, v]);
  for (const t of [g, m, v]) if (t.shape.join() !== p.shape.join()) throw new Error(`momentUpdate: ${t} does not match the parameter's shape [${p.shape}]`);
  const r = b.momentUpdate(p.storage("momentUpdate"), g.storage("momentUpdate"), m.storage("momentUpdate"), v.storage("momentUpdate"), p.size, u, p.dtype);
  if (!r) return null;
  return noGrad(() => ({ p: result("momentUpdate", [], r.p, p.shape, null, p), m: result("momentUpdate", [], r.m, p.shape, null, p), v: result("momentUpdate", [], r.v, p.shape, null, p) }));
}
