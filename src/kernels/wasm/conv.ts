// The wasm backend's convolutions: the input padded and split into stride phases (one block per
// image and group), read in place by the product kernels through a table of tap offsets; the
// gradients as products of the same kind (the input gradient as a correlation with the flipped
// filters, one stride phase at a time when strided; the weight gradient summed over images); the
// stride-1 3x3 ones with enough channels by Winograd (conv_winograd.ts).
import type { ConvAct, ConvParams, Data, DerivAct } from "../backend.ts";
import { cut, type JobList, KI, type TableBlock, type WasmRuntime } from "./runtime.ts";
import { DOT_COLS, DOT_ROWS, type DirectEp } from "./gemm.ts";
import { copyOut, type Epilogue, results, runStaged } from "./conv_out.ts";
import { winograd, winogradFits } from "./conv_winograd.ts";

interface PhaseLayout {
  cg: number; Hph: number; Wph: number; Q: number; P: number; tab: Int32Array; cpan: number; XB: number;
  /** Unpadded stride 1: the input is its own phase block (no copy), blocks [n][g] of cg*H*W. */
  inPlace: boolean;
}

/**
 * Layout of one (image, group) input block: [s*s phases][cg][Hph][Wph], and the offset table (its
 * length a multiple of MR, for the weight gradient's rows); column panels NR wide.
 */
function phaseLayout(p: ConvParams, allowInPlace: boolean, MR: number, NR: number): PhaseLayout {
  const { Cin, H, W, KH, KW, stride: s, pad, groups, OH } = p;
  const cg = Cin / groups;
  // Stride 1 with 0 < pad < KW: rows of W + pad, the pad zeros after a row serving as the left
  // border of the next (a tap left of column 0 wraps into them), so each output row computes pad
  // fewer discarded columns (7x7 rows: 8 instead of 9, 11% less work).
  const shared = s === 1 && pad > 0 && pad <= KW - 1;
  const Hph = Math.ceil((H + 2 * pad) / s), Wph = shared ? W + pad : Math.ceil((W + 2 * pad) / s);
  const Q = cg * KH * KW, P = OH * Wph;
  const tab = new Int32Array(Math.ceil(Q / MR) * MR); // rows past Q read offset 0 (discarded)
  let maxTab = 0;
  for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
    const e = (((ky % s) * s + (kx % s)) * cg + ci) * Hph * Wph + Math.floor(ky / s) * Wph + Math.floor(kx / s);
    tab[(ci * KH + ky) * KW + kx] = e * 4;
    maxTab = Math.max(maxTab, e);
  }
  const cpan = Math.ceil(P / NR);
  // In place, the kernels read past the last block by less than KW - 1 + NR floats (the last row's
  // discarded columns and its panel's tail): within the 64 bytes of slack storages keep for 8
  // columns and KW <= 9; wider panels take the copy.
  const inPlace = allowInPlace && pad === 0 && s === 1 && (KW - 1 + NR) * 4 <= 64;
  const XB = inPlace ? cg * H * W : Math.ceil(Math.max(s * s * cg * Hph * Wph, maxTab + cpan * NR) / 16) * 16 + 16;
  return { cg, Hph, Wph, Q, P, tab, cpan, XB, inPlace };
}

/**
 * Tasks writing x's phase block (n, g) = ng at blk (XB floats): every float written once
 * (copypad: the box of input rows and columns, zeros around it), the block's tail zeroed.
 */
function phaseTasks(xo: number, p: ConvParams, L: PhaseLayout, ng: number, blk: number, jl: JobList): void {
  const { Cin, H, W, stride: s, pad, groups } = p;
  const { cg, Hph, Wph, XB } = L;
  const used = s * s * cg * Hph * Wph;
  const n = Math.floor(ng / groups), g = ng % groups;
  for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) {
    const y0 = (((a - pad) % s) + s) % s, x0 = (((b - pad) % s) + s) % s;
    const rows = y0 < H ? Math.ceil((H - y0) / s) : 0, cols = x0 < W ? Math.ceil((W - x0) / s) : 0;
    const t0 = (y0 + pad - a) / s, u0 = (x0 + pad - b) / s;
    jl.task(KI.copypad, xo + (((n * Cin + g * cg) * H + y0) * W + x0) * 4, H * W * 4, s * W * 4, s * 4,
      blk + (a * s + b) * cg * Hph * Wph * 4, Hph * Wph * 4, cg, Hph, Wph, t0, rows, u0, cols);
  }
  jl.task(KI.fill32, blk + used * 4, XB - used, 0);
}

