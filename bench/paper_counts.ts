// Parameter counts of the authors' three models, from their architectures (facts about their code,
// not their code), and of the layers where ours differ. docs/paper-grid.md lists them; the counts
// were checked against PyTorch 1.13's count of the authors' module definitions (sum of numel over
// parameters): Glow 44,235,312 (y0ast/Glow-PyTorch model.py, L = 3, K = 32, 512 hidden, affine,
// LU, learn_top), U-Net 9,194,563 (denoising-diffusion-pytorch 1.5.5 Unet(dim=32,
// dim_mults=(1,2,4,8))), VAE 3,247,843 (SamD770/Generative-Models-Knowledge LargeEncoder +
// LargeDecoder, latent 64).

const conv = (cin: number, cout: number, k: number, bias = true) => k * k * cin * cout + (bias ? cout : 0);
const linear = (i: number, o: number) => i * o + o;

/**
 * y0ast's Glow on [C, H, W] with L levels of K steps and `hidden` channels. Per step: ActNorm (2c),
 * LU 1x1 conv (lower, upper c^2 each, log_s c), the coupling net: 3x3 conv without bias + ActNorm,
 * 1x1 conv without bias + ActNorm, Conv2dZeros (weight, bias, per-channel logs) to c channels.
 * Split2d: Conv2dZeros(c/2 -> c). learn_top: Conv2dZeros(2 c_top -> 2 c_top) on the prior's zeros.
 */
export function authorsGlow(C: number, L: number, K: number, hidden: number): number {
  let c = C, n = 0;
  for (let l = 0; l < L; l++) {
    c *= 4;
    const step = 2 * c + (2 * c * c + c) + (conv(c / 2, hidden, 3, false) + 2 * hidden) + (conv(hidden, hidden, 1, false) + 2 * hidden) + (conv(hidden, c, 3) + c);
    n += K * step;
    if (l < L - 1) {
      n += conv(c / 2, c, 3) + c;
      c /= 2;
    }
  }
  return n + conv(2 * c, 2 * c, 3) + 2 * c;
}

/**
 * How our Glow (src/models/glow_layers.ts) differs, in parameters: the coupling's first two convs
 * have biases where the authors' have an ActNorm each (h instead of 2h: -2h per step), the zero
 * convs (coupling output, split prior) have no per-channel log-scale (-c each), and the top prior
 * is a fixed standard normal (no learned Conv2dZeros).
 */
export function glowDifferences(C: number, L: number, K: number, hidden: number): { what: string; parameters: number }[] {
  let c = C, actnorms = 0, logs = 0;
  for (let l = 0; l < L; l++) {
    c *= 4;
    actnorms += K * 2 * hidden;
    logs += K * c;
    if (l < L - 1) {
      logs += c;
      c /= 2;
    }
  }
  return [
    { what: "coupling net: a bias after each of its first two convs instead of an ActNorm (h instead of 2h parameters each)", parameters: -actnorms },
    { what: "no per-channel log-scale on the zero-initialised convs (coupling output and split priors)", parameters: -logs },
    { what: "top prior: a fixed N(0, I) instead of learn_top's Conv2dZeros(2c, 2c)", parameters: -(conv(2 * c, 2 * c, 3) + 2 * c) },
  ];
}

/**
 * denoising-diffusion-pytorch 1.5.5's Unet(dim, dim_mults) on C channels (no self-conditioning,
 * learned variance or learned sinusoids): a 7x7 input conv; the time MLP (dim -> 4 dim -> 4 dim);
 * per resolution down two ResnetBlocks (each: a Linear(4 dim, 2 d_out) scale-shift, two
 * weight-standardised 3x3 convs with GroupNorm, a 1x1 residual conv where widths differ), a
 * pre-normed linear attention (4 heads of 32) and a downsampling (pixel unshuffle + 1x1 conv; the
 * last: a 3x3 conv); the middle: ResnetBlock, full attention, ResnetBlock; up: the mirror with
 * skip concatenations and nearest upsampling + 3x3 convs; a final ResnetBlock(2 dim -> dim) and a
 * 1x1 conv to C.
 */
export function authorsUnet(C: number, dim: number, mults: number[]): number {
  const t = 4 * dim, hidden = 4 * 32;
  const res = (din: number, dout: number) => linear(t, 2 * dout) + conv(din, dout, 3) + 2 * dout + conv(dout, dout, 3) + 2 * dout + (din !== dout ? conv(din, dout, 1) : 0);
  const linAttn = (d: number) => d + d * 3 * hidden + conv(hidden, d, 1) + d;
  const attn = (d: number) => d + d * 3 * hidden + conv(hidden, d, 1);
  const dims = [dim, ...mults.map((m) => m * dim)], io = dims.slice(0, -1).map((d, i) => [d, dims[i + 1]]);
  let n = conv(C, dim, 7) + linear(dim, t) + linear(t, t);
  io.forEach(([din, dout], i) => {
    n += 2 * res(din, din) + linAttn(din) + (i < io.length - 1 ? conv(4 * din, dout, 1) : conv(din, dout, 3));
  });
  const mid = dims[dims.length - 1];
  n += 2 * res(mid, mid) + attn(mid);
  [...io].reverse().forEach(([din, dout]) => {
    n += 2 * res(dout + din, dout) + linAttn(dout) + conv(dout, din, 3);
  });
  return n + res(2 * dim, dim) + conv(dim, C, 1);
}

/**
 * The authors' VAE on [C, 32, 32], latent 64: five stride-2 3x3 convs (widths 32, 64, 128, 256,
 * 512) each with BatchNorm, Linear(512 -> 64) twice (mean, log-scale); Linear(64 -> 512), four
 * stride-2 transposed convs (512 -> 32) with BatchNorm, a last transposed conv 32 -> 32 with
 * BatchNorm and a 3x3 conv to C. `batchNorm`: the BatchNorm layers' share (2 per channel).
 */
export function authorsVae(C: number, latent = 64): { total: number; batchNorm: number } {
  const w = [32, 64, 128, 256, 512];
  let n = 0, bn = 0, cin = C;
  for (const h of w) (n += conv(cin, h, 3)), (bn += 2 * h), (cin = h);
  n += 2 * linear(512, latent) + linear(latent, 512);
  const r = [...w].reverse();
  for (let i = 0; i < r.length - 1; i++) (n += conv(r[i], r[i + 1], 3)), (bn += 2 * r[i + 1]);
  n += conv(32, 32, 3) + conv(32, C, 3);
  bn += 2 * 32;
  return { total: n + bn, batchNorm: bn };
}
