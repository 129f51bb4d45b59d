// Is Winograd F(2x2, 3x3) worth building for the wasm backend's stride-1 3x3 convolutions? Its
// products are 16 matrix products [Cout x Cin] x [Cin x tiles] (one per point of the 4x4
// transformed tile), 2.25x fewer multiply-adds than the direct convolution (fewer on odd sizes:
// a 7x7 image is 16 tiles of 2x2). This times those 16 products alone, on one thread, with the
// backend's own product kernel (packed operands, the 6x8 block: what the transforms would write
// and read), each chunk of images' operands reused so they stay in cache (a transform that
// wrote them just before would leave them there): a lower bound on a Winograd convolution's time,
// before its input and output transforms (each a pass over 4x the input's or output's floats).
// Against it, the backend's direct convolution (bench/conv_shapes.ts's shapes: the U-Net's and
// the VAE's), one thread, best of --rounds, the two alternating.
//   deno run -A bench/winograd_bound.ts [--rounds 15]
import "../src/cli/errors.ts";
import { int, parseOptions } from "../src/io/options.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import { moduleBytes } from "../src/kernels/wasm/emit.ts";
import { GEMM_DEFAULT, gemmFn } from "../src/kernels/wasm/gemm.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";

const a = parseOptions("winograd_bound", { rounds: int({ min: 1, max: 1000 }).default(15) });
const { MR, NR } = GEMM_DEFAULT;
const pages = 4096; // 256 MB
const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
const inst = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes([gemmFn(GEMM_DEFAULT, "packed", "packed", "gemm")], { initial: pages, maximum: pages, shared: true })), { env: { mem } });
const gemm = inst.exports.gemm as (...args: number[]) => void;
const be = await createWasmBackend({ threads: 1 });

// [N, Cin, H (= W), Cout]: the U-Net's stride-1 3x3 convolutions at batch 32, the VAE's at 64
const SHAPES = [[32, 16, 28, 16], [32, 32, 28, 16], [32, 32, 14, 32], [32, 64, 14, 32], [32, 32, 7, 32], [32, 64, 7, 32], [64, 32, 7, 32]];
console.log(`${be.description}; one thread; best of ${a.rounds} rounds; load average ${Deno.loadavg()[0].toFixed(1)}`);
console.log("| conv [N,Cin,H,W]->Cout | direct, ms | 16 products alone, ms | products / direct | multiply-adds, direct / Winograd |");
console.log("| --- | --- | --- | --- | --- |");
for (const [N, C, H, Co] of SHAPES) {
  const p: ConvParams = { N, Cin: C, H, W: H, Cout: Co, KH: 3, KW: 3, stride: 1, pad: 1, groups: 1, OH: H, OW: H };
  const tiles = Math.ceil(H / 2) ** 2;
  // images per chunk: at least 64 columns of tiles (7x7 images have 16 tiles each)
  const per = Math.min(N, Math.max(1, Math.ceil(64 / tiles))), chunks = Math.ceil(N / per), cols = per * tiles;
  const rp = Math.ceil(Co / MR), cp = Math.ceil(cols / NR), ldc = cp * NR;
  const apB = rp * C * MR * 4, bpB = cp * C * NR * 4, cB = rp * MR * ldc * 4;
  const ap = 0, bp = ap + 16 * apB, cc = bp + 16 * bpB;
  const f = new Float32Array(mem.buffer, 0, (cc + 16 * cB) / 4);
  for (let i = 0; i < (cc / 4); i++) f[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const x = be.alloc(N * C * H * H).fill(0.5), w = be.alloc(Co * C * 9).fill(0.25);
  const best = [Infinity, Infinity];
  for (let r = 0; r < a.rounds; r++) {
    for (const side of r % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      if (side === 0) be.release(be.conv2d(x, w, p, "float32"));
      else for (let k = 0; k < chunks; k++) for (let e = 0; e < 16; e++) gemm(ap + e * apB, 0, bp + e * bpB, 0, cc + e * cB, ldc, C, 0, rp, 0, cp, 0, 1, 0, 0);
      best[side] = Math.min(best[side], performance.now() - t0);
    }
  }
  be.release(x);
  be.release(w);
  const direct = 9 * H * H, wino = 16 * chunks * cols / N;
  console.log(`| [${N},${C},${H},${H}]->${Co} | ${best[0].toFixed(3)} | ${best[1].toFixed(3)} | ${(best[1] / best[0]).toFixed(2)} | ${(direct / wino).toFixed(2)}x |`);
}
Deno.exit(0);
