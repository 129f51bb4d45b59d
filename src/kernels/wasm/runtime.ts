// What every wasm op runs on: the compiled module (module.ts), one memory (memory.ts) and the
// thread pool over it (pool.ts), with the helpers the ops share to cut work into tasks. The ops
// themselves (backend.ts, conv.ts, ...) take a WasmRuntime and know nothing of how it was made.
import { buildModule, hasRelaxedSimd, KERNELS, type KernelName, MAX_PAGES, TABLE2_NR } from "./module.ts";
import { GEMM_DEFAULT, type GemmShape } from "./gemm.ts";
import { WasmMemory } from "./memory.ts";
import { type Job, JobList, Workers, type Task } from "./workers.ts";

export { JobList };
export type { Job, Task };
/** Kernel indices by name, for tasks. */
export const KI = Object.fromEntries(KERNELS.map((n, i) => [n, i])) as Record<KernelName, number>;
/** A float's bits as an i32 argument. */
export { f32Bits as F32_BITS } from "./memory.ts";
/** Below this many multiply-adds a phase runs on the calling thread alone (waking workers costs more). */
export const PARALLEL_MIN = 1 << 18;
/** Elementwise ops of at least this many elements (of an add's cost) run on all threads. */
export const PARALLEL_EW = 1 << 16;

/** Where piece i of n items cut into p nearly equal pieces starts (piece i is [cut(i), cut(i + 1))). */
export const cut = (i: number, n: number, p: number): number => Math.floor((i * n) / p);

/** [from, to) ranges splitting n items into at most `parts` nearly equal pieces. */
export function ranges(n: number, parts: number): [number, number][] {
  const p = Math.max(1, Math.min(n, parts));
  const out: [number, number][] = [];
  for (let i = 0; i < p; i++) {
    const a = cut(i, n, p), b = cut(i + 1, n, p);
    if (b > a) out.push([a, b]);
  }
  return out;
}

/** The kernels for one block size of a product whose B is read by table (packed A): MR rows by NR columns. */
export interface TableBlock { MR: number; NR: number; pt: number; packA: number }
/** The kernels for one row block size of a product (all three operand forms; NR the module's). */
export interface RowBlock extends TableBlock { pp: number; tp: number }

export interface WasmOptions {
  /** Threads including the caller (default: navigator.hardwareConcurrency, 1 without shared memory). */
  threads?: number;
  /** Use a shared memory (default: where SharedArrayBuffer is available and, in a browser, the page is cross-origin isolated). */
  shared?: boolean;
  /**
   * Winograd F(2x2, 3x3) for the stride-1 3x3 convolutions with 8 channels or more in and out (default
   * true; false: the direct kernels, for A/B measurements and tests).
   */
  winograd?: boolean;
  /**
   * f32x4.relaxed_madd in the product kernels (default: where the engine has relaxed SIMD); false:
   * a multiply then an add, as engines without relaxed SIMD run them (tests, A/B measurements).
   */
  fma?: boolean;
}

export class WasmRuntime {
  readonly mem: WasmMemory;
  readonly pool: Workers;
  readonly shape: GemmShape;
  readonly threads: number;
  /** When set, wall time per kernel phase (ms) is summed here. */
  profile: Map<string, number> | null = null;
  /** Whether the stride-1 3x3 convolutions that fit take Winograd (conv_winograd.ts winogradFits). */
  readonly winograd: boolean;

  readonly #finite: (at: number, n: number) => number;

  private constructor(mem: WasmMemory, pool: Workers, shape: GemmShape, winograd: boolean, finite: (at: number, n: number) => number) {
    this.mem = mem;
    this.#finite = finite;
    this.pool = pool;
    this.shape = shape;
    this.threads = pool.threads;
    this.winograd = winograd;
  }

