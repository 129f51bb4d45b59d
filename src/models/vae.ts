// A convolutional VAE with a discretised-logistic likelihood for 8-bit pixels.
//
// Why discretised logistic (PixelCNN++-style) and not Bernoulli on binarised data: it is a proper
// probability mass function over the 256 pixel levels, so the NLL is in the same bits/dim as
// Glow's and the data need no binarisation (which would change the OOD sets themselves).
import * as T from "../autograd/index.ts";
import { type ImageSet, toTensor } from "../data/dataset.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import { Conv2d, type Init, Linear, Module } from "../nn/module.ts";
import { parseImageShape, type GenerativeModel, type ImageShape, type NllOptions, type SampleOptions } from "./model.ts";
import { makeObjective, type Objective, unknownObjective } from "./objective.ts";

export interface VaeConfig {
  latent: number;
  /** Channels of the two encoder convs (mirrored in the decoder). */
  channels: [number, number];
  /** Channels of the last decoder conv before the output (a mean and a log-scale per image channel). */
  outChannels: number;
  /** Input image shape [C, H, W]; H and W divisible by 4 (two stride-2 convs down, two upsamplings back). Default VAE_DEFAULT.image. */
  image?: [number, number, number];
}

export const VAE_DEFAULT: Required<VaeConfig> = { latent: 16, channels: [16, 32], outChannels: 8, image: [1, 28, 28] };

const HALF_BIN = 1 / 255; // pixels in [-1, 1], levels 2/255 apart

/**
 * log P(x) of 8-bit levels x (scaled to [-1, 1]) under a logistic (mu, exp(logS)) discretised
 * to bins of width 2/255, with the edge bins taking the tails. Elementwise.
 */
export function discretizedLogisticLogProb(x: T.Tensor, mu: T.Tensor, logS: T.Tensor): T.Tensor {
  const c = T.sub(x, mu);
  const invS = T.exp(T.neg(logS));
  const plusIn = T.mul(invS, T.add(c, HALF_BIN));
  const minIn = T.mul(invS, T.sub(c, HALF_BIN));
  const logCdfPlus = T.sub(plusIn, T.softplus(plusIn)); // log sigmoid(plusIn): the x = -1 edge bin
  const logOneMinusCdfMin = T.neg(T.softplus(minIn)); // log(1 - sigmoid(minIn)): the x = 1 edge bin
  const cdfDelta = T.sub(T.sigmoid(plusIn), T.sigmoid(minIn));
  const midIn = T.mul(invS, c);
  const logPdfMid = T.sub(T.sub(midIn, logS), T.mul(T.softplus(midIn), 2));
  // Tiny bins (float32 cancellation): density times bin width instead.
  const logMid = T.where(T.gt(cdfDelta, 1e-5), T.log(T.maximum(cdfDelta, 1e-12)), T.sub(logPdfMid, Math.log(127.5)));
  return T.where(T.lt(x, -0.999), logCdfPlus, T.where(T.gt(x, 0.999), logOneMinusCdfMin, logMid));
}

export class VAE extends Module implements GenerativeModel {
  readonly kind = "vae";
  readonly imageShape: ImageShape;
  readonly dims: number;
  readonly backend: Backend;
  readonly dtype: DType;
  /** The decoder's first feature map, [channels[1], H/4, W/4]. */
  readonly #latentMap: [number, number, number];
  readonly config: Record<string, unknown>;
  readonly enc1: Conv2d;
  readonly enc2: Conv2d;
  readonly encOut: Linear;
  readonly decIn: Linear;
  readonly dec1: Conv2d;
  readonly dec2: Conv2d;
  readonly dec3: Conv2d;
  readonly decOut: Conv2d;

  constructor(readonly cfg: VaeConfig, o: Init) {
    super();
    this.config = { ...cfg };
    const [C, H, W] = this.imageShape = parseImageShape("VAE", cfg.image ?? VAE_DEFAULT.image);
    if (H % 4 || W % 4) throw new Error(`VAE: image ${H}x${W} needs H and W divisible by 4`);
    this.dims = C * H * W;
    this.backend = o.backend ?? T.defaultBackend();
    this.dtype = o.dtype ?? "float32";
    const [c1, c2] = cfg.channels;
    this.#latentMap = [c2, H / 4, W / 4];
    const mapSize = c2 * (H / 4) * (W / 4);
    this.enc1 = this.child("encoder.conv1", new Conv2d(C, c1, 3, { ...o, stride: 2 }));
    this.enc2 = this.child("encoder.conv2", new Conv2d(c1, c2, 3, { ...o, stride: 2 }));
    this.encOut = this.child("encoder.out", new Linear(mapSize, 2 * cfg.latent, o));
    this.decIn = this.child("decoder.in", new Linear(cfg.latent, mapSize, o));
    this.dec1 = this.child("decoder.conv1", new Conv2d(c2, c2, 3, o));
    this.dec2 = this.child("decoder.conv2", new Conv2d(c2, c1, 3, o));
    this.dec3 = this.child("decoder.conv3", new Conv2d(c1, cfg.outChannels, 3, o));
    this.decOut = this.child("decoder.out", new Conv2d(cfg.outChannels, 2 * C, 3, o));
  }

  input(s: ImageSet, idx: ArrayLike<number>): T.Tensor {
    return toTensor(s, idx, { backend: this.backend, offset: 0, divisor: 255, scale: 2, shift: -1 });
  }

  /** q(z|x): mean and log-variance, each [B, latent]. */
  encode(x: T.Tensor): { mu: T.Tensor; logvar: T.Tensor } {
    const B = x.shape[0], L = this.cfg.latent;
    let h = this.enc1.forward(x, "silu");
    h = this.enc2.forward(h, "silu");
    const o = this.encOut.forward(T.reshape(h, [B, -1]));
    return { mu: T.slice(o, [0, 0], [B, L]), logvar: T.slice(o, [0, L], [B, 2 * L]) };
  }

