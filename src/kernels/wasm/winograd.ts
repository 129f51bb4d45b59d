// The Winograd F(2x2, 3x3) kernel family (Lavin & Gray 2016): a stride-1 3x3 correlation with
// padding 1 as 16 matrix products in a transformed domain, 2.25x fewer multiply-adds than the
// direct one. A 4x4 input patch d (rows and columns 2t-1 .. 2t+2) and a 3x3 filter g give the
// 2x2 outputs Y = A^T [(G g G^T) . (B^T d B)] A, with
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// These three kernels are its transforms; the products are the gemm family's (packed operands),
// and conv_winograd.ts drives them. The input and output transforms work on 4 horizontally
// adjacent tiles at once, one per lane.
import { F32, Fn, I32, op, simd, V128 } from "./emit.ts";

const vload = (f: Fn, off = 0) => f.simd(0x00, 0, off); // unaligned v128.load
const vstore = (f: Fn, off = 0) => f.simd(0x0b, 0, off);

/**
 * wino_filter(w, sRow, sK, r0, r1, rows, K, flip, a, AB, MR): the transformed filters U = G g G^T
 * of rows [r0, r1) (whole MR-row panels) packed as the gemm's A for each of the 16 points:
 * point e's [rows x K] matrix at a + e AB, panel-major ([panel][K][MR], byte offsets). Filter
 * (row r, column k) is the 9 floats at w + r sRow + k sK (byte strides), read reversed with
 * `flip` (the input gradient's correlation with the flipped filters). Rows past `rows` are zeros.
 */
export function winoFilterFn(): Fn {
  const f = new Fn("wino_filter", Array(11).fill(I32));
  const [w, sRow, sK, r0, r1, rows, K, flip, a, AB, MR] = Array.from({ length: 11 }, (_, i) => i);
  const r = f.local(), k = f.local(), src = f.local(), dst = f.local();
  const g = Array.from({ length: 9 }, () => f.local(F32)), t = Array.from({ length: 12 }, () => f.local(F32));
  const half = f.local(F32);
  f.f32(0.5).set(half);
  f.loop(r, () => f.get(r0), () => f.get(r1), 1, () => {
    f.loop(k, () => f.i32(0), () => f.get(K), 1, () => {
      // dst = a + ((r / MR) K + k) MR + r % MR, in floats
      f.get(a).get(r).get(MR).op(0x6d).get(K).op(op.mul).get(k).op(op.add).get(MR).op(op.mul) // i32.div_s
        .get(r).get(MR).op(0x6f).op(op.add).i32(2).op(op.shl).op(op.add).set(dst); // i32.rem_s
      f.get(r).get(rows).op(op.ltS).if(() => {
        f.get(w).get(r).get(sRow).op(op.mul).op(op.add).get(k).get(sK).op(op.mul).op(op.add).set(src);
        f.get(flip).if(() => {
          for (let i = 0; i < 9; i++) f.get(src).f32load((8 - i) * 4).set(g[i]);
        }, () => {
          for (let i = 0; i < 9; i++) f.get(src).f32load(i * 4).set(g[i]);
        });
        // t = G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 (g's rows: g[3 y + x])
        for (let x = 0; x < 3; x++) {
          f.get(g[x]).set(t[x]);
          f.get(g[x]).get(g[3 + x]).op(op.f32add).get(g[6 + x]).op(op.f32add).get(half).op(op.f32mul).set(t[3 + x]);
          f.get(g[x]).get(g[3 + x]).op(op.f32sub).get(g[6 + x]).op(op.f32add).get(half).op(op.f32mul).set(t[6 + x]);
          f.get(g[6 + x]).set(t[9 + x]);
        }
        // U = t G^T, row by row
        for (let y = 0; y < 4; y++) {
          const [p, q, s] = [t[3 * y], t[3 * y + 1], t[3 * y + 2]];
          const at = (x: number) => f.get(dst).get(AB).i32(4 * y + x).op(op.mul).op(op.add);
          at(0).get(p).f32store();
          at(1).get(p).get(q).op(op.f32add).get(s).op(op.f32add).get(half).op(op.f32mul).f32store();
          at(2).get(p).get(q).op(op.f32sub).get(s).op(op.f32add).get(half).op(op.f32mul).f32store();
          at(3).get(s).f32store();
        }
      }, () => {
        for (let e = 0; e < 16; e++) f.get(dst).get(AB).i32(e).op(op.mul).op(op.add).f32(0).f32store();
      });
    });
  });
  return f;
}

