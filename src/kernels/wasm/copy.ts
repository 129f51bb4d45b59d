// The wasm backend's copy kernels: strided block copies between byte-strided layouts (the
// convolutions' phase blocks and results, the strided op's boxes), vectors along the innermost
// dimension where both sides allow.
import { Fn, I32, op, simd, V128 } from "./emit.ts";
import { binaryVec, unaryVec } from "./elementwise.ts";
import type { ConvAct, DerivAct } from "../backend.ts";

/**
 * copy3d(src, s0, s1, s2, dst, d0, d1, d2, D0, D1, D2): dst[i][j][k] = src[i][j][k] for the
 * extents D0 x D1 x D2, with byte strides on both sides. Rows of at least 4 contiguous floats
 * on both sides move as vectors, the last one overlapping the one before instead of a scalar
 * tail (the rows are short: 7, 14, 28 floats), so source and destination must not overlap.
 */
export function copy3dFn(): Fn {
  const f = new Fn("copy3d", Array(11).fill(I32));
  const [src, s0, s1, s2, dst, d0, d1, d2, D0, D1, D2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const i = f.local(), j = f.local(), k = f.local(), ps = f.local(), pd = f.local(), rs = f.local(), rd = f.local();
  const vec = f.local(), vend = f.local(), last = f.local();
  f.get(s2).i32(4).op(op.eq).get(d2).i32(4).op(op.eq).op(op.and).get(D2).i32(4).op(op.geS).op(op.and).set(vec);
  f.get(D2).i32(4).op(op.sub).set(vend);
  f.get(vend).i32(2).op(op.shl).set(last);
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    f.get(src).get(i).get(s0).op(op.mul).op(op.add).set(rs);
    f.get(dst).get(i).get(d0).op(op.mul).op(op.add).set(rd);
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      f.get(vec).if(() => {
        f.get(rs).set(ps);
        f.get(rd).set(pd);
        f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
          f.get(pd).get(ps).simd(0x00, 0, 0).simd(0x0b, 0, 0); // unaligned v128 load/store
          f.get(ps).i32(16).op(op.add).set(ps);
          f.get(pd).i32(16).op(op.add).set(pd);
        });
        f.get(rd).get(last).op(op.add).get(rs).get(last).op(op.add).simd(0x00, 0, 0).simd(0x0b, 0, 0);
      }, () => {
        f.get(rs).set(ps);
        f.get(rd).set(pd);
        f.loop(k, () => f.i32(0), () => f.get(D2), 1, () => {
          f.get(pd).get(ps).op(0x2a, 0, 0).op(0x38, 0, 0);
          f.get(ps).get(s2).op(op.add).set(ps);
          f.get(pd).get(d2).op(op.add).set(pd);
        });
      });
      f.get(rs).get(s1).op(op.add).set(rs);
      f.get(rd).get(d1).op(op.add).set(rd);
    });
  });
  return f;
}

/**
 * copy4d(src, s0, s1, s2, s3, dst, d0, d1, d2, d3, D0, D1, D2, D3): dst[i][j][k][l] =
 * src[i][j][k][l] over D0 x D1 x D2 x D3, byte strides on both sides (any sign; 0 broadcasts).
 * The innermost dimension moves vectors when the output is contiguous along it and the input
 * is too (s3 = 4) or is broadcast (s3 = 0, one load splatted).
 */
