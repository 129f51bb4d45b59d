// The optimisers' fused update in SIMD128 (the contract's momentUpdate): Adam or Adamax on one
// parameter in one pass over p, g, m and v, in the composed form's order of f32 operations
// (src/nn/optim.ts: products by the f32-rounded constants, no fused multiply-add), so it equals
// the composed ops of this backend's SIMD kernels; the 13 ops and three assignments it replaces
// per parameter cost ~0.1 ms of JavaScript each step on the Glow's 90 tensors.
//   moment(p, g, m, v, pOut, mOut, vOut, n, hp): byte addresses; hp holds 9 f32: kind (0 Adam,
//   1 Adamax), b1, omb1, b2, omb2, invC2, eps, lrc, wd.
import { F32, Fn, I32, op, simd, V128 } from "./emit.ts";

const V = { abs: 0xe0, sqrt: 0xe3, add: 0xe4, sub: 0xe5, mul: 0xe6, div: 0xe7, ge: 0x46, bitselect: 0x52 };
const S = { abs: 0x8b, sqrt: 0x91, add: 0x92, sub: 0x93, mul: 0x94, div: 0x95, ge: 0x60, select: 0x1b };

export function momentFn(): Fn {
  const f = new Fn("moment", Array(9).fill(I32));
  const [p, g, m, v, po, mo, vo, n, hp] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const i = f.local(), vend = f.local(), off = f.local(), kind = f.local(), wdOn = f.local();
  // constants as f32 scalars and splats
  const names = ["b1", "omb1", "b2", "omb2", "invC2", "eps", "lrc", "wd"] as const;
  const sc = Object.fromEntries(names.map((k) => [k, f.local(F32)])) as Record<typeof names[number], number>;
  const vc = Object.fromEntries(names.map((k) => [k, f.local(V128)])) as Record<typeof names[number], number>;
  f.get(hp).op(0x2a, 2, 0).op(0xa8).set(kind); // i32.trunc_f32_s of hp[0]
  names.forEach((k, j) => {
    f.get(hp).op(0x2a, 2, 4 * (j + 1)).set(sc[k]);
    f.get(sc[k]).simd(simd.f32x4splat).set(vc[k]);
  });
  f.get(sc.wd).f32(0).op(0x5c).set(wdOn); // f32.ne
  f.get(n).i32(-4).op(op.and).set(vend);
  // one element (vector or scalar lane), the composed form's order
  const body = (vec: boolean) => {
    const T = vec ? V128 : F32;
    const [pv, gv, mv, vv, d] = [f.local(T), f.local(T), f.local(T), f.local(T), f.local(T)];
    const ld = (base: number, dst: number) => vec ? f.get(base).get(off).op(op.add).simd(0x00, 0, 0).set(dst) : f.get(base).get(off).op(op.add).op(0x2a, 0, 0).set(dst);
    const st = (base: number, src: number) => {
      f.get(base).get(off).op(op.add).get(src);
      if (vec) f.simd(0x0b, 0, 0); else f.op(0x38, 0, 0);
    };
    const c = (k: typeof names[number]) => f.get(vec ? vc[k] : sc[k]);
    const ar = (o: keyof typeof V) => vec ? f.simd(V[o]) : f.op(S[o as keyof typeof S]);
    ld(p, pv); ld(g, gv); ld(m, mv); ld(v, vv);
    f.get(wdOn).if(() => { f.get(gv).get(pv); c("wd"); ar("mul"); ar("add"); f.set(gv); });
    f.get(mv); c("b1"); ar("mul"); f.get(gv); c("omb1"); ar("mul"); ar("add"); f.set(mv);
    f.get(kind).op(op.eqz).if(() => {
      // Adam: v' = b2 v + omb2 g^2; d = m' / (sqrt(v' invC2) + eps)
      f.get(vv); c("b2"); ar("mul"); f.get(gv).get(gv); ar("mul"); c("omb2"); ar("mul"); ar("add"); f.set(vv);
      f.get(mv).get(vv); c("invC2"); ar("mul"); ar("sqrt"); c("eps"); ar("add"); ar("div"); f.set(d);
    }, () => {
      // Adamax: v' = max(b2 v, |g|) (x >= y ? x : y, as the maximum kernel); d = m' / (v' + eps)
      f.get(vv); c("b2"); ar("mul"); f.set(vv);
      f.get(vv).get(gv); ar("abs");
      f.get(vv).get(gv); ar("abs"); ar("ge");
      if (vec) f.simd(V.bitselect); else f.op(S.select);
      f.set(vv);
      f.get(mv).get(vv); c("eps"); ar("add"); ar("div"); f.set(d);
    });
    f.get(d); c("lrc"); ar("mul"); f.set(d);
    f.get(pv).get(d); ar("sub"); f.set(pv);
    st(po, pv); st(mo, mv); st(vo, vv);
  };
  f.loop(i, () => f.i32(0), () => f.get(vend), 4, () => {
    f.get(i).i32(2).op(op.shl).set(off);
    body(true);
  });
  f.loop(i, () => f.get(vend), () => f.get(n), 1, () => {
    f.get(i).i32(2).op(op.shl).set(off);
    body(false);
  });
  return f;
}
