// The wasm backend: the Backend contract over a WasmRuntime (runtime.ts: the module, the memory
// of memory.ts and the thread pool of pool.ts). Matrix products (gemm.ts kernels), the common
// elementwise ops and `where` (elementwise.ts), sums (reduce.ts), strided copies (movement.ts),
// GroupNorm (groupnorm.ts) and the optimisers' update (optim.ts)
// run as SIMD128 kernels on all cores; convolutions in conv.ts; small products, max and the other
// elementwise ops as tight TypeScript loops (js_ops.ts); float64 work on the CPU reference
// backend, whose storages it shares.
import type { Backend, BinaryOp, ConvAct, ConvParams, Data, DerivAct, DType, MatmulSpec, MomentItem, MomentUpdate, ReduceOp, StridedSpec, UnaryOp } from "../backend.ts";
import { CpuBackend } from "../cpu.ts";
import type { KernelName } from "./module.ts";
import type { GemmShape } from "./gemm.ts";
import type { WasmMemory } from "./memory.ts";
import { F32_BITS, KI, PARALLEL_EW, ranges, type Task, type WasmOptions, WasmRuntime } from "./runtime.ts";
import { binaryInto, bstrides, coalesce, matmulInto, outerInto, reduceInto, stridedInto, unaryInto, whereInto } from "./js_ops.ts";
import { SIMD_APPROX, SIMD_BINARY, SIMD_UNARY } from "./elementwise.ts";
import { conv2d, conv2dBias, conv2dInputGrad, conv2dInputGradTimes, conv2dWeightGrad } from "./conv.ts";
import { strided } from "./movement.ts";
import { affineCoupling, affineCouplingGrad, channelAffine, channelAffineGrad } from "./flow.ts";

export type { WasmOptions };
const SIMD_UN = new Set<string>([...SIMD_UNARY, ...SIMD_APPROX]), SIMD_BIN = new Set<string>(SIMD_BINARY), APPROX = new Set<string>(SIMD_APPROX);
/**
 * Products of at most this many multiply-adds (per batch item) run as a TypeScript loop: the
 * Glow's batched 8x8 weight products (64 per call) cost ~0.4 ms each through packing and tasks.
 */
const SMALL_MM = 4096;
/** An element's cost in adds, for PARALLEL_EW: the approximated unary ops (exp 5x, sigmoid 7x on one thread). */
const COST_APPROX = 6;
/** Elementwise ops on fewer elements run as TypeScript loops (js_ops.ts), but the approximated unary ops. */
const SMALL_EW = 64;
/** Reductions over fewer elements run as TypeScript loops; sumSquaresAll must choose as reduce does. */
const SMALL_REDUCE = 256;

/** eps (a double) as the two i32 halves the GroupNorm kernels take. */
function epsBits(eps: number): [number, number] {
  const e = new DataView(new Float64Array([eps]).buffer);
  return [e.getInt32(0, true), e.getInt32(4, true)];
}

export class WasmBackend implements Backend<Data> {
  readonly name = "wasm" as const;
  readonly ref: CpuBackend = new CpuBackend();
  readonly description: string;
  readonly #rt: WasmRuntime;
  readonly #m: WasmMemory;

  private constructor(rt: WasmRuntime) {
    this.#rt = rt;
    this.#m = rt.mem;
    const { shape, threads } = rt;
    this.description = `wasm simd128 ${shape.MR}x${shape.NR}, 4x${shape.NR}, 2x16 and 2x4-dot${shape.fma ? " relaxed-madd" : ""}, ${threads} thread${threads > 1 ? "s" : ""}${rt.winograd ? "" : ", no Winograd"}`;
  }

  static async create(opts: WasmOptions = {}): Promise<WasmBackend> {
    return new WasmBackend(await WasmRuntime.create(opts));
  }

