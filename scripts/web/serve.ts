// `npm run web`: builds the bundles (scripts/web/build.ts) and serves the page on localhost:
//   /            web/index.html          /dist/*     the bundles
//   /web/*       the page's files and data (web/models.json lists the models)
//   /weights/*   shipped weights and sample grids (top-level files only)
//   /gpu.js      gpu.js's browser build, fetched by the page only when it falls back from WebGPU
//   /favicon.ico the page's icon (web/favicon.svg)
// Open the printed address in Chrome (WebGPU; elsewhere the page falls back to gpu.js's WebGL2).
// URL options: ?model=<id in web/models.json>, ?backend=webgpu|gpujs|wasm|cpu, ?gpujs=all.
//   npm run web [-- --port 8770] [--no-build]
//   deno run -A scripts/web/serve.ts [--port 8770] [--no-build]
// A port already in use is one `error:` line and exit 1.
import { flag, int, parseOptions, usageError } from "../../src/io/options.ts";
import { build } from "./build.ts";

const root = new URL("../../", import.meta.url).pathname;
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8", js: "text/javascript", css: "text/css", json: "application/json",
  png: "image/png", svg: "image/svg+xml", u8: "application/octet-stream", safetensors: "application/octet-stream",
};

/** The file a request path maps to, or null (nothing outside the served folders, no '..'). */
export function resolvePath(path: string): string | null {
  if (path === "/" || path === "/index.html") return `${root}web/index.html`;
  if (path === "/gpu.js") return `${root}node_modules/gpu.js/dist/gpu-browser.min.js`;
  if (path === "/favicon.ico") return `${root}web/favicon.svg`;
  if (path.includes("..") || path.includes("\\")) return null;
  if (/^\/(web|dist)\/[\w./-]+$/.test(path)) return `${root}${path.slice(1)}`;
  if (/^\/weights\/[\w.-]+$/.test(path)) return `${root}${path.slice(1)}`;
  return null;
}

export function serve(port: number): Deno.HttpServer {
  return Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const file = resolvePath(decodeURIComponent(new URL(req.url).pathname));
    if (!file) return new Response("not found", { status: 404 });
    try {
      const body = await Deno.readFile(file);
      return new Response(body, {
        headers: {
          "content-type": TYPES[file.split(".").pop()!] ?? "application/octet-stream", "cache-control": "no-store",
          // Cross-origin isolation: gives the page SharedArrayBuffer, which the wasm backend's
          // threads need (everything served here is same-origin; without it wasm runs on one thread).
          "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp",
        },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  // Only as a command: errors.ts ends the process on an error (tests import serve()).
  await import("../../src/cli/errors.ts");
  const a = parseOptions("web", { port: int({ min: 1, max: 65535 }).default(8770), "no-build": flag() });
  // Before building: a port in use is known at once.
  try {
    Deno.listen({ port: a.port, hostname: "127.0.0.1" }).close();
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw usageError("web", "--port", a.port, "a free port: this one is in use (stop what holds it, or pass another)");
    throw e;
  }
  if (!a["no-build"]) for (const b of await build()) console.log(`built ${b.file}: ${(b.bytes / 1024).toFixed(1)} KiB (${(b.gzip / 1024).toFixed(1)} KiB gzipped)`);
  try {
    serve(a.port);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw usageError("web", "--port", a.port, "a free port: this one is in use (stop what holds it, or pass another)");
    throw e;
  }
  console.log(`fimscope page: http://127.0.0.1:${a.port}/  (Ctrl-C to stop)`);
}
