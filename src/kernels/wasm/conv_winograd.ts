// The wasm backend's Winograd F(2x2, 3x3) convolutions: the stride-1 3x3 correlations with
// padding 1 (a forward, or an input gradient with the filters flipped) as the transforms of
// winograd.ts and 16 products of the gemm kernel on packed operands, in bands of tiles, copied out
// as the direct kernels' results are (conv_out.ts).
import type { ConvParams } from "../backend.ts";
import { cut, KI, type WasmRuntime } from "./runtime.ts";
import { copyOut, type Epilogue, results, runStaged } from "./conv_out.ts";

/**
 * Whether a stride-1 3x3 convolution with padding 1 takes Winograd F(2x2, 3x3) (winograd.ts) for
 * its forward and its input gradient (a correlation of the output gradient with the flipped
 * filters): with at least 8 channels in and 8 out. Against the direct kernels (bench/README.md):
 * 8 to 64 channels 1.01-1.5x on two threads; below, the transforms cost about what they save or
 * more (4 channels out of 32 or 64: 0.83-0.92x on two threads; 2 or 4 in: 0.71-0.87x on one).
 */
export function winogradFits(p: ConvParams): boolean {
  return p.KH === 3 && p.KW === 3 && p.stride === 1 && p.pad === 1 && p.groups === 1 && p.Cin >= 8 && p.Cout >= 8;
}

/**
 * Bytes of scratch (padded inputs, transformed operands, results) a round of Winograd items holds
 * where its items are small; a round holds two items per thread at least (as the direct path's
 * chunks do), so large images' rounds hold more.
 */
const WINO_ROUND_BYTES = 8 << 20;

/**
 * A stride between 16 arrays that is not a multiple of 4 KB (one 64-byte line past one): arrays a
 * multiple of 4 KB apart fall into the same cache sets (wino_in's 16 stores per tile, the first
 * version's [32,16,28,28]->16 at 0.89x of the direct kernels, 1.15x with the lines apart).
 */
const apartFloats = (n: number) => Math.ceil(n / 1024) * 1024 + 16;

/**
 * A stride-1 3x3 correlation with padding 1 by Winograd F(2x2, 3x3): src [N][K][H][W] with the
 * filters (rows x K, 3x3 each, at filter.w with byte strides sRow and sK, reversed with flip)
 * into [N][rows][H][W], with the copy out's epilogue `ep` (productsOut's). The 4x4-tile transforms
 * of the filters (once), then per item (a few images of few tiles, or one image) its images
 * zero-padded, and per band of about 256 tiles the inputs' transforms, the 16 products (the gemm
 * kernel, packed operands) and the outputs' transforms into the item's result blocks, copied out
 * last. Items are whole jobs where there are enough for every thread, so each band's operands
 * stay in one core's cache; otherwise each step is a phase, split over channels or products.
 * Every output is a sum in a fixed order over its own tile: it does not depend on the batch.
 */
