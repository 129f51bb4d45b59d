// Elementwise kernels in SIMD128 for the ops where TypeScript loops are slow or branchy (ReLU and
// its mask, comparisons, min/max, the arithmetic of broadcasts): selects by bit masks, so there
// is no branch per element and NaN behaves as in scalar_ops.ts (a comparison with NaN is false).
// f32 add/sub/mul/div/sqrt round exactly as the reference's double arithmetic rounded to f32 (a
// scalar parameter is rounded to f32 first, so mulScalar/addScalar may differ by one ulp).
//   un_<op>(x, out, n, pbits)                  byte addresses, n elements, the scalar's f32 bits
//   bin_<op>(a, a0, a1, a2, b, b0, b1, b2, out, D0, D1, D2)  out[i][j][k] = a[..] op b[..],
//     operand byte strides per dimension; vectors along k when both inner strides are 0 or 4.
import type { BinaryOp, UnaryOp } from "../backend.ts";
import { F32, Fn, I32, op, simd, V128 } from "./emit.ts";

export const SIMD_UNARY = ["neg", "abs", "relu", "step", "sqrt", "square", "recip", "mulScalar", "addScalar", "leakyRelu", "leakyStep"] as const satisfies readonly UnaryOp[];
/** Ops computed with a polynomial exp (and log1p), a few ulp from Math's, not bit for bit. */
export const SIMD_APPROX = ["exp", "sigmoid", "softplus", "silu", "siluGrad"] as const satisfies readonly UnaryOp[];
export const SIMD_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "reluMask"] as const satisfies readonly BinaryOp[];

// f32x4 opcodes
const V = { abs: 0xe0, neg: 0xe1, sqrt: 0xe3, add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, eq: 0x41, lt: 0x43, gt: 0x44, le: 0x45, ge: 0x46, and: 0x4e, bitselect: 0x52 };
// f32 scalar opcodes
const S = { abs: 0x8b, neg: 0x8c, sqrt: 0x91, add: 0x92, sub: 0x93, mul: 0x94, div: 0x95, eq: 0x5b, lt: 0x5d, gt: 0x5e, le: 0x5f, ge: 0x60, select: 0x1b };

/** Emits a vector (v128 locals x, y, p) or scalar (f32 locals) evaluation of a binary op, leaving the result on the stack. */
function binExpr(f: Fn, o: BinaryOp, x: number, y: number, one: number, zero: number, vec: boolean): void {
  const arith: Partial<Record<BinaryOp, keyof typeof V>> = { add: "add", sub: "sub", mul: "mul", div: "div" };
  const cmp: Partial<Record<BinaryOp, keyof typeof V>> = { gt: "gt", ge: "ge", lt: "lt", le: "le", eq: "eq" };
  if (arith[o]) {
    f.get(x).get(y);
    return void (vec ? f.simd(V[arith[o]!]) : f.op(S[arith[o]! as keyof typeof S]));
  }
  if (cmp[o]) { // 1 where true, else 0
    if (vec) f.get(x).get(y).simd(V[cmp[o]!]).get(one).simd(V.and);
    else f.get(one).get(zero).get(x).get(y).op(S[cmp[o]! as keyof typeof S]).op(S.select);
    return;
  }
  // maximum: x >= y ? x : y; minimum: x <= y ? x : y; reluMask: y > 0 ? x : 0
  const [t, e, ca, cb, c] = o === "maximum" ? [x, y, x, y, "ge"] : o === "minimum" ? [x, y, x, y, "le"] : [x, zero, y, zero, "gt"];
  f.get(t).get(e).get(ca).get(cb);
  if (vec) f.simd(V[c as keyof typeof V]).simd(V.bitselect);
  else f.op(S[c as keyof typeof S]).op(S.select);
}

/**
 * exp(x) for a v128 local (Cephes' expf scheme): n = round(x log2 e), r = x - n ln 2 in two
 * parts, a polynomial for e^r, scaled by 2^n1 2^n2 (n1 + n2 = n, each a normal float built from
 * exponent bits). Below -87.3 the result is 0, above 88.7228 +Infinity; NaN stays NaN. Result on
 * the stack; t: four scratch v128 locals. With `nonPositive` (every x <= 0 or NaN: the sigmoid
 * family's exp(-|x|)), n is in [-126, 0], so one scaling by 2^n (a normal float; the result stays
 * normal, exp(-87.3) > 2^-126, so both ways are exact) gives the same bits, and the upper clamp and
 * the Infinity select are left out: sigmoid, SiLU and its derivative 1.26-1.31x faster on one
 * thread, softplus 1.16x (bench/README.md).
 */