/**
 * Bytes of B blocks and result blocks a chunk of (image, group) pairs of the forward or input
 * gradient holds where the pairs' stages run as phases (too few pairs for whole jobs): each
 * chunk is filled, multiplied and copied out before the next, so its blocks stay in the cores' L2
 * (the U-Net's 28x28 convolutions at batch 32 wrote 3.5 MB of phase blocks and 1.9 MB of results
 * before reading them back). Where each pair's stages are one job (runStaged's whole jobs), the
 * job's blocks stay in its thread's caches whatever the chunk holds, so all pairs are one chunk
 * up to WHOLE_BYTES of blocks: one phase, where chunks of 1 MB made three with a thread waiting
 * at each one's end (the Glow step 1.04x, its logit Glow's 1.05x, interleaved).
 */
const CHUNK_BYTES = 1 << 20, WHOLE_BYTES = 16 << 20;

/**
 * The products of the forward and the stride-1 input gradient, and their results copied out:
 * for each image n and group g, the packed filters of g (A panels at `a`, AB floats a group)
 * times the (n, g) block (BB floats a block, read through the tap table `tab`, K taps) into a
 * result block of rpan * MR rows by cpan * NR columns, then its first `rows` rows, each H rows
 * of W columns at a row pitch of `pitch`, copied into out [N][groups * rows][H][W]. The blocks
 * are at `b` (in place), or written chunk by chunk by `fill` (the tasks writing block ng at
 * blk); `pre` (the filters' packing, one task per group) runs before the first chunk. With an epilogue `ep`
 * (the forward's bias and activation), the copy out adds row r's bias of group g (bias[g * rows +
 * r]) and, with an activation, writes its values to a second result: [out, y], else [out, null].
 * Where the result rows are the output's (pitch = W: a 1x1 convolution, and any other whose result
 * columns are the output's positions, e.g. 2x2 with stride 2: directKernel), the products store
 * into the output with the epilogue themselves, and nothing is copied out.
 */
function productsOut(rt: WasmRuntime, R: TableBlock, o: {
  N: number; groups: number; rows: number; H: number; W: number; pitch: number; pre: (jl: JobList, g: number) => void;
  a: number; AB: number; b: number | null; fill: (jl: JobList, ng: number, blk: number) => void; BB: number;
  tab: Int32Array; K: number; rpan: number; cpan: number; work: number; ep?: Epilogue;
}): [Float32Array, Float32Array | null] {
  const m = rt.mem, { N, groups, rows, H, W, pitch, a, AB, BB, K, rpan, cpan, work } = o;
  const { MR, NR, pt } = R, direct = directKernel(rt, R, o), ldc = cpan * NR, CB = direct === null ? rpan * MR * ldc : 0;
  const total = N * groups;
  // chunks of nearly equal size (64 images at most 30 a chunk: 22, 22, 20, not 30, 30, 4, whose
  // last chunk had too few images for whole jobs and ran in three phases)
  const per = 4 * ((o.b === null ? BB : 0) + CB);
  const most = total >= rt.threads * 4 && total * per <= WHOLE_BYTES ? total : Math.min(total, Math.max(rt.threads * 2, Math.floor(CHUNK_BYTES / per)));
  const chunk = Math.ceil(total / Math.ceil(total / most));
  const tab = m.table(o.tab);
  const bb = o.b ?? m.tmp(chunk * BB);
  const c = CB ? m.tmp(chunk * CB) : 0;
  const res = results(m, total, rows, H, W, o.ep);
  const ep = o.ep, bias = ep && "bias" in ep ? ep.bias : 0, zd = ep && "z" in ep ? ep.z - res.oo : 0;
  {
    const jl = rt.list(true);
    for (let g = 0; g < groups; g++) o.pre(jl, g);
    if (jl.tasks) rt.run(jl, work * Math.min(chunk, total) / total, "conv prep");
  }
  for (let ng0 = 0; ng0 < total; ng0 += chunk) {
    const ng1 = Math.min(total, ng0 + chunk), share = work * (ng1 - ng0) / total;
    // with fewer images than a few for every thread, each image's columns are split over them
    const whole = ng1 - ng0 >= rt.threads * 4, parts = rt.parts(cpan, whole ? 1 : 3);
    runStaged(rt, ng0, ng1, (jl, ng, k) => {
      const g = ng % groups, blk = o.b === null ? bb + (ng - ng0) * BB * 4 : bb + ng * BB * 4, cc = c + (ng - ng0) * CB * 4;
      if (k === 0) {
        if (o.b === null) o.fill(jl, ng, blk);
      } else if (k === 1) {
        for (let i = 0; i < parts; i++) {
          const j0 = cut(i, cpan, parts), j1 = cut(i + 1, cpan, parts);
          if (j1 <= j0) continue;
          if (direct === null) jl.task(pt, a + g * AB * 4, 0, blk, tab, cc, ldc, K, 0, rpan, j0, j1, 0, 1, 0, 0);
          else jl.task(direct, a + g * AB * 4, 0, blk, tab, res.oo + ng * rows * H * W * 4, H * W, K, 0, rpan, j0, j1, rows, H * W, bias + g * rows * 4, zd);
        }
      } else if (direct === null) copyOut(jl, res, cc, ldc * 4, pitch * 4, ng, g);
    }, whole, share, ["conv prep", "conv gemm", "conv out"]);
  }
  return res.land();
}

