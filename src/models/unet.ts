// The denoising U-Net of the diffusion model: eps_theta(x_t, t).
//
// Layout (after Ho et al. 2020 and denoising-diffusion-pytorch; our own code): a sinusoidal
// embedding of the step t followed by an MLP; per resolution `resBlocks` residual blocks
// (GroupNorm, SiLU, 3x3 conv, plus a projection of the time embedding; a second GroupNorm,
// SiLU, 3x3 conv; a 1x1 conv on the shortcut where the width changes), each block's output kept
// as a skip; 3x3 stride-2 convs down; at the lowest resolution residual block, self-attention,
// residual block; the way up concatenates the skips, nearest 2x upsampling and a 3x3 conv between
// resolutions (to the next resolution's width); GroupNorm, SiLU and a zero-initialised 3x3 conv to the predicted noise.
//
// Each layer is a plain forward in terms of its parameters (no per-group branches here).
import * as T from "../autograd/index.ts";
import { Conv2d, type Init, Linear, Module, zerosFor } from "../nn/module.ts";

export interface UnetConfig {
  /** Input image [C, H, W]; H and W divisible by 2^(levels - 1). */
  image: [number, number, number];
  /** Channels at the first resolution (and the sinusoidal embedding's size). */
  dim: number;
  /** Width multiplier per resolution. */
  dimMults: number[];
  /** Residual blocks per resolution on the way down (the way up has the same number). */
  resBlocks: number;
  /** GroupNorm groups (divides every width). */
  groups: number;
}

/** Sized for this 2-core CPU machine (28x28 grayscale): widths 16, 32, 32; about 0.2 M parameters. */
export const UNET_DEFAULT: UnetConfig = { image: [1, 28, 28], dim: 16, dimMults: [1, 2, 2], resBlocks: 1, groups: 8 };
/**
 * The paper's size (denoising-diffusion-pytorch 1.5.5 `Unet(dim=32, dim_mults=(1,2,4,8))` on 32x32
 * images, two residual blocks per resolution), for a GPU. Our blocks, not the library's: no linear
 * attention at every resolution, no weight-standardised convs, an additive time projection.
 */
export const UNET_PAPER: UnetConfig = { image: [3, 32, 32], dim: 32, dimMults: [1, 2, 4, 8], resBlocks: 2, groups: 8 };

/** Sinusoidal embedding of integer steps, [t.length, dim] (host-side: t is data, not a parameter). */
export function timeEmbedding(t: ArrayLike<number>, dim: number): Float64Array {
  const half = dim / 2;
  if (!Number.isInteger(half) || half < 2) throw new Error(`timeEmbedding: dim ${dim} must be even and >= 4`);
  const out = new Float64Array(t.length * dim);
  for (let i = 0; i < t.length; i++) {
    for (let k = 0; k < half; k++) {
      const a = t[i] * Math.exp((-Math.log(10000) * k) / (half - 1));
      out[i * dim + k] = Math.sin(a);
      out[i * dim + half + k] = Math.cos(a);
    }
  }
  return out;
}

export class GroupNorm extends Module {
  readonly weight: T.Tensor;
  readonly bias: T.Tensor;
  constructor(readonly groups: number, readonly channels: number, o: Init) {
    super();
    if (channels % groups) throw new Error(`GroupNorm: ${channels} channels not divisible into ${groups} groups`);
    this.weight = this.param("weight", T.ones([channels], { backend: o.backend, dtype: o.dtype }));
    this.bias = this.param("bias", zerosFor([channels], o));
  }
  /** The normalised x, its affine, and `act` after them (one fused op where the backend has it). */
  forward(x: T.Tensor, act: T.ConvAct = "none"): T.Tensor {
    return T.groupNorm(x, this.groups, this.weight, this.bias, 1e-5, act);
  }
}

export class ResBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly time: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly shortcut: Conv2d | null;
  constructor(readonly cin: number, readonly cout: number, tdim: number, groups: number, o: Init) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(groups, cin, o));
    this.conv1 = this.child("conv1", new Conv2d(cin, cout, 3, o));
    this.time = this.child("time", new Linear(tdim, cout, o));
    this.norm2 = this.child("norm2", new GroupNorm(groups, cout, o));
    // Zero-initialised: each block starts as the identity (plus the shortcut), as in Ho et al.
    this.conv2 = this.child("conv2", new Conv2d(cout, cout, 3, { ...o, zero: true }));
    this.shortcut = cin === cout ? null : this.child("shortcut", new Conv2d(cin, cout, 1, o));
  }
  /** x [B, cin, H, W], temb [B, tdim] (already through the MLP's last layer). */
  forward(x: T.Tensor, temb: T.Tensor): T.Tensor {
    let h = this.conv1.forward(this.norm1.forward(x, "silu"));
    h = T.add(h, T.reshape(this.time.forward(T.silu(temb)), [x.shape[0], this.cout, 1, 1]));
    h = this.conv2.forward(this.norm2.forward(h, "silu"));
    return T.add(h, this.shortcut ? this.shortcut.forward(x) : x);
  }
}

