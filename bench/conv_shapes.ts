// conv2d kernels on the Glow's own layer shapes, forward / input-grad / weight-grad, per variant:
// batch 64 as in training, and 64 channel groups of one image as in the per-example OOD pass.
//   deno run -A bench/conv_shapes.ts [--variants uniform16,gemm] [--repeats 5]
import "../src/cli/errors.ts";
import { choices, int, parseOptions } from "../src/io/options.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import { selectBackend } from "../src/kernels/select.ts";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import type { GpuStorage } from "../src/kernels/webgpu/runtime.ts";
import { CONV_VARIANTS } from "../shaders/conv.wgsl.ts";

const a = parseOptions("conv_shapes", { variants: choices(CONV_VARIANTS).default(["uniform16", "gemm"]), repeats: int({ min: 1, max: 1000 }).default(5) });
const be = await selectBackend("webgpu") as WebGPUBackend;
const rt = be.rt, R = a.repeats;
const variants = a.variants;

function params(N: number, Cin: number, H: number, Cout: number, k: number, groups = 1): ConvParams {
  const pad = (k - 1) >> 1;
  return { N, Cin, H, W: H, Cout, KH: k, KW: k, stride: 1, pad, groups, OH: H, OW: H };
}

/** Mean ms of R launches, with one readback at the end (after two warm-up launches). */
async function time(f: () => GpuStorage): Promise<number> {
  for (let i = 0; i < 2; i++) {
    const o = f();
    await rt.read(o, 1);
    rt.free(o);
  }
  const t = performance.now();
  let o = f();
  for (let i = 1; i < R; i++) {
    rt.free(o);
    o = f();
  }
  await rt.read(o, 1);
  rt.free(o);
  return (performance.now() - t) / R;
}

console.log(`${rt.description}; ms per launch (forward / input-grad / weight-grad), mean of ${R}`);
for (const [Cin, H, Cout, k] of [[2, 14, 32, 3], [32, 14, 32, 1], [32, 14, 4, 3], [4, 7, 32, 3], [32, 7, 8, 3]]) {
  for (const [label, p] of [["train", params(64, Cin, H, Cout, k)], ["per-group", params(1, 64 * Cin, H, 64 * Cout, k, 64)]] as const) {
    const x = rt.alloc(p.N * p.Cin * p.H * p.W), w = rt.alloc((p.Cout * p.Cin / p.groups) * p.KH * p.KW);
    const gy = rt.alloc(p.N * p.Cout * p.OH * p.OW);
    const mflop = (2 * p.N * p.Cout * (p.Cin / p.groups) * p.KH * p.KW * p.OH * p.OW) / 1e6;
    const row = [`${label} ${Cin}->${Cout} ${H}x${H} k${k}`.padEnd(32), `${mflop.toFixed(0)} MFLOP`.padEnd(10)];
    for (const v of variants) {
      be.variants.conv = v;
      const f = await time(() => be.conv2d(x, w, p)), i = await time(() => be.conv2dInputGrad(gy, w, p));
      const g = await time(() => be.conv2dWeightGrad(x, gy, p));
      row.push(`${v}: ${f.toFixed(1)}/${i.toFixed(1)}/${g.toFixed(1)}`);
    }
    console.log(row.join("  "));
    [x, w, gy].forEach((s) => rt.free(s));
  }
}
Deno.exit(0);
