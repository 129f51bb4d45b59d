// GroupNorm's normalisation and its gradient for the wasm backend, fused: one kernel each where
// the composed form ran about ten (mean, deviation, square, mean, add, sqrt, reciprocal, product,
// and their broadcasts; more backward). Two passes over each row of M elements (statistics, then
// the output), in double precision two lanes at a time (f64x2): each element's arithmetic is the
// double-precision formula rounded once to f32, only the sums' grouping differs from a sequential
// loop. The backend splits the rows among the threads.
//   gn_fwd(x, y, rstd, r0, r1, M, epsLo, epsHi): rows [r0, r1) of [rows, M]: y = (x - mean) rstd,
//     rstd = 1 / sqrt(var + eps) (eps a double, as two i32 halves), the statistics shifted by the
//     row's first element (so the sum of squares does not cancel for rows far from zero).
//   gn_bwd(g, y, rstd, dx, r0, r1, M): dx = rstd g - rstd mean(g) - y rstd mean(g y).
//   ga_<act>(y, s0, s1, pre, d0, d1, D0, D1, D2, out, w, b, C, c0): the per-channel affine and an
//     activation after it, over D0 channel planes of D1 x D2 floats (the rows gn_fwd just wrote,
//     still in cache): pre = y * w[c] + b[c] and out = act(pre), c = (c0 + i) % C for plane i.
import { F64, Fn, I32, op, simd, V128 } from "./emit.ts";
import type { ConvAct } from "../backend.ts";
import { actConstants, copyOutLoop, loadAt, storeActivated } from "./copy.ts";

// f64x2 and scalar f64 opcodes
const D = { splat: 0x14, add: 0xf0, sub: 0xf1, mul: 0xf2, extract: 0x21, promoteLow: 0x5f, demote: 0x5e, load64zero: 0x5d, store64lane: 0x5b };
const d = { add: 0xa0, sub: 0xa1, mul: 0xa2, div: 0xa3, sqrt: 0x9f, max: 0xa5, promote: 0xbb, demote: 0xb6, fromI32: 0xb7 };

/** Loads floats [p, p+8) as an f64x2 of the two (v128.load64_zero, promote). */
const load2 = (f: Fn, p: number) => f.get(p).simd(D.load64zero, 3, 0).simd(D.promoteLow);
/** Stores the f64x2 on the stack (demoted) as two floats at the address pushed before it. */
const store2 = (f: Fn) => f.simd(D.demote).simd(D.store64lane, 3, 0, 0);
const load1 = (f: Fn, p: number) => f.get(p).op(0x2a, 0, 0).op(d.promote);

