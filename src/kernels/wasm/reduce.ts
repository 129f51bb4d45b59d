// The wasm backend's sum and sum-of-squares kernels over the middle axis of [outer, R, inner],
// in double accumulators in the reference's order (so the results equal the reference's bit for
// bit): four columns at a time as two f64x2 where inner >= 4; where inner = 1, eight rows at a
// time (two rows to an f64x2, each lane a sequential sum), then four (one sequential f64 sum
// each). The backend splits them among the threads by rows or by column blocks; max stays in
// js_ops.ts. And whether a block of floats is all finite (an "any" over it).
import { F32, F64, Fn, I32, op, simd, V128 } from "./emit.ts";

/**
 * red_<op>(x, out, rows, R, cols, ld): out[o][i] = sum over r of x[o][r][i] (squared for sumsq)
 * for o < rows, i < cols, where x[o][r][i] is at x + 4 (o R ld + r ld + i) and out[o][i] at
 * out + 4 (o ld + i): ld is the full inner extent, cols a block of it.
 */
export function reduceFn(kind: "sum" | "sumsq"): Fn {
  const f = new Fn(`red_${kind}`, [I32, I32, I32, I32, I32, I32]);
  const [x, out, rows, R, cols, ld] = [0, 1, 2, 3, 4, 5];
  const o = f.local(), r = f.local(), i = f.local(), p = f.local(), base = f.local(), ob = f.local(), vend = f.local(), ldB = f.local();
  const s = f.local(F64), lo = f.local(V128), hi = f.local(V128), v = f.local(V128), t = f.local(V128);
  const sq = kind === "sumsq";
  f.get(ld).i32(2).op(op.shl).set(ldB);
  f.get(cols).i32(-4).op(op.and).set(vend);
  // inner = 1: eight rows at a time, two to an f64x2 (each lane one row's sum, in order), four
  // elements of each row per step; then four rows at a time, each in its own f64 (independent
  // chains instead of one add's latency per element)
  const o8 = f.local(), o4 = f.local(), r4 = f.local(), ps = [f.local(), f.local(), f.local(), f.local()], ss = [f.local(F64), f.local(F64), f.local(F64), f.local(F64)];
  const p8 = Array.from({ length: 8 }, () => f.local()), a2 = Array.from({ length: 4 }, () => f.local(V128)), va = f.local(V128), vb = f.local(V128);
  f.i32(0).set(o8);
  f.i32(0).set(o4);
  f.get(ld).i32(1).op(op.eq).if(() => {
    f.get(rows).i32(-8).op(op.and).set(o8);
    f.get(rows).i32(-4).op(op.and).set(o4);
  });
  f.get(R).i32(-4).op(op.and).i32(2).op(op.shl).set(r4);
  /** acc += (lanes promoted to f64x2, squared for sumsq), the lanes on the stack as f32x4 (0 and 1 used). */
  const addPair = (acc: number) => {
    f.simd(0x5f).set(t); // f64x2.promote_low_f32x4
    f.get(acc).get(t);
    if (sq) f.get(t).simd(0xf2); // f64x2.mul
    f.simd(0xf0).set(acc); // f64x2.add
  };
  f.loop(o, () => f.i32(0), () => f.get(o8), 8, () => {
    p8.forEach((pk, k) => f.get(x).get(o).i32(k).op(op.add).get(R).op(op.mul).i32(2).op(op.shl).op(op.add).set(pk));
    for (const a of a2) f.i32(0).simd(0x11).set(a); // i32x4.splat 0: f64x2 zeros
    f.loop(r, () => f.i32(0), () => f.get(r4), 16, () => {
      for (let q = 0; q < 4; q++) {
        f.get(p8[2 * q]).get(r).op(op.add).simd(0x00, 0, 0).set(va); // unaligned v128.load
        f.get(p8[2 * q + 1]).get(r).op(op.add).simd(0x00, 0, 0).set(vb);
        for (let e = 0; e < 4; e++) {
          f.get(va).get(vb).shuffle32([e, 4 + e, e, 4 + e]); // [row 2q's e-th, row 2q+1's e-th, ...]
          addPair(a2[q]);
        }
      }
    });
    // the last R mod 4 elements of each row, two rows' at a time
    f.loop(r, () => f.get(r4), () => f.get(R).i32(2).op(op.shl), 4, () => {
      for (let q = 0; q < 4; q++) {
        f.get(p8[2 * q]).get(r).op(op.add).splatLoad(0);
        f.get(p8[2 * q + 1]).get(r).op(op.add).op(0x2a, 0, 0).simd(0x20, 1); // f32.load; f32x4.replace_lane 1
        addPair(a2[q]);
      }
    });
    for (let q = 0; q < 8; q++) {
      f.get(out).get(o).i32(q).op(op.add).i32(2).op(op.shl).op(op.add);
      f.get(a2[q >> 1]).simd(0x21, q & 1).op(0xb6).op(0x38, 0, 0); // f64x2.extract_lane, f32.demote_f64, f32.store
    }
  });
  f.loop(o, () => f.get(o8), () => f.get(o4), 4, () => {
    ps.forEach((pk, k) => {
      f.get(x).get(o).i32(k).op(op.add).get(R).op(op.mul).i32(2).op(op.shl).op(op.add).set(pk);
      f.f32(0).op(0xbb).set(ss[k]);
    });
    f.loop(r, () => f.i32(0), () => f.get(R), 1, () => {
      ps.forEach((pk, k) => {
        f.get(ss[k]).get(pk).op(0x2a, 0, 0).op(0xbb);
        if (sq) f.get(pk).op(0x2a, 0, 0).op(0xbb).op(0xa2);
        f.op(0xa0).set(ss[k]);
        f.get(pk).i32(4).op(op.add).set(pk);
      });
    });
    ss.forEach((sk, k) => f.get(out).get(o).i32(k).op(op.add).i32(2).op(op.shl).op(op.add).get(sk).op(0xb6).op(0x38, 0, 0));
  });
  f.loop(o, () => f.get(o4), () => f.get(rows), 1, () => {
    f.get(x).get(o).get(R).op(op.mul).get(ldB).op(op.mul).op(op.add).set(base);
    f.get(out).get(o).get(ldB).op(op.mul).op(op.add).set(ob);
    // four columns: lanes 0-1 and 2-3 promoted to f64x2 and summed down the rows
    f.loop(i, () => f.i32(0), () => f.get(vend), 4, () => {
      f.i32(0).simd(0x11).set(lo); // i32x4.splat 0: f64x2 zeros
      f.i32(0).simd(0x11).set(hi);
      f.get(base).get(i).i32(2).op(op.shl).op(op.add).set(p);
      f.loop(r, () => f.i32(0), () => f.get(R), 1, () => {
        f.get(p).simd(0x00, 0, 0).set(v);
        f.get(v);
        addPair(lo);
        f.get(v).get(v).shuffle32([2, 3, 0, 1]); // lanes 2, 3 first
        addPair(hi);
        f.get(p).get(ldB).op(op.add).set(p);
      });
      f.get(ob).get(i).i32(2).op(op.shl).op(op.add).get(lo).simd(0x5e).simd(0x5b, 0, 0, 0); // f32x4.demote_f64x2_zero; v128.store64_lane 0
      f.get(ob).get(i).i32(2).op(op.shl).op(op.add).get(hi).simd(0x5e).simd(0x5b, 0, 8, 0);
    });
    // the columns past the last four, one at a time
    f.loop(i, () => f.get(vend), () => f.get(cols), 1, () => {
      f.f32(0).op(0xbb).set(s); // f64.promote_f32
      f.get(base).get(i).i32(2).op(op.shl).op(op.add).set(p);
      f.loop(r, () => f.i32(0), () => f.get(R), 1, () => {
        f.get(s).get(p).op(0x2a, 0, 0).op(0xbb);
        if (sq) f.get(p).op(0x2a, 0, 0).op(0xbb).op(0xa2); // f64.mul
        f.op(0xa0).set(s); // f64.add
        f.get(p).get(ldB).op(op.add).set(p);
      });
      f.get(ob).get(i).i32(2).op(op.shl).op(op.add).get(s).op(0xb6).op(0x38, 0, 0); // f32.demote_f64, f32.store
    });
  });
  return f;
}