/**
 * The direct product kernel (gemm.ts DIRECT_EPS) for productsOut's product where its result rows
 * are the output's (pitch = W: a 1x1 convolution, or another whose result columns are the output's
 * positions, as a 2x2 one with stride 2), its reduction one block (K <= KC) and its
 * epilogue one the kernel applies (none, a bias with no activation or ReLU, ReLU's derivative),
 * with a 4- or 6-row block: the tiles go straight into the output, with no result blocks to copy
 * out (0.06 of the 0.48 ms of the Glow's [64,32,14,14]->32 forward with bias and ReLU). Else null.
 */
function directKernel(rt: WasmRuntime, R: TableBlock, o: { pitch: number; W: number; K: number; ep?: Epilogue }): number | null {
  if (o.pitch !== o.W || o.K > rt.shape.KC || (R.MR !== 4 && R.MR !== 6)) return null;
  const ep = o.ep, e: DirectEp | null = !ep ? "none" : "bias" in ep ? (ep.act === "none" ? "bias" : ep.act === "relu" ? "relu" : null) : ep.act === "relu" ? "drelu" : null;
  if (e === null) return null;
  return KI[R.MR === 6 ? `gemm_ptd_${e}` as const : `gemm_pt4d_${e}` as const];
}

export function conv2d(rt: WasmRuntime, x: Data, w: Data, p: ConvParams): Float32Array {
  return forward(rt, x, w, p)[0];
}

/**
 * conv2d with b [Cout] added per output channel and an activation, in the copy out: pre =
 * conv2d(x, w) + b and y = act(pre) (null for "none"), each value bin_add's and un_<act>'s bit for
 * bit, without the two passes over the result the composed ops make. For ReLU only y (pre null):
 * its derivative is read from y, so pre is neither written nor kept.
 */
export function conv2dBias(rt: WasmRuntime, x: Data, w: Data, b: Data, p: ConvParams, act: ConvAct): { pre: Float32Array | null; y: Float32Array | null } {
  const [out, y] = forward(rt, x, w, p, b, act);
  return act === "relu" ? { pre: null, y: out } : { pre: out, y };
}

function forward(rt: WasmRuntime, x: Data, w: Data, p: ConvParams, b?: Data, act: ConvAct = "none"): [Float32Array, Float32Array | null] {
  const m = rt.mem;
  const { N, Cout, groups, OH, OW } = p;
  const og = Cout / groups;
  const R = rt.tableRows(og), MR = R.MR;
  try {
    const xo = m.addr(x), wo = m.addr(w), ep = b === undefined ? undefined : { bias: m.addr(b), act };
    if (rt.winograd && winogradFits(p)) {
      const { Cin } = p;
      return winograd(rt, { N, K: Cin, rows: Cout, H: OH, W: OW, src: xo, filter: { w: wo, sRow: Cin * 36, sK: 36, flip: 0 }, ep, work: N * Cout * Cin * 9 * OH * OW });
    }
    const L = phaseLayout(p, true, MR, R.NR);
    const { Q, Wph, cpan, XB } = L;
    const rpan = Math.ceil(og / MR), WPB = rpan * Q * MR;
    const wp = m.tmp(groups * WPB);
    const work = N * Cout * Q * OH * OW;
    return productsOut(rt, R, {
      N, groups, rows: og, H: OH, W: OW, pitch: Wph, a: wp, AB: WPB, b: L.inPlace ? xo : null, BB: XB,
      pre: (jl, g) => jl.task(R.packA, wo + g * og * Q * 4, 4, Q * 4, Q, og, 0, rpan, wp + g * WPB * 4),
      fill: (jl, ng, blk) => phaseTasks(xo, p, L, ng, blk, jl), tab: L.tab, K: Q, rpan, cpan, work, ep,
    });
  } finally {
    m.endOp();
  }
}