export function copy4dFn(): Fn {
  const f = new Fn("copy4d", Array(14).fill(I32));
  const [src, s0, s1, s2, s3, dst, d0, d1, d2, d3, D0, D1, D2, D3] = Array.from({ length: 14 }, (_, i) => i);
  const i = f.local(), j = f.local(), k = f.local(), l = f.local(), ps = f.local(), pd = f.local(), vend = f.local(), mode = f.local();
  // mode 1: contiguous vectors, 2: splat of one input element, 0: scalar
  f.i32(0).set(mode);
  f.get(d3).i32(4).op(op.eq).if(() => {
    f.get(s3).i32(4).op(op.eq).if(() => f.i32(1).set(mode));
    f.get(s3).op(op.eqz).if(() => f.i32(2).set(mode));
  });
  f.get(D3).i32(-4).op(op.and).set(vend);
  f.get(mode).op(op.eqz).if(() => f.i32(0).set(vend));
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      f.loop(k, () => f.i32(0), () => f.get(D2), 1, () => {
        f.get(src).get(i).get(s0).op(op.mul).op(op.add).get(j).get(s1).op(op.mul).op(op.add).get(k).get(s2).op(op.mul).op(op.add).set(ps);
        f.get(dst).get(i).get(d0).op(op.mul).op(op.add).get(j).get(d1).op(op.mul).op(op.add).get(k).get(d2).op(op.mul).op(op.add).set(pd);
        f.get(mode).i32(1).op(op.eq).if(() => {
          f.loop(l, () => f.i32(0), () => f.get(vend), 4, () => {
            f.get(pd).get(ps).simd(0x00, 0, 0).simd(0x0b, 0, 0); // unaligned v128 load/store
            f.get(ps).i32(16).op(op.add).set(ps);
            f.get(pd).i32(16).op(op.add).set(pd);
          });
        });
        f.get(mode).i32(2).op(op.eq).if(() => {
          f.loop(l, () => f.i32(0), () => f.get(vend), 4, () => {
            f.get(pd).get(ps).splatLoad(0).simd(0x0b, 0, 0);
            f.get(pd).i32(16).op(op.add).set(pd);
          });
        });
        f.loop(l, () => f.get(vend), () => f.get(D3), 1, () => {
          f.get(pd).get(ps).op(0x2a, 0, 0).op(0x38, 0, 0); // f32 load/store, align 1
          f.get(ps).get(s3).op(op.add).set(ps);
          f.get(pd).get(d3).op(op.add).set(pd);
        });
      });
    });
  });
  return f;
}

/**
 * fill32(dst, n, bits): n 32-bit words at dst set to `bits` (a float's bits), by vectors. On a
 * shared memory TypedArray.fill is ~12x slower than this (1.2 ns per float: it stores element by
 * element, as for atomics; bench/README.md).
 */
export function fill32Fn(): Fn {
  const f = new Fn("fill32", [I32, I32, I32]);
  const [dst, n, bits] = [0, 1, 2];
  const i = f.local(), vend = f.local(), p = f.local(), v = f.local(V128);
  f.get(bits).simd(0x11).set(v); // i32x4.splat
  f.get(n).i32(-4).op(op.and).set(vend);
  f.get(dst).set(p);
  f.loop(i, () => f.i32(0), () => f.get(vend), 4, () => {
    f.get(p).get(v).simd(0x0b, 0, 0);
    f.get(p).i32(16).op(op.add).set(p);
  });
  f.loop(i, () => f.get(vend), () => f.get(n), 1, () => {
    f.get(p).get(bits).op(0x36, 0, 0); // i32.store align 1
    f.get(p).i32(4).op(op.add).set(p);
  });
  return f;
}

/**
 * copypad(src, s0, s1, s2, dst, d0, D0, Dh, Dw, r0, R, c0, C): writes every element of D0 blocks
 * of Dh rows by Dw floats (block i at dst + i d0, rows contiguous), with src's R x C box (byte
 * strides s0, s1, s2 per block, row, column) placed at row r0, column c0, and zero everywhere
 * else: one pass over the destination, where a zero fill and then a copy made two (the
 * convolutions' padded phase blocks). Where the source's columns are contiguous (s2 = 4), rows
 * are at least 4 wide and the box's rows empty or at least 4 wide (every 3x3 convolution's
 * blocks), each row is a few vectors: zeros where the box is not (the last vector ending at the
 * row's end, so it may reach into the box), then the box's row (its last vector overlapping the
 * one before), so nothing is stored outside the row and no float is zeroed and then copied
 * except where a zero vector overlaps the box; 1.3-1.9x faster than the general rows (whole row
 * zeroed, then vectors and a scalar tail), which stay for the other cases.
 */
