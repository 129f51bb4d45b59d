// conv2d NCHW / OIHW as implicit GEMM: no im2col buffer, the patch index is decoded in-kernel.
// params: [N, Cin, H, W, Cout, KH, KW, stride, pad, groups, OH, OW]
import { entry, PARAMS } from "./preamble.ts";

const DIMS = `
  let N = P[0]; let Cin = P[1]; let H = P[2]; let W = P[3];
  let Cout = P[4]; let KH = P[5]; let KW = P[6];
  let S = P[7]; let PAD = P[8]; let G = P[9]; let OH = P[10]; let OW = P[11];
  let cg = Cin / G; let og = Cout / G;`;

const IO = (a: string, b: string, out: string) => `${PARAMS}
@group(0) @binding(1) var<storage, read> ${a}: array<f32>;
@group(0) @binding(2) var<storage, read> ${b}: array<f32>;
@group(0) @binding(3) var<storage, read_write> ${out}: array<f32>;`;

export type ConvVariant = "direct" | "block4";
export const CONV_VARIANTS: ConvVariant[] = ["direct", "block4"];

/** Forward. direct: one output per invocation; block4: 4 output channels per invocation share input loads. */
export function conv2dForwardShader(v: ConvVariant): string {
  const cb = v === "block4" ? 4 : 1;
  const accs = [...Array(cb).keys()];
  return `${IO("X", "Wt", "Y")}
${entry()}
${DIMS}
  let cblocks = (og + ${cb - 1}u) / ${cb}u;
  if (idx >= N * G * cblocks * OH * OW) { return; }
  let ox = idx % OW;
  let oy = (idx / OW) % OH;
  let cbk = (idx / (OW * OH)) % (G * cblocks);
  let n = idx / (OW * OH * G * cblocks);
  let g = cbk / cblocks;
  let co0 = g * og + (cbk % cblocks) * ${cb}u;
  let coEnd = (g + 1u) * og;
  ${accs.map((j) => `var acc${j} = 0.0; let w${j} = min(co0 + ${j}u, coEnd - 1u) * cg * KH * KW;`).join("\n  ")}
  let iy0 = i32(oy * S) - i32(PAD);
  let ix0 = i32(ox * S) - i32(PAD);
  for (var ci = 0u; ci < cg; ci++) {
    let xb = (n * Cin + g * cg + ci) * H * W;
    let wc = ci * KH * KW;
    for (var ky = 0u; ky < KH; ky++) {
      let iy = iy0 + i32(ky);
      if (iy < 0 || iy >= i32(H)) { continue; }
      for (var kx = 0u; kx < KW; kx++) {
        let ix = ix0 + i32(kx);
        if (ix < 0 || ix >= i32(W)) { continue; }
        let xv = X[xb + u32(iy) * W + u32(ix)];
        let wk = wc + ky * KW + kx;
        ${accs.map((j) => `acc${j} = fma(xv, Wt[w${j} + wk], acc${j});`).join("\n        ")}
      }
    }
  }
  ${accs.map((j) => `if (co0 + ${j}u < coEnd) { Y[((n * Cout + co0 + ${j}u) * OH + oy) * OW + ox] = acc${j}; }`).join("\n  ")}
}`;
}

/** dX: one input element per invocation, gathering the outputs whose window covers it. */
export function conv2dInputGradShader(): string {
  return `${IO("GY", "Wt", "DX")}
${entry()}
${DIMS}
  if (idx >= N * Cin * H * W) { return; }
  let ix = idx % W;
  let iy = (idx / W) % H;
  let c = (idx / (W * H)) % Cin;
  let n = idx / (W * H * Cin);
  let g = c / cg;
  let ci = c % cg;
  var acc = 0.0;
  for (var ky = 0u; ky < KH; ky++) {
    let ty = i32(iy + PAD) - i32(ky);
    if (ty < 0 || ty % i32(S) != 0) { continue; }
    let oy = u32(ty) / S;
    if (oy >= OH) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let tx = i32(ix + PAD) - i32(kx);
      if (tx < 0 || tx % i32(S) != 0) { continue; }
      let ox = u32(tx) / S;
      if (ox >= OW) { continue; }
      for (var j = 0u; j < og; j++) {
        let co = g * og + j;
        acc = fma(GY[((n * Cout + co) * OH + oy) * OW + ox], Wt[((co * cg + ci) * KH + ky) * KW + kx], acc);
      }
    }
  }
  DX[idx] = acc;
}`;
}

/** dW: one weight per invocation, summing over batch and output positions. */
export function conv2dWeightGradShader(): string {
  return `${IO("X", "GY", "DW")}
${entry()}
${DIMS}
  if (idx >= Cout * cg * KH * KW) { return; }
  let kx = idx % KW;
  let ky = (idx / KW) % KH;
  let ci = (idx / (KW * KH)) % cg;
  let co = idx / (KW * KH * cg);
  let g = co / og;
  var acc = 0.0;
  for (var n = 0u; n < N; n++) {
    let xb = (n * Cin + g * cg + ci) * H * W;
    let gb = (n * Cout + co) * OH * OW;
    for (var oy = 0u; oy < OH; oy++) {
      let iy = i32(oy * S + ky) - i32(PAD);
      if (iy < 0 || iy >= i32(H)) { continue; }
      for (var ox = 0u; ox < OW; ox++) {
        let ix = i32(ox * S + kx) - i32(PAD);
        if (ix < 0 || ix >= i32(W)) { continue; }
        acc = fma(GY[gb + oy * OW + ox], X[xb + u32(iy) * W + u32(ix)], acc);
      }
    }
  }
  DW[idx] = acc;
}`;
}
