// conv2d NCHW / OIHW as implicit GEMM: no im2col buffer, the patch index is decoded in-kernel.
import { entry, Layout, PARAMS, WG } from "./preamble.ts";

/**
 * Params of every conv kernel (here and in conv_gemm.wgsl.ts): the conv's sizes, stride S,
 * padding PAD and groups G; SPLITS only for the uniform weight gradient (0 elsewhere).
 */
export const CONV = new Layout({
  N: 1, Cin: 1, H: 1, W: 1, Cout: 1, KH: 1, KW: 1, S: 1, PAD: 1, G: 1, OH: 1, OW: 1, SPLITS: 1,
});

const DIMS = `
  ${CONV.declare("N", "Cin", "H", "W", "Cout", "KH", "KW")}
  ${CONV.declare("S", "PAD", "G", "OH", "OW")}
  let cg = Cin / G; let og = Cout / G;`;

const IO = (a: string, b: string, out: string) => `${PARAMS}
@group(0) @binding(1) var<storage, read> ${a}: array<f32>;
@group(0) @binding(2) var<storage, read> ${b}: array<f32>;
@group(0) @binding(3) var<storage, read_write> ${out}: array<f32>;`;

/**
 * gemm: im2col + the matmul kernels (shaders/conv_gemm.wgsl.ts); shared: for real GPUs, the forward
 * an implicit GEMM on shared-memory tiles, the gradients gemm on the shared4x4 matmul; the others
 * are direct convolutions here.
 */
export type ConvVariant = "auto" | "direct" | "block4" | "uniform4" | "uniform8" | "uniform16" | "uniform32" | "gemm" | "shared";
export const CONV_VARIANTS: ConvVariant[] = ["auto", "direct", "block4", "uniform4", "uniform8", "uniform16", "uniform32", "gemm", "shared"];

/** Channels per workgroup of a uniform variant (0 for the others). */
export function uniformChannels(v: ConvVariant): number {
  const m = /^uniform(\d+)$/.exec(v);
  return m ? +m[1] : 0;
}

/** Header of the uniform variants: channel block from the workgroup (so weight loads are uniform), position from the lane. */
const UNIFORM_HEAD = `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let pos = (wid.x + wid.z * nwg.x) * ${WG}u + lid;`;

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

/**
 * Forward, uniform variant: a workgroup takes UNIFORM_CH output channels of one group (weights
 * uniform across lanes) and WG output positions (one per lane). Dispatch y = groups * ceil(og / UNIFORM_CH).
 */
export function conv2dForwardUniformShader(UNIFORM_CH: number): string {
  const CH = [...Array(UNIFORM_CH).keys()];
  return `${IO("X", "Wt", "Y")}
${UNIFORM_HEAD}
${DIMS}
  let cbs = (og + ${UNIFORM_CH - 1}u) / ${UNIFORM_CH}u;
  let g = wid.y / cbs;
  let co0 = g * og + (wid.y % cbs) * ${UNIFORM_CH}u;
  let coEnd = (g + 1u) * og;
  let valid = pos < N * OH * OW;
  let p = min(pos, N * OH * OW - 1u);
  let ox = p % OW;
  let oy = (p / OW) % OH;
  let n = p / (OW * OH);
  ${CH.map((j) => `var acc${j} = 0.0; let w${j} = min(co0 + ${j}u, coEnd - 1u) * cg * KH * KW;`).join("\n  ")}
  let iy0 = i32(oy * S) - i32(PAD);
  let ix0 = i32(ox * S) - i32(PAD);
  for (var ci = 0u; ci < cg; ci++) {
    let xb = (n * Cin + g * cg + ci) * H * W;
    let wc = ci * KH * KW;
    for (var ky = 0u; ky < KH; ky++) {
      let iy = iy0 + i32(ky);
      for (var kx = 0u; kx < KW; kx++) {
        let ix = ix0 + i32(kx);
        let inside = iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W);
        let xv = select(0.0, X[xb + u32(clamp(iy, 0, i32(H) - 1)) * W + u32(clamp(ix, 0, i32(W) - 1))], inside);
        let wk = wc + ky * KW + kx;
        ${CH.map((j) => `acc${j} = fma(xv, Wt[w${j} + wk], acc${j});`).join("\n        ")}
      }
    }
  }
  if (!valid) { return; }
  ${CH.map((j) => `if (co0 + ${j}u < coEnd) { Y[((n * Cout + co0 + ${j}u) * OH + oy) * OW + ox] = acc${j}; }`).join("\n  ")}
}`;
}

