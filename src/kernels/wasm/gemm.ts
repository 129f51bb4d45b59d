// The matrix-product kernel family: C (+)= A x B with SIMD128 f32x4 and an MR x NR register
// block (MR scalars of A broadcast per k, NR/4 vectors of B), the reduction blocked by KC and the
// rows by MCP panels so a B panel stays in L1 and an A block in L2. Each operand is read either
//   packed:  A as [rowPanels][K][MR], B as [colPanels][K][NR] (zero-padded edges), or
//   by table: row r of A at a + atab[row] + 4k (A[row][k]); B[k][n] at b + btab[k] + 4n.
// The table forms are convolutions without an im2col copy: the input (padded, split into stride
// phases) is read in place, one byte offset per (channel, ky, kx). A loop over images runs inside,
// summing into C (the weight gradient's sum over the batch).
import { F32, Fn, I32, op, simd, V128 } from "./emit.ts";
import { binaryVec, unaryVec } from "./elementwise.ts";

export interface GemmShape {
  MR: number;
  NR: number;
  KC: number;
  /** Row panels per L2 block. */
  MCP: number;
  /** f32x4.relaxed_madd (an FMA where the CPU has one) instead of mul + add. */
  fma: boolean;
}

/** 6x8 with FMA measured best of 4x8, 6x8, 8x8, 4x12, 4x16 (bench/wasm_gemm.ts, bench/README.md). */
export const GEMM_DEFAULT: GemmShape = { MR: 6, NR: 8, KC: 256, MCP: 16, fma: true };

export type Operand = "packed" | "table";
export const GEMM_ARGS = ["a", "atab", "b", "btab", "c", "ldc", "K", "i0", "i1", "j0", "j1", "accum", "nImg", "aImg", "bImg"] as const;

/**
 * What a direct product (packed A, B by table: a convolution's forward or input gradient whose
 * result rows are the output's rows, as a 1x1 convolution's) applies as it stores its tiles into the output itself,
 * each value the copy out's (copy.ts ep_<act>, ed_relu) bit for bit: "none" the plain product,
 * "bias" plus the row's bias, "relu" relu of that, "drelu" the product where z > 0, else 0.
 */
export const DIRECT_EPS = ["none", "bias", "relu", "drelu"] as const;
export type DirectEp = typeof DIRECT_EPS[number];
/**
 * A direct product's arguments (gemmFn with `direct`): as GEMM_ARGS, with the product's rows M
 * and columns N (the tiles' stores stop there: C is the output), the bias's address and z's offset
 * from C in bytes (zd: z[r][n] at c + zd + 4 (r ldc + n)) in place of accum and the image loop's.
 * One image, one block of K (K <= KC: the epilogue applies to whole sums).
 */
export const GEMM_DIRECT_ARGS = ["a", "atab", "b", "btab", "c", "ldc", "K", "i0", "i1", "j0", "j1", "M", "N", "bias", "zd"] as const;

/**
 * gemm(a, atab, b, btab, c, ldc, K, i0, i1, j0, j1, accum, nImg, aImg, bImg): addresses and image
 * strides in bytes, the rest in elements. Writes C tiles (row panels [i0,i1) x column panels
 * [j0,j1)) at c with row stride ldc; adds to what C holds when accum is 1.
 */
