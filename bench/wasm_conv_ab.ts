// Two checkouts' wasm convolution kernels on the shipped models' shapes, alternating, each
// kernel's best process CPU time of 6 runs (after 2 warm-ups; each timed run after a 1 ms pause
// and an untimed run of the same side, so the other side's pool is asleep and its own awake):
// the A/B for kernel-level changes, where whole passes (bench/wasm_ab.ts) on this shared machine
// vary more than the change. With --clock wall, the best wall time instead (for how the threads
// share the work: process CPU time also counts a thread's polling).
//   deno run -A bench/wasm_conv_ab.ts --old <checkout> [--threads 1] [--clock cpu|wall]
import "../src/cli/errors.ts";
import { choice, int, parseOptions, text } from "../src/io/options.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import type { WasmBackend } from "../src/kernels/wasm/backend.ts";
import { oldCheckout } from "./old_checkout.ts";
import { clockMs } from "./op_timer.ts";
import { operandSizes } from "./products.ts";

const a = parseOptions("wasm_conv_ab", { old: text().required(), threads: int({ min: 1, max: 64 }).default(1), clock: choice(["cpu", "wall"] as const).default("cpu") });
const clock = clockMs(a.clock);
const roots = [oldCheckout("wasm_conv_ab", a.old, "src/kernels/wasm/backend.ts"), new URL("../", import.meta.url).pathname.replace(/\/$/, "")];
const bes: WasmBackend[] = await Promise.all(roots.map(async (r) => (await import(`${r}/src/kernels/wasm/backend.ts`)).createWasmBackend({ threads: a.threads })));
const P = (N: number, Cin: number, H: number, Cout: number, groups = 1, k = 3): ConvParams => ({ N, Cin, H, W: H, Cout, KH: k, KW: k, stride: 1, pad: k >> 1, groups, OH: H, OW: H });
// the U-Net's and VAE's training shapes, and per-group shapes of the feature passes (64 groups)
const shapes = [P(32, 32, 28, 16), P(32, 16, 28, 16), P(32, 32, 14, 32), P(32, 64, 14, 32), P(64, 32, 14, 16), P(64, 16, 28, 8), P(1, 64 * 32, 28, 64 * 16, 64), P(1, 64 * 4, 14, 64 * 32, 64),
  // one or two rows per product (the 2x16 block): the Glows' coupling halves (input gradient of 2 channels), the VAE's 2-channel output
  P(64, 2, 14, 64), P(64, 8, 28, 2),
  // at most 4 output channels in the weight gradient: the logit Glow's coupling conv3, batched and per group
  P(64, 64, 14, 4), P(1, 64 * 64, 14, 64 * 4, 64),
  // the shipped Glow's coupling convolutions at batch 64 (its training step): 4 output channels from 32, 32 from 2
  P(64, 32, 14, 4), P(64, 2, 14, 32),
  // the Glows' 1x1 convolutions (the couplings' middle one; the shipped Glow's 32 channels at both levels, the logit Glow's 64)
  P(64, 32, 14, 32, 1, 1), P(64, 32, 7, 32, 1, 1), P(64, 64, 14, 64, 1, 1), P(64, 64, 7, 64, 1, 1)];
const OPS = ["conv2d", "conv2dInputGrad", "conv2dWeightGrad"] as const;
/**
 * A millisecond's pause, then an untimed run of the same side, before each timed call: each tree
 * has its own thread pool, whose worker polls for tens of microseconds after a phase before it
 * sleeps. Without the pause one side's polling worker shared the two cores with the other side's
 * run (unchanged kernels came out 0.5-2x apart: the 1x1 [64,32,7,7]->32 38.1 -> 19.3 GFLOP/s);
 * without the untimed run each timed call woke its own worker first.
 */
const pause = new Int32Array(new SharedArrayBuffer(4));
const rest = () => Atomics.wait(pause, 0, 0, 1);
const total = [0, 0];
console.log(`old ${roots[0]}, new ${roots[1]}; ${bes[1].description}; GFLOP/s old -> new (best ${a.clock === "wall" ? "wall" : "CPU"} time of 6)`);
for (const p of shapes) {
  const flops = 2 * p.N * p.Cout * (p.Cin / p.groups) * p.KH * p.KW * p.OH * p.OW;
  const cells: string[] = [];
  for (const op of OPS) {
    const best = [Infinity, Infinity];
    const [n0, n1] = operandSizes({ op, p });
    const bufs = bes.map((b) => [b.alloc(n0).fill(0.5), b.alloc(n1).fill(0.25)]);
    for (let r = 0; r < 8; r++) {
      for (const i of r % 2 ? [1, 0] : [0, 1]) {
        rest();
        bes[i].release(bes[i][op](bufs[i][0], bufs[i][1], p, "float32")); // its own worker awake again, the other's asleep
        const t0 = clock();
        const o = bes[i][op](bufs[i][0], bufs[i][1], p, "float32");
        if (r >= 2) best[i] = Math.min(best[i], clock() - t0);
        bes[i].release(o);
      }
    }
    bufs.forEach((bs, i) => bs.forEach((s) => bes[i].release(s)));
    total[0] += best[0];
    total[1] += best[1];
    cells.push(`${op} ${(flops / best[0] / 1e6).toFixed(1)} -> ${(flops / best[1] / 1e6).toFixed(1)}`);
  }
  console.log(`[${p.N},${p.Cin},${p.H},${p.W}]->${p.Cout} k${p.KH} g${p.groups}: ${cells.join(", ")}`);
}
console.log(`all kernels, ${a.clock === "wall" ? "wall" : "CPU"} ms: old ${total[0].toFixed(1)}, new ${total[1].toFixed(1)}, old/new ${(total[0] / total[1]).toFixed(2)}x; load average ${Deno.loadavg()[0].toFixed(1)}`);
Deno.exit(0);
