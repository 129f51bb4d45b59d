// The Glow flow layers' fused elementwise kernels: the affine coupling's and ActNorm's.
//
// The affine coupling's elementwise part (Glow's, Kingma & Dhariwal 2018) in one pass each way, over
// n images whose blocks are `half` floats: xb [n][half], o [n][2 half] (shift, then raw), and the
// result [n][2 half] (yb, then ls):
//   s = sigmoid(raw + offset), yb = (xb + shift) * s, ls = logSigmoid(raw + offset) = -softplus(-(raw + offset)),
// and its backward from g [n][2 half] (gyb, then gls) to dxb [n][half] and do [n][2 half] (dshift = dxb, then draw):
//   du = gyb * s, draw = (gyb * u) * (s * (1 - s)) + -(-gls * sigmoid(-(raw + offset))), u = xb + shift.
// Each value is the composed ops' (addScalar, sigmoid, add, mul, neg, softplus, and their
// backward rules in src/autograd/ops/elementwise.ts) bit for bit: the same f32x4 instructions in
// the same order, a block's last floats one lane of the vector code.
//   cpl_fwd(xb, o, out, n, half, offsetBits)    cpl_bwd(g, xb, o, dxb, do, n, half, offsetBits)
//
// ActNorm's per-channel affine over rows of HW floats (row r = (image, channel), its channel r mod C):
//   y = (x + bias[c]) * scale[c]
// and its backward from g: dx = g * scale[c] and t = g * (x + bias[c]) (the composed add's and
// multiply's values and their backward rules' bit for bit; the caller sums each row of both).
//   ca_fwd(x, bias, scale, out, r0, r1, C, HW)    ca_bwd(g, x, bias, scale, dx, t, r0, r1, C, HW)
import { Fn, I32, op, simd, V128 } from "./emit.ts";
import { unaryVec } from "./elementwise.ts";
import { actConstants } from "./copy.ts";

const V = { add: 0xe4, mul: 0xe6, neg: 0xe1 };

/**
 * The loop over blocks i in [from, to) of `floats` floats (a param): `block(i)` sets block i's
 * addresses, then `at(lane, off)` computes and stores the floats at byte offset `off` of the
 * blocks: vectors, then the last floats % 4 one lane at a time.
 */
function perBlock(f: Fn, from: () => void, to: () => void, floats: number, block: (i: number) => void, at: (lane: boolean, off: number) => void): void {
  const i = f.local(), k = f.local(), vend = f.local(), off = f.local();
  f.get(floats).i32(-4).op(op.and).set(vend);
  f.loop(i, from, to, 1, () => {
    block(i);
    f.loop(k, () => f.i32(0), () => f.get(vend), 4, () => {
      f.get(k).i32(2).op(op.shl).set(off);
      at(false, off);
    });
    f.loop(k, () => f.get(vend), () => f.get(floats), 1, () => {
      f.get(k).i32(2).op(op.shl).set(off);
      at(true, off);
    });
  });
}

/** Loads from block base + off into local dst: a vector, or one float in every lane. */
function load(f: Fn, lane: boolean, base: number, off: number, dst: number): void {
  f.get(base).get(off).op(op.add);
  (lane ? f.splatLoad(0) : f.simd(0x00, 0, 0)).set(dst);
}
/** Stores local v at block base + off: a vector, or its lane 0. */
function store(f: Fn, lane: boolean, base: number, off: number, v: number): void {
  f.get(base).get(off).op(op.add).get(v);
  if (lane) f.simd(simd.f32x4extract, 0).op(0x38, 0, 0);
  else f.simd(0x0b, 0, 0);
}

/** Addresses of image i's blocks: base + i * floats * 4, into local dst. */
function blockOf(f: Fn, base: number, i: number, floats: number, times: number, dst: number): void {
  f.get(base).get(i).get(floats).op(op.mul).i32(4 * times).op(op.mul).op(op.add).set(dst);
}
/** Image i's block of two halves at base (2 half floats an image): the first half's address into a, the second's into b. */
function halvesOf(f: Fn, base: number, i: number, half: number, a: number, b: number): void {
  blockOf(f, base, i, half, 2, a);
  f.get(a).get(half).i32(4).op(op.mul).op(op.add).set(b);
}
/** The kernels' constants: 1 and 0 (the activations', copy.ts) and the offset (its f32 bits in param obits) in every lane. */
function constants(f: Fn, obits: number): { one: number; zero: number; voff: number } {
  const c = actConstants(f), voff = f.local(V128);
  f.get(obits).op(0xbe).simd(simd.f32x4splat).set(voff); // f32.reinterpret_i32
  return { ...c, voff };
}
/** raw + offset into vr (addScalar's add), then sigmoid of it into s (un_sigmoid's instructions). */
function scaleOf(f: Fn, vr: number, s: number, c: { one: number; zero: number; voff: number }): void {
  f.get(vr).get(c.voff).simd(V.add).set(vr);
  unaryVec(f, "sigmoid", vr, c.one, c.zero);
  f.set(s);
}

export function couplingFwdFn(): Fn {
  const f = new Fn("cpl_fwd", Array(6).fill(I32));
  const [xb, o, out, n, half, obits] = [0, 1, 2, 3, 4, 5];
  const px = f.local(), po = f.local(), pr = f.local(), py = f.local(), pl = f.local();
  const vx = f.local(V128), vs = f.local(V128), vr = f.local(V128), s = f.local(V128), t = f.local(V128);
  const c = constants(f, obits), { one, zero } = c;
  perBlock(f, () => f.i32(0), () => f.get(n), half, (i) => {
    blockOf(f, xb, i, half, 1, px);
    halvesOf(f, o, i, half, po, pr);
    halvesOf(f, out, i, half, py, pl);
  }, (lane, off) => {
    load(f, lane, px, off, vx);
    load(f, lane, po, off, vs);
    load(f, lane, pr, off, vr);
    scaleOf(f, vr, s, c);
    f.get(vx).get(vs).simd(V.add).get(s).simd(V.mul).set(t); // (xb + shift) * s
    store(f, lane, py, off, t);
    f.get(vr).simd(V.neg).set(t);
    unaryVec(f, "softplus", t, one, zero);
    f.simd(V.neg).set(t); // -softplus(-raw)
    store(f, lane, pl, off, t);
  });
  return f;
}

