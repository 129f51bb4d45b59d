// conv2d as explicit GEMM: im2col unrolls input patches into a [N, Cin*KH*KW, OH*OW] matrix so
// the matmul kernels (the fastest we have) do the arithmetic; col2im sums such a matrix back onto
// the input grid (the input gradient). params: the conv words [N, Cin, H, W, Cout, KH, KW, stride,
// pad, groups, OH, OW]. Row order (ci, ky, kx) matches the OIHW weight, so group g's rows are a
// contiguous block and W[g] is an [og, cg*KH*KW] matrix.
import { entry, PARAMS } from "./preamble.ts";

const DIMS = `
  let N = P[0]; let Cin = P[1]; let H = P[2]; let W = P[3];
  let KH = P[5]; let KW = P[6]; let S = P[7]; let PAD = P[8]; let OH = P[10]; let OW = P[11];`;

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
  const hit = (t: string, lim: string) => stride === 1 ? `${t} >= 0 && ${t} < i32(${lim})` : `${t} >= 0 && ${t} % ${stride} == 0 && ${t} / ${stride} < i32(${lim})`;
  const div = (t: string) => stride === 1 ? `u32(${t})` : `u32(${t} / ${stride})`;
  return `${PARAMS}
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
      if (!(${hit("ty", "OH")})) { continue; }
      let rb = ((nc * KH + ky) * KW) * OH * OW + ${div("ty")} * OW;
      for (var kx = 0u; kx < KW; kx++) {
        let tx = i32(ix + PAD) - i32(kx);
        if (!(${hit("tx", "OW")})) { continue; }
        acc += COL[rb + kx * OH * OW + ${div("tx")}];
      }
    }
    DX[idx * W + ix] = acc;
  }
}`;
}
