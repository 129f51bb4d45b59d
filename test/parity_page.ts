// The page of the browser kernel-parity run (bundled and driven by test/browser_kernels.test.ts):
// every WebGPU kernel case of the Deno suite (test/webgpu_parity.ts: the shared parity cases of
// test/kernel_parity.ts over every kernel variant, outputs poisoned with NaN), then each model's
// loss gradient against float64 central differences (test/model_grads.ts, as
// test/webgpu_grads.test.ts), on the page's WebGPU, where Chrome compiles the WGSL with its own
// compiler (Tint, where Deno has naga) and,
// without a GPU, SwiftShader runs it: an adapter with the `subgroups` feature, which Deno's
// lavapipe lacks, so the subgroup variants run here. Writes `window.parity`: the adapter, its
// subgroup sizes, whether it has the feature, and per case its name, error (null: passed) and
// the dispatches of a subgroup variant's own kernel it made (the profiler's count).
import { SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { createWebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { webgpuParity } from "./webgpu_parity.ts";
import { modelGradients } from "./model_grads.ts";

export interface ParityCase {
  name: string;
  error: string | null;
  /** Dispatches of a `matmul:<variant>` kernel of a subgroup variant while the case ran (-1: no timestamp queries to count them). */
  subgroupDispatches: number;
}
export interface ParityPage {
  adapter: string;
  subgroups: boolean;
  /** The first line the backend gives its subgroup shaders on this device (src/kernels/webgpu/device.ts). */
  subgroupHeader: string | null;
  subgroupSizes: [number, number] | null;
  cases: ParityCase[];
  error?: string;
}

async function run(): Promise<ParityPage> {
  const gpu = await createWebGPUBackend();
  const feats = gpu.rt.device.features;
  // deno-lint-ignore no-explicit-any
  const info = (gpu.rt.device as any).adapterInfo ?? {};
  const page: ParityPage = {
    adapter: gpu.description, subgroups: feats.has("subgroups"), subgroupHeader: gpu.rt.subgroupHeader,
    subgroupSizes: typeof info.subgroupMinSize === "number" ? [info.subgroupMinSize, info.subgroupMaxSize] : null, cases: [],
  };
  const tests: [string, () => Promise<void>][] = [];
  webgpuParity(gpu, (name, fn) => tests.push([name, fn]));
  modelGradients((name, fn) => tests.push([name, () => fn(gpu)]), "webgpu (chromium)");
  const counted = feats.has("timestamp-query");
  // every fresh output poisoned with NaN, the model gradients' too: an element no kernel wrote shows
  gpu.rt.poison = true;
  for (const [name, fn] of tests) {
    if (counted) gpu.rt.startProfile();
    let error: string | null = null;
    try {
      await fn();
    } catch (e) {
      error = (e as Error).message ?? String(e);
    }
    const rows = counted ? await gpu.rt.stopProfile() : [];
    const n = rows.filter((r) => SUBGROUP_VARIANTS.some((v) => r.kernel === `matmul:${v}`)).reduce((a, r) => a + r.count, 0);
    page.cases.push({ name, error, subgroupDispatches: counted ? n : -1 });
  }
  return page;
}

const w = globalThis as unknown as { parity?: ParityPage };
try {
  w.parity = await run();
} catch (e) {
  w.parity = { adapter: "", subgroups: false, subgroupHeader: null, subgroupSizes: null, cases: [], error: String((e as Error).stack ?? e) };
}
document.title = "done";