export function conv2dInputGrad(rt: WasmRuntime, gy: Data, w: Data, p: ConvParams): Float32Array {
  return inputGrad(rt, gy, w, p, null)!;
}

/**
 * The input gradient times an activation's derivative at z (the activation's input, shaped as the
 * convolution's input), in the copy out: reluMask(dx, z) or dx * siluGrad(z) bit for bit; null
 * for a strided convolution (its phases copy out otherwise: the caller composes).
 */
export function conv2dInputGradTimes(rt: WasmRuntime, gy: Data, w: Data, p: ConvParams, act: DerivAct, z: Data): Float32Array | null {
  return inputGrad(rt, gy, w, p, { z, act });
}

function inputGrad(rt: WasmRuntime, gy: Data, w: Data, p: ConvParams, times: { z: Data; act: DerivAct } | null): Float32Array | null {
  const m = rt.mem;
  if (p.stride > 1) return times ? null : inputGradPhases(rt, gy, w, p);
  const { N, Cin, H, W, Cout, KH, KW, stride: s, pad, groups, OH, OW } = p;
  const cg = Cin / groups, og = Cout / groups;
  const R = rt.tableRows(cg), { MR, NR } = R;
  try {
    if (rt.winograd && winogradFits(p)) {
      const ep = times ? { z: m.addr(times.z), act: times.act } : undefined;
      return winograd(rt, { N, K: Cout, rows: Cin, H, W, src: m.addr(gy), filter: { w: m.addr(w), sRow: 36, sK: Cin * 36, flip: 1 }, ep, work: N * Cin * Cout * 9 * H * W })[0];
    }
    // gy into zeroed blocks [og][Hg][Wg] with a border of B = k-1-pad (the taps that reach past
    // it); then a correlation with the flipped, transposed filters gives the input's gradient.
    // Rows are OW + Bw wide: the Bw zeros after a row are the left border of the next (a tap
    // left of column 0 wraps into them), so each input row computes Bw discarded columns (7x7
    // rows: 8 instead of the 11 of a block with both borders). pad > k-1 keeps both borders.
    const Bh = KH - 1 - pad, Bw = KW - 1 - pad, shared = Bh >= 0 && Bw >= 0;
    // A 1x1 unpadded filter needs no border: the output gradient is read in place (its last
    // panel reads past the block by less than NR floats: within the storages' 64 bytes of slack).
    const inPlace = KH === 1 && KW === 1 && s === 1 && pad === 0 && NR * 4 <= 64;
    const Hg = inPlace ? H : shared ? OH + 2 * Bh + 1 : H + 2 * pad + KH - 1, Wg = shared ? OW + Bw : W + 2 * pad + KW - 1;
    const at0 = shared ? Bh * Wg + Bw : (KH - 1) * Wg + KW - 1, tap0 = shared ? 0 : pad; // gy's first element; the taps' shift
    const Qg = og * KH * KW, P = H * Wg, cpan = Math.ceil(P / NR), rpan = Math.ceil(cg / MR);
    const tabA = new Int32Array(Qg);
    let maxTab = 0;
    for (let co = 0; co < og; co++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const e = co * Hg * Wg + (ky + tap0) * Wg + kx + tap0;
      tabA[(co * KH + ky) * KW + kx] = e * 4;
      maxTab = Math.max(maxTab, e);
    }
    const GB = inPlace ? og * H * W : Math.ceil(Math.max(og * Hg * Wg, maxTab + cpan * NR) / 16) * 16 + 16;
    // Flipped filters W'[g][ci][co][KH-1-ky][KW-1-kx] = W[g*og + co][ci][ky][kx]: flipping both
    // axes reverses the flattened (ky, kx) order, so one strided copy per group (in wasm: for
    // per-group weights this is half a million elements).
    const gyo = m.addr(gy), wo = m.addr(w), KK = KH * KW;
    const wfo = m.tmp(groups * cg * Qg);
    const flip = rt.list(true);
    for (let g = 0; g < groups; g++) {
      flip.task(KI.copy3d, wo + (g * og * cg * KK + KK - 1) * 4, KK * 4, cg * KK * 4, -4, wfo + g * cg * og * KK * 4, og * KK * 4, KK * 4, 4, cg, og, KK);
    }
    rt.run(flip, groups * cg * Qg * 64, "conv prep");
    const WPB = rpan * Qg * MR;
    // gy into its zero-bordered blocks, every float written once (copypad), the blocks' tails zeroed
    const fill = (jl: JobList, ng: number, blk: number) => {
      const n = Math.floor(ng / groups), g = ng % groups;
      jl.task(KI.copypad, gyo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4, blk, Hg * Wg * 4, og, Hg, Wg, Math.floor(at0 / Wg), OH, at0 % Wg, OW);
      jl.task(KI.fill32, blk + og * Hg * Wg * 4, GB - og * Hg * Wg, 0);
    };
    const wp = m.tmp(groups * WPB);
    const pre = (jl: JobList, g: number) => jl.task(R.packA, wfo + g * cg * Qg * 4, 4, Qg * 4, Qg, cg, 0, rpan, wp + g * WPB * 4);
    const work = N * Cin * Qg * H * W;
    const ep = times ? { z: m.addr(times.z), act: times.act } : undefined;
    return productsOut(rt, R, { N, groups, rows: cg, H, W, pitch: Wg, pre, a: wp, AB: WPB, b: inPlace ? gyo : null, fill, BB: GB, tab: tabA, K: Qg, rpan, cpan, work, ep })[0];
  } finally {
    m.endOp();
  }
}

