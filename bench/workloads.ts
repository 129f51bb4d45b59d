// The benchmark workloads: ours from the library (src/nn/workloads.ts, which the page's benchmark
// panel runs too), plus the same arithmetic for TensorFlow.js and for jax-js (on the device it is
// given), and the opt-in U-Net step. Every run ends with a full readback of its result so queued
// work is counted.
import * as T from "../src/autograd/index.ts";
import { CONV_SHAPE, type ConvKind, convWorkload, type KernelWorkload, MATMUL_SIZES, matmulWorkload, MLP, MLP_BATCH as BATCH, mlpWorkload } from "../src/nn/workloads.ts";
import { timeEmbedding, Unet, UNET_DEFAULT } from "../src/models/unet.ts";
import { Adam } from "../src/nn/optim.ts";
import { tfUnet } from "./unet_tf.ts";

export interface Workload extends KernelWorkload {
  /** Run only when `--only` names it (a slow row: minutes per round for some engines). */
  optIn?: boolean;
  // deno-lint-ignore no-explicit-any
  tf?(tf: any): { run: () => Promise<unknown>; dispose: () => void };
  // deno-lint-ignore no-explicit-any
  jax?(jax: any, device: string): { run: () => Promise<unknown>; dispose: () => void };
}

/** Uniform [-0.5, 0.5) values from a fixed LCG, so every engine gets the same inputs. */
function values(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return out;
}

export function workloads(): Workload[] {
  const list: Workload[] = [];
  for (const n of MATMUL_SIZES) {
    list.push({
      ...matmulWorkload(n),
      tf(tf) {
        const a = tf.randomNormal([n, n]), c = tf.randomNormal([n, n]);
        return { run: async () => { const y = tf.matMul(a, c); await y.data(); y.dispose(); }, dispose: () => tf.dispose([a, c]) };
      },
      jax(jax, device) {
        const np = jax.numpy;
        const a = np.array(values(n * n, 1), { shape: [n, n], device }), c = np.array(values(n * n, 2), { shape: [n, n], device });
        return { run: async () => { await np.matmul(a.ref, c.ref).data(); }, dispose: () => { a.dispose(); c.dispose(); } };
      },
    });
  }
  // conv2d 3x3, padding 1, on [64, 32, 28, 28] with 32 output channels.
  const [N, C, H, W] = CONV_SHAPE;
  const convCase = (kind: ConvKind): Workload => ({
    ...convWorkload(kind),
    tf(tf) {
      // TF.js kernels are NHWC / HWIO: the same arithmetic in its native layout.
      const x = tf.randomNormal([N, H, W, C]), w = tf.randomNormal([3, 3, C, C]), dy = tf.randomNormal([N, H, W, C]);
      const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", dimRoundingMode: undefined, dilations: [1, 1] };
      const f = kind === "forward" ? () => tf.conv2d(x, w, 1, "same")
        : kind === "input-grad" ? () => tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: [N, H, W, C] })
        : () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: [3, 3, C, C] });
      return { run: async () => { const y = f(); await y.data(); y.dispose(); }, dispose: () => tf.dispose([x, w, dy]) };
    },
    jax(jax, device) {
      // NCHW / OIHW like ours. The gradients are the vjp functions of the forward, made once, so a
      // run is the backward kernel alone (jit made jax-js's convolutions slower here: not used).
      const { numpy: np, lax } = jax;
      const x = np.array(values(N * C * H * W, 3), { shape: [N, C, H, W], device });
      const w = np.array(values(C * C * 9, 4, 0.2), { shape: [C, C, 3, 3], device });
      const gy = np.array(values(N * C * H * W, 5), { shape: [N, C, H, W], device });
      const conv = (a: unknown, b: unknown) => lax.conv(a, b, [1, 1], [[1, 1], [1, 1]]);
      if (kind === "forward") return { run: async () => { await conv(x.ref, w.ref).data(); }, dispose: () => [x, w, gy].forEach((t) => t.dispose()) };
      // deno-lint-ignore no-explicit-any
      const [y, back] = kind === "input-grad" ? jax.vjp((xx: any) => conv(xx, w.ref), [x.ref]) : jax.vjp((ww: any) => conv(x.ref, ww), [w.ref]);
      y.dispose();
      return {
        run: async () => { const [g] = back(gy.ref); await g.data(); },
        dispose: () => { back.dispose(); [x, w, gy].forEach((t) => t.dispose()); },
      };
    },
  });
  list.push(convCase("forward"), convCase("input-grad"), convCase("weight-grad"));

  list.push({
    ...mlpWorkload(),
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
    jax(jax, device) {
      // One jitted step: loss and gradients (valueAndGrad), SGD update; the new parameters replace the old.
      const np = jax.numpy;
      let ps: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        ps.push(np.array(values(MLP[i] * MLP[i + 1], 10 + i, Math.sqrt(24 / MLP[i])), { shape: [MLP[i], MLP[i + 1]], device }));
        ps.push(np.zeros([MLP[i + 1]], { device }));
      }
      const x = np.array(values(BATCH * MLP[0], 9).map((v) => v + 0.5), { shape: [BATCH, MLP[0]], device });
      // deno-lint-ignore no-explicit-any
      const loss = (p: any[], xx: any) => {
        let h = xx.ref;
        for (let i = 0; i < 3; i++) {
          h = np.add(np.matmul(h, p[2 * i]), p[2 * i + 1]);
          if (i < 2) h = jax.nn.relu(h);
        }
        return np.mean(np.square(np.subtract(h, xx)));
      };
      // deno-lint-ignore no-explicit-any
      const step = jax.jit((p: any[], xx: any) => {
        const [l, gs] = jax.valueAndGrad(loss)(p.map((t) => t.ref), xx);
        // deno-lint-ignore no-explicit-any
        return [l, p.map((t, i) => np.subtract(t, np.multiply(gs[i], 0.01)))] as any;
      });
      return {
        run: async () => {
          const [l, next] = step(ps, x.ref);
          ps = next;
          // deno-lint-ignore no-explicit-any
          await Promise.all([l.data(), (ps[4] as any).ref.data()]);
        },
        // deno-lint-ignore no-explicit-any
        dispose: () => { ps.forEach((t: any) => t.dispose()); x.dispose(); step.dispose(); },
      };
    },
  });
  list.push(unetStep());
  return list;
}