export function gemmFn(s: GemmShape, am: Operand, bm: Operand, name: string, direct?: DirectEp): Fn {
  const { MR, NR, KC, MCP, fma } = s;
  const NV = NR / 4;
  if (direct && (am !== "packed" || bm !== "table")) throw new Error(`gemmFn ${name}: a direct product reads A packed and B by table`);
  const f = new Fn(name, GEMM_ARGS.map(() => I32));
  const [a, atab, b, btab, c, ldc, K, i0, i1, j0, j1, accum, nImg, aImg, bImg] = GEMM_ARGS.map((_, i) => i);
  // a direct product's own arguments in the last four places: one image, stored with its epilogue
  const [M, N, bias, zd] = (["M", "N", "bias", "zd"] as const).map((n) => GEMM_DIRECT_ARGS.indexOf(n));
  const img = f.local(), kb = f.local(), kl = f.local(), ib = f.local(), ie = f.local(), j = f.local(), i = f.local();
  const pa = f.local(), pb = f.local(), pt = f.local(), pc = f.local(), k = f.local(), ldcB = f.local(), ai = f.local(), bi = f.local();
  const addr = f.local(), ke = f.local();
  const ar: number[] = [];
  if (am === "table") for (let r = 0; r < MR; r++) ar.push(f.local());
  const acc: number[] = [];
  for (let r = 0; r < MR * NV; r++) acc.push(f.local(V128));
  const bv: number[] = [];
  for (let v = 0; v < NV; v++) bv.push(f.local(V128));
  const sv = f.local(V128);
  // a direct product's locals: the tile's rows and columns left, a row's address, the bias and z vectors, 1 and 0
  const [rowsLeft, colsLeft, rowAt] = direct ? [f.local(), f.local(), f.local()] : [-1, -1, -1];
  const [vb, vz, one, zero] = direct ? [f.local(V128), f.local(V128), f.local(V128), f.local(V128)] : [-1, -1, -1, -1];
  const biased = direct === "bias" || direct === "relu";
  if (direct) {
    f.f32(1).simd(simd.f32x4splat).set(one);
    f.f32(0).simd(simd.f32x4splat).set(zero);
  }

  f.get(ldc).i32(2).op(op.shl).set(ldcB);
  f.loop(img, () => f.i32(0), () => direct ? f.i32(1) : f.get(nImg), 1, () => {
    if (direct) {
      f.get(a).set(ai);
      f.get(b).set(bi);
    } else {
      f.get(a).get(img).get(aImg).op(op.mul).op(op.add).set(ai);
      f.get(b).get(img).get(bImg).op(op.mul).op(op.add).set(bi);
    }
    f.loop(kb, () => f.i32(0), () => f.get(K), KC, () => {
      f.get(K).get(kb).op(op.sub).set(kl);
      f.get(kl).i32(KC).op(op.gtS).if(() => f.i32(KC).set(kl));
      f.loop(ib, () => f.get(i0), () => f.get(i1), MCP, () => {
        f.get(ib).i32(MCP).op(op.add).set(ie);
        f.get(ie).get(i1).op(op.gtS).if(() => f.get(i1).set(ie));
        f.loop(j, () => f.get(j0), () => f.get(j1), 1, () => {
          f.loop(i, () => f.get(ib), () => f.get(ie), 1, () => {
            if (am === "packed") f.get(ai).get(i).get(K).op(op.mul).get(kb).op(op.add).i32(MR * 4).op(op.mul).op(op.add).set(pa);
            else {
              for (let r = 0; r < MR; r++) {
                // ar[r] = ai + atab[i*MR + r] + 4 kb
                f.get(atab).get(i).i32(MR * 4).op(op.mul).op(op.add).op(0x28, 2, r * 4); // i32.load offset r*4
                f.get(ai).op(op.add).get(kb).i32(2).op(op.shl).op(op.add).set(ar[r]);
              }
              f.i32(0).set(pa); // byte counter along k
            }
            if (bm === "packed") f.get(bi).get(j).get(K).op(op.mul).get(kb).op(op.add).i32(NR * 4).op(op.mul).op(op.add).set(pb);
            else {
              f.get(bi).get(j).i32(NR * 4).op(op.mul).op(op.add).set(pb);
              f.get(btab).get(kb).i32(2).op(op.shl).op(op.add).set(pt);
            }
            f.get(c).get(i).i32(MR).op(op.mul).get(ldc).op(op.mul).get(j).i32(NR).op(op.mul).op(op.add).i32(2).op(op.shl).op(op.add).set(pc);
            // zero on the first block of a fresh product, else continue the partial sums in C
            if (direct) f.get(kb).op(op.eqz);
            else f.get(kb).get(img).op(op.or).get(accum).op(op.or).op(op.eqz);
            f.if(() => {
              for (const x of acc) f.f32(0).simd(simd.f32x4splat).set(x);
            }, () => {
              for (let r = 0; r < MR; r++) for (let v = 0; v < NV; v++) {
                f.get(pc).get(ldcB).i32(r).op(op.mul).op(op.add).v128load(v * 16).set(acc[r * NV + v]);
              }
            });
            // one step of k at offset u (0 or 1) from the pointers: the loop runs two at a time
            // and advances the pointers once (fewer scalar instructions per multiply-add)
            const step = (u: number) => {
              if (bm === "packed") {
                for (let v = 0; v < NV; v++) f.get(pb).v128load(u * NR * 4 + v * 16).set(bv[v]);
              } else {
                f.get(pb).get(pt).op(0x28, 2, u * 4).op(op.add).set(addr);
                for (let v = 0; v < NV; v++) f.get(addr).simd(0x00, 0, v * 16).set(bv[v]); // unaligned v128.load
              }
              for (let r = 0; r < MR; r++) {
                if (am === "packed") f.get(pa).splatLoad(u * MR * 4 + r * 4).set(sv);
                else f.get(ar[r]).get(pa).op(op.add).splatLoad(u * 4).set(sv);
                for (let v = 0; v < NV; v++) {
                  const x = acc[r * NV + v];
                  if (fma) f.get(sv).get(bv[v]).get(x).simd(simd.relaxedMadd).set(x);
                  else f.get(x).get(sv).get(bv[v]).simd(simd.f32x4mul).simd(simd.f32x4add).set(x);
                }
              }
            };
            const advance = (u: number) => {
              if (bm === "packed") f.get(pb).i32(u * NR * 4).op(op.add).set(pb);
              else f.get(pt).i32(u * 4).op(op.add).set(pt);
              f.get(pa).i32(u * (am === "packed" ? MR * 4 : 4)).op(op.add).set(pa);
            };
            f.get(kl).i32(-2).op(0x71).set(ke); // i32.and: kl rounded down to even
            f.loop(k, () => f.i32(0), () => f.get(ke), 2, () => {
              step(0);
              step(1);
              advance(2);
            });
            f.get(kl).i32(1).op(0x71).if(() => {
              step(0);
              advance(1);
            });
            // a direct product's tile into the output: rows below M, columns below N (lane by lane
            // in the last column panel when it is partial), each value through the epilogue
            function storeDirect() {
              f.get(M).get(i).i32(MR).op(op.mul).op(op.sub).set(rowsLeft);
              f.get(N).get(j).i32(NR).op(op.mul).op(op.sub).set(colsLeft);
              for (let r = 0; r < MR; r++) {
                f.i32(r).get(rowsLeft).op(op.ltS).if(() => {
                  f.get(pc).get(ldcB).i32(r).op(op.mul).op(op.add).set(rowAt);
                  if (biased) f.get(bias).get(i).i32(MR * 4).op(op.mul).op(op.add).splatLoad(r * 4).set(vb);
                  for (let v = 0; v < NV; v++) {
                    const x = acc[r * NV + v];
                    if (biased) {
                      binaryVec(f, "add", x, vb, one, zero);
                      f.set(x);
                    }
                    if (direct === "relu") {
                      unaryVec(f, "relu", x, one, zero);
                      f.set(x);
                    }
                    if (direct === "drelu") {
                      f.get(rowAt).get(zd).op(op.add).simd(0x00, 0, v * 16).set(vz); // unaligned v128.load (z's storage keeps a vector of slack)
                      binaryVec(f, "reluMask", x, vz, one, zero);
                      f.set(x);
                    }
                  }
                  f.get(colsLeft).i32(NR).op(op.geS).if(() => {
                    for (let v = 0; v < NV; v++) f.get(rowAt).get(acc[r * NV + v]).simd(0x0b, 0, v * 16); // unaligned v128.store
                  }, () => {
                    for (let v = 0; v < NV; v++) for (let l = 0; l < 4; l++) {
                      f.i32(v * 4 + l).get(colsLeft).op(op.ltS).if(() => {
                        f.get(rowAt).get(acc[r * NV + v]).simd(simd.f32x4extract, l).op(0x38, 0, (v * 4 + l) * 4); // f32.store, align 1
                      });
                    }
                  });
                });
              }
            }
            if (direct) storeDirect();
            else {
              for (let r = 0; r < MR; r++) for (let v = 0; v < NV; v++) {
                f.get(pc).get(ldcB).i32(r).op(op.mul).op(op.add).get(acc[r * NV + v]).v128store(v * 16);
              }
            }
          });
        });
      });
    });
  });
  return f;
}

