// Elementwise ops: one table entry per op, forward kernel name and backward rule side by side.
// Backward rules use differentiable ops only, so they can be differentiated again.
import type { BinaryOp, DType, UnaryOp } from "../../kernels/backend.ts";
import type { Backend } from "../../kernels/backend.ts";
import { defaultBackend } from "../device.ts";
import { broadcastShapes, checkShape, fmt, sameShape, type Shape, sizeOf } from "../shape.ts";
import { assertSameBackend, result, Tensor } from "../tensor.ts";
import { sumTo } from "./reduce.ts";
import { aligned, batch, folded, groupsOf, onCopies, unbatch, unfolded } from "../batched.ts";

export interface Creation {
  backend?: Backend;
  dtype?: DType;
  requiresGrad?: boolean;
}

function make(storage: unknown, shape: Shape, o: Creation, backend: Backend): Tensor {
  const t = new Tensor(backend, storage, shape, o.dtype ?? "float32");
  if (o.requiresGrad) t.requireGrad();
  return t;
}

function checkDtype(b: Backend, dtype: DType) {
  if (dtype === "float64" && b.name !== "cpu") throw new Error(`float64 tensors exist on the cpu backend only (asked on ${b.name})`);
}

export function tensor(data: ArrayLike<number>, shape?: Shape, o: Creation = {}): Tensor {
  const s = shape ?? [data.length];
  checkShape("tensor", s);
  if (sizeOf(s) !== data.length) throw new Error(`tensor: ${data.length} values do not fill shape ${fmt(s)}`);
  const b = o.backend ?? defaultBackend();
  checkDtype(b, o.dtype ?? "float32");
  return make(b.upload(data, o.dtype ?? "float32"), s, o, b);
}

export function full(shape: Shape, value: number, o: Creation = {}): Tensor {
  checkShape("full", shape);
  const b = o.backend ?? defaultBackend();
  checkDtype(b, o.dtype ?? "float32");
  return make(b.fill(sizeOf(shape), value, o.dtype ?? "float32"), shape, o, b);
}
export const zeros = (shape: Shape, o: Creation = {}): Tensor => full(shape, 0, o);
export const ones = (shape: Shape, o: Creation = {}): Tensor => full(shape, 1, o);
export const fullLike = (t: Tensor, v: number): Tensor => full(t.shape, v, { backend: t.backend, dtype: t.dtype });
export const zerosLike = (t: Tensor): Tensor => fullLike(t, 0);
export const onesLike = (t: Tensor): Tensor => fullLike(t, 1);
export const scalarLike = (t: Tensor, v: number): Tensor => full([], v, { backend: t.backend, dtype: t.dtype });

// ---- unary ----

type UnaryGrad = (x: Tensor, y: Tensor, g: Tensor, p: number) => Tensor | null;

const UNARY_GRAD: Record<UnaryOp, UnaryGrad> = {
  neg: (_x, _y, g) => neg(g),
  exp: (_x, y, g) => mul(g, y),
  log: (x, _y, g) => div(g, x),
  sqrt: (_x, y, g) => div(mulScalar(g, 0.5), y),
  abs: (x, _y, g) => mul(g, unary("sign", x)),
  relu: (x, _y, g) => reluMask(g, x),
  step: () => null,
  sign: () => null,
  sigmoid: (_x, y, g) => mul(g, mul(y, addScalar(neg(y), 1))),
  softplus: (x, _y, g) => mulUnary(g, "sigmoid", x),
  tanh: (_x, y, g) => mul(g, addScalar(neg(square(y)), 1)),
  square: (x, _y, g) => mul(g, mulScalar(x, 2)),
  recip: (_x, y, g) => neg(mul(g, square(y))),
  powScalar: (x, _y, g, p) => mul(g, mulScalar(powScalar(x, p - 1), p)),
  mulScalar: (_x, _y, g, p) => mulScalar(g, p),
  addScalar: (_x, _y, g) => g,
  leakyRelu: (x, _y, g, p) => mul(g, unary("leakyStep", x, p)),
  leakyStep: () => null,
  silu: (x, _y, g) => mulUnary(g, "siluGrad", x),
  // d/dx s (1 + x (1 - s)) = s (1 - s) (2 + x (1 - 2 s)), composed (so every order follows).
  siluGrad: (x, _y, g) => {
    const s = sigmoid(x), t = mul(s, addScalar(neg(s), 1));
    return mul(g, mul(t, addScalar(mul(x, addScalar(mulScalar(s, -2), 1)), 2)));
  },
};