/**
 * One training step of the diffusion model's default U-Net (UNET_DEFAULT, 192,513 parameters) at
 * batch 32: forward on fixed x_t and steps, the L2 eps-loss, backward, Adam (lr 1e-4, no
 * clipping), readback of the loss and of the output conv's weight. TF.js runs the same U-Net
 * (bench/unet_tf.ts; its parameter count is checked equal to ours when it is built).
 */
function unetStep(): Workload {
  const cfg = UNET_DEFAULT, B = 32, [C, H, W] = cfg.image, D = C * H * W;
  const xt = values(B * D, 21, 2), eps = values(B * D, 22, 3.4);
  const steps = Array.from({ length: B }, (_, i) => 1 + ((i * 997) % 1000));
  return {
    name: `U-Net step, batch ${B}`,
    flops: 0,
    // TF.js takes about a minute per step on lavapipe: 8 runs would double `npm run bench`.
    optIn: true,
    ours(b) {
      const unet = new Unet(cfg, { backend: b, gen: new T.Generator(5) });
      const params = unet.parameters(), opt = new Adam(params, { lr: 1e-4 });
      const x = T.tensor(xt, [B, C, H, W], { backend: b }), e = T.tensor(eps, [B, C, H, W], { backend: b });
      const w = unet.convOut.weight;
      return {
        run: async () => {
          const loss = T.tidy(() => {
            const l = T.mean(T.square(T.sub(unet.forward(x, steps), e)));
            for (const p of params) p.zeroGrad();
            l.backward();
            return l;
          });
          opt.update();
          await Promise.all([loss.data(), w.data()]);
          loss.dispose();
        },
        dispose: () => { [x, e, ...params, ...opt.m, ...opt.v].forEach((t) => t.dispose()); },
      };
    },
    tf(tf) {
      const net = tfUnet(tf, cfg, 5);
      const ours = new Unet(cfg, { gen: new T.Generator(5) }).numParameters();
      if (net.parameters !== ours) throw new Error(`TF.js U-Net has ${net.parameters} parameters, ours ${ours}`);
      console.log(`  U-Net parameters: ours ${ours}, TF.js ${net.parameters} (${net.variables.length} tensors)`);
      // NHWC: with one channel the layout of x_t and eps is the same as NCHW's.
      const toNhwc = (v: Float32Array) => tf.transpose(tf.tensor4d(v, [B, C, H, W]), [0, 2, 3, 1]);
      const x = toNhwc(xt), e = toNhwc(eps);
      const temb = tf.tensor2d(Float32Array.from(timeEmbedding(steps, cfg.dim)), [B, cfg.dim]);
      const opt = tf.train.adam(1e-4);
      const w = net.variables[net.variables.length - 2];
      return {
        run: async () => {
          const l = opt.minimize(() => tf.mean(tf.square(tf.sub(net.forward(x, temb), e))), true, net.variables);
          await Promise.all([l.data(), w.data()]);
          l.dispose();
        },
        dispose: () => { tf.dispose([x, e, temb, ...net.variables]); opt.dispose(); },
      };
    },
  };
}
