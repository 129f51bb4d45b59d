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
 * Which ops run on gpu.js by default, by the WebGL2 renderer. Measured (bench/README.md, "gpu.js
 * fallback"): on SwiftShader, Chromium's software WebGL2, every gpu.js kernel was 10-100x slower than
 * the CPU backend on the same cores (matmul 512: 5.2 s against 0.34 s), so a software renderer gets
 * none. A hardware renderer gets all four from 2^22 multiply-adds up: not measured here (no GPU on
 * these machines), chosen so small ops, where texture upload and readback dominate, stay on the CPU.
 */
export function gpujsPolicy(renderer: string): { ops: GpujsOp[]; minMacs: number; why: string } {
  if (isSoftwareRenderer(renderer)) return { ops: [], minMacs: Infinity, why: "software WebGL2, measured slower than the CPU on every op" };
  return { ops: [...GPUJS_OPS], minMacs: 1 << 22, why: "hardware WebGL2 (not measured on these machines)" };
}

export const isSoftwareRenderer = (r: string): boolean => /swiftshader|llvmpipe|softpipe|lavapipe|software|mesa offscreen/i.test(r);

/** The browser's WebGL2 renderer (unmasked where allowed), or "" where there is no WebGL2. */
export function webgl2Renderer(): string {
  try {
    const doc = (globalThis as { document?: { createElement(t: string): { getContext(k: string): WebGL2RenderingContext | null } } }).document;
    const gl = doc?.createElement("canvas").getContext("webgl2");
    if (!gl) return "";
    const ext = gl.getExtension("WEBGL_debug_renderer_info");
    return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  } catch {
    return "";
  }
}

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

// Kernel sources: gpu.js parses these (acorn) and translates them to GLSL, so they are strings
// (a bundler's minifier would rewrite functions into forms gpu.js rejects) in its JavaScript subset:
// this.thread.x, this.constants.X spelled out, for loops bounded by constants. Index arithmetic is
// in floats on the GPU: a quotient is rounded from i + 0.5 so an exact one never lands just below
// an integer.
const MATMUL = `function (a, b) {
  const i = this.thread.x;
  const q = Math.floor((i + 0.5) / this.constants.N);
  const n = i - q * this.constants.N;
  const bi = Math.floor((q + 0.5) / this.constants.M);
  const m = q - bi * this.constants.M;
  const aBase = bi * this.constants.aBatch + m * this.constants.aM;
  const bBase = bi * this.constants.bBatch + n * this.constants.bN;
  let s = 0;
  for (let k = 0; k < this.constants.K; k++) {
    s += a[aBase + k * this.constants.aK] * b[bBase + k * this.constants.bK];
  }
  return s;
}`;

const CONV = `function (x, w) {
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / this.constants.OW);
  const ox = i - q1 * this.constants.OW;
  const q2 = Math.floor((q1 + 0.5) / this.constants.OH);
  const oy = q1 - q2 * this.constants.OH;
  const n = Math.floor((q2 + 0.5) / this.constants.Cout);
  const co = q2 - n * this.constants.Cout;
  const g = Math.floor((co + 0.5) / this.constants.og);
  let s = 0;
  for (let ci = 0; ci < this.constants.cg; ci++) {
    for (let ky = 0; ky < this.constants.KH; ky++) {
      const iy = oy * this.constants.stride - this.constants.pad + ky;
      for (let kx = 0; kx < this.constants.KW; kx++) {
        const ix = ox * this.constants.stride - this.constants.pad + kx;
        if (iy >= 0 && iy < this.constants.H && ix >= 0 && ix < this.constants.W) {
          s += w[((co * this.constants.cg + ci) * this.constants.KH + ky) * this.constants.KW + kx] *
            x[((n * this.constants.Cin + g * this.constants.cg + ci) * this.constants.H + iy) * this.constants.W + ix];
        }
      }
    }
  }
  return s;
}`;

const CONV_INPUT_GRAD = `function (gy, w) {
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / this.constants.W);
  const ix = i - q1 * this.constants.W;
  const q2 = Math.floor((q1 + 0.5) / this.constants.H);
  const iy = q1 - q2 * this.constants.H;
  const n = Math.floor((q2 + 0.5) / this.constants.Cin);
  const ch = q2 - n * this.constants.Cin;
  const g = Math.floor((ch + 0.5) / this.constants.cg);
  const ci = ch - g * this.constants.cg;
  let s = 0;
  for (let j = 0; j < this.constants.og; j++) {
    const co = g * this.constants.og + j;
    for (let ky = 0; ky < this.constants.KH; ky++) {
      const ty = iy + this.constants.pad - ky;
      const oy = Math.floor((ty + 0.5) / this.constants.stride);
      for (let kx = 0; kx < this.constants.KW; kx++) {
        const tx = ix + this.constants.pad - kx;
        const ox = Math.floor((tx + 0.5) / this.constants.stride);
        if (ty >= 0 && tx >= 0 && oy * this.constants.stride == ty && ox * this.constants.stride == tx && oy < this.constants.OH && ox < this.constants.OW) {
          s += w[((co * this.constants.cg + ci) * this.constants.KH + ky) * this.constants.KW + kx] *
            gy[((n * this.constants.Cout + co) * this.constants.OH + oy) * this.constants.OW + ox];
        }
      }
    }
  }
  return s;
}`;

const CONV_WEIGHT_GRAD = `function (x, gy) {
  const i = this.thread.x;
  const q1 = Math.floor((i + 0.5) / this.constants.KW);
  const kx = i - q1 * this.constants.KW;
  const q2 = Math.floor((q1 + 0.5) / this.constants.KH);
  const ky = q1 - q2 * this.constants.KH;
  const co = Math.floor((q2 + 0.5) / this.constants.cg);
  const ci = q2 - co * this.constants.cg;
  const g = Math.floor((co + 0.5) / this.constants.og);
  let s = 0;
  for (let n = 0; n < this.constants.N; n++) {
    for (let oy = 0; oy < this.constants.OH; oy++) {
      const iy = oy * this.constants.stride - this.constants.pad + ky;
      for (let ox = 0; ox < this.constants.OW; ox++) {
        const ix = ox * this.constants.stride - this.constants.pad + kx;
        if (iy >= 0 && iy < this.constants.H && ix >= 0 && ix < this.constants.W) {
          s += gy[((n * this.constants.Cout + co) * this.constants.OH + oy) * this.constants.OW + ox] *
            x[((n * this.constants.Cin + g * this.constants.cg + ci) * this.constants.H + iy) * this.constants.W + ix];
        }
      }
    }
  }
  return s;
}`;

export interface GpujsOptions {
  ops?: readonly GpujsOp[];
  /** Ops with fewer multiply-adds than this stay on the CPU (upload and readback dominate them). */
  minMacs?: number;
}

export class GpujsBackend implements Backend<Data> {
  readonly name = "gpujs" as const;
  readonly description: string;
  readonly renderer: string;
  readonly cpu: CpuBackend = new CpuBackend();
  readonly ops: ReadonlySet<GpujsOp>;
  readonly minMacs: number;
  /** How many calls each op sent to gpu.js and to the CPU (for the page and the tests). */
  readonly counts: Record<string, { gpujs: number; cpu: number }> = {};
  readonly #gpu: GpuLike;
  readonly #kernels = new Map<string, Kernel>();

  constructor(readonly gpuClass: GpuClass, o: GpujsOptions = {}) {
    const GPU = gpuClass;
    if (!GPU.isWebGL2Supported) throw new Error("gpu.js: WebGL2 is not supported in this runtime");
    this.#gpu = new GPU({ mode: "webgl2" });
    this.renderer = webgl2Renderer();
    const policy = gpujsPolicy(this.renderer);
    this.ops = new Set(o.ops ?? policy.ops);
    this.minMacs = o.minMacs ?? policy.minMacs;
    const on = this.ops.size ? `${[...this.ops].join(", ")} on gpu.js WebGL2${this.minMacs > 0 ? ` from ${this.minMacs} multiply-adds` : ""}, CPU for the rest` : "every op on the CPU";
    this.description = `${on} (${this.renderer || "unknown renderer"}${o.ops ? "; ops chosen by the caller" : `: ${policy.why}`})`;
  }

  #use(op: GpujsOp, macs: number, dtype: DType): boolean {
    const on = dtype === "float32" && this.ops.has(op) && macs >= this.minMacs;
    (this.counts[op] ??= { gpujs: 0, cpu: 0 })[on ? "gpujs" : "cpu"]++;
    return on;
  }

  #run(name: string, source: string, constants: Record<string, number>, size: number, args: Data[]): Data {
    const key = `${name}:${size}:${JSON.stringify(constants)}`;
    let k = this.#kernels.get(key);
    if (!k) {
      k = this.#gpu.createKernel(source, { output: [size], constants, precision: "single", tactic: "precision", dynamicArguments: true });
      this.#kernels.set(key, k);
    }
    const r = k(...args);
    return Float32Array.from(r.length === size ? r : r.subarray(0, size));
  }

  matmul(a: Data, b: Data, s: MatmulSpec, dtype: DType): Data {
    const batch = Math.max(s.batchA, s.batchB);
    if (!this.#use("matmul", batch * s.M * s.N * s.K, dtype)) return this.cpu.matmul(a, b, s, dtype);
    const { M, K, N } = s;
    return this.#run("matmul", MATMUL, {
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
    return this.#run("conv", CONV, this.#convConstants(p), p.N * p.Cout * p.OH * p.OW, [x, w]);
  }
  conv2dInputGrad(gy: Data, w: Data, p: ConvParams, dtype: DType): Data {
    if (!this.#use("conv2dInputGrad", this.#convMacs(p), dtype)) return this.cpu.conv2dInputGrad(gy, w, p, dtype);
    return this.#run("convInputGrad", CONV_INPUT_GRAD, this.#convConstants(p), p.N * p.Cin * p.H * p.W, [gy, w]);
  }
  conv2dWeightGrad(x: Data, gy: Data, p: ConvParams, dtype: DType): Data {
    if (!this.#use("conv2dWeightGrad", this.#convMacs(p), dtype)) return this.cpu.conv2dWeightGrad(x, gy, p, dtype);
    return this.#run("convWeightGrad", CONV_WEIGHT_GRAD, this.#convConstants(p), p.Cout * (p.Cin / p.groups) * p.KH * p.KW, [x, gy]);
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
  groupNorm(x: Data, rows: number, M: number, eps: number, dtype: DType): { y: Data; rstd: Data } { return this.cpu.groupNorm(x, rows, M, eps, dtype); }
  groupNormGrad(g: Data, y: Data, rstd: Data, rows: number, M: number, dtype: DType): Data { return this.cpu.groupNormGrad(g, y, rstd, rows, M, dtype); }
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