export function couplingBwdFn(): Fn {
  const f = new Fn("cpl_bwd", Array(8).fill(I32));
  const [g, xb, o, dxb, dout, n, half, obits] = [0, 1, 2, 3, 4, 5, 6, 7];
  const pg = f.local(), pgl = f.local(), px = f.local(), po = f.local(), pr = f.local(), pdx = f.local(), pd = f.local(), pdr = f.local();
  const gy = f.local(V128), gl = f.local(V128), vx = f.local(V128), vs = f.local(V128), vr = f.local(V128), s = f.local(V128);
  const du = f.local(V128), a = f.local(V128), b = f.local(V128);
  const c = constants(f, obits), { one, zero } = c;
  perBlock(f, () => f.i32(0), () => f.get(n), half, (i) => {
    halvesOf(f, g, i, half, pg, pgl);
    blockOf(f, xb, i, half, 1, px);
    halvesOf(f, o, i, half, po, pr);
    blockOf(f, dxb, i, half, 1, pdx);
    halvesOf(f, dout, i, half, pd, pdr);
  }, (lane, off) => {
    load(f, lane, pg, off, gy);
    load(f, lane, pgl, off, gl);
    load(f, lane, px, off, vx);
    load(f, lane, po, off, vs);
    load(f, lane, pr, off, vr);
    scaleOf(f, vr, s, c);
    f.get(gy).get(s).simd(V.mul).set(du); // mul's gradient of u: g * s
    store(f, lane, pdx, off, du);
    store(f, lane, pd, off, du); // the shift's gradient: add passes it on
    // sigmoid's rule: g_s * (s * (-s + 1)), g_s = g * u (mul's gradient of s), u = xb + shift
    f.get(s).simd(V.neg).get(one).simd(V.add).set(a);
    f.get(s).get(a).simd(V.mul).set(a);
    f.get(gy).get(vx).get(vs).simd(V.add).simd(V.mul).get(a).simd(V.mul).set(a);
    // logSigmoid's: neg, softplus (mulUnary(g, sigmoid, -raw)), neg, from -gls
    f.get(vr).simd(V.neg).set(b);
    f.get(gl).simd(V.neg);
    unaryVec(f, "sigmoid", b, one, zero);
    f.simd(V.mul).simd(V.neg).set(b);
    f.get(a).get(b).simd(V.add).set(a);
    store(f, lane, pdr, off, a);
  });
  return f;
}

/** Channel c = r mod C's bias and scale (at params bias, scale) into vector locals vb, vs, every lane. */
function channelOf(f: Fn, r: number, C: number, bias: number, scale: number, vb: number, vs: number): void {
  const c = f.local();
  f.get(r).get(C).op(op.remU).i32(2).op(op.shl).set(c);
  f.get(bias).get(c).op(op.add).splatLoad(0).set(vb);
  f.get(scale).get(c).op(op.add).splatLoad(0).set(vs);
}

export function channelAffineFwdFn(): Fn {
  const f = new Fn("ca_fwd", Array(8).fill(I32));
  const [x, bias, scale, out, r0, r1, C, HW] = [0, 1, 2, 3, 4, 5, 6, 7];
  const px = f.local(), py = f.local(), vb = f.local(V128), vs = f.local(V128), v = f.local(V128);
  perBlock(f, () => f.get(r0), () => f.get(r1), HW, (r) => {
    channelOf(f, r, C, bias, scale, vb, vs);
    blockOf(f, x, r, HW, 1, px);
    blockOf(f, out, r, HW, 1, py);
  }, (lane, off) => {
    load(f, lane, px, off, v);
    f.get(v).get(vb).simd(V.add).get(vs).simd(V.mul).set(v); // add's (x + bias), then mul's (* scale)
    store(f, lane, py, off, v);
  });
  return f;
}

/** ActNorm's backward over rows [r0, r1): dx = g * scale (mul's gradient of u = x + bias) and t = g * u (mul's gradient of the scale). */
export function channelAffineBwdFn(): Fn {
  const f = new Fn("ca_bwd", Array(10).fill(I32));
  const [g, x, bias, scale, dx, tt, r0, r1, C, HW] = Array.from({ length: 10 }, (_, i) => i);
  const pg = f.local(), px = f.local(), pd = f.local(), pt = f.local();
  const vb = f.local(V128), vs = f.local(V128), vg = f.local(V128), vx = f.local(V128), v = f.local(V128);
  perBlock(f, () => f.get(r0), () => f.get(r1), HW, (r) => {
    channelOf(f, r, C, bias, scale, vb, vs);
    blockOf(f, g, r, HW, 1, pg);
    blockOf(f, x, r, HW, 1, px);
    blockOf(f, dx, r, HW, 1, pd);
    blockOf(f, tt, r, HW, 1, pt);
  }, (lane, off) => {
    load(f, lane, pg, off, vg);
    load(f, lane, px, off, vx);
    f.get(vg).get(vs).simd(V.mul).set(v);
    store(f, lane, pd, off, v);
    f.get(vg).get(vx).get(vb).simd(V.add).simd(V.mul).set(v);
    store(f, lane, pt, off, v);
  });
  return f;
}