/**
 * pack{W}(src, sk, sn, K, ncols, j0, j1, dst): dst[j][k][w] = S(k, j*W + w) for panels [j0, j1),
 * where S(k, n) = src[k*sk + n*sn] (byte strides) for n < ncols and 0 past the edge.
 */
export function packFn(W: number, name: string): Fn {
  const f = new Fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, sk, sn, K, ncols, j0, j1, dst] = [0, 1, 2, 3, 4, 5, 6, 7];
  const j = f.local(), k = f.local(), pd = f.local(), ps = f.local(), nb = f.local(), q = f.local();
  const rp = W % 4 === 0 ? Array.from({ length: W }, () => f.local()) : [], k4 = f.local(), ko = f.local();
  const rv = W % 4 === 0 ? Array.from({ length: 4 }, () => f.local(V128)) : [], tv = W % 4 === 0 ? Array.from({ length: 4 }, () => f.local(V128)) : [];
  f.loop(j, () => f.get(j0), () => f.get(j1), 1, () => {
    f.get(j).i32(W).op(op.mul).set(nb);
    f.get(dst).get(j).get(K).op(op.mul).i32(W * 4).op(op.mul).op(op.add).set(pd);
    f.get(src).get(nb).get(sn).op(op.mul).op(op.add).set(ps);
    const next = () => {
      f.get(pd).i32(W * 4).op(op.add).set(pd);
      f.get(ps).get(sk).op(op.add).set(ps);
    };
    // full panel?
    f.get(nb).i32(W).op(op.add).get(ncols).op(0x4c).if(() => { // i32.le_s
      if (W % 4 === 0) {
        f.get(sn).i32(4).op(op.eq).if(() => {
          f.loop(k, () => f.i32(0), () => f.get(K), 1, () => {
            for (let v = 0; v < W / 4; v++) f.get(pd).get(ps).simd(0x00, 0, v * 16).v128store(v * 16);
            next();
          });
        }, () => f.get(sk).i32(4).op(op.eq).if(() => transposed(), () => fullScalar()));
      } else fullScalar();
    }, () => {
      f.loop(k, () => f.i32(0), () => f.get(K), 1, () => {
        f.get(ps).set(q);
        for (let w = 0; w < W; w++) {
          f.get(pd);
          // (n < ncols) ? load : 0, loading only inside
          f.get(nb).i32(w).op(op.add).get(ncols).op(op.ltS).op(0x04, F32);
          f.get(q).op(0x2a, 0, 0).op(0x05).f32(0).op(0x0b); // f32.load align 0; else 0; end
          f.f32store(w * 4);
          f.get(q).get(sn).op(op.add).set(q);
        }
        next();
      });
    });
    // S's columns contiguous along k (sk = 4: a row-major matrix read transposed, as a weight
    // gradient's output gradient or a transposed operand): 4 k at a time, each 4 columns' vectors
    // transposed in registers (4 x 4 by two rounds of interleaving shuffles), then the k past the
    // last 4 one at a time
    function transposed() {
      for (let w = 0; w < W; w++) f.get(ps).get(sn).i32(w).op(op.mul).op(op.add).set(rp[w]);
      f.get(K).i32(-4).op(op.and).i32(2).op(op.shl).set(k4);
      f.loop(ko, () => f.i32(0), () => f.get(k4), 16, () => {
        for (let h = 0; h < W / 4; h++) {
          for (let i = 0; i < 4; i++) f.get(rp[4 * h + i]).get(ko).op(op.add).simd(0x00, 0, 0).set(rv[i]); // unaligned v128.load
          f.get(rv[0]).get(rv[1]).shuffle32([0, 4, 1, 5]).set(tv[0]); // [r0k0 r1k0 r0k1 r1k1]
          f.get(rv[2]).get(rv[3]).shuffle32([0, 4, 1, 5]).set(tv[1]); // [r2k0 r3k0 r2k1 r3k1]
          f.get(rv[0]).get(rv[1]).shuffle32([2, 6, 3, 7]).set(tv[2]); // [r0k2 r1k2 r0k3 r1k3]
          f.get(rv[2]).get(rv[3]).shuffle32([2, 6, 3, 7]).set(tv[3]);
          for (let e = 0; e < 4; e++) {
            f.get(pd).get(tv[(e >> 1) * 2]).get(tv[(e >> 1) * 2 + 1]).shuffle32(e & 1 ? [2, 3, 6, 7] : [0, 1, 4, 5]); // k = e: [r0 r1 r2 r3]
            f.v128store(e * W * 4 + h * 16);
          }
        }
        f.get(pd).i32(4 * W * 4).op(op.add).set(pd);
      });
      f.loop(ko, () => f.get(k4), () => f.get(K).i32(2).op(op.shl), 4, () => {
        for (let w = 0; w < W; w++) f.get(pd).get(rp[w]).get(ko).op(op.add).op(0x2a, 0, 0).f32store(w * 4);
        f.get(pd).i32(W * 4).op(op.add).set(pd);
      });
    }
    function fullScalar() {
      f.loop(k, () => f.i32(0), () => f.get(K), 1, () => {
        f.get(ps).set(q);
        for (let w = 0; w < W; w++) {
          f.get(pd).get(q).op(0x2a, 0, 0).f32store(w * 4);
          f.get(q).get(sn).op(op.add).set(q);
        }
        next();
      });
    }
  });
  return f;
}

