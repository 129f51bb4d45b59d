// The wasm backend: matrix products and convolutions (gemm.ts) and the common elementwise ops
// (elementwise.ts) as SIMD128 kernels on all cores (pool.ts); reductions, movement and the other
// elementwise ops as tight TypeScript loops (js_ops.ts); float64 work on the CPU reference
// backend, whose storages it shares. A storage is a Float32Array or Float64Array: a view of the
// shared wasm memory (what this backend writes, pooled by size class and returned by release), or
// an ordinary array (float64 results, data made elsewhere, and every storage when the memory
// cannot be shared), copied into the memory when a kernel needs it.
import type { Backend, BinaryOp, ConvParams, Data, DType, MatmulSpec, ReduceOp, StridedSpec, UnaryOp } from "../backend.ts";
import { CpuBackend } from "../cpu.ts";
import { buildModule, KERNELS, type KernelName, MAX_PAGES } from "./module.ts";
import type { GemmShape } from "./gemm.ts";
import { Pool, type Task } from "./pool.ts";
import { binaryInto, coalesce, reduceInto, stridedInto, unaryInto, whereInto } from "./js_ops.ts";
import { SIMD_APPROX, SIMD_BINARY, SIMD_UNARY } from "./elementwise.ts";
import { groupNormGradInto, groupNormInto } from "./groupnorm.ts";

const KI = Object.fromEntries(KERNELS.map((n, i) => [n, i])) as Record<KernelName, number>;
const F32_BITS = (v: number) => new Int32Array(new Float32Array([v]).buffer)[0];
const SIMD_UN = new Set<string>([...SIMD_UNARY, ...SIMD_APPROX]), SIMD_BIN = new Set<string>(SIMD_BINARY);
/** Elementwise ops of at least this many elements run on all threads. */
const PARALLEL_EW = 1 << 16;
const PAGE = 65536;
/** Below this many multiply-adds a product runs on the calling thread alone (waking workers costs more). */
const PARALLEL_MIN = 1 << 18;

/** [from, to) ranges splitting n items into at most `parts` nearly equal pieces. */
function ranges(n: number, parts: number): [number, number][] {
  const p = Math.max(1, Math.min(n, parts));
  const out: [number, number][] = [];
  for (let i = 0; i < p; i++) {
    const a = Math.floor((i * n) / p), b = Math.floor(((i + 1) * n) / p);
    if (b > a) out.push([a, b]);
  }
  return out;
}

/** Strides of shape seen from outShape (numpy broadcasting: 0 where broadcast). */
function bstrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const r = outShape.length, off = r - shape.length;
  const st = new Array<number>(r).fill(0);
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    st[d + off] = shape[d] === 1 ? 0 : s;
    s *= shape[d];
  }
  return st;
}

const sizeClass = (bytes: number) => Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));

interface PhaseLayout {
  cg: number; Hph: number; Wph: number; Q: number; P: number; tab: Int32Array; cpan: number; XB: number;
  /** Unpadded stride 1: the input is its own phase block (no copy), blocks [n][g] of cg*H*W. */
  inPlace: boolean;
}

export interface WasmOptions {
  /** Threads including the caller (default: navigator.hardwareConcurrency, 1 without shared memory). */
  threads?: number;
  /** Use a shared memory (default: where SharedArrayBuffer is available and, in a browser, the page is cross-origin isolated). */
  shared?: boolean;
}

export class WasmBackend implements Backend<Data> {
  readonly name = "wasm" as const;
  readonly ref = new CpuBackend();
  readonly description: string;
  readonly shape: GemmShape;
  readonly threads: number;
  readonly #mem: WebAssembly.Memory;
  readonly #pool: Pool;
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  readonly #free = new Map<number, number[]>();
  #top = 1024; // offset 0 stays unused, so no storage sits at address 0
  #f32: Float32Array;
  /** Scratch blocks of the op in progress, freed when it ends. */
  #scratch: [number, number][] = [];

  /**
   * Whether storages live in the wasm memory. A shared memory grows in place (views made before
   * stay valid); a non-shared one detaches its old buffer when it grows, so there storages are
   * ordinary arrays and the kernels' results are copied out of scratch blocks (#dst, #land).
   */
  readonly #resident: boolean;

  private constructor(mem: WebAssembly.Memory, pool: Pool, shape: GemmShape) {
    this.#mem = mem;
    this.#resident = typeof SharedArrayBuffer !== "undefined" && mem.buffer instanceof SharedArrayBuffer;
    this.#pool = pool;
    this.shape = shape;
    this.threads = pool.threads;
    this.#f32 = this.#view();
    this.description = `wasm simd128 ${shape.MR}x${shape.NR} and 4x${shape.NR}${shape.fma ? " relaxed-madd" : ""}, ${pool.threads} thread${pool.threads > 1 ? "s" : ""}`;
  }

