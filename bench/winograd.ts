// The wasm backend's Winograd F(2x2, 3x3) convolutions (src/kernels/wasm/winograd.ts) against its
// direct ones (the same backend made with `winograd: false`) on the stride-1 3x3 shapes of the
// U-Net (batch 32) and the VAE (batch 64): forward and input gradient, one thread, best time of
// --rounds rounds, the sides alternating. And what bounds a Winograd convolution: its 16 products
// [Cout x Cin] x [Cin x tiles] alone (the backend's product kernel on packed operands, a chunk at
// a time, an image or images of 64 tiles or more, its operands reused so they stay in cache):
// 2.25x fewer multiply-adds than the direct convolution (fewer on odd sizes: a 7x7 image is 16
// tiles of 2x2); the transforms, the padding and the copy out come on top. The same bound for a
// Winograd weight gradient (not built): its 16 products [Cout x tiles] x [tiles x Cin] summed over
// the tiles, against the direct weight gradient; its transforms (the inputs', the output
// gradient's, and a transpose into the panels) would come on top.
//   deno run -A bench/winograd.ts [--rounds 15]
import "../src/cli/errors.ts";
import { int, parseOptions } from "../src/io/options.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import { moduleBytes } from "../src/kernels/wasm/emit.ts";
import { GEMM_DEFAULT, gemmFn } from "../src/kernels/wasm/gemm.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";

const a = parseOptions("winograd", { rounds: int({ min: 1, max: 1000 }).default(15) });
const { MR, NR } = GEMM_DEFAULT;
const pages = 4096; // 256 MB
const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
const inst = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes([gemmFn(GEMM_DEFAULT, "packed", "packed", "gemm")], { initial: pages, maximum: pages, shared: true })), { env: { mem } });
const gemm = inst.exports.gemm as (...args: number[]) => void;
const be = await createWasmBackend({ threads: 1 }), direct = await createWasmBackend({ threads: 1, winograd: false });

// [N, Cin, H (= W), Cout]: the U-Net's stride-1 3x3 convolutions at batch 32, the VAE's at 64
const SHAPES = [[32, 16, 28, 16], [32, 32, 28, 16], [32, 32, 14, 32], [32, 64, 14, 32], [32, 32, 7, 32], [32, 64, 7, 32], [64, 32, 7, 32]];
console.log(`${be.description}; best of ${a.rounds} rounds; load average ${Deno.loadavg()[0].toFixed(1)}`);
console.log("| conv [N,Cin,H,W]->Cout | forward, ms: direct / Winograd | input gradient, ms: direct / Winograd | the 16 products alone, ms | multiply-adds, direct / Winograd | weight gradient (direct), ms | a Winograd weight gradient's 16 products alone, ms |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const [N, C, H, Co] of SHAPES) {
  const p: ConvParams = { N, Cin: C, H, W: H, Cout: Co, KH: 3, KW: 3, stride: 1, pad: 1, groups: 1, OH: H, OW: H };
  const tiles = Math.ceil(H / 2) ** 2;
  // images per chunk: at least 64 columns of tiles (7x7 images have 16 tiles each)
  const per = Math.min(N, Math.max(1, Math.ceil(64 / tiles))), chunks = Math.ceil(N / per), cols = per * tiles;
  const rp = Math.ceil(Co / MR), cp = Math.ceil(cols / NR), ldc = cp * NR;
  const apB = rp * C * MR * 4, bpB = cp * C * NR * 4, cB = rp * MR * ldc * 4;
  const ap = 0, bp = ap + 16 * apB, cc = bp + 16 * bpB;
  // the weight gradient's: A [Cout x tiles] and B [tiles x Cin] packed, K = the chunk's tiles, C summed over the chunks
  const wp = Math.ceil(C / NR), wldc = wp * NR, waB = rp * cols * MR * 4, wbB = wp * cols * NR * 4, wcB = rp * MR * wldc * 4;
  const wa = cc + 16 * cB, wb = wa + 16 * waB, wc = wb + 16 * wbB;
  const f = new Float32Array(mem.buffer, 0, (wc + 16 * wcB) / 4);
  for (let i = 0; i < (wc / 4); i++) f[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const sides = [direct, be].map((b) => ({ b, x: b.alloc(N * C * H * H).fill(0.5), w: b.alloc(Co * C * 9).fill(0.25), gy: b.alloc(N * Co * H * H).fill(0.5) }));
  const best = [[Infinity, Infinity], [Infinity, Infinity]], bound = [Infinity, Infinity], wgrad = [Infinity];
  for (let r = 0; r < a.rounds; r++) {
    for (const side of r % 2 ? [1, 0] : [0, 1]) {
      const { b, x, w, gy } = sides[side];
      for (const grad of [0, 1]) {
        const t0 = performance.now();
        b.release(grad ? b.conv2dInputGrad(gy, w, p, "float32") : b.conv2d(x, w, p, "float32"));
        best[side][grad] = Math.min(best[side][grad], performance.now() - t0);
      }
    }
    let t0 = performance.now();
    for (let k = 0; k < chunks; k++) for (let e = 0; e < 16; e++) gemm(ap + e * apB, 0, bp + e * bpB, 0, cc + e * cB, ldc, C, 0, rp, 0, cp, 0, 1, 0, 0);
    bound[0] = Math.min(bound[0], performance.now() - t0);
    t0 = performance.now();
    for (let k = 0; k < chunks; k++) for (let e = 0; e < 16; e++) gemm(wa + e * waB, 0, wb + e * wbB, 0, wc + e * wcB, wldc, cols, 0, rp, 0, wp, k > 0 ? 1 : 0, 1, 0, 0);
    bound[1] = Math.min(bound[1], performance.now() - t0);
    const { b, x, gy } = sides[0];
    t0 = performance.now();
    b.release(b.conv2dWeightGrad(x, gy, p, "float32"));
    wgrad[0] = Math.min(wgrad[0], performance.now() - t0);
  }
  for (const { b, x, w, gy } of sides) [x, w, gy].forEach((s) => b.release(s));
  const ms = (v: number) => v.toFixed(3), pair = (i: number) => `${ms(best[0][i])} / ${ms(best[1][i])} (${(best[0][i] / best[1][i]).toFixed(2)}x)`;
  console.log(`| [${N},${C},${H},${H}]->${Co} | ${pair(0)} | ${pair(1)} | ${ms(bound[0])} | ${(9 * H * H / (16 * chunks * cols / N)).toFixed(2)}x | ${ms(wgrad[0])} | ${ms(bound[1])} (${(bound[1] / wgrad[0]).toFixed(2)} of it) |`);
}
Deno.exit(0);