/** Rows (taps) and columns (output channels) of one block of dotFn. */
export const DOT_ROWS = 2, DOT_COLS = 4;

/**
 * The weight gradient of a convolution, 4 output channels at a time (conv.ts calls it once per 4
 * channels), as dot products along the positions: C[q][co] = sum over images and output positions
 * (y, x) of X[tab[q] + y xRow + x] G[co][y][x], where a product kernel would have 4 useful columns
 * (a panel of 4 broadcasts 8 rows per position), or would pack G for few taps (conv.ts says when).
 * Here the positions are the lanes: a block of 2 taps by 4 channels keeps 8 f32x4 sums and loads
 * 2 input vectors and 4 gradient vectors per 4 positions. G is read row by row, OH rows of OW
 * floats per channel (the output gradient as it is, or a copy with zero channels past the
 * group's), X on the phase grid (rows of xRow bytes, as wide as OW or wider): OW / 4 vectors a
 * row and, where OW is not a multiple of 4, one more whose lanes past OW are zeroed in both
 * operands. That vector reads less than a vector past the row (the next row's, channel's or
 * image's floats, or the storage's slack), and its masked lanes never reach a sum, so an Inf or
 * NaN there stays out of it, as the reference keeps it.
 *   wgrad_dot(x, tab, g, gChan, c, ldc, OH, xRow, gRow, OW, i0, i1, nImg, xImg, gImg): blocks
 * [i0, i1) of 2 taps; x, g, c and the strides in bytes (gChan: from one channel of G to the next,
 * 4 read, those past the group's channels discarded by the caller; gRow: from one row to the
 * next); C rows at c + 4 ldc q, written whole (not accumulated); each block's sums kept in
 * registers over all nImg images, the lanes then added in a fixed order.
 */