/**
 * The input gradient of a strided convolution, one stride phase of the (padded) input at a time:
 * input rows Y = a + s t receive only the filter rows ky = a + s j, from output rows t - j, so
 * each phase is a stride-1 correlation of the zero-bordered output gradient with its sub-filter
 * (no multiplications by the zeros a spread gradient would hold), written back with stride s.
 */
function inputGradPhases(rt: WasmRuntime, gy: Data, w: Data, p: ConvParams): Float32Array {
  const m = rt.mem;
  const { N, Cin, H, W, Cout, KH, KW, stride: s, pad, groups, OH, OW } = p;
  const cg = Cin / groups, og = Cout / groups;
  const R = rt.tableRows(cg), { MR, NR } = R, rpan = Math.ceil(cg / MR);
  const P0 = Math.ceil(KH / s) - 1, Q0 = Math.ceil(KW / s) - 1; // border: the most taps a phase has, less one
  const Tmax = Math.ceil((H + 2 * pad) / s), Umax = Math.ceil((W + 2 * pad) / s);
  // Blocks of rows [Q0 zeros][OW of gy][zeros], Umax wide (always at least OW + Q0: floor((L - KW) / s)
  // + ceil(KW / s) <= ceil(L / s)): a tap left of column 0 reads the row's own border, one right of
  // the data the row's tail or the next row's border, and every computed column stays in its row
  // (the U-Net's and VAE's 3x3 stride 2: 8 columns where 10 were computed).
  const Hg = Math.max(OH, Tmax) + P0 + 1, Wg = Umax;
  const out = m.out(N * Cin * H * W);
  try {
    const gyo = m.addr(gy), oo = m.dst(out);
    const P = Tmax * Wg, cpan = Math.ceil(P / NR), ldc = cpan * NR, CB = rpan * MR * ldc;
    const GB = Math.ceil((og * Hg * Wg + 16) / 16) * 16 + NR * 2;
    type Phase = { a: number; b: number; Ja: number; Lb: number; K: number; wfo: number; wp: number; WPB: number; tab: number };
    const phases: Phase[] = [];
    const wo = m.addr(w), KK = KH * KW;
    for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) {
      const Ja = Math.ceil((KH - a) / s), Lb = Math.ceil((KW - b) / s);
      if (Ja <= 0 || Lb <= 0) continue;
      const K = og * Ja * Lb;
      // sub-filters W_ab[g][ci][(co, j, l)] = W[g*og + co][ci][a + s j][b + s l] (strided copies
      // in wasm, one per output channel), and their offsets into G
      const tab = new Int32Array(K);
      for (let co = 0; co < og; co++) for (let j = 0; j < Ja; j++) for (let l = 0; l < Lb; l++) {
        tab[(co * Ja + j) * Lb + l] = (co * Hg * Wg + (P0 - j) * Wg + (Q0 - l)) * 4;
      }
      const wfo = m.tmp(groups * cg * K), WPB = rpan * K * MR, wp = m.tmp(groups * WPB);
      phases.push({ a, b, Ja, Lb, K, wfo, wp, WPB, tab: m.table(tab) });
    }
    // input pixels of a phase with no taps (a filter narrower than the stride) get no gradient;
    // every other pixel is written by its phase's copy
    if (phases.length < s * s) m.zero(oo, N * Cin * H * W);
    const flip = rt.list(true);
    for (const { a, b, Ja, Lb, K, wfo } of phases) {
      for (let g = 0; g < groups; g++) for (let co = 0; co < og; co++) {
        flip.task(KI.copy3d, wo + ((g * og + co) * cg * KK + a * KW + b) * 4, KK * 4, s * KW * 4, s * 4,
          wfo + (g * cg * K + co * Ja * Lb) * 4, K * 4, Lb * 4, 4, cg, Ja, Lb);
      }
    }
    rt.run(flip, groups * og * cg * KK * 64, "conv prep");
    const work = N * Cin * og * Math.ceil(KH / s) * Math.ceil(KW / s) * H * W;
    const pack = rt.list(true);
    for (const { K, wfo, wp, WPB } of phases) {
      for (let g = 0; g < groups; g++) pack.task(R.packA, wfo + g * cg * K * 4, 4, K * 4, K, cg, 0, rpan, wp + g * WPB * 4);
    }
    rt.run(pack, work, "conv prep");
    const gb = m.tmp(N * groups * GB), c = m.tmp(N * groups * phases.length * CB);
    // each (image, group): its block filled, then each phase's product and copy out
    const whole = N * groups >= rt.threads * 4, parts = rt.parts(cpan, whole ? 1 : 3);
    runStaged(rt, 0, N * groups, (jl, ng, stage) => {
      const n = Math.floor(ng / groups), g = ng % groups, blk = gb + ng * GB * 4;
      if (stage === 0) {
        jl.task(KI.copypad, gyo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4, blk, Hg * Wg * 4, og, Hg, Wg, P0, OH, Q0, OW);
        jl.task(KI.fill32, blk + og * Hg * Wg * 4, GB - og * Hg * Wg, 0);
        return;
      }
      for (let k = 0; k < phases.length; k++) {
        const ph = phases[k], cc = c + (ng * phases.length + k) * CB * 4;
        if (stage === 1) {
          for (let i = 0; i < parts; i++) {
            const j0 = cut(i, cpan, parts), j1 = cut(i + 1, cpan, parts);
            if (j1 > j0) jl.task(R.pt, ph.wp + g * ph.WPB * 4, 0, blk, ph.tab, cc, ldc, ph.K, 0, rpan, j0, j1, 0, 1, 0, 0);
          }
          continue;
        }
        // input rows y = a + s t - pad in [0, H): t in [t0, t1]; columns likewise
        const t0 = Math.max(0, Math.ceil((pad - ph.a) / s)), t1 = Math.floor((H - 1 + pad - ph.a) / s);
        const u0 = Math.max(0, Math.ceil((pad - ph.b) / s)), u1 = Math.floor((W - 1 + pad - ph.b) / s);
        if (t1 >= t0 && u1 >= u0) {
          const y0 = ph.a + s * t0 - pad, x0 = ph.b + s * u0 - pad;
          jl.task(KI.copy3d, cc + (t0 * Wg + u0) * 4, ldc * 4, Wg * 4, 4, oo + (((n * Cin + g * cg) * H + y0) * W + x0) * 4, H * W * 4, s * W * 4, s * 4, cg, t1 - t0 + 1, u1 - u0 + 1);
        }
      }
    }, whole, work, ["conv prep", "conv gemm", "conv out"]);
    return m.land(out, oo);
  } finally {
    m.endOp();
  }
}