export function copyPadFn(): Fn {
  const f = new Fn("copypad", Array(13).fill(I32));
  const [src, s0, s1, s2, dst, d0, D0, Dh, Dw, r0, R, c0, C] = Array.from({ length: 13 }, (_, i) => i);
  const i = f.local(), y = f.local(), x = f.local(), pd = f.local(), ps = f.local(), row = f.local(), wv = f.local(), cv = f.local(), rb = f.local();
  const lastZ = f.local(), lastC = f.local(), endB = f.local(), c0b = f.local(), inBox = f.local();
  const z = f.local(V128);
  f.i32(0).simd(0x11).set(z); // i32x4.splat 0
  f.get(Dw).i32(2).op(op.shl).set(rb); // bytes per row
  /** Zero vectors over the current row from byte offset `from` to its end, the last one ending there. */
  const zerosToEnd = (from: () => void) => {
    f.loop(x, from, () => f.get(lastZ), 16, () => {
      f.get(row).get(x).op(op.add).get(z).simd(0x0b, 0, 0);
    });
    f.get(row).get(lastZ).op(op.add).get(z).simd(0x0b, 0, 0);
  };
  // fast rows: s2 = 4, Dw >= 4, C = 0 or C >= 4
  f.get(s2).i32(4).op(op.eq).get(Dw).i32(4).op(op.geS).op(op.and).get(C).op(op.eqz).get(C).i32(4).op(op.geS).op(op.or).op(op.and).if(() => {
    f.get(Dw).i32(4).op(op.sub).i32(2).op(op.shl).set(lastZ); // byte offset of a row's last zero vector
    f.get(C).i32(4).op(op.sub).i32(2).op(op.shl).set(lastC); // byte offset of the box row's last vector
    f.get(c0).i32(2).op(op.shl).set(c0b);
    f.get(c0).get(C).op(op.add).i32(2).op(op.shl).set(endB); // the box's end in the row, bytes
    f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
      f.get(dst).get(i).get(d0).op(op.mul).op(op.add).set(row);
      f.loop(y, () => f.i32(0), () => f.get(Dh), 1, () => {
        f.get(y).get(r0).op(op.geS).get(y).get(r0).get(R).op(op.add).op(op.ltS).op(op.and).get(C).i32(0).op(op.ne).op(op.and).set(inBox);
        f.get(inBox).if(() => {
          // zeros left of the box (each vector ends at or before the box's last column)
          f.loop(x, () => f.i32(0), () => f.get(c0b), 16, () => {
            f.get(row).get(x).op(op.add).get(z).simd(0x0b, 0, 0);
          });
          // zeros right of the box, the last vector ending at the row's end
          f.get(endB).get(rb).op(op.ltS).if(() => zerosToEnd(() => f.get(endB)));
          // the box's row, its last vector overlapping the one before
          f.get(src).get(i).get(s0).op(op.mul).op(op.add).get(y).get(r0).op(op.sub).get(s1).op(op.mul).op(op.add).set(ps);
          f.get(row).get(c0b).op(op.add).set(pd);
          f.loop(x, () => f.i32(0), () => f.get(lastC), 16, () => {
            f.get(pd).get(x).op(op.add).get(ps).get(x).op(op.add).simd(0x00, 0, 0).simd(0x0b, 0, 0);
          });
          f.get(pd).get(lastC).op(op.add).get(ps).get(lastC).op(op.add).simd(0x00, 0, 0).simd(0x0b, 0, 0);
        }, () => zerosToEnd(() => f.i32(0)));
        f.get(row).get(rb).op(op.add).set(row);
      });
    });
  }, () => {
    f.get(Dw).i32(-4).op(op.and).set(wv);
    f.get(C).i32(-4).op(op.and).set(cv);
    f.get(s2).i32(4).op(op.ne).if(() => f.i32(0).set(cv)); // strided columns: scalar copies
    f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
      f.get(dst).get(i).get(d0).op(op.mul).op(op.add).set(row);
      f.loop(y, () => f.i32(0), () => f.get(Dh), 1, () => {
        // zeros over the whole row first (it is in cache for the copy that follows)
        f.get(row).set(pd);
        f.loop(x, () => f.i32(0), () => f.get(wv), 4, () => {
          f.get(pd).get(z).simd(0x0b, 0, 0);
          f.get(pd).i32(16).op(op.add).set(pd);
        });
        f.loop(x, () => f.get(wv), () => f.get(Dw), 1, () => {
          f.get(pd).i32(0).op(0x36, 0, 0); // i32.store 0
          f.get(pd).i32(4).op(op.add).set(pd);
        });
        // rows r0 .. r0 + R - 1 take the box's row y - r0
        f.get(y).get(r0).op(op.geS).get(y).get(r0).get(R).op(op.add).op(op.ltS).op(op.and).if(() => {
          f.get(src).get(i).get(s0).op(op.mul).op(op.add).get(y).get(r0).op(op.sub).get(s1).op(op.mul).op(op.add).set(ps);
          f.get(row).get(c0).i32(2).op(op.shl).op(op.add).set(pd);
          f.loop(x, () => f.i32(0), () => f.get(cv), 4, () => {
            f.get(pd).get(ps).simd(0x00, 0, 0).simd(0x0b, 0, 0); // unaligned v128 load/store
            f.get(ps).i32(16).op(op.add).set(ps);
            f.get(pd).i32(16).op(op.add).set(pd);
          });
          f.loop(x, () => f.get(cv), () => f.get(C), 1, () => {
            f.get(pd).get(ps).op(0x2a, 0, 0).op(0x38, 0, 0);
            f.get(ps).get(s2).op(op.add).set(ps);
            f.get(pd).i32(4).op(op.add).set(pd);
          });
        });
        f.get(row).get(rb).op(op.add).set(row);
      });
    });
  });
  return f;
}