function expV(f: Fn, x: number, t: number[], nonPositive = false): void {
  const [n, r, p, xc] = t;
  const c = (v: number) => f.constF32x4(v);
  // clamp by pmax, pmin (a < b ? b : a, b < a ? b : a: one instruction each, where max and min
  // propagate NaN in several); NaN stays NaN as the first operand
  f.get(x); c(-87.3); f.simd(0xeb);
  if (!nonPositive) { c(88.7228); f.simd(0xea); }
  f.set(xc);
  f.get(xc); c(Math.LOG2E); f.simd(V.mul).simd(0x6a).set(n); // f32x4.nearest
  f.get(xc).get(n); c(0.693359375); f.simd(V.mul).simd(V.sub).get(n); c(-2.12194440e-4); f.simd(V.mul).simd(V.sub).set(r);
  c(1.9875691500e-4);
  for (const k of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]) { f.get(r).simd(V.mul); c(k); f.simd(V.add); }
  f.get(r).get(r).simd(V.mul).simd(V.mul).get(r).simd(V.add); c(1); f.simd(V.add).set(p);
  // times 2^k for an integer k: (k + 127) << 23 read as float bits
  f.get(n).simd(0xf8).set(n); // i32x4.trunc_sat_f32x4_s: n now holds the integer
  const pow2 = (k: number) => { f.get(k).constI32x4(127).simd(0xae).i32(23).simd(0xab); }; // add, shl
  if (nonPositive) {
    f.get(p); pow2(n); f.simd(V.mul).set(p);
  } else {
    // n1 = n >> 1, n2 = n - n1
    f.get(n).i32(1).simd(0xac).set(xc); // i32x4.shr_s
    f.get(p); pow2(xc); f.simd(V.mul);
    f.get(n).get(xc).simd(0xb1).set(xc); // i32x4.sub
    pow2(xc); f.simd(V.mul).set(p);
  }
  c(0); f.get(p); f.get(x); c(-87.3); f.simd(V.lt).simd(V.bitselect);
  if (!nonPositive) { f.set(p); c(Infinity); f.get(p); f.get(x); c(88.7228); f.simd(V.gt).simd(V.bitselect); }
}