export function groupNormFwdFn(): Fn {
  const f = new Fn("gn_fwd", Array(8).fill(I32));
  const [x, y, rstd, r0, r1, M, epsLo, epsHi] = [0, 1, 2, 3, 4, 5, 6, 7];
  const r = f.local(), i = f.local(), px = f.local(), py = f.local(), m2 = f.local();
  const x0 = f.local(F64), s = f.local(F64), ss = f.local(F64), t = f.local(F64), mean = f.local(F64), k = f.local(F64), mu = f.local(F64), eps = f.local(F64), Mf = f.local(F64);
  const s2 = f.local(V128), ss2 = f.local(V128), t2 = f.local(V128), x02 = f.local(V128), mu2 = f.local(V128), k2 = f.local(V128);
  // eps = f64 from (lo, hi): i64.extend_i32_u lo | (i64.extend_i32_u hi) << 32, reinterpreted
  f.get(epsLo).op(0xad).get(epsHi).op(0xad).op(0x42, 32).op(0x86).op(0x84).op(0xbf).set(eps);
  f.get(M).op(d.fromI32).set(Mf);
  f.get(M).i32(-2).op(op.and).set(m2);
  f.loop(r, () => f.get(r0), () => f.get(r1), 1, () => {
    f.get(x).get(r).get(M).op(op.mul).i32(2).op(op.shl).op(op.add).set(px);
    load1(f, px).set(x0);
    f.get(x0).simd(D.splat).set(x02);
    f.f32(0).op(d.promote).simd(D.splat).tee(s2).set(ss2);
    f.get(px).set(py);
    f.loop(i, () => f.i32(0), () => f.get(m2), 2, () => {
      load2(f, py).get(x02).simd(D.sub).set(t2);
      f.get(s2).get(t2).simd(D.add).set(s2);
      f.get(ss2).get(t2).get(t2).simd(D.mul).simd(D.add).set(ss2);
      f.get(py).i32(8).op(op.add).set(py);
    });
    f.get(s2).simd(D.extract, 0).get(s2).simd(D.extract, 1).op(d.add).set(s);
    f.get(ss2).simd(D.extract, 0).get(ss2).simd(D.extract, 1).op(d.add).set(ss);
    f.loop(i, () => f.get(m2), () => f.get(M), 1, () => { // the odd element
      load1(f, py).get(x0).op(d.sub).set(t);
      f.get(s).get(t).op(d.add).set(s);
      f.get(ss).get(t).get(t).op(d.mul).op(d.add).set(ss);
      f.get(py).i32(4).op(op.add).set(py);
    });
    f.get(s).get(Mf).op(d.div).set(mean);
    // k = 1 / sqrt(max(0, ss / M - mean^2) + eps); mu = x0 + mean
    f.f32(1).op(d.promote);
    f.f32(0).op(d.promote).get(ss).get(Mf).op(d.div).get(mean).get(mean).op(d.mul).op(d.sub).op(d.max).get(eps).op(d.add).op(d.sqrt);
    f.op(d.div).set(k);
    f.get(x0).get(mean).op(d.add).set(mu);
    f.get(rstd).get(r).i32(2).op(op.shl).op(op.add).get(k).op(d.demote).op(0x38, 2, 0);
    f.get(mu).simd(D.splat).set(mu2);
    f.get(k).simd(D.splat).set(k2);
    f.get(y).get(r).get(M).op(op.mul).i32(2).op(op.shl).op(op.add).set(py);
    f.loop(i, () => f.i32(0), () => f.get(m2), 2, () => {
      f.get(py);
      load2(f, px).get(mu2).simd(D.sub).get(k2).simd(D.mul);
      store2(f);
      f.get(px).i32(8).op(op.add).set(px);
      f.get(py).i32(8).op(op.add).set(py);
    });
    f.loop(i, () => f.get(m2), () => f.get(M), 1, () => {
      f.get(py);
      load1(f, px).get(mu).op(d.sub).get(k).op(d.mul).op(d.demote).op(0x38, 0, 0);
      f.get(px).i32(4).op(op.add).set(px);
      f.get(py).i32(4).op(op.add).set(py);
    });
  });
  return f;
}

