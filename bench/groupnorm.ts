// GroupNorm fused (normalizeGroups / groupNormGrad, one kernel each) against the composed form
// it replaced (mean, deviation, square, mean, add, sqrt, reciprocal, product; backward the same
// formula in ops), on the U-Net's shapes at batch 32, every backend interleaved in rounds:
// wall ms per call (5 calls, then a readback), medians [min-max]; on WebGPU also the device time
// (timestamp queries) of one call each. For scale, the attention softmax on its [32, 49, 49] scores.
//   deno run -A bench/groupnorm.ts [--backend wasm,webgpu] [--rounds 7]
import "../src/cli/errors.ts";
import { choices, int, parseOptions } from "../src/io/options.ts";
import * as T from "../src/autograd/index.ts";
import { type BackendChoice, BACKEND_CHOICES, selectBackend } from "../src/kernels/select.ts";
import { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";

const a = parseOptions("groupnorm", {
  backend: choices(BACKEND_CHOICES.filter((c) => c !== "auto")).default(["wasm", "webgpu"]),
  rounds: int({ min: 1, max: 1000 }).default(7),
});
const rounds = a.rounds;
// The U-Net's GroupNorm inputs (UNET_DEFAULT, batch 32, 8 groups): 16 channels at 28x28, 32 at 14x14, 32 at 7x7.
const SHAPES = [[32, 16, 28, 28], [32, 32, 14, 14], [32, 32, 7, 7]];
/** The attention scores at 7x7 (49 positions), batch 32. */
const ATTENTION = [32, 49, 49];

/** The composed forward (the code before the fusion). */
function composed(x: T.Tensor, groups: number): T.Tensor {
  const g = T.reshape(x, [x.shape[0], groups, -1]);
  const d = T.sub(g, T.mean(g, 2, true));
  return T.reshape(T.mul(d, T.recip(T.sqrt(T.add(T.mean(T.square(d), 2, true), 1e-5)))), x.shape);
}

for (const name of a.backend) {
  const b = await selectBackend(name as BackendChoice, { makeDefault: false });
  for (const shape of [...SHAPES, ATTENTION]) {
    const gen = new T.Generator(1);
    const x = T.randn(gen, shape, { backend: b, requiresGrad: true }), r = T.randn(gen, shape, { backend: b });
    // Forward alone, and forward + backward (the gradient of sum(y r) w.r.t. x).
    // For scale: the attention's softmax over its [B, N, N] scores (composed, not fused), forward and forward + backward.
    const cases: [string, () => T.Tensor][] = shape === ATTENTION ? [
      ["softmax forward", () => T.softmax(x, -1)],
      ["softmax fwd+bwd", () => T.grad(T.sum(T.mul(T.softmax(x, -1), r)), [x])[0]!],
    ] : [
      ["composed forward", () => composed(x, 8)],
      ["fused forward", () => T.normalizeGroups(x, 8)],
      ["composed fwd+bwd", () => T.grad(T.sum(T.mul(composed(x, 8), r)), [x])[0]!],
      ["fused fwd+bwd", () => T.grad(T.sum(T.mul(T.normalizeGroups(x, 8), r)), [x])[0]!],
    ];
    const run = async (f: () => T.Tensor) => {
      let last: T.Tensor | null = null;
      for (let i = 0; i < 5; i++) {
        last?.dispose();
        last = T.tidy(f);
      }
      await last!.data();
      last!.dispose();
    };
    for (const [, f] of cases) await run(f);
    const ms: number[][] = cases.map(() => []);
    for (let k = 0; k < rounds; k++) {
      for (const [i, [, f]] of cases.entries()) {
        const t0 = performance.now();
        await run(f);
        ms[i].push((performance.now() - t0) / 5);
      }
    }
    const cells = cases.map(([label], i) => {
      const s = ms[i].sort((p, q) => p - q);
      return `${label} ${s[Math.floor(s.length / 2)].toFixed(2)} [${s[0].toFixed(2)}-${s[s.length - 1].toFixed(2)}]`;
    });
    console.log(`${b.name} [${shape}]: ${cells.join(", ")} ms per call`);
    if (b instanceof WebGPUBackend) {
      const dev: string[] = [];
      for (const [label, f] of cases) {
        b.rt.startProfile();
        const y = T.tidy(f);
        await y.data();
        y.dispose();
        const rows = await b.rt.stopProfile();
        dev.push(`${label} ${rows.reduce((s, q) => s + q.count, 0)} dispatches ${rows.reduce((s, q) => s + q.ms, 0).toFixed(2)} ms`);
      }
      console.log(`  device: ${dev.join(", ")}`);
    }
    x.dispose();
    r.dispose();
  }
}
Deno.exit(0);