/** Unary op on x (local), p and constants (locals), vector or scalar, result on the stack. */
function unExpr(f: Fn, o: UnaryOp, x: number, p: number, one: number, zero: number, vec: boolean): void {
  const sel = (t: () => void, e: () => void, cond: () => void) => {
    t(); e(); cond();
    if (vec) f.simd(V.bitselect);
    else f.op(S.select);
  };
  const cmpGt0 = () => { f.get(x).get(zero); if (vec) f.simd(V.gt); else f.op(S.gt); };
  switch (o) {
    case "neg": f.get(x); return void (vec ? f.simd(V.neg) : f.op(S.neg));
    case "abs": f.get(x); return void (vec ? f.simd(V.abs) : f.op(S.abs));
    case "sqrt": f.get(x); return void (vec ? f.simd(V.sqrt) : f.op(S.sqrt));
    case "square": f.get(x).get(x); return void (vec ? f.simd(V.mul) : f.op(S.mul));
    case "recip": f.get(one).get(x); return void (vec ? f.simd(V.div) : f.op(S.div));
    case "mulScalar": f.get(x).get(p); return void (vec ? f.simd(V.mul) : f.op(S.mul));
    case "addScalar": f.get(x).get(p); return void (vec ? f.simd(V.add) : f.op(S.add));
    case "relu": return sel(() => f.get(x), () => f.get(zero), cmpGt0);
    case "step": return sel(() => f.get(one), () => f.get(zero), cmpGt0);
    case "leakyRelu": return sel(() => f.get(x), () => { f.get(p).get(x); if (vec) f.simd(V.mul); else f.op(S.mul); }, cmpGt0);
    case "leakyStep": return sel(() => f.get(one), () => f.get(p), cmpGt0);
    case "exp": case "sigmoid": case "softplus": case "silu": case "siluGrad": {
      if (!vec) throw new Error("exp: vector only");
      const tmp = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      if (o === "exp") return expV(f, x, tmp);
      if (o === "softplus") {
        // max(x, 0) + log1p(exp(-|x|)); log1p(t) for t in [0, 1] as 2 atanh(s), s = t / (2 + t)
        // in [0, 1/3], by its odd series to s^13 (relative error below 2e-8), no cancellation.
        const t = f.local(V128), sv = f.local(V128), s2 = f.local(V128);
        f.get(x).simd(V.abs).simd(V.neg).set(t);
        expV(f, t, tmp, true);
        f.set(t);
        const c = (v: number) => f.constF32x4(v);
        f.get(t); c(2); f.get(t).simd(V.add).simd(V.div).set(sv);
        f.get(sv).get(sv).simd(V.mul).set(s2);
        c(1 / 13);
        for (const k of [1 / 11, 1 / 9, 1 / 7, 1 / 5, 1 / 3, 1]) { f.get(s2).simd(V.mul); c(k); f.simd(V.add); }
        f.get(sv).simd(V.mul); c(2); f.simd(V.mul); // log1p(t)
        f.get(x).get(zero).get(x).get(zero).simd(V.gt).simd(V.bitselect); // max(x, 0), NaN-safe
        f.simd(V.add);
        return;
      }
      // sigmoid: t = exp(-|x|), 1/(1+t) for x >= 0, t/(1+t) below (the reference's stable form)
      const e = f.local(V128), q = f.local(V128);
      f.get(x).simd(V.abs).simd(V.neg).set(e);
      expV(f, e, tmp, true);
      f.set(e);
      f.get(one).get(one).get(e).simd(V.add).simd(V.div).set(q);
      f.get(q).get(e).get(q).simd(V.mul).get(x).get(zero).simd(V.ge).simd(V.bitselect);
      if (o === "sigmoid") return;
      const s = f.local(V128);
      f.set(s);
      if (o === "silu") return void f.get(x).get(s).simd(V.mul);
      // siluGrad: s (1 + x (1 - s)), with 1 - s = sigmoid(-x) taken as the other branch (e q for
      // x >= 0, else q), not subtracted (1 - s cancels for large x).
      f.get(e).get(q).simd(V.mul).get(q).get(x).get(zero).simd(V.ge).simd(V.bitselect).set(q);
      f.get(s).get(one).get(x).get(q).simd(V.mul).simd(V.add).simd(V.mul);
      return;
    }
    default: throw new Error(`no SIMD kernel for ${o}`);
  }
}

/**
 * The vector form of a unary op that takes no scalar parameter, on a v128 local x, its result on
 * the stack: the same instructions as its un_<op> kernel, so a fused kernel's values are the
 * unary kernel's bit for bit (the convolutions' epilogue, copy.ts).
 */
export function unaryVec(f: Fn, o: "relu" | "silu" | "siluGrad" | "sigmoid" | "softplus", x: number, one: number, zero: number): void {
  unExpr(f, o, x, zero, one, zero, true);
}

/**
 * The vector form of a binary op on v128 locals x and y, its result on the stack: the
 * instructions of its bin_<op> kernel, so a fused kernel's values are bin_<op>'s bit for bit (the
 * convolutions' epilogues: an input gradient times ReLU's derivative, reluMask; copy.ts, gemm.ts).
 */
export function binaryVec(f: Fn, o: BinaryOp, x: number, y: number, one: number, zero: number): void {
  binExpr(f, o, x, y, one, zero, true);
}

/**
 * un_<op>(x, out, n, pbits): out = op(x). With `times` (the approximated ops' mu_<op>(x, out, n,
 * pbits, g)): out = g * op(x), op's value by the same instructions, then one f32 multiply, so
 * each element is bin_mul(g, un_<op>(x))'s bit for bit (an activation's backward in one pass).
 */