/** The activations a convolution's copy out can apply (conv.ts), as its kernels' names end: every ConvAct. */
export const EPILOGUE_ACTS = ["none", "relu", "silu"] as const satisfies readonly ConvAct[];
/** The activations whose derivative an input gradient's copy out can apply (ed_<act>). */
export const DERIV_ACTS = ["relu", "silu"] as const satisfies readonly DerivAct[];

/**
 * The loop of a convolution's copy out (and of GroupNorm's affine, groupnorm.ts): D0 channels x D1 rows x D2 contiguous floats, with byte
 * strides per channel and row on the source (s0, s1) and on the destination (d0, d1), which a
 * third array (param `third`) shares. `at(lane, k)` writes the values at byte offset local k of
 * the current rows (locals rs, rd, rt: source, destination, third): a vector, or with `lane` one
 * lane of the vector code. Rows of 4 or more floats go as vectors, the last one overlapping the
 * one before (recomputed from the same inputs); shorter rows one lane at a time. `channel(i)`
 * runs first for each channel i.
 */
export function copyOutLoop(f: Fn, third: number, channel: (i: number) => void, at: (lane: boolean, k: number, rows: { rs: number; rd: number; rt: number }) => void): void {
  const [src, s0, s1, dst, d0, d1, D0, D1, D2] = Array.from({ length: 9 }, (_, i) => i);
  const i = f.local(), j = f.local(), k = f.local(), rs = f.local(), rd = f.local(), rt = f.local(), vend = f.local(), off = f.local();
  const rows = { rs, rd, rt };
  f.get(D2).i32(4).op(op.sub).set(vend);
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    channel(i);
    f.get(src).get(i).get(s0).op(op.mul).op(op.add).set(rs);
    f.get(dst).get(i).get(d0).op(op.mul).op(op.add).set(rd);
    f.get(third).get(i).get(d0).op(op.mul).op(op.add).set(rt);
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      f.get(D2).i32(4).op(op.geS).if(() => {
        f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
          f.get(k).i32(2).op(op.shl).set(off);
          at(false, off, rows);
        });
        f.get(vend).i32(2).op(op.shl).set(off);
        at(false, off, rows);
      }, () => {
        f.loop(k, () => f.i32(0), () => f.get(D2), 1, () => {
          f.get(k).i32(2).op(op.shl).set(off);
          at(true, off, rows);
        });
      });
      f.get(rs).get(s1).op(op.add).set(rs);
      f.get(rd).get(d1).op(op.add).set(rd);
      f.get(rt).get(d1).op(op.add).set(rt);
    });
  });
}