/**
 * The jobs of a weight gradient per group: each sums its images' products into a C of its own,
 * and the jobs' Cs are summed in order. About 8 images a job, at most 8 jobs, and their Cs at most
 * 64 MB together (a wide layer at a large batch); by the shapes alone, so the result does not
 * depend on the number of threads. Per-group passes (one image per group) take one job per group.
 */
function weightGradParts(N: number, groups: number, CB: number): number {
  return Math.max(1, Math.min(Math.ceil(N / 8), 8, Math.floor((1 << 24) / (groups * CB))));
}

/**
 * The weight gradient. The product kernel multiplies the input at the phase grid's discarded
 * positions (past a row's outputs: they read the row's last and the next row's first columns) by
 * the zero gradient there, so an Inf or NaN input there makes NaN of a weight the reference keeps
 * finite (0 x Inf); the dot kernel masks those lanes. So where a product's result holds a
 * non-finite value, it is computed again by dot products: per group where each group is one image
 * (a per-group pass: the other groups' values stay as they were, each image's as alone), else
 * whole. Finite results, the only ones finite inputs give, are never checked again.
 */
export function conv2dWeightGrad(rt: WasmRuntime, x: Data, gy: Data, p: ConvParams): Float32Array {
  const [dw, product] = weightGrad(rt, x, gy, p, false);
  if (!product || rt.allFinite(dw, 0, dw.length)) return dw;
  const { N, Cin, H, W, Cout, groups, OH, OW } = p, cg = Cin / groups, og = Cout / groups, Q = cg * p.KH * p.KW;
  if (groups === 1 || N > 1) {
    rt.mem.release(dw);
    return weightGrad(rt, x, gy, p, true)[0];
  }
  const one: ConvParams = { ...p, Cin: cg, Cout: og, groups: 1 };
  for (let g = 0; g < groups; g++) {
    if (rt.allFinite(dw, g * og * Q, (g + 1) * og * Q)) continue;
    const [d] = weightGrad(rt, x.subarray(g * cg * H * W, (g + 1) * cg * H * W), gy.subarray(g * og * OH * OW, (g + 1) * og * OH * OW), one, true);
    dw.set(d, g * og * Q);
    rt.mem.release(d);
  }
  return dw;
}

