// Runs the engine in headless Chromium's WebGPU (SwiftShader without a GPU): bundles
// scripts/browser/entry.ts, serves it on localhost, drives Chromium over the DevTools protocol and
// prints the page's result (WebGPU vs CPU on matmul, conv2d and a gradient). Needs `chromium`
// (apt-get install -y chromium).   deno run -A scripts/browser/check.ts [--wasm [--isolated]]
// --wasm: the same checks on the wasm backend (one thread; --isolated serves the page cross-origin
// isolated, COOP + COEP, so it gets a shared memory and Worker threads).
const dir = new URL(".", import.meta.url).pathname;
const wasm = Deno.args.includes("--wasm"), isolated = Deno.args.includes("--isolated");
const bad = Deno.args.find((a) => a !== "--wasm" && a !== "--isolated");
if (bad || (isolated && !wasm)) {
  console.error(`error: ${bad ? `unknown option '${bad}'` : "--isolated: only with --wasm"}; options: --wasm [--isolated]`);
  Deno.exit(1);
}
const out = await new Deno.Command(Deno.execPath(), { args: ["bundle", "--platform=browser", `${dir}${wasm ? "wasm_entry.ts" : "entry.ts"}`, "-o", "/tmp/fimscope-browser.js"] }).output();
if (out.code !== 0) throw new Error(`bundle failed: ${new TextDecoder().decode(out.stderr)}`);
const page = `<!doctype html><html><body>running<script type="module" src="/bundle.js"></script></body></html>`;
const coi: Record<string, string> = isolated ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {};
const server = Deno.serve({ port: 8766, hostname: "127.0.0.1", onListen() {} }, (req) =>
  new URL(req.url).pathname === "/bundle.js"
    ? new Response(Deno.readFileSync("/tmp/fimscope-browser.js"), { headers: { "content-type": "text/javascript", ...coi } })
    : new Response(page, { headers: { "content-type": "text/html", ...coi } }));
const port = 9334;
const chrome = new Deno.Command("chromium", {
  args: ["--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${Deno.makeTempDirSync()}`, `--remote-debugging-port=${port}`, "about:blank"],
  stdout: "null", stderr: "null",
}).spawn();
let targets: { webSocketDebuggerUrl: string; type: string }[] = [];
for (let i = 0; i < 60 && !targets.length; i++) {
  await new Promise((r) => setTimeout(r, 300));
  try {
    targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()).filter((t: { type: string }) => t.type === "page");
  } catch { /* not up yet */ }
}
if (!targets.length) throw new Error("chromium did not start (is it installed?)");
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => (ws.onopen = r));
let id = 0;
const pending = new Map<number, (v: unknown) => void>();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.id && pending.has(m.id)) {
    pending.get(m.id)!(m.result);
    pending.delete(m.id);
  }
};
const send = (method: string, params: object = {}) => new Promise((r) => {
  const i = ++id;
  pending.set(i, r);
  ws.send(JSON.stringify({ id: i, method, params }));
});
await send("Page.navigate", { url: "http://127.0.0.1:8766/" });
let text = "";
for (let i = 0; i < 120 && !text.startsWith("RESULT"); i++) {
  await new Promise((r) => setTimeout(r, 500));
  const r = await send("Runtime.evaluate", { expression: "document.body ? document.body.textContent : ''" }) as { result?: { value?: string } };
  text = r.result?.value ?? "";
}
console.log(text || "no result from the page");
ws.close();
chrome.kill();
await server.shutdown();
Deno.exit(text.includes('"ok":true') ? 0 : 1);