export function winograd(rt: WasmRuntime, o: {
  N: number; K: number; rows: number; H: number; W: number; src: number; filter: { w: number; sRow: number; sK: number; flip: number }; ep?: Epilogue; work: number;
}): [Float32Array, Float32Array | null] {
  const m = rt.mem, { N, K, rows, H, W, src, filter: f, work } = o;
  const R = rt.rows(rows), MR = R.MR, NR = rt.shape.NR;
  if (NR !== 8) throw new Error(`winograd: wino_in packs 8-wide panels, the gemm's are ${NR}`);
  const rp = Math.ceil(rows / MR), AB = apartFloats(rp * K * MR);
  const TH = Math.ceil(H / 2), TWp = Math.ceil(Math.ceil(W / 2) / 4) * 4, Hp = 2 * TH + 2, Wp = 2 * TWp + 2;
  const XB = K * Hp * Wp, pitch = 2 * TWp, chan = 2 * TH * pitch, OB = rows * chan;
  // bands of about 256 tiles: several small images, or a band of one image's tile rows (64 to 512
  // tiles measured within 5% of each other for 16 to 64 channels: bench/README.md); fewer for wide
  // layers, so a band's 16 transformed operands stay within about 2 MB. One band's operands per item,
  // used by its bands in turn (a band's steps run after the band before it: in one job, or as
  // phases in order).
  const tb = Math.max(1, Math.round(Math.min(256, (1 << 15) / (K + rows)) / TWp));
  const ipc = TH <= tb ? Math.min(N, Math.max(1, Math.floor(tb / TH))) : 1, bandRows = Math.min(TH, tb), bands = Math.ceil(TH / bandRows);
  const cpMax = Math.ceil(ipc * bandRows * TWp / NR), ldc = cpMax * NR, VB = apartFloats(cpMax * K * NR), MB = apartFloats(rp * MR * ldc);
  const BAND = 16 * (VB + MB), itemFloats = ipc * (XB + OB) + BAND;
  const items = Math.ceil(N / ipc);
  // rounds of nearly equal size in whole multiples of the threads (32 images in rounds of 10, 10
  // and 12, not 11, 11 and 10, where one thread ran an item more than the other; 25 in 6, 6, 6
  // and 7, not 8, 8, 8 and a last one of 1)
  const most = Math.min(items, Math.max(rt.threads * 2, Math.floor(WINO_ROUND_BYTES / (4 * itemFloats))));
  const units = Math.ceil(items / rt.threads), nr = Math.ceil(items / most);
  const edge = (r: number) => Math.min(items, cut(r, units, nr) * rt.threads);
  let round = 0;
  for (let r = 0; r < nr; r++) round = Math.max(round, edge(r + 1) - edge(r));
  const a = m.tmp(16 * AB), scratch = m.tmp(round * itemFloats);
  const res = results(m, N, rows, H, W, o.ep);
  {
    const jl = rt.list(true), parts = rt.parts(rp, 1);
    for (let i = 0; i < parts; i++) {
      const p0 = cut(i, rp, parts), p1 = cut(i + 1, rp, parts);
      if (p1 > p0) jl.task(KI.wino_filter, f.w, f.sRow, f.sK, p0 * MR, p1 * MR, rows, K, f.flip, a, AB * 4, MR);
    }
    rt.run(jl, rows * K * 64, "conv prep");
  }
  const labels = ["conv prep"];
  for (let b = 0; b < bands; b++) labels.push("conv transform", "conv gemm", "conv transform");
  labels.push("conv out");
  for (let r = 0; r < nr; r++) {
    const i0 = edge(r), i1 = edge(r + 1), whole = i1 - i0 >= rt.threads * 2;
    if (i1 <= i0) continue;
    const inParts = whole ? 1 : rt.parts(K, 1), outParts = whole ? 1 : rt.parts(rows, 1);
    runStaged(rt, i0, i1, (jl, it, k) => {
      const xb = scratch + (it - i0) * itemFloats * 4, ob = xb + ipc * XB * 4;
      const n0 = it * ipc, n1 = Math.min(N, n0 + ipc);
      if (k === 0) {
        for (let n = n0; n < n1; n++) jl.task(KI.copypad, src + n * K * H * W * 4, H * W * 4, W * 4, 4, xb + (n - n0) * XB * 4, Hp * Wp * 4, K, Hp, Wp, 1, H, 1, W);
        return;
      }
      if (k === labels.length - 1) {
        for (let n = n0; n < n1; n++) copyOut(jl, res, ob + (n - n0) * OB * 4, chan * 4, pitch * 4, n, 0);
        return;
      }
      const b = Math.floor((k - 1) / 3), step = (k - 1) % 3;
      const v = ob + ipc * OB * 4, c = v + 16 * VB * 4;
      const ty0 = b * bandRows, ty1 = Math.min(TH, ty0 + bandRows), per = (ty1 - ty0) * TWp;
      if (step === 1) {
        const cp = Math.ceil((n1 - n0) * per / NR);
        for (let e = 0; e < 16; e++) jl.task(R.pp, a + e * AB * 4, 0, v + e * VB * 4, 0, c + e * MB * 4, ldc, K, 0, rp, 0, cp, 0, 1, 0, 0);
        return;
      }
      for (let n = n0; n < n1; n++) {
        const col0 = (n - n0) * per;
        if (step === 0) {
          for (let i = 0; i < inParts; i++) {
            const c0 = cut(i, K, inParts), c1 = cut(i + 1, K, inParts);
            if (c1 > c0) jl.task(KI.wino_in, xb + (n - n0) * XB * 4, Hp * Wp * 4, Wp * 4, c0, c1, ty0, ty1, TWp, v, VB * 4, col0, K);
          }
        } else {
          for (let i = 0; i < outParts; i++) {
            const r0 = cut(i, rows, outParts), r1 = cut(i + 1, rows, outParts);
            if (r1 > r0) jl.task(KI.wino_out, c, MB * 4, ldc * 4, r0, r1, ty0, ty1, TWp, col0, ob + (n - n0) * OB * 4, chan * 4, pitch * 4);
          }
        }
      }
    }, whole, work * (i1 - i0) / items, labels);
  }
  return res.land();
}
