// conv2d as explicit GEMM: im2col unrolls input patches into a [N, Cin*KH*KW, OH*OW] matrix so
// the matmul kernels (the fastest we have) do the arithmetic; col2im sums such a matrix back onto
// the input grid (the input gradient). Params: CONV (conv.wgsl.ts). Row order (ci, ky, kx)
// matches the OIHW weight, so group g's rows are a contiguous block and W[g] is an [og, cg*KH*KW] matrix.
import { wgsl } from "wgsl-preprocessor";
import { CONV } from "./conv.wgsl.ts";
import { sharedTiles } from "./matmul.wgsl.ts";
import { entry, PARAMS } from "./preamble.ts";

const DIMS = `
  ${CONV.declare("N", "Cin", "H", "W", "KH", "KW", "S", "PAD", "OH", "OW")}`;

// Integer division is slow on CPU-backed adapters (lavapipe scalarises it), so each invocation
// decodes its indices once and then walks a whole row of positions.

/** One row col[n, (c, ky, kx), oy, :] per invocation; zero where the window hangs over the padding. */
export function im2colShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> COL: array<f32>;
${entry()}
${DIMS}
  if (idx >= N * Cin * KH * KW * OH) { return; }
  let oy = idx % OH;
  let kx = (idx / OH) % KW;
  let ky = (idx / (OH * KW)) % KH;
  let nc = idx / (OH * KW * KH);
  let iy = i32(oy * S + ky) - i32(PAD);
  let rowOk = iy >= 0 && iy < i32(H);
  let xrow = nc * H * W + u32(clamp(iy, 0, i32(H) - 1)) * W;
  let o = idx * OW;
  var ix = i32(kx) - i32(PAD);
  for (var ox = 0u; ox < OW; ox++) {
    COL[o + ox] = select(0.0, X[xrow + u32(clamp(ix, 0, i32(W) - 1))], rowOk && ix >= 0 && ix < i32(W));
    ix += i32(S);
  }
}`;
}

/** One input row dX[n, c, iy, :] per invocation: the sum of the col entries whose window covers each element. */
export function col2imShader(stride: number): string {
  // The stride is baked in: with stride 1 every tap hits and no division is left.
  const one = stride === 1;
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> COL: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
${entry()}
${DIMS}
  if (idx >= N * Cin * H) { return; }
  let iy = idx % H;
  let nc = idx / H;
  for (var ix = 0u; ix < W; ix++) {
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
      let ty = i32(iy + PAD) - i32(ky);
#if ${one}
      if (ty < 0 || ty >= i32(OH)) { continue; }
      let oy = u32(ty);
#else
      if (ty < 0 || ty % ${stride} != 0 || ty / ${stride} >= i32(OH)) { continue; }
      let oy = u32(ty / ${stride});
#endif
      let rb = ((nc * KH + ky) * KW) * OH * OW + oy * OW;
      for (var kx = 0u; kx < KW; kx++) {
        let tx = i32(ix + PAD) - i32(kx);
#if ${one}
        if (tx < 0 || tx >= i32(OW)) { continue; }
        let ox = u32(tx);
#else
        if (tx < 0 || tx % ${stride} != 0 || tx / ${stride} >= i32(OW)) { continue; }
        let ox = u32(tx / ${stride});
#endif
        acc += COL[rb + kx * OH * OW + ox];
      }
    }
    DX[idx * W + ix] = acc;
  }
}`;
}

/**
 * The forward as an implicit GEMM on shared-memory tiles (the matmul's shared kernel, real GPUs):
 * batch z = (image n, group g), C[z] = W[g] [og, K] x patches(n, g) [K, OH*OW] with the patch
 * entries gathered from X while staging (zero over the padding), no im2col buffer; the weights
 * as vec4s along K where K % 4 == 0. Y's [n][g*og + co][p] is C[z][co][p].
 */
export function conv2dSharedShader(RM: number, RN: number, vecA: boolean): string {
  const head = `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> ${vecA ? "W4: array<vec4<f32>>" : "Wt: array<f32>"};
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
fn storeY(b: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let o = b * M * N + m * N;
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < N) { C[o + n0 + j] = v[j]; }
  }
}
fn patchAt(b: u32, k: u32, p: u32) -> f32 {
  ${CONV.declare("Cin", "H", "W", "KH", "KW", "S", "PAD", "G", "OW")}
  let cg = Cin / G;
  let n = b / G; let g = b % G;
  let ci = k / (KH * KW); let r = k % (KH * KW);
  let iy = i32((p / OW) * S + r / KW) - i32(PAD);
  let ix = i32((p % OW) * S + r % KW) - i32(PAD);
  if (iy < 0 || iy >= i32(H) || ix < 0 || ix >= i32(W)) { return 0.0; }
  return X[((n * Cin + g * cg + ci) * H + u32(iy)) * W + u32(ix)];
}`;
  const setup = `${CONV.declare("Cin", "KH", "KW", "G", "OH", "OW", "Cout")}
  let M = Cout / G; let K = (Cin / G) * KH * KW; let N = OH * OW;
  let aBase = (b % G) * M * K;`;
  return sharedTiles(RM, RN, {
    head, setup, vecA, vecB: false,
    a: (m, k) => vecA ? `W4[(aBase + ${m} * K + ${k}) / 4u]` : `Wt[aBase + ${m} * K + ${k}]`,
    b: (k, n) => `patchAt(b, ${k}, ${n})`,
  }, "wid.z", "storeY");
}
