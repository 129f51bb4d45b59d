// The WebGPU backend: float32 storages in pooled GPU buffers, one driver per kernel family.
import type { Backend, BinaryOp, ConvParams, Data, DType, MatmulSpec, ReduceOp, StridedSpec, UnaryOp } from "../backend.ts";
import type { MatmulVariant } from "../../../shaders/matmul.wgsl.ts";
import type { ConvVariant } from "../../../shaders/conv.wgsl.ts";
import { acquireDevice } from "./device.ts";
import { type GpuStorage, Runtime } from "./runtime.ts";
import * as EW from "./elementwise.ts";
import { reduce, type ReduceVariant } from "./reduce.ts";
import { concat, strided, type StridedVariant } from "./strided.ts";
import { matmul } from "./matmul.ts";
import * as CV from "./conv.ts";
import * as GN from "./groupnorm.ts";

export interface KernelVariants {
  matmul: MatmulVariant;
  conv: ConvVariant;
  reduce: ReduceVariant;
  strided: StridedVariant;
}

/** Every family on "auto": its driver picks a variant per shape, by rules measured on lavapipe (bench/README.md). */
export const DEFAULT_VARIANTS: KernelVariants = { matmul: "auto", conv: "auto", reduce: "auto", strided: "auto" };

function f32only(op: string, dtype: DType) {
  if (dtype !== "float32") throw new Error(`${op}: the webgpu backend computes in float32 only (got ${dtype})`);
}

export class WebGPUBackend implements Backend<GpuStorage> {
  readonly name = "webgpu" as const;
  variants: KernelVariants = { ...DEFAULT_VARIANTS };

  constructor(readonly rt: Runtime) {}

  get description(): string {
    return this.rt.description;
  }

  upload(data: ArrayLike<number>, dtype: DType): GpuStorage {
    f32only("upload", dtype);
    return this.rt.upload(data instanceof Float32Array ? data : Float32Array.from(data));
  }
  read(s: GpuStorage, size: number): Promise<Data> {
    return this.rt.read(s, size);
  }
  release(s: GpuStorage): void {
    this.rt.free(s);
  }
  sync(): Promise<void> {
    return this.rt.sync();
  }
  fill(size: number, value: number, dtype: DType): GpuStorage {
    f32only("fill", dtype);
    return EW.fill(this.rt, size, value);
  }
  unary(op: UnaryOp, x: GpuStorage, size: number, _d: DType, p: number): GpuStorage {
    return EW.unary(this.rt, op, x, size, p);
  }
  binary(op: BinaryOp, a: GpuStorage, aShape: readonly number[], b: GpuStorage, bShape: readonly number[], outShape: readonly number[]): GpuStorage {
    return EW.binary(this.rt, op, a, aShape, b, bShape, outShape);
  }
  where(c: GpuStorage, cShape: readonly number[], a: GpuStorage, aShape: readonly number[], b: GpuStorage, bShape: readonly number[], outShape: readonly number[]): GpuStorage {
    return EW.where(this.rt, c, cShape, a, aShape, b, bShape, outShape);
  }
  reduce(op: ReduceOp, x: GpuStorage, outer: number, R: number, inner: number): GpuStorage {
    return reduce(this.rt, op, x, outer, R, inner, this.variants.reduce);
  }
  strided(x: GpuStorage, spec: StridedSpec): GpuStorage {
    return strided(this.rt, x, spec, this.variants.strided);
  }
  concat(parts: GpuStorage[], blocks: readonly number[], outer: number): GpuStorage {
    return concat(this.rt, parts, blocks, outer, this.variants.strided);
  }
  matmul(a: GpuStorage, b: GpuStorage, spec: MatmulSpec): GpuStorage {
    return matmul(this.rt, a, b, spec, this.variants.matmul);
  }
  conv2d(x: GpuStorage, w: GpuStorage, p: ConvParams): GpuStorage {
    return CV.conv2d(this.rt, x, w, p, this.variants.conv, this.variants.matmul);
  }
  conv2dInputGrad(gy: GpuStorage, w: GpuStorage, p: ConvParams): GpuStorage {
    return CV.conv2dInputGrad(this.rt, gy, w, p, this.variants.conv, this.variants.matmul);
  }
  conv2dWeightGrad(x: GpuStorage, gy: GpuStorage, p: ConvParams): GpuStorage {
    return CV.conv2dWeightGrad(this.rt, x, gy, p, this.variants.conv, this.variants.matmul);
  }
  groupNorm(x: GpuStorage, rows: number, M: number, eps: number, dtype: DType): { y: GpuStorage; rstd: GpuStorage } {
    f32only("groupNorm", dtype);
    return GN.groupNorm(this.rt, x, rows, M, eps);
  }
  groupNormGrad(g: GpuStorage, y: GpuStorage, rstd: GpuStorage, rows: number, M: number, dtype: DType): GpuStorage {
    f32only("groupNormGrad", dtype);
    return GN.groupNormGrad(this.rt, g, y, rstd, rows, M);
  }
}

export async function createWebGPUBackend(): Promise<WebGPUBackend> {
  const { device, description, subgroupHeader } = await acquireDevice();
  return new WebGPUBackend(new Runtime(device, description, subgroupHeader));
}