  /** p(x|z): per-pixel logistic mean and log-scale, each [B, C, H, W]. */
  decode(z: T.Tensor): { mean: T.Tensor; logScale: T.Tensor } {
    const B = z.shape[0], [C, H, W] = this.imageShape;
    let h = T.reshape(T.silu(this.decIn.forward(z)), [B, ...this.#latentMap]);
    h = this.dec1.forward(h, "silu");
    h = this.dec2.forwardUpsampled(h, "silu");
    h = this.dec3.forwardUpsampled(h, "silu");
    const o = this.decOut.forward(h);
    return {
      mean: T.slice(o, [0, 0, 0, 0], [B, C, H, W]),
      logScale: T.maximum(T.slice(o, [0, C, 0, 0], [B, 2 * C, H, W]), -7),
    };
  }

  /** log p(x|z) summed over pixels: [B]. */
  logLikelihood(x: T.Tensor, z: T.Tensor): T.Tensor {
    const { mean, logScale } = this.decode(z);
    return T.sum(T.reshape(discretizedLogisticLogProb(x, mean, logScale), [x.shape[0], -1]), 1);
  }

  noiseShape(B: number): number[] {
    return [B, this.cfg.latent];
  }

  readonly objectives = "nll";
  readonly defaultObjective = "nll";
  /** "nll": the negative ELBO with one reparameterised latent sample per input (its standard-normal draw given). */
  objective(name = "nll"): Objective {
    if (name !== "nll") throw unknownObjective("vae", name, this.objectives);
    return makeObjective({
      name, dims: this.dims, noiseShape: (B) => this.noiseShape(B), value: (x, noise) => this.nll(x, { noise }),
      measure: { kind: "nll", short: "NLL", label: "NLL: negative ELBO, bits/dim (one latent sample)", unit: "bits/dim" },
    });
  }

  /** One reparameterised sample per example (eps from gen, or given): ELBO terms in nats, each [B]. */
  elbo(x: T.Tensor, gen: T.Generator | T.Tensor): { elbo: T.Tensor; rec: T.Tensor; kl: T.Tensor } {
    const { mu, logvar } = this.encode(x);
    const eps = gen instanceof T.Tensor ? gen : T.randn(gen, [...mu.shape], { backend: x.backend, dtype: x.dtype });
    const z = T.add(mu, T.mul(T.exp(T.mul(logvar, 0.5)), eps));
    const rec = this.logLikelihood(x, z);
    const kl = T.mul(T.sum(T.sub(T.add(T.square(mu), T.exp(logvar)), T.add(logvar, 1)), 1), 0.5);
    return { elbo: T.sub(rec, kl), rec, kl };
  }

  /**
   * The NLL estimate the OOD method differentiates: the negative ELBO with one reparameterised
   * sample (noise from o.gen, default a fixed seed, so features are reproducible). Nats, [B].
   */
  nll(x: T.Tensor, o: NllOptions = {}): T.Tensor {
    return T.neg(this.elbo(x, o.noise ?? o.gen ?? new T.Generator(0)).elbo);
  }

  /**
   * Importance-weighted bound with K samples (Burda et al. 2016), a tighter NLL estimate:
   * -log (1/K) sum_k p(x, z_k) / q(z_k | x). Nats, [B].
   */
  iwNll(x: T.Tensor, K: number, gen: T.Generator): T.Tensor {
    const B = x.shape[0], L = this.cfg.latent;
    const { mu, logvar } = this.encode(x);
    const rep = (t: T.Tensor) => T.reshape(T.broadcastTo(T.unsqueeze(t, 0), [K, ...t.shape]), [K * t.shape[0], ...t.shape.slice(1)]);
    const eps = T.randn(gen, [K * B, L], { backend: x.backend, dtype: x.dtype });
    const muK = rep(mu), lvK = rep(logvar);
    const z = T.add(muK, T.mul(T.exp(T.mul(lvK, 0.5)), eps));
    const logPxz = this.logLikelihood(rep(x), z);
    const log2pi = Math.log(2 * Math.PI);
    const logPz = T.mul(T.sum(T.add(T.square(z), log2pi), 1), -0.5);
    const logQz = T.mul(T.sum(T.add(T.add(T.square(eps), lvK), log2pi), 1), -0.5);
    const logW = T.reshape(T.sub(T.add(logPxz, logPz), logQz), [K, B]);
    return T.neg(T.sub(T.logsumexp(logW, 0), Math.log(K)));
  }

  readonly sampleOptions = ["mean"] as const;
  describeSampling(o: SampleOptions): string {
    return o.mean ?? false ? "(decoder means)" : "(drawn from the decoder's logistic)";
  }

  /**
   * Images from the model as 0..255 levels: z from the prior, then each pixel from the
   * discretised logistic (or its mean, for the usual smooth sample grids).
   */
  async sample(n: number, gen: T.Generator, o: SampleOptions = {}): Promise<Uint8Array> {
    const { backend, dtype } = this, mean = o.mean ?? false;
    const out = T.tidy(() => T.noGrad(() => {
      const d = this.decode(T.randn(gen, [n, this.cfg.latent], { backend, dtype }));
      if (mean) return d.mean;
      const u = T.rand(gen, [...d.mean.shape], { backend, dtype, low: 1e-6, high: 1 - 1e-6 });
      return T.add(d.mean, T.mul(T.exp(d.logScale), T.sub(T.log(u), T.log(T.sub(1, u))))); // logistic noise
    }));
    const d = await out.data();
    out.dispose();
    return Uint8Array.from(d, (v) => Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5));
  }
}