/** Single-head self-attention over the H*W positions, residual. */
export class SelfAttention extends Module {
  readonly norm: GroupNorm;
  readonly qkv: Conv2d;
  readonly out: Conv2d;
  constructor(readonly channels: number, groups: number, o: Init) {
    super();
    this.norm = this.child("norm", new GroupNorm(groups, channels, o));
    this.qkv = this.child("qkv", new Conv2d(channels, 3 * channels, 1, o));
    this.out = this.child("out", new Conv2d(channels, channels, 1, { ...o, zero: true }));
  }
  forward(x: T.Tensor): T.Tensor {
    const [B, C, H, W] = x.shape, N = H * W;
    const qkv = T.reshape(this.qkv.forward(this.norm.forward(x)), [B, 3 * C, N]);
    const q = T.slice(qkv, [0, 0, 0], [B, C, N]), k = T.slice(qkv, [0, C, 0], [B, 2 * C, N]), v = T.slice(qkv, [0, 2 * C, 0], [B, 3 * C, N]);
    // scores[b, i, j] = q[:, i] . k[:, j] / sqrt(C); softmax over j; out[:, i] = sum_j attn[i, j] v[:, j].
    const attn = T.softmax(T.mul(T.mm(q, k, true, false), 1 / Math.sqrt(C)), -1);
    const h = T.reshape(T.mm(v, attn, false, true), [B, C, H, W]);
    return T.add(x, this.out.forward(h));
  }
}

export class Unet extends Module {
  readonly timeIn: Linear;
  readonly timeOut: Linear;
  readonly convIn: Conv2d;
  readonly down: ResBlock[][] = [];
  readonly downsample: Conv2d[] = [];
  readonly mid1: ResBlock;
  readonly attn: SelfAttention;
  readonly mid2: ResBlock;
  readonly up: ResBlock[][] = [];
  readonly upsample: Conv2d[] = [];
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(readonly cfg: UnetConfig, o: Init) {
    super();
    const [C, H, W] = cfg.image, L = cfg.dimMults.length, tdim = 4 * cfg.dim, g = cfg.groups;
    if (H % 2 ** (L - 1) || W % 2 ** (L - 1)) throw new Error(`Unet: image ${H}x${W} not divisible by 2^${L - 1}`);
    this.timeIn = this.child("time.in", new Linear(cfg.dim, tdim, o));
    this.timeOut = this.child("time.out", new Linear(tdim, tdim, o));
    this.convIn = this.child("in", new Conv2d(C, cfg.dim, 3, o));
    const widths = cfg.dimMults.map((m) => m * cfg.dim);
    let ch = cfg.dim;
    for (let l = 0; l < L; l++) {
      const blocks: ResBlock[] = [];
      for (let r = 0; r < cfg.resBlocks; r++) {
        blocks.push(this.child(`down.${l}.${r}`, new ResBlock(ch, widths[l], tdim, g, o)));
        ch = widths[l];
      }
      this.down.push(blocks);
      if (l < L - 1) this.downsample.push(this.child(`down.${l}.downsample`, new Conv2d(ch, ch, 3, { ...o, stride: 2, padding: 1 })));
    }
    this.mid1 = this.child("mid.block1", new ResBlock(ch, ch, tdim, g, o));
    this.attn = this.child("mid.attn", new SelfAttention(ch, g, o));
    this.mid2 = this.child("mid.block2", new ResBlock(ch, ch, tdim, g, o));
    for (let l = L - 1; l >= 0; l--) {
      const blocks: ResBlock[] = [];
      for (let r = 0; r < cfg.resBlocks; r++) {
        blocks.push(this.child(`up.${l}.${r}`, new ResBlock(ch + widths[l], widths[l], tdim, g, o)));
        ch = widths[l];
      }
      this.up.unshift(blocks);
      // To the next resolution's width (as the library's Upsample(dim_out, dim_in)): the 3x3 conv
      // after upsampling runs at the larger size, so it should not carry the wider channels.
      if (l > 0) {
        this.upsample.unshift(this.child(`up.${l}.upsample`, new Conv2d(ch, widths[l - 1], 3, o)));
        ch = widths[l - 1];
      }
    }
    this.normOut = this.child("out.norm", new GroupNorm(g, ch, o));
    this.convOut = this.child("out.conv", new Conv2d(ch, C, 3, { ...o, zero: true }));
  }

  /** The time embedding MLP's output [B, 4 dim] for integer steps t. */
  embed(t: ArrayLike<number>, like: T.Tensor): T.Tensor {
    const e = T.tensor(timeEmbedding(t, this.cfg.dim), [t.length, this.cfg.dim], { backend: like.backend, dtype: like.dtype });
    return this.timeOut.forward(T.silu(this.timeIn.forward(e)));
  }

  /** Predicted noise for x_t [B, C, H, W] at integer steps t (one per example). */
  forward(x: T.Tensor, t: ArrayLike<number>): T.Tensor {
    if (t.length !== x.shape[0]) throw new Error(`Unet: ${t.length} steps for a batch of ${x.shape[0]}`);
    const temb = this.embed(t, x);
    let h = this.convIn.forward(x);
    const skips: T.Tensor[] = [];
    this.down.forEach((blocks, l) => {
      for (const b of blocks) {
        h = b.forward(h, temb);
        skips.push(h);
      }
      if (l < this.downsample.length) h = this.downsample[l].forward(h);
    });
    h = this.mid2.forward(this.attn.forward(this.mid1.forward(h, temb)), temb);
    for (let l = this.up.length - 1; l >= 0; l--) {
      for (const b of this.up[l]) h = b.forward(T.concat([h, skips.pop()!], 1), temb);
      if (l > 0) h = this.upsample[l - 1].forwardUpsampled(h);
    }
    return this.convOut.forward(this.normOut.forward(h, "silu"));
  }
}
