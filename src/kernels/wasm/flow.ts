// The wasm backend's Glow flow ops (their kernels in coupling.ts): the affine coupling's
// elementwise part and ActNorm's per-channel affine, each way in one phase whose ranges of images
// or rows the threads share.
import type { Data } from "../backend.ts";
import { F32_BITS, type Job, KI, PARALLEL_EW, ranges, type WasmRuntime } from "./runtime.ts";

/**
 * An element's cost in adds, for PARALLEL_EW: the affine coupling's (sigmoid and softplus: 16x),
 * so that the Glow's couplings (25,088 elements at batch 64, 140 us alone) run on all threads.
 * ActNorm's affine each way is bound by memory, which two threads share (a product of two arrays:
 * 42 GB/s on one thread, 44-47 on two), so it counts as an add: the Glows' ([64,4,14,14], 50,176
 * floats) run on the caller, with no worker to wake (in a training step they took 54 and 121 us
 * a call on all threads, 2.5x and 2.2x their time alone).
 */
const COST_COUPLING = 16, COST_AFFINE = 1;

/** One phase over n items (images or rows) of `floats` floats each: a few item ranges per thread (job(i0, i1): a task, or tasks one thread runs in order). */
function phase(rt: WasmRuntime, n: number, floats: number, cost: number, job: (i0: number, i1: number) => Job): void {
  const work = n * floats * cost;
  rt.pool.run(ranges(n, rt.ewParts(work)).map(([i0, i1]) => job(i0, i1)), work >= PARALLEL_EW);
}

/** The coupling over n images of xb [n][half] and o [n][2 half]: [yb; ls] [n][2 half] (cpl_fwd). */
export function affineCoupling(rt: WasmRuntime, xb: Data, o: Data, n: number, half: number, offset: number): Data {
  const m = rt.mem, out = m.out(n * 2 * half);
  return rt.op(() => {
    const xo = m.addr(xb), oo = m.addr(o), yo = m.dst(out);
    phase(rt, n, half, COST_COUPLING, (i0, i1) => [KI.cpl_fwd, xo + i0 * half * 4, oo + i0 * 2 * half * 4, yo + i0 * 2 * half * 4, i1 - i0, half, F32_BITS(offset)]);
    return m.land(out, yo);
  });
}

/** Its backward from g [n][2 half]: dxb [n][half] and do [n][2 half] (cpl_bwd). */
export function affineCouplingGrad(rt: WasmRuntime, g: Data, xb: Data, o: Data, n: number, half: number, offset: number): { dxb: Data; do: Data } {
  const m = rt.mem, dxb = m.out(n * half), dout = m.out(n * 2 * half);
  return rt.op(() => {
    const go = m.addr(g), xo = m.addr(xb), oo = m.addr(o), dxo = m.dst(dxb), doo = m.dst(dout);
    phase(rt, n, half, COST_COUPLING, (i0, i1) => [KI.cpl_bwd, go + i0 * 2 * half * 4, xo + i0 * half * 4, oo + i0 * 2 * half * 4, dxo + i0 * half * 4, doo + i0 * 2 * half * 4, i1 - i0, half, F32_BITS(offset)]);
    return { dxb: m.land(dxb, dxo), do: m.land(dout, doo) };
  });
}

/** ActNorm's affine over x [N][C][HW]: (x + bias[c]) * scale[c] (ca_fwd), the rows shared among the threads. */
export function channelAffine(rt: WasmRuntime, x: Data, bias: Data, scale: Data, N: number, C: number, HW: number): Data {
  const m = rt.mem, out = m.out(N * C * HW);
  return rt.op(() => {
    const xo = m.addr(x), bo = m.addr(bias), so = m.addr(scale), yo = m.dst(out);
    phase(rt, N * C, HW, COST_AFFINE, (r0, r1) => [KI.ca_fwd, xo, bo, so, yo, r0, r1, C, HW]);
    return m.land(out, yo);
  });
}

/**
 * Its backward from g [N][C][HW]: dx = g * scale[c], t = g * (x + bias[c]) (ca_bwd), and per row
 * the sums of dx and of t ([N][C] each) by reduce's row-sum kernel (red_sum, so each row's sum is
 * reduce "sum"'s over [N * C, HW, 1]): for each range of rows, one job of the three, its rows
 * still in the thread's cache for the sums.
 */
export function channelAffineGrad(rt: WasmRuntime, g: Data, x: Data, bias: Data, scale: Data, N: number, C: number, HW: number): { dx: Data; sumDx: Data; sumT: Data } {
  const m = rt.mem, rows = N * C, dx = m.out(rows * HW), sumDx = m.out(rows), sumT = m.out(rows);
  return rt.op(() => {
    const go = m.addr(g), xo = m.addr(x), bo = m.addr(bias), so = m.addr(scale), dxo = m.dst(dx), to = m.tmp(rows * HW), sdo = m.dst(sumDx), sto = m.dst(sumT);
    phase(rt, rows, HW, COST_AFFINE, (r0, r1) => [
      [KI.ca_bwd, go, xo, bo, so, dxo, to, r0, r1, C, HW],
      [KI.red_sum, dxo + r0 * HW * 4, sdo + r0 * 4, r1 - r0, HW, 1, 1],
      [KI.red_sum, to + r0 * HW * 4, sto + r0 * 4, r1 - r0, HW, 1, 1],
    ]);
    return { dx: m.land(dx, dxo), sumDx: m.land(sumDx, sdo), sumT: m.land(sumT, sto) };
  });
}