  static async create(opts: WasmOptions = {}): Promise<WasmBackend> {
    const canShare = (opts.shared ?? true) && typeof SharedArrayBuffer !== "undefined" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
    let hc = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
    if (!hc && (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) {
      const spec = "node:os"; // Node 20 has no navigator (a variable: browser bundles must not resolve it)
      hc = await import(spec).then((os) => os.availableParallelism?.() ?? os.cpus().length).catch(() => 1);
    }
    hc ??= 1;
    const threads = canShare ? Math.max(1, opts.threads ?? hc) : 1;
    const { module, shape } = buildModule(canShare);
    const mem = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: canShare } as WebAssembly.MemoryDescriptor);
    const inst = new WebAssembly.Instance(module, { env: { mem } });
    const pool = await Pool.create(module, mem, [...KERNELS], inst, threads);
    return new WasmBackend(mem, pool, shape);
  }

  /** Tasks the worker threads have run (0 with one thread): shows the workers work. */
  get workerTasks(): number {
    return this.#pool.workerTasks;
  }

  /** Stops the worker threads; the backend must not be used afterwards. */
  close(): void {
    this.#pool.close();
  }

  // ---- memory ----
  #view(): Float32Array {
    const buf = this.#mem.buffer;
    this.#buffers.add(buf);
    return new Float32Array(buf);
  }
  /** A block of at least `bytes` (a power of two, 256-byte aligned); its address. */
  #alloc(bytes: number): number {
    const cls = sizeClass(bytes);
    const list = this.#free.get(cls);
    if (list?.length) return list.pop()!;
    const at = this.#top;
    this.#top += cls;
    const need = Math.ceil(this.#top / PAGE) - this.#mem.buffer.byteLength / PAGE;
    if (need > 0) {
      this.#mem.grow(need);
      this.#f32 = this.#view();
    }
    return at;
  }
  #freeBlock(at: number, bytes: number): void {
    const cls = sizeClass(bytes);
    let list = this.#free.get(cls);
    if (!list) this.#free.set(cls, list = []);
    list.push(at);
  }
  /** A scratch block for the current op (freed by #endOp). */
  #tmp(floats: number): number {
    const at = this.#alloc(floats * 4 + 64); // slack: vector loads may run past the last element
    this.#scratch.push([at, floats * 4 + 64]);
    if (this.poison) this.#f32.fill(NaN, at / 4, at / 4 + floats);
    this.#f32.fill(0, at / 4 + floats, at / 4 + floats + 16); // finite slack (see #out)
    return at;
  }
  #endOp(): void {
    for (const [at, b] of this.#scratch) this.#freeBlock(at, b);
    this.#scratch = [];
  }
  /** A new float32 storage in wasm memory. */
  #out(n: number): Float32Array {
    if (!this.#resident) {
      const v = new Float32Array(n);
      return this.poison ? v.fill(NaN) : v;
    }
    // Slack, zeroed: a kernel reading a storage in place may run up to a vector past its end, and
    // what it reads there must be finite (a weight gradient multiplies it by a zero).
    const at = this.#alloc(n * 4 + 64);
    this.#f32.fill(0, at / 4 + n, at / 4 + n + 16);
    const v = new Float32Array(this.#mem.buffer, at, n);
    return this.poison ? v.fill(NaN) : v;
  }
  /** NaN in every fresh output and scratch block (the parity tests: an unwritten element shows). */
  poison = false;
  /** A fresh float32 storage of n elements in wasm memory (poisoned when `poison` is on). */
  alloc(n: number): Float32Array {
    return this.#out(n);
  }
  /** Bytes of wasm memory handed out so far (pooled blocks are reused, so a steady loop keeps this flat). */
  get memoryBytes(): number {
    return this.#top;
  }
  #inMem(d: Data): boolean {
    return d instanceof Float32Array && this.#buffers.has(d.buffer);
  }
  /** The address of d's data in wasm memory (copied into a scratch block if it lives elsewhere). */
  #addr(d: Data): number {
    if (this.#inMem(d)) return d.byteOffset;
    const at = this.#tmp(d.length);
    this.#f32.set(d, at / 4);
    return at;
  }
  #zero(at: number, floats: number): void {
    this.#f32.fill(0, at / 4, at / 4 + floats);
  }
  #run(tasks: Task[], work: number, label = ""): void {
    if (!this.profile) return this.#pool.run(tasks, work >= PARALLEL_MIN);
    const t0 = performance.now();
    this.#pool.run(tasks, work >= PARALLEL_MIN);
    this.profile.set(label, (this.profile.get(label) ?? 0) + performance.now() - t0);
  }
  /** When set, wall time per kernel phase (ms) is summed here. */
  profile: Map<string, number> | null = null;
  /**
   * The row block for a product with M rows: 6 (the faster kernel) unless 4 wastes fewer padded
   * rows by more than 6's speed-up (measured 59.8 vs 52.5 GFLOP/s, bench/README.md): M = 4, 8, 2, ...
   */
  #rows(M: number): { MR: number; pp: number; pt: number; tp: number; packA: number } {
    const six = Math.ceil(M / 6) * 6 / 59.8, four = Math.ceil(M / 4) * 4 / 52.5;
    return four < six ? { MR: 4, pp: KI.gemm_pp4, pt: KI.gemm_pt4, tp: KI.gemm_tp4, packA: KI.pack_a4 }
      : { MR: 6, pp: KI.gemm_pp, pt: KI.gemm_pt, tp: KI.gemm_tp, packA: KI.pack_a };
  }
  /** Splits n panels into tasks for the threads (a few per thread, for balance). */
  #split(n: number, perThread = 3): [number, number][] {
    return ranges(n, this.threads === 1 ? 1 : this.threads * perThread);
  }

  // ---- the contract: storage ----
  upload(data: ArrayLike<number>, dtype: DType): Data {
    if (dtype === "float64") return this.ref.upload(data, dtype);
    const out = this.#out(data.length);
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
    if (this.#inMem(s)) this.#freeBlock(s.byteOffset, s.byteLength + 64);
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
  fill(size: number, value: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.fill(size, value, dtype);
    return this.#out(size).fill(value);
  }

  // ---- elementwise, reductions, movement: tight loops in TypeScript (js_ops.ts); float64 on the reference ----
  unary(op: UnaryOp, x: Data, size: number, dtype: DType, p: number): Data {
    if (dtype === "float64") return this.ref.unary(op, x, size, dtype, p);
    const out = this.#out(size);
    if (!SIMD_UN.has(op) || size < 64) {
      unaryInto(op, x, out, size, p);
      return out;
    }
    try {
      const xo = this.#addr(x), fn = KI[`un_${op}` as KernelName], oo = this.#dst(out);
      const tasks: Task[] = ranges(size >> 2, size >= PARALLEL_EW ? this.threads * 2 : 1).map(([a, b]) => {
        const end = b === size >> 2 ? size : b * 4; // the last range takes the tail
        return [fn, xo + a * 16, oo + a * 16, end - a * 4, F32_BITS(p)];
      });
      this.#pool.run(tasks, size >= PARALLEL_EW);
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }
  binary(op: BinaryOp, a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    if (dtype === "float64") return this.ref.binary(op, a, aShape, b, bShape, outShape, dtype);
    const n = outShape.reduce((p, q) => p * q, 1);
    const out = this.#out(n);
    const c = SIMD_BIN.has(op) && n >= 64 ? coalesce(outShape, [aShape, bShape].map((s) => bstrides(s, outShape))) : null;
    if (!c || c.shape.length > 3) {
      binaryInto(op, a, aShape, b, bShape, outShape, out);
      return out;
    }
    try {
      const ao = this.#addr(a), bo = this.#addr(b), fn = KI[`bin_${op}` as KernelName], oo = this.#dst(out);
      const pad = 3 - c.shape.length;
      const D = [...Array(pad).fill(1), ...c.shape], sa = [...Array(pad).fill(0), ...c.strides[0]].map((s) => s * 4), sb = [...Array(pad).fill(0), ...c.strides[1]].map((s) => s * 4);
      // split the outermost dimension with more than one index among the threads
      const d = D[0] > 1 ? 0 : 1;
      const parts = n >= PARALLEL_EW ? this.threads * 2 : 1;
      const tasks: Task[] = ranges(D[d], parts).map(([lo, hi]) => {
        const Dd = [...D];
        Dd[d] = hi - lo;
        const inner = d === 0 ? D[1] * D[2] : D[2]; // d = 1 only when D0 = 1
        return [fn, ao + lo * sa[d], sa[0], sa[1], sa[2], bo + lo * sb[d], sb[0], sb[1], sb[2], oo + lo * inner * 4, Dd[0], Dd[1], Dd[2]];
      });
      this.#pool.run(tasks, n >= PARALLEL_EW);
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }
  where(c: Data, cShape: readonly number[], a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    if (dtype === "float64") return this.ref.where(c, cShape, a, aShape, b, bShape, outShape, dtype);
    const out = this.#out(outShape.reduce((p, q) => p * q, 1));
    whereInto(c, cShape, a, aShape, b, bShape, outShape, out);
    return out;
  }
  reduce(op: ReduceOp, x: Data, outer: number, R: number, inner: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.reduce(op, x, outer, R, inner, dtype);
    const out = this.#out(outer * inner);
    reduceInto(op, x, outer, R, inner, out);
    return out;
  }
  strided(x: Data, spec: StridedSpec, dtype: DType): Data {
    if (dtype === "float64") return this.ref.strided(x, spec, dtype);
    const out = this.#out(spec.outShape.reduce((p, q) => p * q, 1));
    stridedInto(x, spec, out);
    return out;
  }
  concat(parts: Data[], blocks: readonly number[], outer: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.concat(parts, blocks, outer, dtype);
    const total = blocks.reduce((a, b) => a + b, 0);
    const out = this.#out(outer * total);
    let off = 0;
    parts.forEach((x, i) => {
      const blk = blocks[i];
      if (outer === 1) out.set(x.subarray(0, blk), off);
      else for (let o = 0; o < outer; o++) out.set(x.subarray(o * blk, (o + 1) * blk), o * total + off);
      off += blk;
    });
    return out;
  }

  // ---- GroupNorm (groupnorm.ts) ----
  groupNorm(x: Data, rows: number, M: number, eps: number, dtype: DType): { y: Data; rstd: Data } {
    if (dtype === "float64") return this.ref.groupNorm(x, rows, M, eps, dtype);
    const y = this.#out(rows * M), rstd = this.#out(rows);
    groupNormInto(x, rows, M, eps, y, rstd);
    return { y, rstd };
  }
  groupNormGrad(g: Data, y: Data, rstd: Data, rows: number, M: number, dtype: DType): Data {
    if (dtype === "float64") return this.ref.groupNormGrad(g, y, rstd, rows, M, dtype);
    const dx = this.#out(rows * M);
    groupNormGradInto(g, y, rstd, rows, M, dx);
    return dx;
  }

  // ---- matrix products ----
  matmul(a: Data, b: Data, s: MatmulSpec, dtype: DType): Data {
    if (dtype === "float64") return this.ref.matmul(a, b, s, dtype);
    const { batchA, batchB, M, K, N, transA, transB } = s;
    const batch = Math.max(batchA, batchB);
    if (K === 0 || M * N === 0) return this.fill(batch * M * N, 0, dtype);
    const { NR } = this.shape;
    const R = this.#rows(M), MR = R.MR;
    const rp = Math.ceil(M / MR), cp = Math.ceil(N / NR), ldc = cp * NR;
    try {
      const ao = this.#addr(a), bo = this.#addr(b);
      const apB = rp * K * MR * 4, bpB = cp * K * NR * 4, cB = rp * MR * ldc * 4;
      const ap = this.#tmp(apB / 4 * batchA), bp = this.#tmp(bpB / 4 * batchB);
      const out = this.#out(batch * M * N), oo = this.#dst(out);
      const direct = batch === 1 && ldc === N && rp * MR === M;
      const c = direct ? oo : this.#tmp(cB / 4 * batch);
      const work = batch * M * N * K;
      // A(m, k) and B(k, n) as byte strides of the stored layouts.
      const [ask, asn] = transA ? [M * 4, 4] : [4, K * 4];
      const [bsk, bsn] = transB ? [4, K * 4] : [N * 4, 4];
      const pack: Task[] = [];
      for (let i = 0; i < batchA; i++) {
        for (const [j0, j1] of this.#split(rp, 1)) pack.push([R.packA, ao + i * M * K * 4, ask, asn, K, M, j0, j1, ap + i * apB]);
      }
      for (let i = 0; i < batchB; i++) {
        for (const [j0, j1] of this.#split(cp, 1)) pack.push([KI.pack_b, bo + i * K * N * 4, bsk, bsn, K, N, j0, j1, bp + i * bpB]);
      }
      this.#run(pack, work, "mm pack");
      const mm: Task[] = [];
      for (let i = 0; i < batch; i++) {
        const pa = ap + (batchA === 1 ? 0 : i) * apB, pb = bp + (batchB === 1 ? 0 : i) * bpB, pc = c + i * cB;
        const byCols = cp >= rp;
        for (const [x0, x1] of this.#split(byCols ? cp : rp, batch > 1 ? 1 : 3)) {
          const [i0, i1, j0, j1] = byCols ? [0, rp, x0, x1] : [x0, x1, 0, cp];
          mm.push([R.pp, pa, 0, pb, 0, pc, ldc, K, i0, i1, j0, j1, 0, 1, 0, 0]);
        }
      }
      this.#run(mm, work, "mm gemm");
      if (!direct) this.#run([[KI.copy3d, c, cB, ldc * 4, 4, oo, M * N * 4, N * 4, 4, batch, M, N]], 0);
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }

  /** Where a kernel writes the result `out`: out itself when it lives in wasm memory, else a scratch block (#land copies it). */
  #dst(out: Float32Array): number {
    return this.#inMem(out) ? out.byteOffset : this.#tmp(out.length);
  }
  /** The finished result: copied from its scratch block when out is an ordinary array. */
  #land(out: Float32Array, at: number): Float32Array {
    if (!this.#inMem(out)) {
      out.set(this.#f32.subarray(at / 4, at / 4 + out.length));
      return out;
    }
    // A view made before the memory grew still works (shared memory); re-made on the current buffer for uniformity.
    return out.buffer === this.#mem.buffer ? out : new Float32Array(this.#mem.buffer, out.byteOffset, out.length);
  }

  // ---- convolutions: the input padded and split into stride phases, read in place by the kernels ----

  /** Layout of one (image, group) input block: [s*s phases][cg][Hph][Wph], and the offset table. */
  #phaseLayout(p: ConvParams, allowInPlace: boolean, MR: number): PhaseLayout {
    const { Cin, H, W, KH, KW, stride: s, pad, groups, OH } = p;
    const cg = Cin / groups;
    const Hph = Math.ceil((H + 2 * pad) / s), Wph = Math.ceil((W + 2 * pad) / s);
    const Q = cg * KH * KW, P = OH * Wph;
    const tab = new Int32Array(Math.ceil(Q / MR) * MR); // rows past Q read offset 0 (discarded)
    let maxTab = 0;
    for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const e = (((ky % s) * s + (kx % s)) * cg + ci) * Hph * Wph + Math.floor(ky / s) * Wph + Math.floor(kx / s);
      tab[(ci * KH + ky) * KW + kx] = e * 4;
      maxTab = Math.max(maxTab, e);
    }
    const cpan = Math.ceil(P / this.shape.NR);
    const inPlace = allowInPlace && pad === 0 && s === 1;
    // In place, the kernels read past the last block by less than one vector (storages keep 64 bytes of slack).
    const XB = inPlace ? cg * H * W : Math.ceil(Math.max(s * s * cg * Hph * Wph, maxTab + cpan * this.shape.NR) / 16) * 16 + 16;
    return { cg, Hph, Wph, Q, P, tab, cpan, XB, inPlace };
  }

  /** Copies x into zeroed phase blocks [n][g] of XB floats; returns their address. */
  #phases(xo: number, p: ConvParams, L: PhaseLayout, tasks: Task[]): number {
    const { N, Cin, H, W, stride: s, pad, groups } = p;
    const { cg, Hph, Wph, XB } = L;
    if (L.inPlace) return xo;
    const xp = this.#tmp(N * groups * XB);
    this.#zero(xp, N * groups * XB);
    for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) {
      const y0 = (((a - pad) % s) + s) % s, x0 = (((b - pad) % s) + s) % s;
      if (y0 >= H || x0 >= W) continue;
      const rows = Math.ceil((H - y0) / s), cols = Math.ceil((W - x0) / s);
      const t0 = (y0 + pad - a) / s, u0 = (x0 + pad - b) / s;
      tasks.push([KI.copy3d, xo + (((n * Cin + g * cg) * H + y0) * W + x0) * 4, H * W * 4, s * W * 4, s * 4,
        xp + ((n * groups + g) * XB + (a * s + b) * cg * Hph * Wph + t0 * Wph + u0) * 4, Hph * Wph * 4, Wph * 4, 4, cg, rows, cols]);
    }
    return xp;
  }

  #tabAddr(tab: Int32Array): number {
    const at = this.#tmp(tab.length);
    new Int32Array(this.#mem.buffer, at, tab.length).set(tab);
    return at;
  }

  conv2d(x: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2d(x, w, p, dtype);
    const { N, Cout, groups, OH, OW } = p;
    const { NR } = this.shape;
    const og = Cout / groups;
    const R = this.#rows(og), MR = R.MR;
    try {
      const L = this.#phaseLayout(p, true, MR);
      const { Q, Wph, cpan, XB } = L;
      const xo = this.#addr(x), wo = this.#addr(w);
      const rpan = Math.ceil(og / MR), ldc = cpan * NR, CB = rpan * MR * ldc, WPB = rpan * Q * MR;
      const prep: Task[] = [];
      const xp = this.#phases(xo, p, L, prep);
      const wp = this.#tmp(groups * WPB);
      for (let g = 0; g < groups; g++) prep.push([R.packA, wo + g * og * Q * 4, 4, Q * 4, Q, og, 0, rpan, wp + g * WPB * 4]);
      const work = N * Cout * Q * OH * OW;
      this.#run(prep, work, "conv prep");
      const tab = this.#tabAddr(L.tab);
      const c = this.#tmp(N * groups * CB);
      const mm: Task[] = [];
      const parts = N * groups >= this.threads * 4 ? 1 : 3;
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        const ng = n * groups + g;
        for (const [j0, j1] of this.#split(cpan, parts)) mm.push([R.pt, wp + g * WPB * 4, 0, xp + ng * XB * 4, tab, c + ng * CB * 4, ldc, Q, 0, rpan, j0, j1, 0, 1, 0, 0]);
      }
      this.#run(mm, work, "conv gemm");
      const out = this.#out(N * Cout * OH * OW), oo = this.#dst(out);
      const cp: Task[] = [];
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        cp.push([KI.copy3d, c + (n * groups + g) * CB * 4, ldc * 4, Wph * 4, 4, oo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4, og, OH, OW]);
      }
      this.#run(cp, work, "conv out");
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }

  conv2dInputGrad(gy: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2dInputGrad(gy, w, p, dtype);
    if (p.stride > 1) return this.#inputGradPhases(gy, w, p);
    const { N, Cin, H, W, Cout, KH, KW, stride: s, pad, groups, OH, OW } = p;
    const { NR } = this.shape;
    const cg = Cin / groups, og = Cout / groups;
    const R = this.#rows(cg), MR = R.MR;
    try {
      // gy spread (stride) into zeroed blocks [og][Hg][Wg] with a border of k-1; then a stride-1
      // correlation with the flipped, transposed filters gives the padded input's gradient.
      const Hg = H + 2 * pad + KH - 1, Wg = W + 2 * pad + KW - 1;
      const Qg = og * KH * KW, P = H * Wg, cpan = Math.ceil(P / NR), rpan = Math.ceil(cg / MR);
      const tabA = new Int32Array(Qg);
      let maxTab = 0;
      for (let co = 0; co < og; co++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
        const e = co * Hg * Wg + (ky + pad) * Wg + kx + pad;
        tabA[(co * KH + ky) * KW + kx] = e * 4;
        maxTab = Math.max(maxTab, e);
      }
      // A 1x1 unpadded stride-1 filter needs no border: the output gradient is read in place.
      const inPlace = KH === 1 && KW === 1 && s === 1 && pad === 0;
      const GB = inPlace ? og * H * W : Math.ceil(Math.max(og * Hg * Wg, maxTab + cpan * NR) / 16) * 16 + 16;
      // Flipped filters W'[g][ci][co][KH-1-ky][KW-1-kx] = W[g*og + co][ci][ky][kx]: flipping both
      // axes reverses the flattened (ky, kx) order, so one strided copy per group (in wasm: for
      // per-group weights this is half a million elements).
      const gyo = this.#addr(gy), wo = this.#addr(w), KK = KH * KW;
      const wfo = this.#tmp(groups * cg * Qg);
      const flip: Task[] = [];
      for (let g = 0; g < groups; g++) {
        flip.push([KI.copy3d, wo + (g * og * cg * KK + KK - 1) * 4, KK * 4, cg * KK * 4, -4, wfo + g * cg * og * KK * 4, og * KK * 4, KK * 4, 4, cg, og, KK]);
      }
      this.#run(flip, groups * cg * Qg * 64, "conv prep");
      const WPB = rpan * Qg * MR, ldc = cpan * NR, CB = rpan * MR * ldc;
      const gb = inPlace ? gyo : this.#tmp(N * groups * GB);
      if (!inPlace) this.#zero(gb, N * groups * GB);
      const prep: Task[] = [];
      if (!inPlace) for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        prep.push([KI.copy3d, gyo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4,
          gb + ((n * groups + g) * GB + (KH - 1) * Wg + KW - 1) * 4, Hg * Wg * 4, s * Wg * 4, s * 4, og, OH, OW]);
      }
      const wp = this.#tmp(groups * WPB);
      for (let g = 0; g < groups; g++) prep.push([R.packA, wfo + g * cg * Qg * 4, 4, Qg * 4, Qg, cg, 0, rpan, wp + g * WPB * 4]);
      const work = N * Cin * Qg * H * W;
      this.#run(prep, work, "conv prep");
      const tab = this.#tabAddr(tabA);
      const c = this.#tmp(N * groups * CB);
      const mm: Task[] = [];
      const parts = N * groups >= this.threads * 4 ? 1 : 3;
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        const ng = n * groups + g;
        for (const [j0, j1] of this.#split(cpan, parts)) mm.push([R.pt, wp + g * WPB * 4, 0, gb + ng * GB * 4, tab, c + ng * CB * 4, ldc, Qg, 0, rpan, j0, j1, 0, 1, 0, 0]);
      }
      this.#run(mm, work, "conv gemm");
      const out = this.#out(N * Cin * H * W), oo = this.#dst(out);
      const cp: Task[] = [];
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        cp.push([KI.copy3d, c + (n * groups + g) * CB * 4, ldc * 4, Wg * 4, 4, oo + (n * Cin + g * cg) * H * W * 4, H * W * 4, W * 4, 4, cg, H, W]);
      }
      this.#run(cp, work, "conv out");
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }

  /**
   * The input gradient of a strided convolution, one stride phase of the (padded) input at a time:
   * input rows Y = a + s t receive only the filter rows ky = a + s j, from output rows t - j, so
   * each phase is a stride-1 correlation of the zero-bordered output gradient with its sub-filter
   * (no multiplications by the zeros a spread gradient would hold), written back with stride s.
   */
  #inputGradPhases(gy: Data, w: Data, p: ConvParams): Data {
    const { N, Cin, H, W, Cout, KH, KW, stride: s, pad, groups, OH, OW } = p;
    const { NR } = this.shape;
    const cg = Cin / groups, og = Cout / groups;
    const R = this.#rows(cg), MR = R.MR, rpan = Math.ceil(cg / MR);
    const P0 = Math.ceil(KH / s) - 1, Q0 = Math.ceil(KW / s) - 1; // border: the most taps a phase has, less one
    const Tmax = Math.ceil((H + 2 * pad) / s), Umax = Math.ceil((W + 2 * pad) / s);
    const Hg = Math.max(OH, Tmax) + P0 + 1, Wg = Math.max(OW, Umax) + Q0 + 1;
    const out = this.#out(N * Cin * H * W);
    out.fill(0); // phases with no taps (a filter narrower than the stride) stay zero
    try {
      const gyo = this.#addr(gy), oo = this.#dst(out);
      if (!this.#inMem(out)) this.#zero(oo, out.length);
      const P = Tmax * Wg, cpan = Math.ceil(P / NR), ldc = cpan * NR, CB = rpan * MR * ldc;
      const GB = Math.ceil((og * Hg * Wg + 16) / 16) * 16 + NR * 2;
      const gb = this.#tmp(N * groups * GB);
      this.#zero(gb, N * groups * GB);
      const prep: Task[] = [];
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        prep.push([KI.copy3d, gyo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4,
          gb + ((n * groups + g) * GB + P0 * Wg + Q0) * 4, Hg * Wg * 4, Wg * 4, 4, og, OH, OW]);
      }
      type Phase = { a: number; b: number; K: number; wp: number; WPB: number; tab: number };
      const phases: Phase[] = [], flip: Task[] = [], pack: Task[] = [];
      const wo = this.#addr(w), KK = KH * KW;
      for (let a = 0; a < s; a++) for (let b = 0; b < s; b++) {
        const Ja = Math.ceil((KH - a) / s), Lb = Math.ceil((KW - b) / s);
        if (Ja <= 0 || Lb <= 0) continue;
        const K = og * Ja * Lb;
        // sub-filters W_ab[g][ci][(co, j, l)] = W[g*og + co][ci][a + s j][b + s l] (strided copies
        // in wasm, one per output channel), and their offsets into G
        const tab = new Int32Array(K);
        for (let co = 0; co < og; co++) for (let j = 0; j < Ja; j++) for (let l = 0; l < Lb; l++) {
          tab[(co * Ja + j) * Lb + l] = (co * Hg * Wg + (P0 - j) * Wg + (Q0 - l)) * 4;
        }
        const wfo = this.#tmp(groups * cg * K);
        for (let g = 0; g < groups; g++) for (let co = 0; co < og; co++) {
          flip.push([KI.copy3d, wo + ((g * og + co) * cg * KK + a * KW + b) * 4, KK * 4, s * KW * 4, s * 4,
            wfo + (g * cg * K + co * Ja * Lb) * 4, K * 4, Lb * 4, 4, cg, Ja, Lb]);
        }
        const WPB = rpan * K * MR, wp = this.#tmp(groups * WPB);
        for (let g = 0; g < groups; g++) pack.push([R.packA, wfo + g * cg * K * 4, 4, K * 4, K, cg, 0, rpan, wp + g * WPB * 4]);
        phases.push({ a, b, K, wp, WPB, tab: this.#tabAddr(tab) });
      }
      this.#run(flip, groups * og * cg * KK * 64, "conv prep");
      prep.push(...pack);
      const work = N * Cin * og * Math.ceil(KH / s) * Math.ceil(KW / s) * H * W;
      this.#run(prep, work, "conv prep");
      const c = this.#tmp(N * groups * phases.length * CB);
      const mm: Task[] = [], cp: Task[] = [];
      const parts = N * groups * phases.length >= this.threads * 4 ? 1 : 3;
      phases.forEach((ph, k) => {
        // input rows y = a + s t - pad in [0, H): t in [t0, t1]; columns likewise
        const t0 = Math.max(0, Math.ceil((pad - ph.a) / s)), t1 = Math.floor((H - 1 + pad - ph.a) / s);
        const u0 = Math.max(0, Math.ceil((pad - ph.b) / s)), u1 = Math.floor((W - 1 + pad - ph.b) / s);
        for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
          const ng = n * groups + g, cc = c + ((ng * phases.length) + k) * CB * 4;
          for (const [j0, j1] of this.#split(cpan, parts)) mm.push([R.pt, ph.wp + g * ph.WPB * 4, 0, gb + ng * GB * 4, ph.tab, cc, ldc, ph.K, 0, rpan, j0, j1, 0, 1, 0, 0]);
          if (t1 >= t0 && u1 >= u0) {
            const y0 = ph.a + s * t0 - pad, x0 = ph.b + s * u0 - pad;
            cp.push([KI.copy3d, cc + (t0 * Wg + u0) * 4, ldc * 4, Wg * 4, 4, oo + (((n * Cin + g * cg) * H + y0) * W + x0) * 4, H * W * 4, s * W * 4, s * 4, cg, t1 - t0 + 1, u1 - u0 + 1]);
          }
        }
      });
      this.#run(mm, work, "conv gemm");
      this.#run(cp, work, "conv out");
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }

  conv2dWeightGrad(x: Data, gy: Data, p: ConvParams, dtype: DType): Data {
    if (dtype === "float64") return this.ref.conv2dWeightGrad(x, gy, p, dtype);
    const { N, Cout, groups, OH, OW } = p;
    const { NR } = this.shape;
    const og = Cout / groups;
    const R = this.#rows(p.Cin / groups * p.KH * p.KW), MR = R.MR;
    try {
      // dW^T[q][co] = sum over images and positions of X[tab[q] + p'] gy'[co][p'], with gy' the
      // output gradient on the phase grid (zero in the columns past OW).
      const L = this.#phaseLayout(p, true, MR);
      const { Q, Wph, P, XB } = L;
      const xo = this.#addr(x), gyo = this.#addr(gy);
      const qpan = Math.ceil(Q / MR), opan = Math.ceil(og / NR), ldc = opan * NR, CB = qpan * MR * ldc;
      const prep: Task[] = [];
      const xp = this.#phases(xo, p, L, prep);
      const GYB = og * P + 16;
      const gq = this.#tmp(N * groups * GYB);
      this.#zero(gq, N * groups * GYB);
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        prep.push([KI.copy3d, gyo + (n * Cout + g * og) * OH * OW * 4, OH * OW * 4, OW * 4, 4, gq + (n * groups + g) * GYB * 4, P * 4, Wph * 4, 4, og, OH, OW]);
      }
      const work = N * Cout * Q * OH * OW;
      this.#run(prep, work, "conv prep");
      const BPB = opan * P * NR;
      const bp = this.#tmp(N * groups * BPB);
      const pack: Task[] = [];
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) {
        const ng = n * groups + g;
        pack.push([KI.pack_b, gq + ng * GYB * 4, 4, P * 4, P, og, 0, opan, bp + ng * BPB * 4]);
      }
      this.#run(pack, work, "conv pack");
      const tab = this.#tabAddr(L.tab);
      const c = this.#tmp(groups * CB);
      const mm: Task[] = [];
      for (let g = 0; g < groups; g++) {
        const tiles = groups >= this.threads * 2 ? [[0, qpan]] as [number, number][] : this.#split(qpan, 2);
        for (const [i0, i1] of tiles) {
          mm.push([R.tp, xp + g * XB * 4, tab, bp + g * BPB * 4, 0, c + g * CB * 4, ldc, P, i0, i1, 0, opan, 0, N, groups * XB * 4, groups * BPB * 4]);
        }
      }
      this.#run(mm, work, "conv gemm");
      const out = this.#out(Cout * Q), oo = this.#dst(out);
      const cp: Task[] = [];
      for (let g = 0; g < groups; g++) cp.push([KI.copy3d, c + g * CB * 4, 0, 4, ldc * 4, oo + g * og * Q * 4, 0, Q * 4, 4, 1, og, Q]);
      this.#run(cp, 0);
      return this.#land(out, oo);
    } finally {
      this.#endOp();
    }
  }
}

export function createWasmBackend(opts: WasmOptions = {}): Promise<WasmBackend> {
  return WasmBackend.create(opts);
}