export function unaryFn(o: UnaryOp, times = false): Fn {
  const f = new Fn(times ? `mu_${o}` : `un_${o}`, times ? [I32, I32, I32, I32, I32] : [I32, I32, I32, I32]); // every argument i32: tasks pass through an Int32Array
  const [x, out, n, pbits, g] = [0, 1, 2, 3, 4];
  const pg = times ? f.local() : -1, vg = times ? f.local(V128) : -1;
  const p = f.local(F32);
  const i = f.local(), vend = f.local(), px = f.local(), po = f.local();
  const vx = f.local(V128), vp = f.local(V128), v1 = f.local(V128), v0 = f.local(V128);
  const sx = f.local(F32), s1 = f.local(F32), s0 = f.local(F32);
  f.get(pbits).op(0xbe).set(p); // f32.reinterpret_i32
  f.get(p).simd(simd.f32x4splat).set(vp);
  f.f32(1).simd(simd.f32x4splat).set(v1);
  f.f32(0).simd(simd.f32x4splat).set(v0);
  f.f32(1).set(s1);
  f.f32(0).set(s0);
  f.get(n).i32(-4).op(op.and).set(vend);
  f.get(x).set(px);
  f.get(out).set(po);
  if (times) f.get(g).set(pg);
  f.loop(i, () => f.i32(0), () => f.get(vend), 4, () => {
    f.get(px).simd(0x00, 0, 0).set(vx);
    f.get(po);
    if (times) f.get(pg).simd(0x00, 0, 0).set(vg).get(vg);
    unExpr(f, o, vx, vp, v1, v0, true);
    if (times) f.simd(V.mul);
    f.simd(0x0b, 0, 0);
    f.get(px).i32(16).op(op.add).set(px);
    f.get(po).i32(16).op(op.add).set(po);
    if (times) f.get(pg).i32(16).op(op.add).set(pg);
  });
  const approx = (SIMD_APPROX as readonly string[]).includes(o);
  if (times && !approx) throw new Error(`mu_${o}: only the approximated ops (whose unary always runs the kernel)`);
  f.loop(i, () => f.get(vend), () => f.get(n), 1, () => {
    if (approx) { // the tail through one lane of the vector code
      f.get(px).simd(0x09, 0, 0).set(vx);
      f.get(po);
      if (times) f.get(pg).op(0x2a, 0, 0);
      unExpr(f, o, vx, vp, v1, v0, true);
      f.simd(simd.f32x4extract, 0);
      if (times) f.op(S.mul);
      f.op(0x38, 0, 0);
      if (times) f.get(pg).i32(4).op(op.add).set(pg);
    } else {
      f.get(px).op(0x2a, 0, 0).set(sx);
      f.get(po);
      unExpr(f, o, sx, p, s1, s0, false);
      f.op(0x38, 0, 0);
    }
    f.get(px).i32(4).op(op.add).set(px);
    f.get(po).i32(4).op(op.add).set(po);
  });
  return f;
}

export function binaryFn(o: BinaryOp): Fn {
  const f = new Fn(`bin_${o}`, Array(12).fill(I32));
  const [a, a0, a1, a2, b, b0, b1, b2, out, D0, D1, D2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const i = f.local(), j = f.local(), k = f.local(), pa = f.local(), pb = f.local(), po = f.local(), vend = f.local();
  const va = f.local(V128), vb = f.local(V128), v1 = f.local(V128), v0 = f.local(V128);
  const sa = f.local(F32), sb = f.local(F32), s1 = f.local(F32), s0 = f.local(F32);
  f.f32(1).simd(simd.f32x4splat).set(v1);
  f.f32(0).simd(simd.f32x4splat).set(v0);
  f.f32(1).set(s1);
  f.f32(0).set(s0);
  f.get(out).set(po);
  // vectors only when each inner stride is 0 (splat) or 4 (contiguous)
  const ok = (s: number) => { f.get(s).op(op.eqz).get(s).i32(4).op(op.eq).op(op.or); };
  f.get(D2).i32(-4).op(op.and).set(vend);
  ok(a2); ok(b2); f.op(op.and).op(op.eqz).if(() => f.i32(0).set(vend));
  const load = (p: number, s: number, dst: number) => {
    f.get(s).op(op.eqz).if(() => f.get(p).splatLoad(0).set(dst), () => f.get(p).simd(0x00, 0, 0).set(dst));
  };
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      f.get(a).get(i).get(a0).op(op.mul).op(op.add).get(j).get(a1).op(op.mul).op(op.add).set(pa);
      f.get(b).get(i).get(b0).op(op.mul).op(op.add).get(j).get(b1).op(op.mul).op(op.add).set(pb);
      f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
        load(pa, a2, va);
        load(pb, b2, vb);
        f.get(po);
        binExpr(f, o, va, vb, v1, v0, true);
        f.simd(0x0b, 0, 0);
        f.get(pa).get(a2).i32(2).op(op.shl).op(op.add).set(pa);
        f.get(pb).get(b2).i32(2).op(op.shl).op(op.add).set(pb);
        f.get(po).i32(16).op(op.add).set(po);
      });
      f.loop(k, () => f.get(vend), () => f.get(D2), 1, () => {
        f.get(pa).op(0x2a, 0, 0).set(sa);
        f.get(pb).op(0x2a, 0, 0).set(sb);
        f.get(po);
        binExpr(f, o, sa, sb, s1, s0, false);
        f.op(0x38, 0, 0);
        f.get(pa).get(a2).op(op.add).set(pa);
        f.get(pb).get(b2).op(op.add).set(pb);
        f.get(po).i32(4).op(op.add).set(po);
      });
    });
  });
  return f;
}