export function groupNormBwdFn(): Fn {
  const f = new Fn("gn_bwd", Array(7).fill(I32));
  const [g, y, rstd, dx, r0, r1, M] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(), i = f.local(), pg = f.local(), py = f.local(), po = f.local(), m2 = f.local(), base = f.local();
  const sg = f.local(F64), sgy = f.local(F64), k = f.local(F64), a = f.local(F64), b = f.local(F64), gv = f.local(F64), Mf = f.local(F64);
  const sg2 = f.local(V128), sgy2 = f.local(V128), g2 = f.local(V128), k2 = f.local(V128), a2 = f.local(V128), b2 = f.local(V128);
  f.get(M).op(d.fromI32).set(Mf);
  f.get(M).i32(-2).op(op.and).set(m2);
  f.loop(r, () => f.get(r0), () => f.get(r1), 1, () => {
    f.get(r).get(M).op(op.mul).i32(2).op(op.shl).set(base);
    f.get(g).get(base).op(op.add).set(pg);
    f.get(y).get(base).op(op.add).set(py);
    f.f32(0).op(d.promote).simd(D.splat).tee(sg2).set(sgy2);
    f.loop(i, () => f.i32(0), () => f.get(m2), 2, () => {
      load2(f, pg).set(g2);
      f.get(sg2).get(g2).simd(D.add).set(sg2);
      f.get(sgy2).get(g2); load2(f, py); f.simd(D.mul).simd(D.add).set(sgy2);
      f.get(pg).i32(8).op(op.add).set(pg);
      f.get(py).i32(8).op(op.add).set(py);
    });
    f.get(sg2).simd(D.extract, 0).get(sg2).simd(D.extract, 1).op(d.add).set(sg);
    f.get(sgy2).simd(D.extract, 0).get(sgy2).simd(D.extract, 1).op(d.add).set(sgy);
    f.loop(i, () => f.get(m2), () => f.get(M), 1, () => {
      load1(f, pg).set(gv);
      f.get(sg).get(gv).op(d.add).set(sg);
      f.get(sgy).get(gv); load1(f, py); f.op(d.mul).op(d.add).set(sgy);
      f.get(pg).i32(4).op(op.add).set(pg);
      f.get(py).i32(4).op(op.add).set(py);
    });
    // k = rstd[r]; a = k sg / M; b = k sgy / M; dx = k g - a - y b
    f.get(rstd).get(r).i32(2).op(op.shl).op(op.add).op(0x2a, 2, 0).op(d.promote).set(k);
    f.get(k).get(sg).op(d.mul).get(Mf).op(d.div).set(a);
    f.get(k).get(sgy).op(d.mul).get(Mf).op(d.div).set(b);
    f.get(k).simd(D.splat).set(k2);
    f.get(a).simd(D.splat).set(a2);
    f.get(b).simd(D.splat).set(b2);
    f.get(g).get(base).op(op.add).set(pg);
    f.get(y).get(base).op(op.add).set(py);
    f.get(dx).get(base).op(op.add).set(po);
    f.loop(i, () => f.i32(0), () => f.get(m2), 2, () => {
      f.get(po);
      f.get(k2); load2(f, pg); f.simd(D.mul).get(a2).simd(D.sub);
      load2(f, py); f.get(b2).simd(D.mul).simd(D.sub);
      store2(f);
      f.get(pg).i32(8).op(op.add).set(pg);
      f.get(py).i32(8).op(op.add).set(py);
      f.get(po).i32(8).op(op.add).set(po);
    });
    f.loop(i, () => f.get(m2), () => f.get(M), 1, () => {
      f.get(po);
      f.get(k); load1(f, pg); f.op(d.mul).get(a).op(d.sub);
      load1(f, py); f.get(b).op(d.mul).op(d.sub);
      f.op(d.demote).op(0x38, 0, 0);
      f.get(pg).i32(4).op(op.add).set(pg);
      f.get(py).i32(4).op(op.add).set(py);
      f.get(po).i32(4).op(op.add).set(po);
    });
  });
  return f;
}

/**
 * ga_<act>: GroupNorm's per-channel affine and the activation after it, one pass over the planes
 * gn_fwd wrote, where the composed ops made three (a multiply and an add broadcast per channel,
 * the activation): pre = y * w[c] + b[c] at pre (y's strides), and with an activation
 * out = act(pre) at out. Each value is bin_mul's, bin_add's and un_<act>'s bit for bit: the same
 * f32x4 instructions (a multiply, then an add: no fused multiply-add), planes of 4 or more floats
 * as vectors, shorter ones one lane of the vector code (copy.ts copyOutLoop).
 */
export function groupNormAffineFn(act: ConvAct): Fn {
  const f = new Fn(`ga_${act}`, Array(14).fill(I32));
  const out = 9, w = 10, b = 11, C = 12, c0 = 13;
  const ch = f.local(), vw = f.local(V128), vb = f.local(V128), v = f.local(V128), k01 = actConstants(f);
  copyOutLoop(f, out, (i) => {
    f.get(c0).get(i).op(op.add).get(C).op(op.remU).i32(2).op(op.shl).set(ch);
    f.get(w).get(ch).op(op.add).splatLoad(0).set(vw);
    f.get(b).get(ch).op(op.add).splatLoad(0).set(vb);
  }, (lane, k, rows) => {
    loadAt(f, lane, rows.rs, k).get(vw).simd(simd.f32x4mul).get(vb).simd(simd.f32x4add).set(v);
    storeActivated(f, lane, k, rows, v, act, k01);
  });
  return f;
}
