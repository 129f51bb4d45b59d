// The VAE's ELBO against an independent float64 implementation written here in plain loops,
// plus the importance-weighted bound's basic properties and prior sampling.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { VAE } from "../src/models/vae.ts";

const S = suite("vae");
const f64 = { backend: T.cpu, dtype: "float64" as const };
const cfg = { latent: 2, channels: [2, 3] as [number, number], outChannels: 2, image: [1, 28, 28] as [number, number, number] };

function makeTiny(seed = 1) {
  const m = new VAE(cfg, { ...f64, gen: new T.Generator(seed) });
  // Random biases too, so every term is exercised.
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(50 + i), [...p.shape], { ...f64, std: 0.05 }))));
  return m;
}

// ---- plain float64 reference, one image at a time ----
type Img = { c: number; h: number; w: number; d: Float64Array };
const W = (m: VAE, name: string) => m.namedParameters().find(([n]) => n === name)![1].dataSync() as Float64Array;

function conv(x: Img, w: Float64Array, b: Float64Array, cout: number, stride: number): Img {
  const oh = Math.floor((x.h + 2 - 3) / stride) + 1, ow = Math.floor((x.w + 2 - 3) / stride) + 1;
  const d = new Float64Array(cout * oh * ow);
  for (let co = 0; co < cout; co++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
    let s = b[co];
    for (let ci = 0; ci < x.c; ci++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
      const iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx;
      if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) s += w[((co * x.c + ci) * 3 + ky) * 3 + kx] * x.d[(ci * x.h + iy) * x.w + ix];
    }
    d[(co * oh + oy) * ow + ox] = s;
  }
  return { c: cout, h: oh, w: ow, d };
}
const silu = (v: number) => v / (1 + Math.exp(-v));
const mapImg = (x: Img, f: (v: number) => number): Img => ({ ...x, d: x.d.map(f) });
function up(x: Img): Img {
  const d = new Float64Array(x.c * x.h * x.w * 4);
  for (let c = 0; c < x.c; c++) for (let y = 0; y < 2 * x.h; y++) for (let xx = 0; xx < 2 * x.w; xx++) {
    d[(c * 2 * x.h + y) * 2 * x.w + xx] = x.d[(c * x.h + (y >> 1)) * x.w + (xx >> 1)];
  }
  return { c: x.c, h: 2 * x.h, w: 2 * x.w, d };
}
function linear(v: Float64Array, w: Float64Array, b: Float64Array): Float64Array {
  const out = Float64Array.from(b);
  for (let i = 0; i < v.length; i++) for (let j = 0; j < b.length; j++) out[j] += v[i] * w[i * b.length + j];
  return out;
}
const sig = (v: number) => 1 / (1 + Math.exp(-v));

function referenceElbo(m: VAE, img: Float64Array, eps: number[]): number {
  const [c1, c2] = cfg.channels, L = cfg.latent;
  let h: Img = { c: 1, h: 28, w: 28, d: img };
  h = mapImg(conv(h, W(m, "encoder.conv1.weight"), W(m, "encoder.conv1.bias"), c1, 2), silu);
  h = mapImg(conv(h, W(m, "encoder.conv2.weight"), W(m, "encoder.conv2.bias"), c2, 2), silu);
  const o = linear(h.d, W(m, "encoder.out.weight"), W(m, "encoder.out.bias"));
  const mu = [...o.subarray(0, L)], lv = [...o.subarray(L)];
  const z = Float64Array.from(mu.map((v, i) => v + Math.exp(0.5 * lv[i]) * eps[i]));
  let g: Img = { c: c2, h: 7, w: 7, d: linear(z, W(m, "decoder.in.weight"), W(m, "decoder.in.bias")).map(silu) };
  g = mapImg(conv(g, W(m, "decoder.conv1.weight"), W(m, "decoder.conv1.bias"), c2, 1), silu);
  g = mapImg(conv(up(g), W(m, "decoder.conv2.weight"), W(m, "decoder.conv2.bias"), c1, 1), silu);
  g = mapImg(conv(up(g), W(m, "decoder.conv3.weight"), W(m, "decoder.conv3.bias"), cfg.outChannels, 1), silu);
  const out = conv(g, W(m, "decoder.out.weight"), W(m, "decoder.out.bias"), 2, 1);
  let rec = 0;
  for (let i = 0; i < 784; i++) {
    const x = img[i], mean = out.d[i], s = Math.exp(Math.max(out.d[784 + i], -7));
    const p = x <= -1 ? sig((x + 1 / 255 - mean) / s) : x >= 1 ? 1 - sig((x - 1 / 255 - mean) / s) : sig((x + 1 / 255 - mean) / s) - sig((x - 1 / 255 - mean) / s);
    rec += Math.log(p);
  }
  let kl = 0;
  for (let i = 0; i < L; i++) kl += 0.5 * (mu[i] ** 2 + Math.exp(lv[i]) - 1 - lv[i]);
  return rec - kl;
}