export function unary(op: UnaryOp, x: Tensor, p = 0): Tensor {
  if (x.groups) {
    const batched = ([v]: Tensor[]) => batch(unary(op, unbatch(v), p));
    return onCopies([x], ([s]) => unary(op, s, p), batched) ?? batched([x]);
  }
  return unaryOf(op, x, x.backend.unary(op, x.storage(op), x.size, x.dtype, p), p);
}

/**
 * The node of unary op `op` on x whose values `s` a fused kernel has computed already (the
 * convolution's epilogue, conv.ts): the same node, backward included, as unary(op, x, p) makes.
 */
export function unaryOf(op: UnaryOp, x: Tensor, s: unknown, p = 0): Tensor {
  const grad = UNARY_GRAD[op];
  const y: Tensor = result(op, [x], s, x.shape, (g) => [grad(x, y, g, p)], x);
  // ReLU's and SiLU's backward from a product's gradient not yet computed (a convolution's input
  // gradient): the product times the derivative at x in one op, the values of grad's bit for bit
  if (y.node && (op === "relu" || op === "silu")) {
    y.node.takes = (d) => {
      const r = d.times(op, x);
      return r && [r];
    };
  }
  return y;
}

/**
 * g * op(x), as mul(g, unary(op, x)) (an activation's backward: the incoming gradient times the
 * derivative at x): one node and one kernel where the backend has it (Backend.mulUnary) for
 * ordinary operands of one shape, else the composed ops. The fused node's gradients are the
 * composed graph's (op(x) recomputed: the same values), so every order follows bit for bit.
 */
export function mulUnary(g: Tensor, op: UnaryOp, x: Tensor, p = 0): Tensor {
  const s = !g.groups && !x.groups && g.backend === x.backend && g.dtype === x.dtype && sameShape(g.shape, x.shape)
    ? x.backend.mulUnary?.(g.storage("mulUnary"), op, x.storage("mulUnary"), x.size, p, x.dtype) ?? null : null;
  if (!s) return mul(g, unary(op, x, p));
  return result("mulUnary", [g, x], s, x.shape, (gg, needs) => {
    const u = unary(op, x, p);
    // mul(g, u)'s gradients, then u's node's for its share
    return [needs[0] ? mul(gg, u) : null, needs[1] ? UNARY_GRAD[op](x, u, mul(gg, g), p) : null];
  }, x);
}

export const neg = (x: Tensor): Tensor => unary("neg", x);
export const exp = (x: Tensor): Tensor => unary("exp", x);
export const log = (x: Tensor): Tensor => unary("log", x);
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
export const abs = (x: Tensor): Tensor => unary("abs", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
export const softplus = (x: Tensor): Tensor => unary("softplus", x);
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
export const square = (x: Tensor): Tensor => unary("square", x);
export const recip = (x: Tensor): Tensor => unary("recip", x);
export const sign = (x: Tensor): Tensor => unary("sign", x);
export const powScalar = (x: Tensor, p: number): Tensor => unary("powScalar", x, p);
export const mulScalar = (x: Tensor, p: number): Tensor => unary("mulScalar", x, p);
export const addScalar = (x: Tensor, p: number): Tensor => unary("addScalar", x, p);
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unary("leakyRelu", x, slope);
/** log(sigmoid(x)) = -softplus(-x), stable for large |x|. */
export const logSigmoid = (x: Tensor): Tensor => neg(softplus(neg(x)));
/** x sigmoid(x), one kernel (its derivative another, siluGrad). */
export const silu = (x: Tensor): Tensor => unary("silu", x);

// ---- binary with broadcasting ----

type BinaryGrad = (a: Tensor, b: Tensor, g: Tensor, out: Tensor) => [Tensor | null, Tensor | null];

const BINARY_GRAD: Record<BinaryOp, BinaryGrad> = {
  add: (_a, _b, g) => [g, g],
  sub: (_a, _b, g) => [g, neg(g)],
  mul: (a, b, g) => [mul(g, b), mul(g, a)],
  div: (_a, b, g, out) => [div(g, b), neg(div(mul(g, out), b))],
  maximum: (a, b, g) => [mul(g, binary("ge", a, b)), mul(g, binary("lt", a, b))],
  minimum: (a, b, g) => [mul(g, binary("le", a, b)), mul(g, binary("gt", a, b))],
  gt: () => [null, null],
  ge: () => [null, null],
  lt: () => [null, null],
  le: () => [null, null],
  eq: () => [null, null],
  reluMask: (_a, b, g) => [reluMask(g, b), null],
};

/** The broadcasting ops on batched operands: once on the shared values where all are per-group copies (onCopies), else broadcastRule. */
function batchedBroadcast(op: string, ts: Tensor[], run: (ps: Tensor[]) => Tensor): Tensor {
  const batched = (ops: Tensor[]) => broadcastRule(op, ops, run);
  // (where's node is on its two values alone, not its condition: batched as usual)
  return (op === "where" ? null : onCopies(ts, run, batched)) ?? batched(ts);
}

/**
 * Batching rule of the broadcasting ops: `run` applied to ordinary operands. When every batched
 * operand spans the result's first axis and no ordinary one does, the groups fold into that axis
 * (the kernels see an ordinary batch); otherwise batched operands get the group axis in front.
 */
function broadcastRule(op: string, ts: Tensor[], run: (ps: Tensor[]) => Tensor): Tensor {
  const G = groupsOf(op, ts);
  const shape = ts.reduce<readonly number[]>((s, t) => broadcastShapes(op, s, t.shape), []);
  const r = shape.length;
  const fold = r > 0 && ts.every((t) => (t.groups ? t.rank === r && t.shape[0] === shape[0] : t.rank < r || t.shape[0] === 1));
  if (fold) return unfolded(run(ts.map((t) => (t.groups ? folded(t) : t))), G);
  return batch(run(ts.map((t) => aligned(t, r))));
}

export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (a.groups || b.groups) return batchedBroadcast(op, [a, b], ([pa, pb]) => binary(op, pa, pb));
  assertSameBackend(op, [a, b]);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const s = a.backend.binary(op, a.storage(op), a.shape, b.storage(op), b.shape, shape, a.dtype);
  const grad = BINARY_GRAD[op];
  const out: Tensor = result(op, [a, b], s, shape, (g, needs) => {
    const [ga, gb] = grad(a, b, g, out);
    return [needs[0] && ga ? sumTo(ga, a.shape) : null, needs[1] && gb ? sumTo(gb, b.shape) : null];
  }, a);
  return out;
}

