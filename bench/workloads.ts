// The benchmark workloads, written once for our engine (any backend) and once for TensorFlow.js.
// Every run ends with a full readback of its result so queued GPU work is counted.
import * as T from "../src/autograd/index.ts";
import type { Backend } from "../src/kernels/backend.ts";

export interface Workload {
  name: string;
  flops: number;
  /** Builds inputs once; returns the timed function and a disposer. */
  ours(b: Backend): { run: () => Promise<unknown>; dispose: () => void };
  // deno-lint-ignore no-explicit-any
  tf?(tf: any): { run: () => Promise<unknown>; dispose: () => void };
}

const MLP = [784, 512, 512, 784], BATCH = 128;
const mlpFlops = () => {
  let f = 0;
  for (let i = 0; i < 3; i++) f += 2 * BATCH * MLP[i] * MLP[i + 1];
  return 3 * f - 2 * BATCH * MLP[0] * MLP[1]; // forward, weight grads, input grads but not the data's
};

export function workloads(): Workload[] {
  const list: Workload[] = [];
  for (const n of [256, 512, 1024]) {
    list.push({
      name: `matmul ${n}`,
      flops: 2 * n ** 3,
      ours(b) {
        const a = T.randn(new T.Generator(1), [n, n], { backend: b }), c = T.randn(new T.Generator(2), [n, n], { backend: b });
        return {
          run: async () => { const y = T.matmul(a, c); await y.data(); y.dispose(); },
          dispose: () => { a.dispose(); c.dispose(); },
        };
      },
      tf(tf) {
        const a = tf.randomNormal([n, n]), c = tf.randomNormal([n, n]);
        return { run: async () => { const y = tf.matMul(a, c); await y.data(); y.dispose(); }, dispose: () => tf.dispose([a, c]) };
      },
    });
  }
  // conv2d 3x3, padding 1, on [64, 32, 28, 28] with 32 output channels.
  const [N, C, H, W] = [64, 32, 28, 28];
  const convFlops = 2 * N * C * H * W * C * 9;
  const convCase = (kind: "forward" | "input-grad" | "weight-grad"): Workload => ({
    name: `conv2d 3x3 ${kind}`,
    flops: convFlops,
    ours(b) {
      const g = new T.Generator(3);
      const x = T.randn(g, [N, C, H, W], { backend: b }), w = T.randn(g, [C, C, 3, 3], { backend: b, std: 0.1 });
      const gy = T.randn(g, [N, C, H, W], { backend: b });
      const o = { padding: 1 };
      const f = kind === "forward" ? () => T.conv2d(x, w, o)
        : kind === "input-grad" ? () => T.conv2dInputGrad(gy, w, x.shape, o) : () => T.conv2dWeightGrad(x, gy, w.shape, o);
      return { run: async () => { const y = f(); await y.data(); y.dispose(); }, dispose: () => [x, w, gy].forEach((t) => t.dispose()) };
    },
    tf(tf) {
      // TF.js kernels are NHWC / HWIO: the same arithmetic in its native layout.
      const x = tf.randomNormal([N, H, W, C]), w = tf.randomNormal([3, 3, C, C]), dy = tf.randomNormal([N, H, W, C]);
      const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", dimRoundingMode: undefined, dilations: [1, 1] };
      const f = kind === "forward" ? () => tf.conv2d(x, w, 1, "same")
        : kind === "input-grad" ? () => tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: [N, H, W, C] })
        : () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: [3, 3, C, C] });
      return { run: async () => { const y = f(); await y.data(); y.dispose(); }, dispose: () => tf.dispose([x, w, dy]) };
    },
  });
  list.push(convCase("forward"), convCase("input-grad"), convCase("weight-grad"));

  list.push({
    name: `MLP ${MLP.join("-")} step, batch ${BATCH}`,
    flops: mlpFlops(),
    ours(b) {
      const g = new T.Generator(4);
      const ps: T.Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        ps.push(T.randn(g, [MLP[i], MLP[i + 1]], { backend: b, std: Math.sqrt(2 / MLP[i]), requiresGrad: true }));
        ps.push(T.zeros([MLP[i + 1]], { backend: b, requiresGrad: true }));
      }
      const x = T.rand(g, [BATCH, MLP[0]], { backend: b });
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
    tf(tf) {
      const ps: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        ps.push(tf.variable(tf.randomNormal([MLP[i], MLP[i + 1]], 0, Math.sqrt(2 / MLP[i]))));
        ps.push(tf.variable(tf.zeros([MLP[i + 1]])));
      }
      const x = tf.randomUniform([BATCH, MLP[0]]);
      const opt = tf.train.sgd(0.01);
      const f = () => {
        let h = x;
        for (let i = 0; i < 3; i++) {
          h = tf.add(tf.matMul(h, ps[2 * i]), ps[2 * i + 1]);
          if (i < 2) h = tf.relu(h);
        }
        return tf.mean(tf.square(tf.sub(h, x)));
      };
      return {
        run: async () => {
          const l = opt.minimize(f, true, ps);
          await Promise.all([l.data(), (ps[4] as { data(): Promise<unknown> }).data()]);
          l.dispose();
        },
        dispose: () => { tf.dispose([x, ...ps]); opt.dispose(); },
      };
    },
  });
  return list;
}