  static async create(opts: WasmOptions = {}): Promise<WasmRuntime> {
    const canShare = (opts.shared ?? true) && typeof SharedArrayBuffer !== "undefined" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
    let hc = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
    if (!hc && (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) {
      const spec = "node:os"; // Node 20 has no navigator (a variable: browser bundles must not resolve it)
      hc = await import(spec).then((os) => os.availableParallelism?.() ?? os.cpus().length).catch(() => 1);
    }
    hc ??= 1;
    const threads = canShare ? Math.max(1, opts.threads ?? hc) : 1;
    const relaxed = hasRelaxedSimd(), fma = opts.fma ?? relaxed;
    if (fma && !relaxed) throw new Error("wasm backend: fma: this engine has no relaxed SIMD (f32x4.relaxed_madd)");
    const { module, shape } = buildModule(canShare, { ...GEMM_DEFAULT, fma });
    const mem = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: canShare } as WebAssembly.MemoryDescriptor);
    const inst = new WebAssembly.Instance(module, { env: { mem } });
    const pool = await Workers.create(module, mem, [...KERNELS], inst, threads);
    const fill32 = inst.exports.fill32 as (at: number, n: number, bits: number) => void;
    return new WasmRuntime(new WasmMemory(mem, fill32), pool, shape, opts.winograd ?? true, inst.exports.finite as (at: number, n: number) => number);
  }

  /**
   * Runs one phase of jobs (tasks, or groups of tasks one thread runs in order): on all threads
   * when it has at least PARALLEL_MIN units of `work` (multiply-adds, or elements times a
   * weight), else on the caller alone.
   */
  run(tasks: Job[] | JobList, work: number, label = ""): void {
    const t0 = this.profile ? performance.now() : 0;
    if (tasks instanceof JobList) this.pool.runList(tasks, work >= PARALLEL_MIN);
    else this.pool.run(tasks, work >= PARALLEL_MIN);
    if (this.profile) this.profile.set(label, (this.profile.get(label) ?? 0) + performance.now() - t0);
  }
  /**
   * The runtime's job list, emptied (`single`: each task a job of its own), for an op to write a
   * phase into and run: one list, reused by every phase, so only one phase at a time may use it.
   */
  list(single = false): JobList {
    return this.#list.clear(single);
  }
  readonly #list = new JobList();
  /**
   * The row block for a product with M rows: 6 (the faster kernel) unless 4 wastes fewer padded
   * rows by more than 6's speed-up (measured 59.8 vs 52.5 GFLOP/s, bench/README.md): M = 4, 8, 2, ...
   */
  rows(M: number): RowBlock {
    const six = Math.ceil(M / 6) * 6 / 59.8, four = Math.ceil(M / 4) * 4 / 52.5;
    const NR = this.shape.NR;
    return four < six ? { MR: 4, NR, pp: KI.gemm_pp4, pt: KI.gemm_pt4, tp: KI.gemm_tp4, packA: KI.pack_a4 }
      : { MR: 6, NR, pp: KI.gemm_pp, pt: KI.gemm_pt, tp: KI.gemm_tp, packA: KI.pack_a };
  }
  /**
   * The block for a product with M rows whose B is read by table (the forward and input-gradient
   * convolutions): rows(M), or for M <= 2 a 2-row block 16 columns wide (8 accumulators, as many as
   * the 4x8 block's), where a 4-row block would compute at least half its rows for nothing (the
   * Glow couplings' 2-channel halves, a 1-channel image).
   */
  tableRows(M: number): TableBlock {
    return M <= 2 ? { MR: 2, NR: TABLE2_NR, pt: KI.gemm_pt2, packA: KI.pack_a2 } : this.rows(M);
  }
  /** How many pieces an elementwise op over `size` elements (of an add's cost) splits into: a few per thread from PARALLEL_EW, else one. */
  ewParts(size: number): number {
    return size >= PARALLEL_EW ? this.threads * 2 : 1;
  }
  /** Splits n panels into tasks for the threads (a few per thread, for balance). */
  split(n: number, perThread = 3): [number, number][] {
    return ranges(n, this.parts(n, perThread));
  }
  /** How many pieces split(n, perThread) makes: piece i is [cut(i, n, p), cut(i + 1, n, p)). */
  parts(n: number, perThread = 3): number {
    return Math.max(1, Math.min(n, this.threads === 1 ? 1 : this.threads * perThread));
  }
  /**
   * Whether v[from, to) holds only finite values: the finite kernel on this thread where v lives in
   * this memory, else a loop (v - v is 0 for a finite v, NaN otherwise).
   */
  allFinite(v: Float32Array, from: number, to: number): boolean {
    if (this.mem.inMem(v)) return to <= from || this.#finite(v.byteOffset + 4 * from, to - from) === 1;
    for (let i = from; i < to; i++) if (v[i] - v[i] !== 0) return false;
    return true;
  }
  /** Runs `body` with this op's scratch blocks freed afterwards, whatever happens. */
  op<R>(body: () => R): R {
    try {
      return body();
    } finally {
      this.mem.endOp();
    }
  }
}
