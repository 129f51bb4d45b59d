// The U-Net of src/models/unet.ts written a second time with TensorFlow.js (bench only: the peer
// of our training step in bench/workloads.ts). Same layout, widths and parameter count as `Unet`
// for a given UnetConfig; TF.js's native NHWC / HWIO layout (the same arithmetic). The time
// embedding's sinusoids are data, computed on the host as ours are.
import type { UnetConfig } from "../src/models/unet.ts";

// deno-lint-ignore no-explicit-any
type TF = any;
// deno-lint-ignore no-explicit-any
type Tensor = any;

export interface TfUnet {
  /** Every trainable variable (the optimiser's var list). */
  variables: Tensor[];
  /** Number of trainable values (compare with our `Unet`'s). */
  parameters: number;
  /** Predicted noise [B, H, W, C] for x_t [B, H, W, C] and the sinusoidal embedding [B, dim]. */
  forward(x: Tensor, temb0: Tensor): Tensor;
}

/** Builds the TF.js U-Net with Kaiming-uniform weights (zero where ours are zero-initialised). */
export function tfUnet(tf: TF, cfg: UnetConfig, seed = 0): TfUnet {
  const vars: Tensor[] = [];
  let s = seed;
  const uniform = (shape: number[], fanIn: number) => {
    const b = Math.sqrt(3 / Math.max(1, fanIn));
    const v = tf.variable(tf.randomUniform(shape, -b, b, "float32", s++));
    vars.push(v);
    return v;
  };
  const constant = (shape: number[], value: number) => {
    const v = tf.variable(tf.fill(shape, value));
    vars.push(v);
    return v;
  };
  const linear = (inF: number, outF: number) => {
    const w = uniform([inF, outF], inF), b = constant([outF], 0);
    return (x: Tensor) => tf.add(tf.matMul(x, w), b);
  };
  const conv = (cin: number, cout: number, k: number, o: { stride?: number; zero?: boolean } = {}) => {
    const w = o.zero ? constant([k, k, cin, cout], 0) : uniform([k, k, cin, cout], cin * k * k), b = constant([cout], 0);
    const stride = o.stride ?? 1, pad = Math.floor(k / 2);
    return (x: Tensor) => tf.add(tf.conv2d(x, w, stride, pad === 0 ? "valid" : pad), b);
  };
  const silu = (x: Tensor) => tf.mul(x, tf.sigmoid(x));
  const groupNorm = (groups: number, ch: number) => {
    const gamma = constant([ch], 1), beta = constant([ch], 0);
    return (x: Tensor) => {
      const [B, H, W] = x.shape;
      const g = tf.reshape(x, [B, H, W, groups, ch / groups]);
      const { mean, variance } = tf.moments(g, [1, 2, 4], true);
      const y = tf.reshape(tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, 1e-5))), [B, H, W, ch]);
      return tf.add(tf.mul(y, gamma), beta);
    };
  };
  const resBlock = (cin: number, cout: number, tdim: number, groups: number) => {
    const n1 = groupNorm(groups, cin), c1 = conv(cin, cout, 3), time = linear(tdim, cout);
    const n2 = groupNorm(groups, cout), c2 = conv(cout, cout, 3, { zero: true });
    const sc = cin === cout ? null : conv(cin, cout, 1);
    return (x: Tensor, temb: Tensor) => {
      let h = c1(silu(n1(x)));
      h = tf.add(h, tf.reshape(time(silu(temb)), [x.shape[0], 1, 1, cout]));
      h = c2(silu(n2(h)));
      return tf.add(h, sc ? sc(x) : x);
    };
  };
  const attention = (ch: number, groups: number) => {
    const norm = groupNorm(groups, ch), qkv = conv(ch, 3 * ch, 1), out = conv(ch, ch, 1, { zero: true });
    return (x: Tensor) => {
      const [B, H, W] = x.shape, N = H * W;
      const t = tf.reshape(qkv(norm(x)), [B, N, 3 * ch]);
      const [q, k, v] = tf.split(t, 3, 2);
      const attn = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(ch)));
      const h = tf.reshape(tf.matMul(attn, v), [B, H, W, ch]);
      return tf.add(x, out(h));
    };
  };

  const C = cfg.image[0], L = cfg.dimMults.length, tdim = 4 * cfg.dim, g = cfg.groups;
  const timeIn = linear(cfg.dim, tdim), timeOut = linear(tdim, tdim);
  const convIn = conv(C, cfg.dim, 3);
  const widths = cfg.dimMults.map((m) => m * cfg.dim);
  const down: ((x: Tensor, t: Tensor) => Tensor)[][] = [], downsample: ((x: Tensor) => Tensor)[] = [];
  let ch = cfg.dim;
  for (let l = 0; l < L; l++) {
    const blocks = [];
    for (let r = 0; r < cfg.resBlocks; r++) {
      blocks.push(resBlock(ch, widths[l], tdim, g));
      ch = widths[l];
    }
    down.push(blocks);
    if (l < L - 1) downsample.push(conv(ch, ch, 3, { stride: 2 }));
  }
  const mid1 = resBlock(ch, ch, tdim, g), attn = attention(ch, g), mid2 = resBlock(ch, ch, tdim, g);
  const up: ((x: Tensor, t: Tensor) => Tensor)[][] = [], upsample: ((x: Tensor) => Tensor)[] = [];
  for (let l = L - 1; l >= 0; l--) {
    const blocks = [];
    for (let r = 0; r < cfg.resBlocks; r++) {
      blocks.push(resBlock(ch + widths[l], widths[l], tdim, g));
      ch = widths[l];
    }
    up.unshift(blocks);
    if (l > 0) {
      upsample.unshift(conv(ch, widths[l - 1], 3));
      ch = widths[l - 1];
    }
  }
  const normOut = groupNorm(g, ch), convOut = conv(ch, C, 3, { zero: true });
  /** Nearest 2x upsampling as a broadcast (its gradient is a sum; every backend has both). */
  const upsample2 = (x: Tensor) => {
    const [B, H, W, K] = x.shape;
    return tf.reshape(tf.mul(tf.reshape(x, [B, H, 1, W, 1, K]), tf.ones([1, 1, 2, 1, 2, 1])), [B, 2 * H, 2 * W, K]);
  };

  return {
    variables: vars,
    parameters: vars.reduce((n, v) => n + v.size, 0),
    forward(x, temb0) {
      const temb = timeOut(silu(timeIn(temb0)));
      let h = convIn(x);
      const skips: Tensor[] = [];
      down.forEach((blocks, l) => {
        for (const b of blocks) {
          h = b(h, temb);
          skips.push(h);
        }
        if (l < downsample.length) h = downsample[l](h);
      });
      h = mid2(attn(mid1(h, temb)), temb);
      for (let l = up.length - 1; l >= 0; l--) {
        for (const b of up[l]) h = b(tf.concat([h, skips.pop()], 3), temb);
        if (l > 0) h = upsample[l - 1](upsample2(h));
      }
      return convOut(silu(normOut(h)));
    },
  };
}
