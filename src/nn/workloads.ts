// The kernel workloads that `npm run bench` times by default and the page's benchmark panel runs,
// written once for our engine (any backend): matmul 256, 512 and 1024, the three 3x3 convolutions on
// [64, 32, 28, 28], and an MLP training step. Every run ends with a full readback of its result, so
// queued GPU work is counted. bench/workloads.ts adds the peers' versions (TF.js, jax-js) of the same
// arithmetic and the opt-in U-Net step.
import * as T from "../autograd/index.ts";
import type { Backend } from "../kernels/backend.ts";

export interface KernelWorkload {
  name: string;
  /** Floating-point operations per run (0: not counted; shown as "–", never as 0 GFLOP/s). */
  flops: number;
  /** Builds inputs once; returns the timed function and a disposer. */
  ours(b: Backend): { run: () => Promise<unknown>; dispose: () => void };
}

export const MATMUL_SIZES = [256, 512, 1024];
/** conv2d 3x3, padding 1, on [N, C, H, W] with C output channels. */
export const CONV_SHAPE = [64, 32, 28, 28] as const;
export type ConvKind = "forward" | "input-grad" | "weight-grad";
export const CONV_KINDS: ConvKind[] = ["forward", "input-grad", "weight-grad"];
export const MLP = [784, 512, 512, 784], MLP_BATCH = 128;

export const matmulName = (n: number) => `matmul ${n}`;
export const convName = (kind: ConvKind) => `conv2d 3x3 ${kind}`;
export const mlpName = () => `MLP ${MLP.join("-")} step, batch ${MLP_BATCH}`;

function mlpFlops(): number {
  let f = 0;
  for (let i = 0; i < 3; i++) f += 2 * MLP_BATCH * MLP[i] * MLP[i + 1];
  return 3 * f - 2 * MLP_BATCH * MLP[0] * MLP[1]; // forward, weight grads, input grads but not the data's
}

export function matmulWorkload(n: number): KernelWorkload {
  return {
    name: matmulName(n),
    flops: 2 * n ** 3,
    ours(b) {
      const a = T.randn(new T.Generator(1), [n, n], { backend: b }), c = T.randn(new T.Generator(2), [n, n], { backend: b });
      return {
        run: async () => { const y = T.matmul(a, c); await y.data(); y.dispose(); },
        dispose: () => { a.dispose(); c.dispose(); },
      };
    },
  };
}

export function convWorkload(kind: ConvKind): KernelWorkload {
  const [N, C, H, W] = CONV_SHAPE;
  return {
    name: convName(kind),
    flops: 2 * N * C * H * W * C * 9,
    ours(b) {
      const g = new T.Generator(3);
      const x = T.randn(g, [N, C, H, W], { backend: b }), w = T.randn(g, [C, C, 3, 3], { backend: b, std: 0.1 });
      const gy = T.randn(g, [N, C, H, W], { backend: b });
      const o = { padding: 1 };
      const f = kind === "forward" ? () => T.conv2d(x, w, o)
        : kind === "input-grad" ? () => T.conv2dInputGrad(gy, w, x.shape, o) : () => T.conv2dWeightGrad(x, gy, w.shape, o);
      return { run: async () => { const y = f(); await y.data(); y.dispose(); }, dispose: () => [x, w, gy].forEach((t) => t.dispose()) };
    },
  };
}

/** One SGD step of a 784-512-512-784 ReLU MLP on a squared-error loss, batch 128. */
export function mlpWorkload(): KernelWorkload {
  return {
    name: mlpName(),
    flops: mlpFlops(),
    ours(b) {
      const g = new T.Generator(4);
      const ps: T.Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        ps.push(T.randn(g, [MLP[i], MLP[i + 1]], { backend: b, std: Math.sqrt(2 / MLP[i]), requiresGrad: true }));
        ps.push(T.zeros([MLP[i + 1]], { backend: b, requiresGrad: true }));
      }
      const x = T.rand(g, [MLP_BATCH, MLP[0]], { backend: b });
      const step = () => T.tidy(() => {
        let h = x;
        for (let i = 0; i < 3; i++) {
          h = T.add(T.matmul(h, ps[2 * i]), ps[2 * i + 1]);
          if (i < 2) h = T.relu(h);
        }
        const loss = T.mean(T.square(T.sub(h, x)));
        const gs = T.grad(loss, ps);
        T.noGrad(() => ps.forEach((p, i) => p.assign(T.sub(p, T.mul(gs[i]!, 0.01)))));
        return loss;
      });
      return {
        run: async () => { const l = step(); await Promise.all([l.data(), ps[4].data()]); l.dispose(); },
        dispose: () => [x, ...ps].forEach((t) => t.dispose()),
      };
    },
  };
}

/** The default set, in the bench's order. */
export function kernelWorkloads(): KernelWorkload[] {
  return [...MATMUL_SIZES.map(matmulWorkload), ...CONV_KINDS.map(convWorkload), mlpWorkload()];
}
