// What the wasm backend's convolution drivers share (conv.ts, the direct kernels, and
// conv_winograd.ts): items run in stages, as whole jobs or as phases, and the results copied out of
// their blocks with the epilogue (a forward's bias and activation, or an input gradient's
// activation derivative).
import type { ConvAct, DerivAct } from "../backend.ts";
import { type JobList, KI, type WasmRuntime } from "./runtime.ts";

/**
 * What a copy out applies: a forward's bias (its address, Cout floats) and activation (copy.ts
 * epilogueFn), or an input gradient's activation derivative at z (the address of the activation's
 * input, laid out as the result: derivEpilogueFn).
 */
export type Epilogue = { bias: number; act: ConvAct } | { z: number; act: DerivAct };

/**
 * Runs the work of the (image, group) items [i0, i1), each in stages (fill, products, copy out,
 * ...: `stage(jl, i, k)` writes item i's tasks of stage k): with `whole` (a few items for every
 * thread), each item's stages as one job that one thread runs in order, so its blocks stay in
 * that core's caches (three phases, with blocks claimed by either thread in each, ran the Glows'
 * 4-channel convolutions no faster on two threads than on one); else each stage as one phase
 * over all items, for few items whose products the caller has split finer. The tasks go into
 * the runtime's job list: nothing is allocated per item or task.
 */
export function runStaged(rt: WasmRuntime, i0: number, i1: number, stage: (jl: JobList, i: number, k: number) => void, whole: boolean, work: number, labels: string[]): void {
  if (whole) {
    const jl = rt.list();
    for (let i = i0; i < i1; i++) {
      for (let k = 0; k < labels.length; k++) stage(jl, i, k);
      jl.endJob();
    }
    return rt.run(jl, work, "conv gemm");
  }
  for (let k = 0; k < labels.length; k++) {
    const jl = rt.list(true);
    for (let i = i0; i < i1; i++) stage(jl, i, k);
    if (jl.tasks) rt.run(jl, work, labels[k]);
  }
}

/**
 * The results of a product whose copy out applies `ep` (the forward's bias and activation, or an
 * input gradient's activation derivative): [N][rows][H][W] floats, and with SiLU's forward a
 * second result y (ReLU's ep_relu writes its y as the one result).
 */
export interface Results {
  oo: number; yo: number; epFn: number; ep?: Epilogue; rows: number; H: number; W: number;
  land: () => [Float32Array, Float32Array | null];
}
export function results(m: WasmRuntime["mem"], N: number, rows: number, H: number, W: number, ep?: Epilogue): Results {
  const out = m.out(N * rows * H * W), oo = m.dst(out);
  const y = ep && "bias" in ep && ep.act === "silu" ? m.out(N * rows * H * W) : null, yo = y ? m.dst(y) : 0;
  const epFn = !ep ? 0 : "bias" in ep ? KI[`ep_${ep.act}`] : KI[`ed_${ep.act}`];
  return { oo, yo, epFn, ep, rows, H, W, land: () => [m.land(out, oo), y && m.land(y, yo)] };
}

/**
 * The copy out of item ng (image n, group g: rows channels) from its result block cc (channel c's
 * H rows at cc + c chan, `pitch` bytes apart), with the epilogue: group g's bias and the
 * activation, or the derivative at z's item ng; plain copies without one.
 */
export function copyOut(jl: JobList, r: Results, cc: number, chan: number, pitch: number, ng: number, g: number): void {
  const { oo, yo, epFn, ep, rows, H, W } = r, at = ng * rows * H * W * 4;
  if (ep && "bias" in ep) jl.task(epFn, cc, chan, pitch, oo + at, H * W * 4, W * 4, rows, H, W, ep.bias + g * rows * 4, yo + at);
  else if (ep) jl.task(epFn, cc, chan, pitch, oo + at, H * W * 4, W * 4, rows, H, W, ep.z + at);
  else jl.task(KI.copy3d, cc, chan, pitch, 4, oo + at, H * W * 4, W * 4, 4, rows, H, W);
}