/**
 * where(c, c0, c1, c2, a, a0, a1, a2, b, b0, b1, b2, out, D0, D1, D2): out = c != 0 ? a : b
 * over D0 x D1 x D2 (operand byte strides per dimension; vectors along the last when every inner
 * stride is 0 or 4). f32 `ne` is true for NaN and false for -0, as `c !== 0` in the reference.
 */
export function whereFn(): Fn {
  const f = new Fn("where", Array(16).fill(I32));
  const [c, c0, c1, c2, a, a0, a1, a2, b, b0, b1, b2, out, D0, D1, D2] = Array.from({ length: 16 }, (_, i) => i);
  const i = f.local(), j = f.local(), k = f.local(), pc = f.local(), pa = f.local(), pb = f.local(), po = f.local(), vend = f.local();
  const vc = f.local(V128), va = f.local(V128), vb = f.local(V128), v0 = f.local(V128);
  f.f32(0).simd(simd.f32x4splat).set(v0);
  f.get(out).set(po);
  const ok = (s: number) => { f.get(s).op(op.eqz).get(s).i32(4).op(op.eq).op(op.or); };
  f.get(D2).i32(-4).op(op.and).set(vend);
  ok(c2); ok(a2); f.op(op.and); ok(b2); f.op(op.and).op(op.eqz).if(() => f.i32(0).set(vend));
  const load = (p: number, s: number, dst: number) => {
    f.get(s).op(op.eqz).if(() => f.get(p).splatLoad(0).set(dst), () => f.get(p).simd(0x00, 0, 0).set(dst));
  };
  const row = (base: number, s0: number, s1: number, dst: number) => {
    f.get(base).get(i).get(s0).op(op.mul).op(op.add).get(j).get(s1).op(op.mul).op(op.add).set(dst);
  };
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      row(c, c0, c1, pc); row(a, a0, a1, pa); row(b, b0, b1, pb);
      f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
        load(pc, c2, vc); load(pa, a2, va); load(pb, b2, vb);
        f.get(po).get(va).get(vb).get(vc).get(v0).simd(0x42).simd(V.bitselect).simd(0x0b, 0, 0); // f32x4.ne
        for (const [p, s] of [[pc, c2], [pa, a2], [pb, b2]]) f.get(p).get(s).i32(2).op(op.shl).op(op.add).set(p);
        f.get(po).i32(16).op(op.add).set(po);
      });
      f.loop(k, () => f.get(vend), () => f.get(D2), 1, () => {
        f.get(po).get(pa).op(0x2a, 0, 0).get(pb).op(0x2a, 0, 0).get(pc).op(0x2a, 0, 0).f32(0).op(0x5c).op(S.select).op(0x38, 0, 0); // f32.ne, select
        for (const [p, s] of [[pc, c2], [pa, a2], [pb, b2]]) f.get(p).get(s).op(op.add).set(p);
        f.get(po).i32(4).op(op.add).set(po);
      });
    });
  });
  return f;
}
