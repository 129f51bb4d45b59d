// Checks that bench/unet_tf.ts is the same function as our U-Net: our randomly initialised
// weights (every tensor, the zero-initialised ones replaced by random values) copied into the
// TF.js U-Net (OIHW -> HWIO), one forward on TF.js's CPU backend against ours on our CPU
// backend, and the largest difference printed (exit 1 above 1e-4 of the output's scale).
//   deno run -A bench/unet_tf_check.ts
import * as T from "../src/autograd/index.ts";
import { timeEmbedding, Unet, UNET_DEFAULT } from "../src/models/unet.ts";
import { tfUnet } from "./unet_tf.ts";

const tf = await import("@tensorflow/tfjs");
await tf.setBackend("cpu");
const cfg = UNET_DEFAULT, B = 3, [C, H, W] = cfg.image;
const ours = new Unet(cfg, { gen: new T.Generator(1) });
const net = tfUnet(tf, cfg, 1);
const params = ours.parameters();
if (params.length !== net.variables.length) throw new Error(`${params.length} tensors against ${net.variables.length}`);
const g = new T.Generator(2);
for (const [i, p] of params.entries()) {
  const v = T.randn(g, [...p.shape], { std: 0.3 });
  p.assign(v);
  const d = Float32Array.from(await v.data());
  const target = net.variables[i];
  // Conv weights are [O, I, kh, kw] here and [kh, kw, I, O] in TF.js; everything else matches as is.
  const t = p.rank === 4 ? tf.transpose(tf.tensor4d(d, p.shape as [number, number, number, number]), [2, 3, 1, 0]) : tf.tensor(d, target.shape);
  if (t.shape.join() !== target.shape.join()) throw new Error(`tensor ${i}: ${t.shape} against ${target.shape}`);
  target.assign(t);
}
const x = T.randn(g, [B, C, H, W]);
const steps = [1, 500, 1000];
const y = await ours.forward(x, steps).data();
const xt = tf.transpose(tf.tensor4d(Float32Array.from(await x.data()), [B, C, H, W]), [0, 2, 3, 1]);
const ty = await tf.transpose(net.forward(xt, tf.tensor2d(Float32Array.from(timeEmbedding(steps, cfg.dim)), [B, cfg.dim])), [0, 3, 1, 2]).data();
let diff = 0, scale = 0;
for (let i = 0; i < y.length; i++) {
  diff = Math.max(diff, Math.abs(y[i] - ty[i]));
  scale = Math.max(scale, Math.abs(y[i]));
}
console.log(`parameters: ours ${ours.numParameters()}, TF.js ${net.parameters}; outputs ${y.length}, largest |ours - TF.js| ${diff.toExponential(2)} (largest |output| ${scale.toFixed(3)})`);
Deno.exit(diff <= 1e-4 * Math.max(1, scale) ? 0 : 1);
