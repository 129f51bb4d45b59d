// The page of the browser kernel-parity run (bundled and driven by test/browser_kernels.test.ts):
// the shared parity cases (test/kernel_parity.ts) on the page's WebGPU, for the kernel variants
// that need the adapter's `subgroups` feature, which Deno's lavapipe lacks and Chromium's
// SwiftShader has: the matrix products of each subgroup variant, and the gemm convolutions (both
// backward kernels included) on each. Outputs poisoned with NaN, as in the Deno suite. Writes
// `window.parity`: the adapter, its subgroup sizes, whether it has the feature, and per case its
// name, error (null: passed) and the dispatches of the variant's own kernel it made.
import { kernelParity } from "./kernel_parity.ts";
import { withVariants } from "./helpers.ts";
import { SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { createWebGPUBackend } from "../src/kernels/webgpu/backend.ts";

export interface ParityCase {
  name: string;
  error: string | null;
  /** Dispatches of a `matmul:<variant>` kernel of a subgroup variant while the case ran (-1: no timestamp queries to count them). */
  dispatches: number;
}
export interface ParityPage {
  adapter: string;
  subgroups: boolean;
  subgroupSizes: [number, number] | null;
  cases: ParityCase[];
  error?: string;
}

async function run(): Promise<ParityPage> {
  const gpu = await createWebGPUBackend();
  const feats = gpu.rt.device.features;
  const subgroups = feats.has("subgroups");
  // deno-lint-ignore no-explicit-any
  const info = (gpu.rt.device as any).adapterInfo ?? {};
  const page: ParityPage = {
    adapter: gpu.description, subgroups,
    subgroupSizes: typeof info.subgroupMinSize === "number" ? [info.subgroupMinSize, info.subgroupMaxSize] : null, cases: [],
  };
  if (!subgroups) return page;
  const tests: [string, () => Promise<void>][] = [];
  kernelParity({
    backend: gpu,
    test: (name, fn) => tests.push([name, fn]),
    variants: { matmul: SUBGROUP_VARIANTS, conv: ["gemm"] },
    convMatmuls: () => SUBGROUP_VARIANTS,
    withVariants: (v, f) => withVariants(gpu, v, f),
  });
  const mine = (name: string) => SUBGROUP_VARIANTS.some((v) => name.includes(`matmul variant ${v}`)) || name.includes("conv2d variant gemm");
  gpu.rt.poison = true;
  // the profiler (timestamp queries) counts each case's dispatches by kernel: proof that the
  // subgroup kernels ran, not a fallback
  const counted = feats.has("timestamp-query");
  for (const [name, fn] of tests.filter(([n]) => mine(n))) {
    if (counted) gpu.rt.startProfile();
    let error: string | null = null;
    try {
      await fn();
    } catch (e) {
      error = (e as Error).message ?? String(e);
    }
    const rows = counted ? await gpu.rt.stopProfile() : [];
    const dispatches = rows.filter((r) => SUBGROUP_VARIANTS.some((v) => r.kernel === `matmul:${v}`)).reduce((a, r) => a + r.count, 0);
    page.cases.push({ name, error, dispatches: counted ? dispatches : -1 });
  }
  return page;
}

const w = globalThis as unknown as { parity?: ParityPage };
try {
  w.parity = await run();
} catch (e) {
  w.parity = { adapter: "", subgroups: false, subgroupSizes: null, cases: [], error: String((e as Error).stack ?? e) };
}
document.title = "done";
