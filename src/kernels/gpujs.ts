// The fallback where WebGPU is missing: gpu.js in its WebGL2 mode for the ops it serves well
// (which ones was decided by measurement in the browser: bench/README.md, "gpu.js fallback"),
// the CPU backend for the rest. Storages are the CPU backend's Float32Arrays, so ops move between
// the two freely: a gpu.js op uploads its inputs as textures, runs a fragment-shader kernel over a
// flat 1-D output and reads the result back. float64 stays on the CPU (WebGL2 has no doubles).
// gpu.js's browser build (node_modules/gpu.js/dist/gpu-browser.min.js, 640 KB) is not bundled: the
// page loads it only when it falls back, and passes its GPU class in (globalThis.GPU by default).
// In Deno or Node there is no WebGL2: gpu.js's Node path needs the native `gl` module.
import type { Backend, BinaryOp, ConvParams, Data, DType, MatmulSpec, ReduceOp, StridedSpec, UnaryOp } from "./backend.ts";
import { CpuBackend } from "./cpu.ts";

export const GPUJS_OPS = ["matmul", "conv2d", "conv2dInputGrad", "conv2dWeightGrad"] as const;
export type GpujsOp = typeof GPUJS_OPS[number];

/**
 * The ops run on gpu.js by default and the least work (multiply-adds) for which it pays: chosen
 * from the headless-Chromium measurement recorded in bench/README.md (SwiftShader's WebGL2).
 */
export const GPUJS_DEFAULT: { ops: GpujsOp[]; minMacs: number } = { ops: ["matmul", "conv2d", "conv2dInputGrad", "conv2dWeightGrad"], minMacs: 1 << 18 };

// deno-lint-ignore no-explicit-any
type Kernel = ((...args: any[]) => Float32Array) & { destroy?: (removeCanvas?: boolean) => void };
interface GpuLike {
  createKernel(fn: unknown, settings: Record<string, unknown>): Kernel;
  destroy?(): void;
}
export interface GpuClass {
  new (settings: { mode: string }): GpuLike;
  readonly isWebGL2Supported: boolean;
}

// Kernel sources: gpu.js translates these functions to GLSL, so they use only its JavaScript subset
// (this.thread, this.constants, Math, for loops over constants). Index arithmetic is in floats on the
// GPU: division is rounded from i + 0.5 so an exact quotient never lands just below an integer.
function matmulKernel(this: KernelThis, a: number[], b: number[]): number {
  const c = this.constants;
  const i = this.thread.x;
  const q = Math.floor((i + 0.5) / c.N);
  const n = i - q * c.N;
  const bi = Math.floor((q + 0.5) / c.M);
  const m = q - bi * c.M;
  const aBase = bi * c.aBatch + m * c.aM, bBase = bi * c.bBatch + n * c.bN;
  let s = 0;
  for (let k = 0; k < c.K; k++) s += a[aBase + k * c.aK] * b[bBase + k * c.bK];
  return s;
}

function convKernel(this: KernelThis, x: number[], w: number[]): number {
  const c = this.constants;
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / c.OW);
  const ox = i - q1 * c.OW;
  const q2 = Math.floor((q1 + 0.5) / c.OH);
  const oy = q1 - q2 * c.OH;
  const n = Math.floor((q2 + 0.5) / c.Cout);
  const co = q2 - n * c.Cout;
  const g = Math.floor((co + 0.5) / c.og);
  let s = 0;
  for (let ci = 0; ci < c.cg; ci++) {
    for (let ky = 0; ky < c.KH; ky++) {
      const iy = oy * c.stride - c.pad + ky;
      for (let kx = 0; kx < c.KW; kx++) {
        const ix = ox * c.stride - c.pad + kx;
        if (iy >= 0 && iy < c.H && ix >= 0 && ix < c.W) {
          s += w[((co * c.cg + ci) * c.KH + ky) * c.KW + kx] * x[((n * c.Cin + g * c.cg + ci) * c.H + iy) * c.W + ix];
        }
      }
    }
  }
  return s;
}

