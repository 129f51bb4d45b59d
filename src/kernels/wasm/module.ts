// The wasm backend's module: every kernel generated here at load time (emit.ts), compiled once
// and instantiated on each thread over one shared memory.
import { Fn, I32, moduleBytes, op, simd } from "./emit.ts";
import { GEMM_DEFAULT, type GemmShape, gemmFn, packFn } from "./gemm.ts";
import { binaryFn, SIMD_APPROX, SIMD_BINARY, SIMD_UNARY, unaryFn } from "./elementwise.ts";

/**
 * copy3d(src, s0, s1, s2, dst, d0, d1, d2, D0, D1, D2): dst[i][j][k] = src[i][j][k] for the
 * extents D0 x D1 x D2, with byte strides on both sides (vectors when both inner strides are 4).
 */
function copy3dFn(): Fn {
  const f = new Fn("copy3d", Array(11).fill(I32));
  const [src, s0, s1, s2, dst, d0, d1, d2, D0, D1, D2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const i = f.local(), j = f.local(), k = f.local(), ps = f.local(), pd = f.local(), vend = f.local();
  f.get(D2).i32(-4).op(op.and).set(vend);
  f.loop(i, () => f.i32(0), () => f.get(D0), 1, () => {
    f.loop(j, () => f.i32(0), () => f.get(D1), 1, () => {
      f.get(src).get(i).get(s0).op(op.mul).op(op.add).get(j).get(s1).op(op.mul).op(op.add).set(ps);
      f.get(dst).get(i).get(d0).op(op.mul).op(op.add).get(j).get(d1).op(op.mul).op(op.add).set(pd);
      f.get(s2).i32(4).op(op.eq).get(d2).i32(4).op(op.eq).op(op.and).if(() => {
        f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
          f.get(pd).get(ps).simd(0x00, 0, 0).simd(0x0b, 0, 0); // unaligned v128 load/store
          f.get(ps).i32(16).op(op.add).set(ps);
          f.get(pd).i32(16).op(op.add).set(pd);
        });
        f.loop(k, () => f.get(vend), () => f.get(D2), 1, () => {
          f.get(pd).get(ps).op(0x2a, 0, 0).op(0x38, 0, 0);
          f.get(ps).i32(4).op(op.add).set(ps);
          f.get(pd).i32(4).op(op.add).set(pd);
        });
      }, () => {
        f.loop(k, () => f.i32(0), () => f.get(D2), 1, () => {
          f.get(pd).get(ps).op(0x2a, 0, 0).op(0x38, 0, 0);
          f.get(ps).get(s2).op(op.add).set(ps);
          f.get(pd).get(d2).op(op.add).set(pd);
        });
      });
    });
  });
  return f;
}

export const KERNELS = [
  "gemm_pp", "gemm_pt", "gemm_tp", "pack_a", "pack_b", "copy3d", "gemm_pp4", "gemm_pt4", "gemm_tp4", "pack_a4",
  ...SIMD_UNARY.map((o) => `un_${o}` as const), ...SIMD_APPROX.map((o) => `un_${o}` as const), ...SIMD_BINARY.map((o) => `bin_${o}` as const),
] as const;
export type KernelName = typeof KERNELS[number];

export function kernelFns(s: GemmShape): Fn[] {
  return [
    gemmFn(s, "packed", "packed", "gemm_pp"), gemmFn(s, "packed", "table", "gemm_pt"), gemmFn(s, "table", "packed", "gemm_tp"),
    packFn(s.MR, "pack_a"), packFn(s.NR, "pack_b"), copy3dFn(),
    // a 4-row block for products with few rows (4 or 8 channels: no padded rows)
    gemmFn({ ...s, MR: 4 }, "packed", "packed", "gemm_pp4"), gemmFn({ ...s, MR: 4 }, "packed", "table", "gemm_pt4"),
    gemmFn({ ...s, MR: 4 }, "table", "packed", "gemm_tp4"), packFn(4, "pack_a4"),
    ...SIMD_UNARY.map(unaryFn), ...SIMD_APPROX.map(unaryFn), ...SIMD_BINARY.map(binaryFn),
  ];
}

/** Whether this engine accepts f32x4.relaxed_madd (relaxed SIMD). */
export function hasRelaxedSimd(): boolean {
  const f = new Fn("t", []);
  f.f32(1).simd(simd.f32x4splat).f32(1).simd(simd.f32x4splat).f32(1).simd(simd.f32x4splat).simd(simd.relaxedMadd).op(0x1a); // drop
  try {
    return WebAssembly.validate(moduleBytes([f], { initial: 1, maximum: 1, shared: false }));
  } catch {
    return false;
  }
}

/** Whether this engine has SIMD128 at all. */
export function hasSimd(): boolean {
  const f = new Fn("t", []);
  f.f32(1).simd(simd.f32x4splat).op(0x1a);
  try {
    return WebAssembly.validate(moduleBytes([f], { initial: 1, maximum: 1, shared: false }));
  } catch {
    return false;
  }
}

export const MAX_PAGES = 32768; // 2 GiB of 64 KiB pages

export function buildModule(shared: boolean, shape: GemmShape = { ...GEMM_DEFAULT, fma: hasRelaxedSimd() }): { module: WebAssembly.Module; shape: GemmShape; shared: boolean } {
  const bytes = moduleBytes(kernelFns(shape), { initial: 16, maximum: MAX_PAGES, shared });
  return { module: new WebAssembly.Module(bytes), shape, shared };
}
