// What every kernel family shares: the dispatch constants, the params buffer and its layouts, and
// the flat invocation index over a 2-D dispatch. A leaf module: the drivers in src/kernels/webgpu
// and the shaders both import it, so a layout is written once and read by both.

/** Invocations per workgroup of the flat kernels (the driver's workgroup count is ceil(n / WG)). */
export const WG = 64;
/** Workgroups per dispatch dimension (WebGPU's default maxComputeWorkgroupsPerDimension). */
export const MAX_GROUPS_X = 65535;
/** Highest tensor rank the broadcasting and strided kernels take (each holds MAX_RANK words per per-dim field). */
export const MAX_RANK = 8;

/** An f32 value as the u32 word that carries it in a params buffer (read back with pf). */
export const f32bits = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0];

/**
 * A float that is not finite (NaN, +-inf) as a WGSL expression: its bits or-ed with a run-time
 * zero (`u32Expr & 0u`, a u32 the shader computes), since Chrome's WGSL compiler (Tint) refuses a
 * const-expression whose value is not finite ("value nan cannot be represented as 'f32'"), where
 * Deno's naga takes it.
 */
export const nonFinite = (bits: number, u32Expr: string): string => `bitcast<f32>(0x${bits.toString(16)}u | (${u32Expr} & 0u))`;

/** Params are a u32 array at binding 0; f32 values travel bit-cast. */
export const PARAMS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> P: array<u32>;
fn pf(i: u32) -> f32 { return bitcast<f32>(P[i]); }
fn pi(i: u32) -> i32 { return bitcast<i32>(P[i]); }
`;

/**
 * The params-buffer layout of one kernel family: named fields of given word counts, in order.
 * The driver fills a buffer with `pack`, the shader reads it with `u`/`i`/`f`/`declare`, so the
 * offsets exist in one place (and follow MAX_RANK where a field is per-dimension).
 */
export class Layout<K extends string> {
  readonly offset = {} as Record<K, number>;
  readonly length = {} as Record<K, number>;
  /** Total words. */
  readonly words: number;

  constructor(fields: Record<K, number>) {
    let at = 0;
    for (const [k, n] of Object.entries(fields) as [K, number][]) {
      this.offset[k] = at;
      this.length[k] = n;
      at += n;
    }
    this.words = at;
  }

  #word(name: K, k: number): number {
    if (!(k >= 0 && k < this.length[name])) throw new Error(`params layout: word ${k} of ${name} (length ${this.length[name]})`);
    return this.offset[name] + k;
  }

  /** WGSL: word k of field `name` as u32. */
  u(name: K, k = 0): string {
    return `P[${this.#word(name, k)}u]`;
  }

  /** WGSL: word k of field `name` as i32. */
  i(name: K, k = 0): string {
    return `pi(${this.#word(name, k)}u)`;
  }

  /** WGSL: word k of field `name` as f32. */
  f(name: K, k = 0): string {
    return `pf(${this.#word(name, k)}u)`;
  }

  /** WGSL: `let name = P[..];` for each scalar field named. */
  declare(...names: K[]): string {
    return names.map((n) => `let ${n} = ${this.u(n)};`).join(" ");
  }

  /**
   * The words of one dispatch: each field's value (a number, or up to its length of numbers),
   * fields not given (or undefined) and unused words 0. Negative integers wrap to their u32 bits; f32 values must
   * come through f32bits.
   */
  pack(values: Partial<Record<K, number | readonly number[] | undefined>>): number[] {
    const out = new Array<number>(this.words).fill(0);
    for (const k in values) {
      const v = values[k];
      if (v === undefined) continue;
      const at = this.offset[k];
      if (at === undefined) throw new Error(`params layout: no field ${k}`);
      if (typeof v === "number") {
        out[at] = v >>> 0;
        continue;
      }
      if (v.length > this.length[k]) throw new Error(`params layout: ${v.length} words for ${k} (length ${this.length[k]})`);
      for (let j = 0; j < v.length; j++) out[at + j] = v[j] >>> 0;
    }
    return out;
  }
}

/** Entry point header: `idx` is the flat index, spread over x and y (x <= MAX_GROUPS_X groups). */
export function entry(wg = WG): string {
  return /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * ${wg}u;`;
}
