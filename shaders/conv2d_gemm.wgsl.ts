// conv2d as explicit GEMM: im2col unrolls input patches into a [N, Cin*KH*KW, OH*OW] matrix so
// the matmul kernels (the fastest we have) do the arithmetic; col2im sums such a matrix back onto
// the input grid (the input gradient). Params: CONV (conv2d.wgsl.ts). Row order (ci, ky, kx)
// matches the OIHW weight, so group g's rows are a contiguous block and W[g] is an [og, cg*KH*KW] matrix.
import { wgsl } from "wgsl-preprocessor";
import { CONV } from "./conv2d.wgsl.ts";
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
