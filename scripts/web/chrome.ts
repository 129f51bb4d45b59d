// A small DevTools-protocol driver for Debian's headless chromium (no browser download): start it,
// open a page, evaluate expressions (awaiting promises), send mouse and key events, set the
// viewport, take screenshots, run an axe-core accessibility audit in the page.
// Used by test/browser.test.ts and the scripts in scripts/web/.
import { writeFileAtomic } from "../../src/io/atomic.ts";

export interface ChromeOptions {
  /** false: no --enable-unsafe-webgpu, so navigator.gpu gives no adapter (the fallback path). */
  webgpu?: boolean;
  width?: number;
  height?: number;
  /** More chromium flags (after the defaults). */
  extraArgs?: string[];
}

export function chromiumPath(): string | null {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

export class Chrome {
  #id = 0;
  #pending = new Map<number, { ok: (v: unknown) => void; err: (e: Error) => void }>();
  readonly console: string[] = [];
  /** The last lines chromium wrote to stderr. */
  private constructor(readonly proc: Deno.ChildProcess, readonly ws: WebSocket, readonly profile: string, readonly stderr: string[]) {
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.id && this.#pending.has(m.id)) {
        const p = this.#pending.get(m.id)!;
        this.#pending.delete(m.id);
        if (m.error) p.err(new Error(`${m.error.message}${m.error.data ? `: ${m.error.data}` : ""}`));
        else p.ok(m.result);
      } else if (m.method === "Runtime.consoleAPICalled") {
        this.console.push(`${m.params.type}: ${m.params.args.map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(" ")}`);
      } else if (m.method === "Runtime.exceptionThrown") {
        this.console.push(`exception: ${m.params.exceptionDetails?.exception?.description ?? m.params.exceptionDetails?.text}`);
      }
    };
    // chromium gone (crashed, killed): every call still waiting fails, rather than waiting forever
    ws.onclose = () => {
      const e = new Error(`chromium's DevTools connection closed; its last stderr: ${stderr.join("").slice(-500)}`);
      for (const p of this.#pending.values()) p.err(e);
      this.#pending.clear();
    };
  }

  static async launch(o: ChromeOptions = {}): Promise<Chrome> {
    const exe = chromiumPath();
    if (!exe) throw new Error("chromium is not installed (apt-get install -y chromium)");
    const profile = Deno.makeTempDirSync({ prefix: "fimscope-chrome-" });
    const args = ["--headless", "--no-sandbox", "--disable-gpu-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-extensions", `--user-data-dir=${profile}`, "--remote-debugging-port=0",
      `--window-size=${o.width ?? 1400},${o.height ?? 1800}`];
    if (o.webgpu !== false) args.push("--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader");
    else args.push("--disable-gpu", "--disable-features=WebGPU", "--use-angle=swiftshader");
    args.push(...(o.extraArgs ?? []));
    const proc = new Deno.Command(exe, { args: [...args, "about:blank"], stdout: "null", stderr: "piped" }).spawn();
    // The DevTools port is printed on stderr: "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/...".
    const reader = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "", port = 0;
    const this_stderr: string[] = [];
    const deadline = Date.now() + 20000;
    while (!port && Date.now() < deadline) {
      const r = await Promise.race([reader.read(), new Promise<null>((res) => setTimeout(() => res(null), deadline - Date.now()))]);
      if (!r || r.done) break;
      text += r.value;
      const m = text.match(/DevTools listening on ws:\/\/[^:]+:(\d+)\//);
      if (m) port = Number(m[1]);
    }
    // Keep draining stderr so chromium never blocks on a full pipe.
    (async () => {
      try {
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          this_stderr.push(r.value);
          if (this_stderr.length > 200) this_stderr.shift();
        }
      } catch { /* closed */ }
    })();
    try {
      if (!port) throw new Error(`chromium did not start: ${text.slice(-500)}`);
      let target: { webSocketDebuggerUrl: string } | undefined;
      for (let i = 0; i < 50 && !target; i++) {
        try {
          target = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()).find((t: { type: string }) => t.type === "page");
        } catch { /* not yet */ }
        if (!target) await new Promise((r) => setTimeout(r, 100));
      }
      if (!target) throw new Error("chromium: no page target");
      const ws = new WebSocket(target.webSocketDebuggerUrl);
      await new Promise((r, j) => { ws.onopen = r; ws.onerror = () => j(new Error("chromium: the DevTools websocket did not open")); });
      const c = new Chrome(proc, ws, profile, this_stderr);
      await c.send("Runtime.enable");
      await c.send("Page.enable");
      return c;
    } catch (e) {
      // not started after all: nothing is left running or on disk
      try { proc.kill("SIGKILL"); } catch { /* gone */ }
      await proc.status;
      await removeProfile(profile);
      throw e;
    }
  }

  send<T = Record<string, unknown>>(method: string, params: object = {}): Promise<T> {
    return new Promise((ok, err) => {
      const id = ++this.#id;
      this.#pending.set(id, { ok: ok as (v: unknown) => void, err });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates an expression in the page, awaiting a promise result; page exceptions become errors. */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: { exception?: { description?: string }; text: string } }>("Runtime.evaluate", {
      expression, awaitPromise: true, returnByValue: true,
    });
    if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  async goto(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
  }

  /** Polls `expression` until it is truthy (or throws after timeoutMs). */
  async waitFor(expression: string, timeoutMs = 60000): Promise<unknown> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.eval(expression).catch(() => undefined);
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async screenshot(path: string): Promise<void> {
    // The whole document, however wide or tall it is.
    const [width, height] = await this.eval<[number, number]>("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]");
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    const r = await this.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
    await this.send("Emulation.clearDeviceMetricsOverride");
    writeFileAtomic(path, Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0)));
  }

  mouse(type: "mousePressed" | "mouseMoved" | "mouseReleased", x: number, y: number): Promise<unknown> {
    return this.send("Input.dispatchMouseEvent", { type, x, y, button: "left", buttons: type === "mouseReleased" ? 0 : 1, clickCount: 1, pointerType: "mouse" });
  }

  /** A click with real mouse events at the centre of the element `selector` matches (scrolled into view). */
  async click(selector: string): Promise<void> {
    const box = await this.eval<number[] | null>(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null; e.scrollIntoView({ block: "center" });
      const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`);
    if (!box) throw new Error(`click: nothing matches ${selector}`);
    await this.mouse("mouseMoved", box[0], box[1]);
    await this.mouse("mousePressed", box[0], box[1]);
    await this.mouse("mouseReleased", box[0], box[1]);
  }

  /** One key press (keyDown, then keyUp) on the focused element: Tab, Enter, " ", ArrowDown, ..., with shift optionally. */
  async key(key: string, o: { shift?: boolean } = {}): Promise<void> {
    const codes: Record<string, [string, number, string?]> = {
      Tab: ["Tab", 9], Enter: ["Enter", 13, "\r"], " ": ["Space", 32, " "], Escape: ["Escape", 27], Home: ["Home", 36], End: ["End", 35],
      ArrowLeft: ["ArrowLeft", 37], ArrowUp: ["ArrowUp", 38], ArrowRight: ["ArrowRight", 39], ArrowDown: ["ArrowDown", 40],
    };
    const c = codes[key];
    if (!c) throw new Error(`key: ${key} is not one of ${Object.keys(codes).join(", ")}`);
    const [code, vk, text] = c;
    const base = { key, code, windowsVirtualKeyCode: vk, nativeVirtualKeyCode: vk, modifiers: o.shift ? 8 : 0 };
    await this.send("Input.dispatchKeyEvent", { type: text ? "keyDown" : "rawKeyDown", ...base, ...(text ? { text, unmodifiedText: text } : {}) });
    await this.send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
  }

  /** The viewport's size in CSS pixels (mobile: a touch screen's meta-viewport handling); null restores the window's. */
  async viewport(size: { width: number; height: number; mobile?: boolean } | null): Promise<void> {
    if (size) await this.send("Emulation.setDeviceMetricsOverride", { width: size.width, height: size.height, deviceScaleFactor: 1, mobile: size.mobile ?? false });
    else await this.send("Emulation.clearDeviceMetricsOverride");
  }

  /** A screenshot of the viewport only (what a person sees without scrolling). */
  async screenshotViewport(path: string): Promise<void> {
    const r = await this.send<{ data: string }>("Page.captureScreenshot", { format: "png" });
    writeFileAtomic(path, Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0)));
  }

  /**
   * axe-core's audit of the page as it is now (its script injected over the DevTools protocol, once
   * per document): the violations of the given impacts, each with its rule, impact, help and the
   * first few elements it names.
   */
  async axe(impacts = ["serious", "critical"]): Promise<{ id: string; impact: string; help: string; nodes: string[] }[]> {
    if (!(await this.eval<boolean>("typeof axe === 'object'"))) {
      const file = new URL("../../node_modules/axe-core/axe.min.js", import.meta.url);
      let src: string;
      try {
        src = Deno.readTextFileSync(file);
      } catch {
        throw new Error(`axe-core is not installed (${file.pathname}): npm install (it is a dev dependency)`);
      }
      const r = await this.send<{ exceptionDetails?: unknown }>("Runtime.evaluate", { expression: src, returnByValue: true });
      if (r.exceptionDetails) throw new Error(`axe-core did not load: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
    }
    return await this.eval(`axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations
      .filter((v) => ${JSON.stringify(impacts)}.includes(v.impact))
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + ": " + (n.failureSummary || "").split("\\n").slice(0, 2).join(" ")) })))`);
  }

  async close(): Promise<void> {
    // asked to close first (its processes end and stop writing the profile), killed if it has not within 2 s
    await Promise.race([this.send("Browser.close").catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
    try { this.ws.close(); } catch { /* closed */ }
    try { this.proc.kill("SIGKILL"); } catch { /* gone */ }
    await this.proc.status;
    await removeProfile(this.profile);
  }
}

/**
 * Removes a chromium profile folder, and the folder of its singleton socket
 * (/tmp/org.chromium.Chromium.*, which the profile links to and a killed chromium leaves); a few
 * tries, as chromium's last child processes may still be writing into it.
 */
async function removeProfile(profile: string): Promise<void> {
  try {
    const socketDir = Deno.readLinkSync(`${profile}/SingletonSocket`).replace(/\/SingletonSocket$/, "");
    if (/\/org\.chromium\.Chromium\.\w+$/.test(socketDir)) Deno.removeSync(socketDir, { recursive: true });
  } catch { /* no socket link */ }
  for (let i = 0; i < 5; i++) {
    try {
      Deno.removeSync(profile, { recursive: true });
      return;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