export type Operand = Tensor | number;
const lift = (like: Tensor, v: Operand) => (typeof v === "number" ? scalarLike(like, v) : v);

export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === "number") return addScalar(a as Tensor, b);
  if (typeof a === "number") return addScalar(b, a);
  return binary("add", a, b);
}
export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === "number") return addScalar(a as Tensor, -b);
  if (typeof a === "number") return addScalar(neg(b), a);
  return binary("sub", a, b);
}
export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === "number") return mulScalar(a as Tensor, b);
  if (typeof a === "number") return mulScalar(b, a);
  return binary("mul", a, b);
}
export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === "number") return mulScalar(a as Tensor, 1 / b);
  if (typeof a === "number") return mulScalar(recip(b), a);
  return binary("div", a, b);
}
const cmp = (op: BinaryOp): (a: Tensor, b: Operand) => Tensor => (a: Tensor, b: Operand): Tensor => binary(op, a, lift(a, b));
export const maximum: (a: Tensor, b: Operand) => Tensor = cmp("maximum");
export const minimum: (a: Tensor, b: Operand) => Tensor = cmp("minimum");
export const gt: (a: Tensor, b: Operand) => Tensor = cmp("gt");
export const ge: (a: Tensor, b: Operand) => Tensor = cmp("ge");
export const lt: (a: Tensor, b: Operand) => Tensor = cmp("lt");
export const le: (a: Tensor, b: Operand) => Tensor = cmp("le");
export const eq: (a: Tensor, b: Operand) => Tensor = cmp("eq");
/** a where b > 0, else 0: ReLU's backward in one kernel (instead of a step and a product). */
export const reluMask = (a: Tensor, b: Tensor): Tensor => binary("reluMask", a, b);

/** where(cond, a, b): a where cond != 0, else b; broadcasting all three. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const like = cond;
  const ta = lift(like, a), tb = lift(like, b);
  if (cond.groups || ta.groups || tb.groups) return batchedBroadcast("where", [cond, ta, tb], ([c, pa, pb]) => where(c, pa, pb));
  assertSameBackend("where", [cond, ta, tb]);
  const shape = broadcastShapes("where", broadcastShapes("where", cond.shape, ta.shape), tb.shape);
  const s = cond.backend.where(cond.storage("where"), cond.shape, ta.storage("where"), ta.shape, tb.storage("where"), tb.shape, shape, cond.dtype);
  return result("where", [ta, tb], s, shape, (g) => {
    const z = zerosLike(g);
    return [sumTo(where(cond, g, z), ta.shape), sumTo(where(cond, z, g), tb.shape)];
  }, cond);
}

export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new Error(`clamp: lo ${lo} > hi ${hi}`);
  return where(lt(x, lo), lo, where(gt(x, hi), hi, x));
}