/**
 * wino_in(src, plane, row, c0, c1, ty0, ty1, TWp, dst, VB, col0, K): the transformed input
 * patches V = B^T d B of channels [c0, c1) of one zero-padded image (channel c's rows at
 * src + c plane, `row` bytes apart; the image's row y, column x at row 1 + y, column 1 + x), tile
 * rows [ty0, ty1) of TWp tiles (TWp a multiple of 4; the padded block 2 ty1 + 2 rows or more, of
 * 2 TWp + 2 floats or more), packed as the gemm's B for each of the 16 points: point e's
 * [K x columns] matrix at dst + e VB, [panel][K][8]; tile (ty, tx) is column
 * col0 + (ty - ty0) TWp + tx (col0 a multiple of 4).
 */
export function winoInFn(): Fn {
  const f = new Fn("wino_in", Array(12).fill(I32));
  const [src, plane, row, c0, c1, ty0, ty1, TWp, dst, VB, col0, K] = Array.from({ length: 12 }, (_, i) => i);
  const c = f.local(), ty = f.local(), tx = f.local(), p = f.local(), col = f.local(), out = f.local();
  const v = Array.from({ length: 4 }, () => f.local(V128)), d = Array.from({ length: 4 }, () => f.local(V128));
  const t = Array.from({ length: 16 }, () => f.local(V128));
  const EVEN = [0, 2, 4, 6], ODD = [1, 3, 5, 7];
  f.loop(c, () => f.get(c0), () => f.get(c1), 1, () => {
    f.loop(ty, () => f.get(ty0), () => f.get(ty1), 1, () => {
      f.loop(tx, () => f.i32(0), () => f.get(TWp), 4, () => {
        // the patch rows start at row 2 ty, column 2 tx of the padded block
        f.get(src).get(c).get(plane).op(op.mul).op(op.add).get(ty).get(row).op(op.mul).i32(1).op(op.shl).op(op.add)
          .get(tx).i32(3).op(op.shl).op(op.add).set(p);
        for (let i = 0; i < 4; i++) {
          // columns 2tx .. 2tx+7 and 2tx+2 .. 2tx+9: d_j = column 2 tx + j of each of the 4 tiles
          for (const [n, off] of [[0, 0], [1, 16], [2, 8], [3, 24]]) vload(f.get(p), off).set(v[n]);
          f.get(v[0]).get(v[1]);
          f.shuffle32(EVEN).set(d[0]);
          f.get(v[0]).get(v[1]);
          f.shuffle32(ODD).set(d[1]);
          f.get(v[2]).get(v[3]);
          f.shuffle32(EVEN).set(d[2]);
          f.get(v[2]).get(v[3]);
          f.shuffle32(ODD).set(d[3]);
          // d B: d0 - d2, d1 + d2, d2 - d1, d1 - d3
          f.get(d[0]).get(d[2]).simd(simd.f32x4sub).set(t[4 * i]);
          f.get(d[1]).get(d[2]).simd(simd.f32x4add).set(t[4 * i + 1]);
          f.get(d[2]).get(d[1]).simd(simd.f32x4sub).set(t[4 * i + 2]);
          f.get(d[1]).get(d[3]).simd(simd.f32x4sub).set(t[4 * i + 3]);
          f.get(p).get(row).op(op.add).set(p);
        }
        // column col (4 tiles from it, within one 8-wide panel): ((col >> 3) K + c) 32 + (col & 7) 4
        f.get(col0).get(ty).get(ty0).op(op.sub).get(TWp).op(op.mul).op(op.add).get(tx).op(op.add).set(col);
        f.get(dst).get(col).i32(3).op(0x75).get(K).op(op.mul).get(c).op(op.add).i32(5).op(op.shl).op(op.add) // i32.shr_s
          .get(col).i32(7).op(op.and).i32(2).op(op.shl).op(op.add).set(out);
        // B^T (d B) by columns: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3
        for (let j = 0; j < 4; j++) {
          const rowsOf = (i: number) => t[4 * i + j];
          const put = (e: number, x: number, y: number, code: number) => {
            f.get(out).get(VB).i32(e).op(op.mul).op(op.add).get(rowsOf(x)).get(rowsOf(y)).simd(code);
            vstore(f);
          };
          put(j, 0, 2, simd.f32x4sub);
          put(4 + j, 1, 2, simd.f32x4add);
          put(8 + j, 2, 1, simd.f32x4sub);
          put(12 + j, 1, 3, simd.f32x4sub);
        }
      });
    });
  });
  return f;
}