function convInputGradKernel(this: KernelThis, gy: number[], w: number[]): number {
  const c = this.constants;
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / c.W);
  const ix = i - q1 * c.W;
  const q2 = Math.floor((q1 + 0.5) / c.H);
  const iy = q1 - q2 * c.H;
  const n = Math.floor((q2 + 0.5) / c.Cin);
  const ch = q2 - n * c.Cin;
  const g = Math.floor((ch + 0.5) / c.cg);
  const ci = ch - g * c.cg;
  let s = 0;
  for (let j = 0; j < c.og; j++) {
    const co = g * c.og + j;
    for (let ky = 0; ky < c.KH; ky++) {
      const ty = iy + c.pad - ky;
      const oy = Math.floor((ty + 0.5) / c.stride);
      for (let kx = 0; kx < c.KW; kx++) {
        const tx = ix + c.pad - kx;
        const ox = Math.floor((tx + 0.5) / c.stride);
        if (ty >= 0 && tx >= 0 && oy * c.stride === ty && ox * c.stride === tx && oy < c.OH && ox < c.OW) {
          s += w[((co * c.cg + ci) * c.KH + ky) * c.KW + kx] * gy[((n * c.Cout + co) * c.OH + oy) * c.OW + ox];
        }
      }
    }
  }
  return s;
}

function convWeightGradKernel(this: KernelThis, x: number[], gy: number[]): number {
  const c = this.constants;
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / c.KW);
  const kx = i - q1 * c.KW;
  const q2 = Math.floor((q1 + 0.5) / c.KH);
  const ky = q1 - q2 * c.KH;
  const co = Math.floor((q2 + 0.5) / c.cg);
  const ci = q2 - co * c.cg;
  const g = Math.floor((co + 0.5) / c.og);
  let s = 0;
  for (let n = 0; n < c.N; n++) {
    for (let oy = 0; oy < c.OH; oy++) {
      const iy = oy * c.stride - c.pad + ky;
      for (let ox = 0; ox < c.OW; ox++) {
        const ix = ox * c.stride - c.pad + kx;
        if (iy >= 0 && iy < c.H && ix >= 0 && ix < c.W) {
          s += gy[((n * c.Cout + co) * c.OH + oy) * c.OW + ox] * x[((n * c.Cin + g * c.cg + ci) * c.H + iy) * c.W + ix];
        }
      }
    }
  }
  return s;
}

interface KernelThis {
  thread: { x: number };
  constants: Record<string, number>;
}

export interface GpujsOptions {
  ops?: readonly GpujsOp[];
  /** Ops with fewer multiply-adds than this stay on the CPU (upload and readback dominate them). */
  minMacs?: number;
}

export class GpujsBackend implements Backend<Data> {
  readonly name = "gpujs" as const;
  readonly description: string;
  readonly cpu = new CpuBackend();
  readonly ops: ReadonlySet<GpujsOp>;
  readonly minMacs: number;
  /** How many calls each op sent to gpu.js and to the CPU (for the page and the tests). */
  readonly counts: Record<string, { gpujs: number; cpu: number }> = {};
  readonly #gpu: GpuLike;
  readonly #kernels = new Map<string, Kernel>();

  constructor(GPU: GpuClass, o: GpujsOptions = {}) {
    if (!GPU.isWebGL2Supported) throw new Error("gpu.js: WebGL2 is not supported in this runtime");
    this.#gpu = new GPU({ mode: "webgl2" });
    this.ops = new Set(o.ops ?? GPUJS_DEFAULT.ops);
    this.minMacs = o.minMacs ?? GPUJS_DEFAULT.minMacs;
    this.description = `gpu.js WebGL2 for ${[...this.ops].join(", ") || "no op"} (at least ${this.minMacs} multiply-adds), CPU for the rest`;
  }