export function dotFn(s: GemmShape, name: string): Fn {
  const QB = DOT_ROWS, NC = DOT_COLS;
  const f = new Fn(name, Array(15).fill(I32));
  const [xa, tab, g, gChan, c, ldc, OH, xRow, gRow, OW, i0, i1, nImg, xImg, gImg] = Array.from({ length: 15 }, (_, i) => i);
  const ib = f.local(), img = f.local(), p = f.local(), xb = f.local(), gb = f.local(), yr = f.local(), full = f.local(), rem = f.local();
  const xr = Array.from({ length: QB }, () => f.local()), gr = Array.from({ length: NC }, () => f.local());
  const acc = Array.from({ length: QB * NC }, () => f.local(V128)), xv = Array.from({ length: QB }, () => f.local(V128)), gv = Array.from({ length: NC }, () => f.local(V128));
  const mask = f.local(V128);
  /** One vector of positions at byte offset `at()` of the rows xr, gr: the loads (both masked where asked), and the 8 sums. */
  const step = (at: () => void, masked: boolean) => {
    const load = (base: number, into: number) => {
      f.get(base);
      at();
      f.op(op.add).simd(0x00, 0, 0); // unaligned v128.load
      if (masked) f.get(mask).simd(0x4e); // v128.and
      f.set(into);
    };
    for (let r = 0; r < QB; r++) load(xr[r], xv[r]);
    for (let k = 0; k < NC; k++) load(gr[k], gv[k]);
    for (let r = 0; r < QB; r++) for (let k = 0; k < NC; k++) {
      const a = acc[r * NC + k];
      if (s.fma) f.get(xv[r]).get(gv[k]).get(a).simd(simd.relaxedMadd).set(a);
      else f.get(a).get(xv[r]).get(gv[k]).simd(simd.f32x4mul).simd(simd.f32x4add).set(a);
    }
  };
  // whole vectors of a row (bytes), and the lanes below OW mod 4 kept in its last vector
  f.get(OW).i32(-4).op(op.and).i32(2).op(op.shl).set(full);
  f.get(OW).i32(3).op(op.and).set(rem);
  f.i32(0).simd(0x11).set(mask); // i32x4.splat 0
  for (let l = 0; l < 4; l++) f.get(mask).i32(0).i32(l).get(rem).op(op.ltS).op(op.sub).simd(0x1c, l).set(mask); // i32x4.replace_lane
  f.loop(ib, () => f.get(i0), () => f.get(i1), 1, () => {
    for (const a of acc) f.f32(0).simd(simd.f32x4splat).set(a);
    f.loop(img, () => f.i32(0), () => f.get(nImg), 1, () => {
      f.get(xa).get(img).get(xImg).op(op.mul).op(op.add).set(xb);
      f.get(g).get(img).get(gImg).op(op.mul).op(op.add).set(gb);
      for (let r = 0; r < QB; r++) f.get(tab).get(ib).i32(QB * 4).op(op.mul).op(op.add).op(0x28, 2, r * 4).get(xb).op(op.add).set(xr[r]);
      for (let k = 0; k < NC; k++) f.get(gb).get(gChan).i32(k).op(op.mul).op(op.add).set(gr[k]);
      f.loop(yr, () => f.i32(0), () => f.get(OH), 1, () => {
        f.loop(p, () => f.i32(0), () => f.get(full), 16, () => step(() => f.get(p), false));
        f.get(rem).if(() => step(() => f.get(full), true));
        for (let r = 0; r < QB; r++) f.get(xr[r]).get(xRow).op(op.add).set(xr[r]);
        for (let k = 0; k < NC; k++) f.get(gr[k]).get(gRow).op(op.add).set(gr[k]);
      });
    });
    for (let r = 0; r < QB; r++) for (let k = 0; k < NC; k++) {
      const a = acc[r * NC + k];
      // C[ib*QB + r][k] = (l0 + l1) + (l2 + l3)
      f.get(c).get(ib).i32(QB).op(op.mul).i32(r).op(op.add).get(ldc).op(op.mul).i32(k).op(op.add).i32(2).op(op.shl).op(op.add);
      f.get(a).simd(simd.f32x4extract, 0).get(a).simd(simd.f32x4extract, 1).op(op.f32add);
      f.get(a).simd(simd.f32x4extract, 2).get(a).simd(simd.f32x4extract, 3).op(op.f32add).op(op.f32add);
      f.op(0x38, 2, 0); // f32.store
    }
  });
  return f;
}
