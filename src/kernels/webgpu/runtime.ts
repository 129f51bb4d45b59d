// Pipelines built once (cached by kernel key), dispatches recorded into one open compute pass
// and submitted in batches, params buffers cached by content, storages from the pool, the first
// validation error kept for the next check. Device timing is in profiler.ts, the conv patch
// matrices kept between a forward and its weight gradient in patches.ts.
/// <reference types="@webgpu/types" />
import { BufferPool } from "./pool.ts";
import { KeptPatches } from "./patches.ts";
import { type KernelTime, Profiler } from "./profiler.ts";
import { FILL, fillShader } from "../../../shaders/elementwise.wgsl.ts";
import { MAX_GROUPS_X, WG } from "../../../shaders/preamble.ts";

export interface GpuStorage {
  buf: GPUBuffer;
  /** Length in f32 elements. */
  n: number;
}

/** Dispatches and copies recorded per submit. */
const MAX_PENDING = 128;
/** Params buffers cached by content; past this many the cache is emptied (after a flush). */
const MAX_PARAM_BUFFERS = 4096;

export class Runtime {
  readonly pool: BufferPool;
  readonly staging: BufferPool;
  #pipelines = new Map<string, GPUComputePipeline>();
  #params = new Map<string, GPUBuffer>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #error: string | null = null;
  /** Tests set this: every new output buffer is filled with NaN first, so unwritten elements show. */
  poison = false;
  #prof: Profiler | null = null;
  /** Patch matrices kept by conv forwards for their weight gradients, freed with their inputs. */
  readonly patches: KeptPatches;

  /**
   * @param subgroupHeader what a subgroup shader begins with on this device (device.ts
   * AcquiredDevice.subgroupHeader); null: no subgroup kernels here
   */
  constructor(readonly device: GPUDevice, readonly description: string, readonly subgroupHeader: string | null = null) {
    this.pool = new BufferPool(device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.staging = new BufferPool(device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.patches = new KeptPatches((s) => this.pool.release(s.buf));
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** Why the subgroup kernel variants cannot run on this device, or null where they can. */
  get subgroupsOff(): string | null {
    if (this.subgroupHeader !== null) return null;
    return this.device.features.has("subgroups") ? "this device's WGSL compiler takes no subgroup shader" : "this device has no `subgroups` feature";
  }

  /** Throws the first WebGPU validation error seen since the last check. */
  checkErrors(where: string): void {
    if (this.#error) {
      const m = this.#error;
      this.#error = null;
      throw new Error(`WebGPU error (seen by ${where}): ${m}`);
    }
  }

  alloc(n: number): GpuStorage {
    const s = { buf: this.pool.acquire(n * 4), n };
    if (this.poison && n) this.dispatch("fill", fillShader, FILL.pack({ n, value: 0x7fc00000 }), [], s, Math.ceil(n / WG));
    return s;
  }

  free(s: GpuStorage): void {
    this.pool.release(s.buf);
    this.patches.inputFreed(s);
  }

  pipeline(key: string, code: () => string): GPUComputePipeline {
    let p = this.#pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: key });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: key });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  #paramBuffer(params: ArrayLike<number>): GPUBuffer {
    const u = new Uint32Array(Math.max(4, params.length));
    u.set(params);
    const key = u.join(",");
    let b = this.#params.get(key);
    if (!b) {
      if (this.#params.size >= MAX_PARAM_BUFFERS) {
        this.flush();
        for (const old of this.#params.values()) old.destroy();
        this.#params.clear();
      }
      // Written at creation, never after: no ordering hazard with queued dispatches.
      b = this.device.createBuffer({ size: u.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Uint32Array(b.getMappedRange()).set(u);
      b.unmap();
      this.#params.set(key, b);
    }
    return b;
  }

  /**
   * Record one dispatch. `params` are u32 words (f32 values bit-cast by the caller);
   * groups is a workgroup count along x (split over x and y when above the per-dimension limit)
   * or an explicit [x, y, z]. Outputs (one, or several) are bound after the inputs.
   */
  dispatch(key: string, code: () => string, params: ArrayLike<number>, inputs: GpuStorage[], output: GpuStorage | GpuStorage[], groups: number | [number, number, number]): void {
    const pipe = this.pipeline(key, code);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.#paramBuffer(params) } }];
    inputs.forEach((s, i) => entries.push({ binding: i + 1, resource: { buffer: s.buf } }));
    (Array.isArray(output) ? output : [output]).forEach((s, i) => entries.push({ binding: inputs.length + 1 + i, resource: { buffer: s.buf } }));
    const bind = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    if (this.#prof) {
      // Profiling: one pass per dispatch, timestamped at its start and end.
      this.#endPass();
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass({ timestampWrites: this.#prof.timestamps(key) });
    } else if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipe);
    this.#pass.setBindGroup(0, bind);
    if (typeof groups === "number") {
      if (groups === 0) return;
      const x = Math.min(groups, MAX_GROUPS_X);
      this.#pass.dispatchWorkgroups(x, Math.ceil(groups / x));
    } else this.#pass.dispatchWorkgroups(...groups);
    if (this.#prof) this.#endPass();
    if (++this.#pending >= MAX_PENDING || this.#prof?.full) this.flush();
  }

  /** Record a buffer-to-buffer copy of n f32 elements (between dispatches, in stream order). */
  copy(src: GpuStorage, srcOffset: number, dst: GpuStorage, dstOffset: number, n: number): void {
    if (n === 0) return;
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(src.buf, srcOffset * 4, dst.buf, dstOffset * 4, n * 4);
    if (++this.#pending >= MAX_PENDING) this.flush();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Submit what has been recorded. */
  flush(): void {
    this.#endPass();
    if (!this.#encoder) return;
    const timed = this.#prof?.resolve(this.#encoder);
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pending = 0;
    timed?.();
  }

  /** Start timing every kernel on the device (needs the timestamp-query feature). */
  startProfile(): void {
    this.flush();
    this.#prof = new Profiler(this.device);
  }

  /** Stop timing; per kernel key: dispatch count and total device milliseconds, slowest first. */
  async stopProfile(): Promise<KernelTime[]> {
    if (!this.#prof) return [];
    this.flush();
    const prof = this.#prof;
    this.#prof = null;
    return await prof.finish();
  }

  upload(data: Float32Array): GpuStorage {
    // Flush first: a pooled buffer may still be read by recorded, unsubmitted work,
    // and writeBuffer would otherwise land before that work runs.
    this.flush();
    const s = { buf: this.pool.acquire(data.length * 4), n: data.length };
    if (data.byteLength) this.device.queue.writeBuffer(s.buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return s;
  }

  async read(s: GpuStorage, n: number): Promise<Float32Array> {
    this.flush();
    const bytes = n * 4;
    const out = new Float32Array(n);
    if (!n) return out;
    const st = this.staging.acquire(bytes);
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(s.buf, 0, st, 0, Math.ceil(bytes / 4) * 4);
    this.device.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ, 0, bytes);
    out.set(new Float32Array(st.getMappedRange(0, bytes)));
    st.unmap();
    this.staging.release(st);
    this.checkErrors("read");
    return out;
  }

  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors("sync");
  }
}
