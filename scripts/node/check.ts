// Runs the engine under Node 20 with the \`webgpu\` package (Dawn): bundles scripts/node/entry.ts
// and runs it with node. Dawn rejects lavapipe 22.3, so by default this uses Dawn's OpenGL ES
// backend on Mesa (EGL_PLATFORM=surfaceless, FIMSCOPE_DAWN_OPTIONS=backend=opengles); pass
// --swiftshader to use Chromium's SwiftShader Vulkan ICD instead; --wasm checks the wasm backend
// (node:worker_threads) instead of WebGPU.   deno run -A scripts/node/check.ts [--swiftshader | --wasm]
const dir = new URL(".", import.meta.url).pathname;
const bad = Deno.args.find((a) => a !== "--swiftshader" && a !== "--wasm");
if (bad) {
  console.error(`error: unknown option '${bad}'; options: --swiftshader or --wasm`);
  Deno.exit(1);
}
const wasm = Deno.args.includes("--wasm");
const root = new URL("../../", import.meta.url).pathname;
const bundle = `${root}node_modules/.cache/fimscope-node-check.mjs`; // inside the tree, so node finds the webgpu package
Deno.mkdirSync(`${root}node_modules/.cache`, { recursive: true });
const b = await new Deno.Command(Deno.execPath(), { args: ["bundle", wasm ? "--platform=node" : "--platform=browser", `${dir}${wasm ? "wasm_entry.ts" : "entry.ts"}`, "-o", bundle] }).output();
if (b.code !== 0) throw new Error(`bundle failed: ${new TextDecoder().decode(b.stderr)}`);
const env: Record<string, string> = Deno.args.includes("--swiftshader")
  ? { VK_ICD_FILENAMES: "/usr/lib/chromium/vk_swiftshader_icd.json" }
  : { EGL_PLATFORM: "surfaceless", FIMSCOPE_DAWN_OPTIONS: "backend=opengles" };
const r = await new Deno.Command("node", { args: [bundle], env, stdout: "piped", stderr: "piped" }).output();
const text = new TextDecoder().decode(r.stdout);
console.log(text.split("\n").find((l) => l.startsWith("RESULT")) ?? `no result (exit ${r.code}): ${new TextDecoder().decode(r.stderr).slice(-500)}`);
Deno.exit(r.code);
