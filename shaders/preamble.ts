// Shared WGSL pieces: the params buffer and the flat invocation index over a 2-D dispatch.
export const WG = 64;

/** Params are a u32 array at binding 0; f32 values travel bit-cast. */
export const PARAMS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> P: array<u32>;
fn pf(i: u32) -> f32 { return bitcast<f32>(P[i]); }
fn pi(i: u32) -> i32 { return bitcast<i32>(P[i]); }
`;

/** Entry point header: `idx` is the flat index, spread over x and y (x <= 65535 groups). */
export function entry(wg = WG): string {
  return /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * ${wg}u;`;
}
