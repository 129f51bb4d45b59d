// `npm run web`: builds the bundles (scripts/web/build.ts) and serves the page on localhost:
//   /            web/index.html          /dist/*     the bundles
//   /web/*       the page's files and data (web/models.json lists the models)
//   /weights/*   shipped weights and sample grids (top-level files only)
//   /gpu.js      gpu.js's browser build, fetched by the page only when it falls back from WebGPU
// Open the printed address in Chrome (WebGPU; elsewhere the page falls back to gpu.js's WebGL2).
//   deno run -A scripts/web/serve.ts [--port 8770] [--no-build]
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
  const pi = Deno.args.indexOf("--port");
  const port = pi >= 0 ? Number(Deno.args[pi + 1]) : 8770;
  if (!(Number.isInteger(port) && port > 0 && port < 65536)) {
    console.error(`error: --port ${Deno.args[pi + 1]} is not a port number (1-65535)`);
    Deno.exit(1);
  }
  const unknown = Deno.args.filter((a, i) => a.startsWith("--") && !["--port", "--no-build"].includes(a) && Deno.args[i - 1] !== "--port");
  if (unknown.length) {
    console.error(`error: unknown option ${unknown[0]} (expected --port N, --no-build)`);
    Deno.exit(1);
  }
  if (!Deno.args.includes("--no-build")) for (const b of await build()) console.log(`built ${b.file}: ${(b.bytes / 1024).toFixed(1)} KiB (${(b.gzip / 1024).toFixed(1)} KiB gzipped)`);
  serve(port);
  console.log(`fimscope page: http://127.0.0.1:${port}/  (Ctrl-C to stop)`);
}