/**
 * wino_out(src, MB, ldc, r0, r1, ty0, ty1, TWp, col0, dst, d0, pitch): the outputs Y = A^T m A
 * of rows [r0, r1) of the 16 products (point e's row r, column col at src + e MB + r ldc + 4 col:
 * the gemm's C blocks), for tile rows [ty0, ty1) of TWp tiles from column col0 (as wino_in's),
 * written as rows 2 ty0 .. 2 ty1 - 1 of 2 TWp floats: row r's output row y at
 * dst + r d0 + y pitch (bytes). Past the image's last row and column they are discarded by the
 * copy out after.
 */
export function winoOutFn(): Fn {
  const f = new Fn("wino_out", Array(12).fill(I32));
  const [src, MB, ldc, r0, r1, ty0, ty1, TWp, col0, dst, d0, pitch] = Array.from({ length: 12 }, (_, i) => i);
  const r = f.local(), ty = f.local(), tx = f.local(), p = f.local(), q = f.local();
  const m = Array.from({ length: 16 }, () => f.local(V128)), s = Array.from({ length: 8 }, () => f.local(V128)), y = Array.from({ length: 4 }, () => f.local(V128));
  f.loop(r, () => f.get(r0), () => f.get(r1), 1, () => {
    f.loop(ty, () => f.get(ty0), () => f.get(ty1), 1, () => {
      f.loop(tx, () => f.i32(0), () => f.get(TWp), 4, () => {
        f.get(src).get(r).get(ldc).op(op.mul).op(op.add).get(col0).get(ty).get(ty0).op(op.sub).get(TWp).op(op.mul).op(op.add).get(tx).op(op.add).i32(2).op(op.shl).op(op.add).set(p);
        for (let e = 0; e < 16; e++) vload(f.get(p).get(MB).i32(e).op(op.mul).op(op.add)).set(m[e]);
        // m A by rows: m0 + m1 + m2, m1 - m2 - m3
        for (let i = 0; i < 4; i++) {
          const [a, b, c, d] = [m[4 * i], m[4 * i + 1], m[4 * i + 2], m[4 * i + 3]];
          f.get(a).get(b).simd(simd.f32x4add).get(c).simd(simd.f32x4add).set(s[2 * i]);
          f.get(b).get(c).simd(simd.f32x4sub).get(d).simd(simd.f32x4sub).set(s[2 * i + 1]);
        }
        // A^T (m A) by columns
        for (let b = 0; b < 2; b++) {
          f.get(s[b]).get(s[2 + b]).simd(simd.f32x4add).get(s[4 + b]).simd(simd.f32x4add).set(y[b]);
          f.get(s[2 + b]).get(s[4 + b]).simd(simd.f32x4sub).get(s[6 + b]).simd(simd.f32x4sub).set(y[2 + b]);
        }
        // output rows 2 ty and 2 ty + 1, columns 2 tx .. 2 tx + 7: the tiles' two columns interleaved
        f.get(dst).get(r).get(d0).op(op.mul).op(op.add).get(ty).get(pitch).op(op.mul).i32(1).op(op.shl).op(op.add).get(tx).i32(3).op(op.shl).op(op.add).set(q);
        for (let a = 0; a < 2; a++) {
          f.get(q);
          f.get(y[2 * a]).get(y[2 * a + 1]);
          f.shuffle32([0, 4, 1, 5]);
          vstore(f, 0);
          f.get(q);
          f.get(y[2 * a]).get(y[2 * a + 1]);
          f.shuffle32([2, 6, 3, 7]);
          vstore(f, 16);
          f.get(q).get(pitch).op(op.add).set(q);
        }
      });
    });
  });
  return f;
}