  #use(op: GpujsOp, macs: number, dtype: DType): boolean {
    const on = dtype === "float32" && this.ops.has(op) && macs >= this.minMacs;
    (this.counts[op] ??= { gpujs: 0, cpu: 0 })[on ? "gpujs" : "cpu"]++;
    return on;
  }

  #run(fn: (...a: never[]) => number, constants: Record<string, number>, size: number, args: Data[]): Data {
    const key = `${fn.name}:${size}:${JSON.stringify(constants)}`;
    let k = this.#kernels.get(key);
    if (!k) {
      k = this.#gpu.createKernel(fn, { output: [size], constants, precision: "single", tactic: "precision", dynamicArguments: true });
      this.#kernels.set(key, k);
    }
    const r = k(...args);
    return Float32Array.from(r.length === size ? r : r.subarray(0, size));
  }

  matmul(a: Data, b: Data, s: MatmulSpec, dtype: DType): Data {
    const batch = Math.max(s.batchA, s.batchB);
    if (!this.#use("matmul", batch * s.M * s.N * s.K, dtype)) return this.cpu.matmul(a, b, s, dtype);
    const { M, K, N } = s;
    return this.#run(matmulKernel, {
      M, K, N,
      aBatch: s.batchA === 1 ? 0 : M * K, aM: s.transA ? 1 : K, aK: s.transA ? M : 1,
      bBatch: s.batchB === 1 ? 0 : K * N, bN: s.transB ? K : 1, bK: s.transB ? 1 : N,
    }, batch * M * N, [a, b]);
  }

  #convConstants(p: ConvParams): Record<string, number> {
    const { N, Cin, H, W, Cout, KH, KW, stride, pad, OH, OW } = p;
    return { N, Cin, H, W, Cout, KH, KW, stride, pad, OH, OW, cg: Cin / p.groups, og: Cout / p.groups };
  }
  #convMacs(p: ConvParams): number {
    return p.N * p.Cout * p.OH * p.OW * (p.Cin / p.groups) * p.KH * p.KW;
  }
  conv2d(x: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (!this.#use("conv2d", this.#convMacs(p), dtype)) return this.cpu.conv2d(x, w, p, dtype);
    return this.#run(convKernel, this.#convConstants(p), p.N * p.Cout * p.OH * p.OW, [x, w]);
  }
  conv2dInputGrad(gy: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (!this.#use("conv2dInputGrad", this.#convMacs(p), dtype)) return this.cpu.conv2dInputGrad(gy, w, p, dtype);
    return this.#run(convInputGradKernel, this.#convConstants(p), p.N * p.Cin * p.H * p.W, [gy, w]);
  }
  conv2dWeightGrad(x: Data, gy: Data, p: ConvParams, dtype: DType): Data {
    if (!this.#use("conv2dWeightGrad", this.#convMacs(p), dtype)) return this.cpu.conv2dWeightGrad(x, gy, p, dtype);
    return this.#run(convWeightGradKernel, this.#convConstants(p), p.Cout * (p.Cin / p.groups) * p.KH * p.KW, [x, gy]);
  }

  // Everything else: the CPU backend.
  upload(data: ArrayLike<number>, dtype: DType): Data { return this.cpu.upload(data, dtype); }
  read(s: Data): Promise<Data> { return this.cpu.read(s); }
  readSync(s: Data): Data { return this.cpu.readSync(s); }
  release(s: Data): void { this.cpu.release(s); }
  fill(size: number, value: number, dtype: DType): Data { return this.cpu.fill(size, value, dtype); }
  unary(op: UnaryOp, x: Data, size: number, dtype: DType, p: number): Data { return this.cpu.unary(op, x, size, dtype, p); }
  binary(op: BinaryOp, a: Data, aS: readonly number[], b: Data, bS: readonly number[], oS: readonly number[], dtype: DType): Data {
    return this.cpu.binary(op, a, aS, b, bS, oS, dtype);
  }
  where(c: Data, cS: readonly number[], a: Data, aS: readonly number[], b: Data, bS: readonly number[], oS: readonly number[], dtype: DType): Data {
    return this.cpu.where(c, cS, a, aS, b, bS, oS, dtype);
  }
  reduce(op: ReduceOp, x: Data, outer: number, R: number, inner: number, dtype: DType): Data { return this.cpu.reduce(op, x, outer, R, inner, dtype); }
  strided(x: Data, spec: StridedSpec, dtype: DType): Data { return this.cpu.strided(x, spec, dtype); }
  concat(parts: Data[], blocks: readonly number[], outer: number, dtype: DType): Data { return this.cpu.concat(parts, blocks, outer, dtype); }
  sync(): Promise<void> { return Promise.resolve(); }

  dispose(): void {
    for (const k of this.#kernels.values()) k.destroy?.();
    this.#kernels.clear();
    this.#gpu.destroy?.();
  }
}

/**
 * gpu.js's GPU class from the source of its browser build (dist/gpu-browser.min.js), run as a
 * CommonJS module so that it does not replace the page's global `GPU` (WebGPU's interface).
 */
export function gpujsFromSource(source: string): GpuClass {
  const mod: { exports: { GPU?: GpuClass } & Partial<GpuClass> } = { exports: {} };
  new Function("module", "exports", source)(mod, mod.exports);
  const cls = mod.exports.GPU ?? (mod.exports as unknown as GpuClass);
  if (typeof cls !== "function") throw new Error("gpu.js: its browser build did not export a GPU class");
  return cls;
}

/** The fallback backend from gpu.js's GPU class. */
export function createGpujsBackend(GPU: GpuClass, o: GpujsOptions = {}): GpujsBackend {
  return new GpujsBackend(GPU, o);
}