  /** The module, memory and threads the ops run on (for kernels kept in their own files). */
  get runtime(): WasmRuntime {
    return this.#rt;
  }
  get shape(): GemmShape {
    return this.#rt.shape;
  }
  get threads(): number {
    return this.#rt.threads;
  }
  /** Tasks the worker threads have run (0 with one thread): shows the workers work. */
  get workerTasks(): number {
    return this.#rt.pool.workerTasks;
  }
  /** Stops the worker threads; the backend must not be used afterwards. */
  close(): void {
    this.#rt.pool.close();
  }
  /** NaN in every fresh output and scratch block (the parity tests: an unwritten element shows). */
  get poison(): boolean {
    return this.#m.poison;
  }
  set poison(on: boolean) {
    this.#m.poison = on;
  }
  /** When set, wall time per kernel phase (ms) is summed here. */
  get profile(): Map<string, number> | null {
    return this.#rt.profile;
  }
  set profile(p: Map<string, number> | null) {
    this.#rt.profile = p;
  }
  /** A fresh float32 storage of n elements in wasm memory (poisoned when `poison` is on). */
  alloc(n: number): Float32Array {
    return this.#m.out(n);
  }
  /** Bytes of wasm memory handed out so far (pooled blocks are reused, so a steady loop keeps this flat). */
  get memoryBytes(): number {
    return this.#m.bytes;
  }