/**
 * finite(x, n) -> 1 when the n floats at x (bytes, any alignment) are all finite, else 0: v - v is
 * +0 (no bit set) for a finite v and NaN for an infinite or NaN one, so the differences' bits are
 * or-ed together, four floats a step and the last n mod 4 one at a time, and tested once at the
 * end (a weight gradient's check for a non-finite value, conv.ts, where a TypeScript loop over
 * the per-group passes' gradients cost ~6% of the Glow's feature pass's caller time).
 */
export function finiteFn(): Fn {
  const f = new Fn("finite", [I32, I32], I32);
  const [x, n] = [0, 1];
  const p = f.local(), vend = f.local(), end = f.local(), bits = f.local(), acc = f.local(V128), v = f.local(V128), s = f.local(F32);
  f.i32(0).simd(0x11).set(acc); // i32x4.splat 0
  f.i32(0).set(bits);
  f.get(n).i32(-4).op(op.and).i32(2).op(op.shl).get(x).op(op.add).set(vend);
  f.get(n).i32(2).op(op.shl).get(x).op(op.add).set(end);
  f.loop(p, () => f.get(x), () => f.get(vend), 16, () => {
    f.get(p).simd(0x00, 0, 0).set(v); // unaligned v128.load
    f.get(acc).get(v).get(v).simd(simd.f32x4sub).simd(0x50).set(acc); // v128.or
  });
  f.loop(p, () => f.get(vend), () => f.get(end), 4, () => {
    f.get(p).op(0x2a, 0, 0).set(s); // f32.load, align 1
    f.get(bits).get(s).get(s).op(op.f32sub).op(0xbc).op(op.or).set(bits); // i32.reinterpret_f32
  });
  f.get(acc).simd(0x53).get(bits).op(op.or).op(op.eqz); // v128.any_true
  return f;
}