/** Input gradient, uniform variant: UNIFORM_CH input channels of one group per workgroup, WG input positions. */
export function conv2dInputGradUniformShader(UNIFORM_CH: number): string {
  const CH = [...Array(UNIFORM_CH).keys()];
  return `${IO("GY", "Wt", "DX")}
${UNIFORM_HEAD}
${DIMS}
  let cbs = (cg + ${UNIFORM_CH - 1}u) / ${UNIFORM_CH}u;
  let g = wid.y / cbs;
  let ci0 = (wid.y % cbs) * ${UNIFORM_CH}u;
  let valid = pos < N * H * W;
  let p = min(pos, N * H * W - 1u);
  let ix = p % W;
  let iy = (p / W) % H;
  let n = p / (W * H);
  ${CH.map((j) => `var acc${j} = 0.0; let wi${j} = min(ci0 + ${j}u, cg - 1u) * KH * KW;`).join("\n  ")}
  for (var ky = 0u; ky < KH; ky++) {
    let ty = i32(iy + PAD) - i32(ky);
    let oy = u32(max(ty, 0)) / S;
    let okY = ty >= 0 && ty % i32(S) == 0 && oy < OH;
    for (var kx = 0u; kx < KW; kx++) {
      let tx = i32(ix + PAD) - i32(kx);
      let ox = u32(max(tx, 0)) / S;
      let ok = okY && tx >= 0 && tx % i32(S) == 0 && ox < OW;
      let gpos = min(oy, OH - 1u) * OW + min(ox, OW - 1u);
      for (var j = 0u; j < og; j++) {
        let co = g * og + j;
        let gv = select(0.0, GY[(n * Cout + co) * OH * OW + gpos], ok);
        let wb = co * cg * KH * KW + ky * KW + kx;
        ${CH.map((j) => `acc${j} = fma(gv, Wt[wb + wi${j}], acc${j});`).join("\n        ")}
      }
    }
  }
  if (!valid) { return; }
  ${CH.map((j) => `if (ci0 + ${j}u < cg) { DX[((n * Cin + g * cg + ci0 + ${j}u) * H + iy) * W + ix] = acc${j}; }`).join("\n  ")}
}`;
}

/**
 * Weight gradient, uniform variant: a block of output channels per workgroup (gradient loads
 * uniform across lanes); lanes over (split s, ci, ky, kx). Split s sums images n = s, s+S, ...
 * into its own slice of a [S, Cout, cg*KH*KW] partial result, summed over S afterwards, so small
 * filters (few (ci, ky, kx)) still fill the lanes (CONV's SPLITS).
 */
export function conv2dWeightGradUniformShader(UNIFORM_CH: number): string {
  const CH = [...Array(UNIFORM_CH).keys()];
  return `${IO("X", "GY", "DW")}
${UNIFORM_HEAD}
${DIMS}
  ${CONV.declare("SPLITS")}
  let cbs = (og + ${UNIFORM_CH - 1}u) / ${UNIFORM_CH}u;
  let g = wid.y / cbs;
  let co0 = g * og + (wid.y % cbs) * ${UNIFORM_CH}u;
  let coEnd = (g + 1u) * og;
  let per = cg * KH * KW;
  let valid = pos < per * SPLITS;
  let q = min(pos, per * SPLITS - 1u);
  let p = q % per;
  let split = q / per;
  let kx = p % KW;
  let ky = (p / KW) % KH;
  let ci = p / (KW * KH);
  ${CH.map((j) => `var acc${j} = 0.0; let c${j} = min(co0 + ${j}u, coEnd - 1u);`).join("\n  ")}
  for (var n = split; n < N; n += SPLITS) {
    let xb = (n * Cin + g * cg + ci) * H * W;
    for (var oy = 0u; oy < OH; oy++) {
      let iy = i32(oy * S + ky) - i32(PAD);
      let okY = iy >= 0 && iy < i32(H);
      let xrow = xb + u32(clamp(iy, 0, i32(H) - 1)) * W;
      for (var ox = 0u; ox < OW; ox++) {
        let ix = i32(ox * S + kx) - i32(PAD);
        let xv = select(0.0, X[xrow + u32(clamp(ix, 0, i32(W) - 1))], okY && ix >= 0 && ix < i32(W));
        let o = oy * OW + ox;
        ${CH.map((j) => `acc${j} = fma(GY[(n * Cout + c${j}) * OH * OW + o], xv, acc${j});`).join("\n        ")}
      }
    }
  }
  if (!valid) { return; }
  let ob = split * Cout * per;
  ${CH.map((j) => `if (co0 + ${j}u < coEnd) { DW[ob + (co0 + ${j}u) * per + p] = acc${j}; }`).join("\n  ")}
}`;
}