  // ---- the contract: storage ----
  upload(data: ArrayLike<number>, dtype: DType): Data {
    if (dtype === "float64") return this.ref.upload(data, dtype);
    const out = this.#m.out(data.length);
    out.set(data);
    return out;
  }
  read(s: Data): Promise<Data> {
    return Promise.resolve(s.slice());
  }
  readSync(s: Data): Data {
    return s.slice();
  }
  release(s: Data): void {
    this.#m.release(s);
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
  fill(size: number, value: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.fill(size, value, dtype);
    return this.#m.fill(this.#m.out(size), value);
  }

  // ---- elementwise, reductions, movement: SIMD kernels where written, else tight loops in TypeScript (js_ops.ts); float64 on the reference ----
  unary(op: UnaryOp, x: Data, size: number, dtype: DType, p: number): Data {
    if (dtype === "float64") return this.ref.unary(op, x, size, dtype, p);
    const out = this.#m.out(size);
    // Small arrays take the TypeScript loop, except the ops the kernels compute with a polynomial
    // exp (a few ulp from Math's): those always run the kernel (a short array as its tail, one lane
    // of the vector code), so an element's value never depends on the array's length, i.e. on how
    // many other inputs share its batch (src/ood/loop.ts: the same input, the same answer).
    if (!SIMD_UN.has(op) || (size < SMALL_EW && !APPROX.has(op))) {
      unaryInto(op, x, out, size, p);
      return out;
    }
    return this.#unaryPhase(KI[`un_${op}` as KernelName], x, out, size, p, null, APPROX.has(op) ? COST_APPROX : 1);
  }
  /**
   * n floats as vector ranges for the threads, [first float, count]: whole vectors, the last range
   * taking the tail; under 4 floats one range, all tail.
   */
  #floatRanges(n: number, cost = 1): [number, number][] {
    if (n < 4) return [[0, n]];
    return ranges(n >> 2, this.#rt.ewParts(n * cost)).map(([a, b]) => [a * 4, (b === n >> 2 ? n : b * 4) - a * 4]);
  }
  /** The phase of a un_/mu_ kernel over size elements of x (and of g for mu_) into out: vector ranges per thread. */
  #unaryPhase(fn: number, x: Data, out: Float32Array, size: number, p: number, g: Data | null, cost: number): Data {
    try {
      const xo = this.#m.addr(x), go = g ? this.#m.addr(g) : 0, oo = this.#m.dst(out);
      const tasks: Task[] = this.#floatRanges(size, cost).map(([f, k]) => [fn, xo + f * 4, oo + f * 4, k, F32_BITS(p), go + f * 4]);
      this.#rt.pool.run(tasks, size * cost >= PARALLEL_EW);
      return this.#m.land(out, oo);
    } finally {
      this.#m.endOp();
    }
  }
  /**
   * g * op(x) in one pass for the approximated ops (mu_<op>), which the composed path computes by
   * their kernel at every length: the same values bit for bit; null (composed) for the others and float64.
   */
  mulUnary(g: Data, op: UnaryOp, x: Data, size: number, p: number, dtype: DType): Data | null {
    if (dtype === "float64" || !APPROX.has(op)) return null;
    return this.#unaryPhase(KI[`mu_${op}` as KernelName], x, this.#m.out(size), size, p, g, COST_APPROX);
  }
  affineCoupling(xb: Data, o: Data, n: number, half: number, offset: number, dtype: DType): Data | null {
    return dtype === "float64" ? null : affineCoupling(this.#rt, xb, o, n, half, offset);
  }
  affineCouplingGrad(g: Data, xb: Data, o: Data, n: number, half: number, offset: number, dtype: DType): { dxb: Data; do: Data } | null {
    return dtype === "float64" ? null : affineCouplingGrad(this.#rt, g, xb, o, n, half, offset);
  }
  channelAffine(x: Data, bias: Data, scale: Data, N: number, C: number, HW: number, dtype: DType): Data | null {
    return dtype === "float64" ? null : channelAffine(this.#rt, x, bias, scale, N, C, HW);
  }
  channelAffineGrad(g: Data, x: Data, bias: Data, scale: Data, N: number, C: number, HW: number, dtype: DType): { dx: Data; sumDx: Data; sumT: Data } | null {
    return dtype === "float64" ? null : channelAffineGrad(this.#rt, g, x, bias, scale, N, C, HW);
  }
  binary(op: BinaryOp, a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    if (dtype === "float64") return this.ref.binary(op, a, aShape, b, bShape, outShape, dtype);
    const n = outShape.reduce((p, q) => p * q, 1);
    const out = this.#m.out(n);
    const c = SIMD_BIN.has(op) && n >= SMALL_EW ? coalesce(outShape, [aShape, bShape].map((s) => bstrides(s, outShape))) : null;
    if (!c || c.shape.length > 3) {
      binaryInto(op, a, aShape, b, bShape, outShape, out);
      return out;
    }
    try {
      const ao = this.#m.addr(a), bo = this.#m.addr(b), fn = KI[`bin_${op}` as KernelName], oo = this.#m.dst(out);
      const pad = 3 - c.shape.length;
      const D = [...Array(pad).fill(1), ...c.shape], sa = [...Array(pad).fill(0), ...c.strides[0]].map((s) => s * 4), sb = [...Array(pad).fill(0), ...c.strides[1]].map((s) => s * 4);
      // split the outermost dimension with more than one index among the threads
      const d = D[0] > 1 ? 0 : 1;
      const parts = this.#rt.ewParts(n);
      const tasks: Task[] = ranges(D[d], parts).map(([lo, hi]) => {
        const Dd = [...D];
        Dd[d] = hi - lo;
        const inner = d === 0 ? D[1] * D[2] : D[2]; // d = 1 only when D0 = 1
        return [fn, ao + lo * sa[d], sa[0], sa[1], sa[2], bo + lo * sb[d], sb[0], sb[1], sb[2], oo + lo * inner * 4, Dd[0], Dd[1], Dd[2]];
      });
      this.#rt.pool.run(tasks, n >= PARALLEL_EW);
      return this.#m.land(out, oo);
    } finally {
      this.#m.endOp();
    }
  }
  where(c: Data, cShape: readonly number[], a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    if (dtype === "float64") return this.ref.where(c, cShape, a, aShape, b, bShape, outShape, dtype);
    const n = outShape.reduce((p, q) => p * q, 1);
    const out = this.#m.out(n);
    const cs = n >= SMALL_EW ? coalesce(outShape, [cShape, aShape, bShape].map((s) => bstrides(s, outShape))) : null;
    if (!cs || cs.shape.length > 3) {
      whereInto(c, cShape, a, aShape, b, bShape, outShape, out);
      return out;
    }
    return this.#rt.op(() => {
      const m = this.#m, co = m.addr(c), ao = m.addr(a), bo = m.addr(b), oo = m.dst(out);
      const pad = 3 - cs.shape.length;
      const D = [...Array(pad).fill(1), ...cs.shape];
      const [sc, sa, sb] = cs.strides.map((st) => [...Array(pad).fill(0), ...st].map((s) => s * 4));
      const d = D[0] > 1 ? 0 : 1, inner = d === 0 ? D[1] * D[2] : D[2];
      const tasks: Task[] = ranges(D[d], this.#rt.ewParts(n)).map(([lo, hi]) => {
        const Dd = [...D];
        Dd[d] = hi - lo;
        return [KI.where, co + lo * sc[d], sc[0], sc[1], sc[2], ao + lo * sa[d], sa[0], sa[1], sa[2], bo + lo * sb[d], sb[0], sb[1], sb[2], oo + lo * inner * 4, Dd[0], Dd[1], Dd[2]];
      });
      this.#rt.pool.run(tasks, n >= PARALLEL_EW);
      return m.land(out, oo);
    });
  }
  reduce(op: ReduceOp, x: Data, outer: number, R: number, inner: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.reduce(op, x, outer, R, inner, dtype);
    if (op === "max" || outer * R * inner < SMALL_REDUCE) {
      const out = this.#m.out(outer * inner);
      reduceInto(op, x, outer, R, inner, out);
      return out;
    }
    const m = this.#m, rt = this.#rt;
    return rt.op(() => {
      const out = m.out(outer * inner);
      const xo = m.addr(x), oo = m.dst(out);
      const fn = op === "sum" ? KI.red_sum : KI.red_sumsq;
      const parts = this.#rt.ewParts(outer * R * inner);
      const tasks: Task[] = [];
      if (outer >= parts || inner < 8) { // by rows
        for (const [a, b] of ranges(outer, parts)) tasks.push([fn, xo + a * R * inner * 4, oo + a * inner * 4, b - a, R, inner, inner]);
      } else { // few rows: by blocks of four columns
        for (const [a, b] of ranges(Math.ceil(inner / 4), parts)) {
          const c0 = a * 4, c1 = Math.min(inner, b * 4);
          tasks.push([fn, xo + c0 * 4, oo + c0 * 4, outer, R, c1 - c0, inner]);
        }
      }
      rt.pool.run(tasks, parts > 1);
      return m.land(out, oo);
    });
  }
  strided(x: Data, spec: StridedSpec, dtype: DType): Data {
    if (dtype === "float64") return this.ref.strided(x, spec, dtype);
    const total = spec.outShape.reduce((p, q) => p * q, 1);
    if (total >= 64) {
      const r = strided(this.#rt, x as Float32Array, spec);
      if (r) return r;
    }
    const out = this.#m.out(total);
    stridedInto(x, spec, out);
    return out;
  }
  concat(parts: Data[], blocks: readonly number[], outer: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.concat(parts, blocks, outer, dtype);
    const m = this.#m, rt = this.#rt;
    const total = blocks.reduce((a, b) => a + b, 0), n = outer * total;
    const out = m.out(n);
    // each part's [outer][block] rows into their columns of out [outer][total]: one strided copy
    // per part (a TypeScript loop of subarray views cost the Glow's feature pass ~0.1 ms a call),
    // its rows split among the threads when the whole is large
    return rt.op(() => {
      const oo = m.dst(out), split = this.#rt.ewParts(n), tasks: Task[] = [];
      let off = 0;
      parts.forEach((x, i) => {
        const blk = blocks[i];
        if (blk > 0) {
          const xo = m.addr(x);
          for (const [a, b] of ranges(outer, split)) tasks.push([KI.copy3d, xo + a * blk * 4, 0, blk * 4, 4, oo + (a * total + off) * 4, 0, total * 4, 4, 1, b - a, blk]);
        }
        off += blk;
      });
      rt.pool.run(tasks, split > 1);
      return m.land(out, oo);
    });
  }

  // ---- GroupNorm (groupnorm.ts): rows split among the threads ----
  groupNorm(x: Data, rows: number, M: number, eps: number, dtype: DType): { y: Data; rstd: Data } {
    if (dtype === "float64") return this.ref.groupNorm(x, rows, M, eps, dtype);
    const m = this.#m, rt = this.#rt;
    const y = m.out(rows * M), rstd = m.out(rows);
    return rt.op(() => {
      const xo = m.addr(x), yo = m.dst(y), ro = m.dst(rstd);
      const [lo, hi] = epsBits(eps), parts = this.#rt.ewParts(rows * M);
      rt.pool.run(ranges(rows, parts).map(([a, b]) => [KI.gn_fwd, xo, yo, ro, a, b, M, lo, hi]), parts > 1);
      return { y: m.land(y, yo), rstd: m.land(rstd, ro) };
    });
  }
  /**
   * groupNorm, the per-channel affine and the activation as one phase: per range of rows, gn_fwd
   * then ga_<act> over the same rows' channel planes (one job: one thread, the rows still in its
   * cache), where the composed ops made three more passes over the whole tensor.
   */
  groupNormAffine(x: Data, N: number, C: number, HW: number, groups: number, eps: number, w: Data, b: Data, act: ConvAct, dtype: DType): { y: Data; rstd: Data; pre: Data; out: Data | null } | null {
    if (dtype === "float64") return null;
    const m = this.#m, rt = this.#rt;
    const rows = N * groups, cg = C / groups, M = cg * HW;
    const y = m.out(rows * M), rstd = m.out(rows), pre = m.out(rows * M), out = act === "none" ? null : m.out(rows * M);
    return rt.op(() => {
      const xo = m.addr(x), wo = m.addr(w), bo = m.addr(b), yo = m.dst(y), ro = m.dst(rstd), po = m.dst(pre), oo = out ? m.dst(out) : 0;
      const [lo, hi] = epsBits(eps), parts = this.#rt.ewParts(rows * M), jl = rt.list(), ga = KI[`ga_${act}`];
      for (const [a, z] of ranges(rows, parts)) {
        jl.task(KI.gn_fwd, xo, yo, ro, a, z, M, lo, hi);
        const at = a * M * 4;
        jl.task(ga, yo + at, HW * 4, 0, po + at, HW * 4, 0, (z - a) * cg, 1, HW, oo + at, wo, bo, C, a * cg);
        jl.endJob();
      }
      rt.pool.runList(jl, parts > 1);
      return { y: m.land(y, yo), rstd: m.land(rstd, ro), pre: m.land(pre, po), out: out && m.land(out, oo) };
    });
  }
  groupNormGrad(g: Data, y: Data, rstd: Data, rows: number, M: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.groupNormGrad(g, y, rstd, rows, M, dtype);
    const m = this.#m, rt = this.#rt;
    const dx = m.out(rows * M);
    return rt.op(() => {
      const go = m.addr(g), yo = m.addr(y), ro = m.addr(rstd), oo = m.dst(dx);
      const parts = this.#rt.ewParts(rows * M);
      rt.pool.run(ranges(rows, parts).map(([a, b]) => [KI.gn_bwd, go, yo, ro, oo, a, b, M]), parts > 1);
      return m.land(dx, oo);
    });
  }

  // ---- the optimisers' update (optim.ts) ----
  momentUpdate(items: readonly MomentItem<Data>[], u: MomentUpdate, dtype: DType): { p: Data; m: Data; v: Data }[] | null {
    if (dtype === "float64") return null;
    const m = this.#m, rt = this.#rt;
    const outs = items.map(({ n }) => ({ p: m.out(n), m: m.out(n), v: m.out(n) }));
    return rt.op(() => {
      const hp = m.tmp(9);
      m.f32.set([u.kind === "adam" ? 0 : 1, u.b1, u.omb1, u.b2, u.omb2, u.invC2, u.eps, u.lrc, u.wd], hp / 4);
      // every parameter's ranges in one phase: on the threads where a parameter is large enough
      // to be split among them (as a single one would be), else on the caller
      const tasks: Task[] = [], parallel = items.some(({ n }) => n >= PARALLEL_EW);
      const os = items.map(({ p, g, m: mo, v, n }, k) => {
        const a = [p, g, mo, v].map((d) => m.addr(d)), o = [outs[k].p, outs[k].m, outs[k].v].map((d) => m.dst(d));
        for (const [f, c] of this.#floatRanges(n)) tasks.push([KI.moment, a[0] + f * 4, a[1] + f * 4, a[2] + f * 4, a[3] + f * 4, o[0] + f * 4, o[1] + f * 4, o[2] + f * 4, c, hp]);
        return o;
      });
      rt.pool.run(tasks, parallel);
      return outs.map((r, k) => ({ p: m.land(r.p, os[k][0]), m: m.land(r.m, os[k][1]), v: m.land(r.v, os[k][2]) }));
    });
  }
  /**
   * The tensors' sums of squares as reduce("sumsq") makes each (a TypeScript loop under
   * SMALL_REDUCE elements, else one red_sumsq task), the large ones in one phase, then added in order in f32
   * (binary add's values on scalars).
   */
  sumSquaresAll(xs: readonly Data[], ns: readonly number[], dtype: DType): Data | null {
    if (dtype === "float64" || xs.length === 0) return null;
    const m = this.#m, rt = this.#rt;
    const sums = new Float32Array(xs.length), out = m.out(1);
    rt.op(() => {
      const big = ns.map((n, i) => n >= SMALL_REDUCE ? i : -1).filter((i) => i >= 0);
      // one task a tensor (as reduce runs it), on the threads where there are several large ones
      const at = m.tmp(Math.max(1, big.length)), parallel = big.filter((i) => ns[i] >= PARALLEL_EW).length > 1;
      rt.pool.run(big.map((i, k) => [KI.red_sumsq, m.addr(xs[i]), at + k * 4, 1, ns[i], 1, 1]), parallel);
      big.forEach((i, k) => { sums[i] = m.f32[at / 4 + k]; });
      ns.forEach((n, i) => { if (n < SMALL_REDUCE) reduceInto("sumsq", xs[i], 1, n, 1, sums.subarray(i, i + 1)); });
    });
    let sq = sums[0];
    for (let i = 1; i < sums.length; i++) sq = Math.fround(sq + sums[i]);
    out[0] = sq;
    return out;
  }
  /** Each tensor times s: under SMALL_EW elements binary mul's TypeScript loop (binaryInto), else un_mulScalar's phase (the same f32 products). */
  scaleAll(xs: readonly Data[], ns: readonly number[], s: Data, dtype: DType): Data[] | null {
    if (dtype === "float64") return null;
    const m = this.#m, rt = this.#rt, v = (s as Float32Array)[0];
    const outs = ns.map((n) => m.out(n));
    return rt.op(() => {
      const tasks: Task[] = [], parallel = ns.some((n) => n >= PARALLEL_EW), fn = KI.un_mulScalar, bits = F32_BITS(v);
      const os = ns.map((n, i) => {
        if (n < SMALL_EW) {
          binaryInto("mul", xs[i], [n], s, [], [n], outs[i]);
          return -1;
        }
        const xo = m.addr(xs[i]), oo = m.dst(outs[i]);
        for (const [f, c] of this.#floatRanges(n)) tasks.push([fn, xo + f * 4, oo + f * 4, c, bits]);
        return oo;
      });
      rt.pool.run(tasks, parallel);
      return outs.map((o, i) => os[i] < 0 ? o : m.land(o, os[i]));
    });
  }

  // ---- matrix products ----
  matmul(a: Data, b: Data, s: MatmulSpec, dtype: DType): Data {
    if (dtype === "float64") return this.ref.matmul(a, b, s, dtype);
    const { batchA, batchB, M, K, N, transA, transB } = s;
    const batch = Math.max(batchA, batchB);
    if (K === 0 || M * N === 0) return this.fill(batch * M * N, 0, dtype);
    // one step of k: an outer product per item, A's M floats by B's N whatever the transposes (the
    // per-group weight gradients of a linear layer), each value the product rounded once: a
    // broadcast multiply, or where small a loop with the same values bit for bit (where the
    // product loop below would skip a zero of A: a zero's sign, and NaN for 0 x Inf as IEEE has it)
    if (K === 1) {
      if (batch * M * N > SMALL_MM) return this.binary("mul", a, [batchA, M, 1], b, [batchB, 1, N], [batch, M, N], dtype);
      const out = this.#m.out(batch * M * N);
      outerInto(a, b, s, out);
      return out;
    }
    if (M * K * N <= SMALL_MM) { // packing and a task per product cost more than the product
      const out = this.#m.out(batch * M * N);
      matmulInto(a, b, s, out);
      return out;
    }
    const { NR } = this.#rt.shape;
    const R = this.#rt.rows(M), MR = R.MR;
    const rp = Math.ceil(M / MR), cp = Math.ceil(N / NR), ldc = cp * NR;
    try {
      const ao = this.#m.addr(a), bo = this.#m.addr(b);
      const apB = rp * K * MR * 4, bpB = cp * K * NR * 4, cB = rp * MR * ldc * 4;
      const ap = this.#m.tmp(apB / 4 * batchA), bp = this.#m.tmp(bpB / 4 * batchB);
      const out = this.#m.out(batch * M * N), oo = this.#m.dst(out);
      const direct = batch === 1 && ldc === N && rp * MR === M;
      const c = direct ? oo : this.#m.tmp(cB / 4 * batch);
      const work = batch * M * N * K;
      // A(m, k) and B(k, n) as byte strides of the stored layouts.
      const [ask, asn] = transA ? [M * 4, 4] : [4, K * 4];
      const [bsk, bsn] = transB ? [4, K * 4] : [N * 4, 4];
      const pack: Task[] = [];
      for (let i = 0; i < batchA; i++) {
        for (const [j0, j1] of this.#rt.split(rp, 1)) pack.push([R.packA, ao + i * M * K * 4, ask, asn, K, M, j0, j1, ap + i * apB]);
      }
      for (let i = 0; i < batchB; i++) {
        for (const [j0, j1] of this.#rt.split(cp, 1)) pack.push([KI.pack_b, bo + i * K * N * 4, bsk, bsn, K, N, j0, j1, bp + i * bpB]);
      }
      this.#rt.run(pack, work, "mm pack");
      const mm: Task[] = [];
      for (let i = 0; i < batch; i++) {
        const pa = ap + (batchA === 1 ? 0 : i) * apB, pb = bp + (batchB === 1 ? 0 : i) * bpB, pc = c + i * cB;
        const byCols = cp >= rp;
        for (const [x0, x1] of this.#rt.split(byCols ? cp : rp, batch > 1 ? 1 : 3)) {
          const [i0, i1, j0, j1] = byCols ? [0, rp, x0, x1] : [x0, x1, 0, cp];
          mm.push([R.pp, pa, 0, pb, 0, pc, ldc, K, i0, i1, j0, j1, 0, 1, 0, 0]);
        }
      }
      this.#rt.run(mm, work, "mm gemm");
      if (!direct) this.#rt.run([[KI.copy3d, c, cB, ldc * 4, 4, oo, M * N * 4, N * 4, 4, batch, M, N]], 0);
      return this.#m.land(out, oo);
    } finally {
      this.#m.endOp();
    }
  }

  // ---- convolutions (conv.ts) ----
  conv2d(x: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2d(x, w, p, dtype);
    return conv2d(this.#rt, x, w, p);
  }
  conv2dBias(x: Data, w: Data, b: Data, p: ConvParams, act: ConvAct, dtype: DType): { pre: Data | null; y: Data | null } | null {
    if (dtype === "float64") return null;
    return conv2dBias(this.#rt, x, w, b, p, act);
  }
  conv2dInputGrad(gy: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2dInputGrad(gy, w, p, dtype);
    return conv2dInputGrad(this.#rt, gy, w, p);
  }
  conv2dInputGradTimes(gy: Data, w: Data, p: ConvParams, act: DerivAct, z: Data, dtype: DType): Data | null {
    if (dtype === "float64") return null;
    return conv2dInputGradTimes(this.#rt, gy, w, p, act, z);
  }
  conv2dWeightGrad(x: Data, gy: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2dWeightGrad(x, gy, p, dtype);
    return conv2dWeightGrad(this.#rt, x, gy, p);
  }
}

export function createWasmBackend(opts: WasmOptions = {}): Promise<WasmBackend> {
  return WasmBackend.create(opts);
}