function images(seed: number, n: number): Float64Array {
  const g = new T.Generator(seed), d = new Float64Array(n * 784);
  for (let i = 0; i < d.length; i++) {
    const r = g.uniform();
    d[i] = r < 0.3 ? -1 : r > 0.9 ? 1 : (2 * g.int(256)) / 255 - 1; // edge bins and interior levels
  }
  return d;
}

S("ELBO per example equals an independent float64 computation", () => {
  const m = makeTiny();
  const n = 3, data = images(2, n);
  const x = T.tensor(data, [n, 1, 28, 28], f64);
  const got = m.elbo(x, new T.Generator(9)).elbo.dataSync();
  const g = new T.Generator(9);
  const eps = Array.from({ length: n * cfg.latent }, () => g.normal());
  for (let i = 0; i < n; i++) {
    const ref = referenceElbo(m, data.subarray(i * 784, (i + 1) * 784), eps.slice(i * cfg.latent, (i + 1) * cfg.latent));
    assert.ok(Math.abs(got[i] - ref) < 1e-9 * Math.abs(ref), `example ${i}: engine ${got[i]} vs reference ${ref}`);
  }
  assert.ok(Math.abs(m.nll(x, { gen: new T.Generator(9) }).dataSync()[0] + got[0]) < 1e-12, "nll is the negative ELBO");
});

S("discretised logistic sums to 1 over the 256 levels", () => {
  const levels = T.tensor(Array.from({ length: 256 }, (_, v) => (2 * v) / 255 - 1), [256], f64);
  for (const [mu, ls] of [[0.1, -2], [-0.9, -4], [0.95, 0.3]]) {
    const { discretizedLogisticLogProb } = VAEmod;
    const lp = discretizedLogisticLogProb(levels, T.full([256], mu, f64), T.full([256], ls, f64));
    const total = [...lp.dataSync()].reduce((s, v) => s + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-6, `mass ${total} for mu ${mu}, log s ${ls}`);
  }
});

S("importance-weighted bound: K=1 has the ELBO's mean, and larger K is tighter on average", () => {
  const m = makeTiny(3);
  const x = T.tensor(images(4, 2), [2, 1, 28, 28], f64);
  const mean = (t: T.Tensor | ArrayLike<number>) => {
    const d = t instanceof T.Tensor ? t.dataSync() : t;
    return Array.from(d).reduce((s, v) => s + v, 0) / d.length;
  };
  // K=1 on many copies of one image: the same eps as the ELBO (same generator, same draw), so
  // iwNll(K=1) + ELBO = log q(z|x) - log p(z) - KL, the one-sample KL's error: written out here
  // from mu, log var and eps, and of mean zero (within 4 standard errors over 400 draws).
  const R = 400;
  const xr = T.reshape(T.broadcastTo(T.slice(x, [0, 0, 0, 0], [1, 1, 28, 28]), [R, 1, 28, 28]), [R, 1, 28, 28]);
  const iw1 = m.iwNll(xr, 1, new T.Generator(77)).dataSync();
  const elbo = m.elbo(xr, new T.Generator(77)).elbo.dataSync();
  const eps = T.randn(new T.Generator(77), [R, cfg.latent], f64).dataSync();
  const { mu, logvar } = m.encode(xr);
  const mus = mu.dataSync(), lvs = logvar.dataSync();
  const diff = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let logqMinusLogp = 0, kl = 0;
    for (let i = 0; i < cfg.latent; i++) {
      const k = r * cfg.latent + i, z = mus[k] + Math.exp(0.5 * lvs[k]) * eps[k];
      logqMinusLogp += 0.5 * (z * z - eps[k] * eps[k] - lvs[k]);
      kl += 0.5 * (mus[k] ** 2 + Math.exp(lvs[k]) - 1 - lvs[k]);
    }
    diff[r] = iw1[r] + elbo[r];
    assert.ok(Math.abs(diff[r] - (logqMinusLogp - kl)) < 1e-9 * Math.max(1, Math.abs(elbo[r])), `draw ${r}: ${diff[r]} vs ${logqMinusLogp - kl}`);
  }
  const dm = mean(diff), sd = Math.sqrt(mean(diff.map((d) => (d - dm) ** 2)));
  assert.ok(sd > 0, "the two estimates should differ draw by draw");
  assert.ok(Math.abs(dm) < 4 * sd / Math.sqrt(R), `mean of iwNll(K=1) + ELBO: ${dm} (sd ${sd})`);
  let e1 = 0, e16 = 0;
  for (let r = 0; r < 8; r++) {
    e1 += mean(m.iwNll(x, 1, new T.Generator(100 + r)));
    e16 += mean(m.iwNll(x, 16, new T.Generator(200 + r)));
  }
  assert.ok(e16 < e1, `K=16 bound ${e16 / 8} not below K=1 ${e1 / 8}`);
});

S("samples from the prior are 8-bit images", async () => {
  const s = await makeTiny(5).sample(4, new T.Generator(6));
  assert.is(s.length, 4 * 784);
});

import * as VAEmod from "../src/models/vae.ts";
S.run();