/** Loads the float(s) at byte offset k of row r: a vector, or with `lane` one float splat to all lanes. */
export function loadAt(f: Fn, lane: boolean, r: number, k: number): Fn {
  f.get(r).get(k).op(op.add);
  return lane ? f.splatLoad(0) : f.simd(0x00, 0, 0);
}
/** Stores the vector on the stack at byte offset k of row r (after the address pushed by storeAddr): a vector, or lane 0. */
function storeAt(f: Fn, lane: boolean): void {
  if (lane) f.simd(simd.f32x4extract, 0).op(0x38, 0, 0);
  else f.simd(0x0b, 0, 0);
}

/**
 * ep_<act>(src, s0, s1, dst, d0, d1, D0, D1, D2, bias, ydst): a convolution's result copied out
 * with its bias and activation, over D0 channels x D1 rows x D2 contiguous floats (byte strides
 * per channel and row on both sides): pre = src + bias[i] at dst, and with SiLU also
 * y = act(pre) at ydst (same strides as dst); with ReLU only y, at dst (its derivative is read
 * from y: y > 0 exactly where pre > 0, so pre need not be kept). One pass where the composed ops (the bias add, the
 * activation) made two more over the result. The values are those of bin_add and un_<act> bit for
 * bit: the same f32x4 instructions, rows of 4 or more as vectors (the last one overlapping the one
 * before), shorter rows one lane of the vector code.
 */
export function epilogueFn(act: ConvAct): Fn {
  const f = new Fn(`ep_${act}`, Array(11).fill(I32));
  const bias = 9, ydst = 10;
  const vb = f.local(V128), v = f.local(V128), k01 = actConstants(f);
  copyOutLoop(f, ydst, (i) => { f.get(bias).get(i).i32(2).op(op.shl).op(op.add).splatLoad(0).set(vb); }, (lane, k, rows) => {
    loadAt(f, lane, rows.rs, k).get(vb).simd(simd.f32x4add).set(v);
    storeActivated(f, lane, k, rows, v, act, k01, act === "relu");
  });
  return f;
}

/** The constants an activation's vector code reads (1 and 0 splat), in two v128 locals. */
export function actConstants(f: Fn): { one: number; zero: number } {
  const one = f.local(V128), zero = f.local(V128);
  f.f32(1).simd(simd.f32x4splat).set(one);
  f.f32(0).simd(simd.f32x4splat).set(zero);
  return { one, zero };
}

/**
 * In a copyOutLoop's `at`: the pre-activation v (a local) stored at byte offset k of the
 * destination rows and act(v) (un_<act>'s instructions) at the third's; with `yOnly` act(v) alone,
 * at the destination (a ReLU's derivative is read from its output).
 */
export function storeActivated(f: Fn, lane: boolean, k: number, rows: { rd: number; rt: number }, v: number, act: ConvAct, c: { one: number; zero: number }, yOnly = false): void {
  if (!yOnly) {
    f.get(rows.rd).get(k).op(op.add).get(v);
    storeAt(f, lane);
    if (act === "none") return;
  }
  f.get(yOnly ? rows.rd : rows.rt).get(k).op(op.add);
  unaryVec(f, act as DerivAct, v, c.one, c.zero);
  storeAt(f, lane);
}

/**
 * ed_<act>(src, s0, s1, dst, d0, d1, D0, D1, D2, z): an input gradient copied out times its
 * activation's derivative at z (the activation's input; same strides as dst): relu, src where
 * z > 0, else 0 (bin_reluMask(src, z)); silu, src * siluGrad(z) (mu_siluGrad). One pass where the
 * composed ops made another over the gradient; their values bit for bit, as ep_<act>'s.
 */
export function derivEpilogueFn(act: DerivAct): Fn {
  const f = new Fn(`ed_${act}`, Array(10).fill(I32));
  const zsrc = 9;
  const v = f.local(V128), z = f.local(V128), { one, zero } = actConstants(f);
  copyOutLoop(f, zsrc, () => {}, (lane, k, { rs, rd, rt }) => {
    loadAt(f, lane, rs, k).set(v);
    loadAt(f, lane, rt, k).set(z);
    f.get(rd).get(k).op(op.add);
    if (act === "relu") binaryVec(f, "reluMask", v, z, one, zero);
    else {
      f.get(v);
      unaryVec(f, "siluGrad", z, one, zero);
      f.simd(simd.f32x4mul);
    }
    storeAt(f, lane);
  });
  return f;
}