/** The weight gradient by the dot kernel or a product kernel (forceDot: the dot kernel), and whether a product kernel ran. */
function weightGrad(rt: WasmRuntime, x: Data, gy: Data, p: ConvParams, forceDot: boolean): [Float32Array, boolean] {
  const m = rt.mem;
  const { N, Cout, groups, OH, OW } = p;
  const og = Cout / groups;
  // dot products along the positions (gemm.ts dotFn), 2 taps by 4 channels a block, reading the
  // output gradient's rows as they are (where the channels per group are whole blocks of 4; else
  // a copy with zero channels up to the next block of 4): for at most 4 output channels per group, and for few taps
  // over many positions (a filter wider than 1x1 with at most 18 taps a group, e.g. 2 input
  // channels of a 3x3, over 128 positions or more of the phase grid, its padded columns counted:
  // the Glows' first coupling convolutions, 1.13-1.16x, the VAE's first, 1.41x, measured
  // interleaved; 1x1 filters measured 0.62-0.98x, 7x7 grids 0.90-1.09x), where packing the
  // output gradient would cost about as much as the product; else a product kernel (rows of taps
  // read by table) over the packed output gradient
  const Qg = p.Cin / groups * p.KH * p.KW;
  const Ldot = phaseLayout(p, true, DOT_ROWS, DOT_COLS);
  const dot = forceDot || og <= DOT_COLS || (p.KH * p.KW > 1 && Qg <= 18 && Ldot.P >= 128);
  const R = dot ? null : rt.rows(Qg);
  const MR = R?.MR ?? DOT_ROWS, NR = R?.NR ?? DOT_COLS;
  try {
    // dW^T[q][co] = sum over images and output positions of X[tab[q] + p'] gy[co][p], p' the
    // position's place on the phase grid (the product kernel: gy' on that grid, zero in the
    // columns past OW; the dot kernel: row by row, the lanes past OW masked).
    const L = R ? phaseLayout(p, true, MR, NR) : Ldot;
    const { Q, Wph, P, XB } = L;
    const xo = m.addr(x), gyo = m.addr(gy);
    const qpan = Math.ceil(Q / MR), opan = Math.ceil(og / NR), ldc = opan * NR, CB = qpan * MR * ldc;
    // The dot kernel reads 4 channel rows of the output gradient as they are, where its channels
    // come in whole blocks of 4; else a copy of each (image, group) with zero channels up to a
    // block of 4 (GYB floats, a vector of slack past it). The product kernel reads it packed from
    // the phase grid's rows; where those are its rows already (Wph = OW, so the copy would change
    // nothing: any 1x1 filter, and wider ones whose phase rows are as wide as the output's), it is
    // packed from where it is, without a copy first.
    const gyAsIs = dot ? og % DOT_COLS === 0 : Wph === OW;
    const GYB = dot ? opan * DOT_COLS * OH * OW + 16 : og * P + 16, BPB = R ? opan * P * NR : 0;
    const xp = L.inPlace ? xo : m.tmp(N * groups * XB), gq = gyAsIs ? 0 : m.tmp(N * groups * GYB), bp = R ? m.tmp(N * groups * BPB) : 0;
    const tab = m.table(L.tab);
    const parts = weightGradParts(N, groups, CB), per = Math.ceil(N / parts);
    const c = m.tmp(groups * parts * CB);
    // one item per (group, part): its images' blocks filled (and packed), its products, and where
    // it is the group's only part, the copy out (its C then still in that core's cache)
    const whole = groups * parts >= rt.threads * 2;
    const out = m.out(Cout * Q), oo = m.dst(out);
    const sum = parts > 1 ? m.tmp(groups * CB) : c;
    // dW = C^T for each group (the sum of its parts' Cs when it has several)
    const copyOut = (jl: JobList, g: number) => jl.task(KI.copy3d, sum + g * CB * 4, 0, 4, ldc * 4, oo + g * og * Q * 4, 0, Q * 4, 4, 1, og, Q);
    const tileParts = whole ? 1 : rt.parts(qpan, 2);
    const work = N * Cout * Q * OH * OW;
    runStaged(rt, 0, groups * parts, (jl, item, stage) => {
      const g = Math.floor(item / parts), k = item % parts;
      const n0 = Math.min(N, k * per), n1 = Math.min(N, n0 + per);
      if (stage === 0 || stage === 1) {
        for (let n = n0; n < n1; n++) {
          const ng = n * groups + g, at = gyo + (n * Cout + g * og) * OH * OW * 4, blk = gyAsIs ? at : gq + ng * GYB * 4;
          if (stage === 1) {
            if (R) jl.task(KI.pack_b, blk, 4, P * 4, P, og, 0, opan, bp + ng * BPB * 4);
            continue;
          }
          if (!L.inPlace) phaseTasks(xo, p, L, ng, xp + ng * XB * 4, jl);
          if (gyAsIs) continue;
          if (dot) {
            jl.task(KI.copy3d, at, 0, 0, 4, blk, 0, 0, 4, 1, 1, og * OH * OW);
            jl.task(KI.fill32, blk + og * OH * OW * 4, GYB - og * OH * OW, 0);
          } else {
            jl.task(KI.copypad, at, OH * OW * 4, OW * 4, 4, blk, P * 4, og, OH, Wph, 0, OH, 0, OW);
            jl.task(KI.fill32, blk + og * P * 4, GYB - og * P, 0);
          }
        }
      } else if (stage === 2) {
        const at = n0 * groups + g, cc = c + (g * parts + k) * CB * 4;
        for (let i = 0; i < tileParts; i++) {
          const i0 = cut(i, qpan, tileParts), i1 = cut(i + 1, qpan, tileParts);
          if (i1 <= i0) continue;
          if (R) jl.task(R.tp, xp + at * XB * 4, tab, bp + at * BPB * 4, 0, cc, ldc, P, i0, i1, 0, opan, 0, n1 - n0, groups * XB * 4, groups * BPB * 4);
          else {
            for (let cb = 0; cb < opan; cb++) {
              const [gb, gImg] = gyAsIs ? [gyo + (n0 * Cout + g * og) * OH * OW * 4, Cout * OH * OW * 4] : [gq + at * GYB * 4, groups * GYB * 4];
              jl.task(KI.wgrad_dot, xp + at * XB * 4, tab, gb + cb * DOT_COLS * OH * OW * 4, OH * OW * 4, cc + cb * DOT_COLS * 4, ldc, OH, Wph * 4, OW * 4, OW, i0, i1, n1 - n0, groups * XB * 4, gImg);
            }
          }
        }
      } else if (parts === 1) copyOut(jl, g);
    }, whole, work, ["conv prep", "conv pack", "conv gemm", "conv out"]);
    if (parts > 1) {
      // per group: the parts' sums in order (f64), then the copy out
      const fin = rt.list();
      for (let g = 0; g < groups; g++) {
        fin.task(KI.red_sum, c + g * parts * CB * 4, sum + g * CB * 4, 1, parts, CB, CB);
        copyOut(fin, g);
        fin.endJob();
      }
      rt.run(fin, groups * (parts + 1) * CB, "conv out");
    }
    return [m.land(out, oo), R !== null];
  } finally {
    m.endOp();
  }
}
