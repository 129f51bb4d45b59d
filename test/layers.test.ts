// The import direction between layers (docs/architecture.md): every relative import in src/ and
// shaders/, static or dynamic, type-only or not, must point to a layer its importer may use.
// Shaders may reach into src/ only for leaf modules (files that import nothing).
// Also: package.json's npm scripts, each named once and running a file that exists.
import { suite } from "uvu";
import * as assert from "uvu/assert";

const ROOT = new URL("../", import.meta.url);

/** Layer of a path relative to the repository root: "shaders", or src/<dir>. */
function layerOf(path: string): string | null {
  if (path.startsWith("shaders/")) return "shaders";
  const m = /^src\/([^/]+)\//.exec(path);
  return m ? m[1] : null;
}

/** What each layer may import besides itself (downward only). */
const MAY_IMPORT: Record<string, string[]> = {
  shaders: [], // plus leaf modules of src/, checked separately
  kernels: ["shaders"],
  autograd: ["kernels"],
  io: ["autograd", "kernels"],
  data: ["io", "autograd", "kernels"],
  nn: ["autograd", "kernels"],
  models: ["nn", "data", "io", "autograd", "kernels"],
  ood: ["models", "nn", "data", "io", "autograd", "kernels"],
  cli: ["ood", "models", "nn", "data", "io", "autograd", "kernels", "shaders"],
};

/**
 * Imports known to break the rule and being removed elsewhere. Empty since the training loop
 * reports progress through callbacks (the CLIs own the bars). Add nothing here.
 */
const PENDING = new Set<string>();

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(new URL(dir, ROOT))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...walk(p));
    else if (/\.(ts|js)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a source file, resolved against the repository root. */
function importsOf(path: string): string[] {
  const src = Deno.readTextFileSync(new URL(path, ROOT));
  const specs = [...src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) => new URL(s, new URL(path, ROOT)).href.slice(ROOT.href.length));
}

function violations(): string[] {
  const files = [...walk("src"), ...walk("shaders")];
  const bad: string[] = [];
  for (const f of files) {
    const from = layerOf(f)!;
    for (const t of importsOf(f)) {
      const to = layerOf(t);
      const edge = `${f} -> ${t}`;
      if (to === null || to === from || PENDING.has(edge)) continue;
      if (from === "shaders") {
        if (importsOf(t).length) bad.push(`${edge} (shaders may import only leaf modules of src/)`);
        continue;
      }
      if (!(MAY_IMPORT[from] ?? []).includes(to)) bad.push(`${edge} (${from} may not import ${to})`);
    }
  }
  return bad;
}

const S = suite("layers import downward only");

S("every import in src/ and shaders/ points down the layer order", () => {
  const bad = violations();
  assert.equal(bad, [], `imports against the layer order:\n  ${bad.join("\n  ")}`);
});

S("the check sees imports: the kernels import the shaders, autograd the kernels", () => {
  // Guards the scanner itself (a regex that matched nothing would pass the test above).
  const kernelImports = walk("src/kernels").flatMap(importsOf);
  assert.ok(kernelImports.some((t) => t.startsWith("shaders/")), "no kernel import of shaders/ found");
  assert.ok(importsOf("src/autograd/ops/elementwise.ts").some((t) => t.startsWith("src/kernels/")));
  assert.ok(importsOf("src/kernels/select.ts").includes("src/kernels/webgpu/backend.ts"), "dynamic import not seen");
  assert.equal(layerOf("src/kernels/webgpu/x.ts"), "kernels");
});


/**
 * Outside the library: what each top-level folder may import (relative imports, resolved). The page
 * bundles only the library (never benchmark code); benches and scripts use the library and the
 * options library (src/io/options.ts), never a command's module; of src/cli only the error reporter
 * every entry point shares (src/cli/errors.ts: one `error:` line, --help); examples use the public
 * API (mod.ts) and the packaged datasets. Tests may import what they test.
 */
const OUTSIDE: Record<string, { may: (t: string) => boolean; rule: string }> = {
  web: { may: (t) => t === "mod.ts" || t.startsWith("web/") || (t.startsWith("src/") && !t.startsWith("src/cli/")), rule: "web/ may import mod.ts, src/ (not src/cli) and web/" },
  bench: { may: (t) => t === "mod.ts" || t.startsWith("bench/") || t.startsWith("shaders/") || t === "src/cli/errors.ts" || (t.startsWith("src/") && !t.startsWith("src/cli/")), rule: "bench/ may import mod.ts, src/ (of src/cli only errors.ts), shaders/ and bench/" },
  scripts: { may: (t) => t === "mod.ts" || t.startsWith("scripts/") || t.startsWith("web/") || t.startsWith("shaders/") || t === "src/cli/errors.ts" || (t.startsWith("src/") && !t.startsWith("src/cli/")), rule: "scripts/ may import mod.ts, src/ (of src/cli only errors.ts), shaders/, web/ and scripts/" },
  examples: { may: (t) => t === "mod.ts" || t === "src/data/mnist.ts" || t.startsWith("examples/"), rule: "examples/ may import mod.ts (the public API), the packaged datasets and examples/" },
};

function outsideViolations(): string[] {
  const bad: string[] = [];
  for (const [dir, { may, rule }] of Object.entries(OUTSIDE)) {
    for (const f of walk(dir)) for (const t of importsOf(f)) if (!may(t)) bad.push(`${f} -> ${t} (${rule})`);
  }
  return bad;
}

S("web/, bench/, scripts/ and examples/ import only what their rule allows (the page bundles no benchmark code)", () => {
  const bad = outsideViolations();
  assert.equal(bad, [], `imports outside the library against its rules:\n  ${bad.join("\n  ")}`);
  // The scanner sees these folders' imports.
  assert.ok(importsOf("web/app.ts").includes("mod.ts"), "web/app.ts's import of mod.ts not seen");
  assert.ok(walk("bench").flatMap(importsOf).includes("src/io/options.ts"), "bench's imports of the options library not seen");
});

S.run();

/**
 * Source text with its comments blanked, line breaks kept (so line numbers hold). Quoted strings are
 * skipped over so that a "//" inside one is not taken for a comment; their text still counts.
 */
function withoutComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\/|(["'])(?:\\.|(?!\1)[^\\\n])*\1|`(?:\\.|[^\\`])*`|\/\/[^\n]*/g, (m) => (/^["'`]/.test(m) ? m : m.replace(/[^\n]/g, " ")));
}

/** `name:line: code` for every console call in a source text. */
function consoleCalls(name: string, src: string): string[] {
  return [...withoutComments(src).split("\n").entries()].filter(([, l]) => /\bconsole\s*\.\s*\w+/.test(l)).map(([i, l]) => `${name}:${i + 1}: ${l.trim()}`);
}

const T = suite("the library never draws the terminal");

T("no console call in src/ outside src/cli (notices go to an onNotice callback)", () => {
  const lib = walk("src").filter((f) => !f.startsWith("src/cli/"));
  assert.ok(lib.length > 50, `only ${lib.length} library files found`);
  const bad = lib.flatMap((f) => consoleCalls(f, Deno.readTextFileSync(new URL(f, ROOT))));
  assert.equal(bad, [], `console calls in library code:\n  ${bad.join("\n  ")}`);
});

T("the check sees console calls and skips comments", () => {
  assert.ok(consoleCalls("errors.ts", Deno.readTextFileSync(new URL("src/cli/errors.ts", ROOT))).length >= 2, "no console call found in src/cli/errors.ts");
  const src = `// console.log("a")\n/* console.error(1)\n */ const u = "http://x"; console . warn(u);\nconst t = \`//\${x}\`; console.info(t);\nf(); // console.debug()\n`;
  assert.equal(consoleCalls("x", src).map((l) => l.split(":")[1]), ["3", "4"]);
});

T.run();

const N = suite("npm scripts");

N("package.json names each npm script once (JSON keeps a repeated key's last value, silently), and each runs a TypeScript file (deno run -A) that exists", () => {
  const text = Deno.readTextFileSync(new URL("package.json", ROOT));
  const block = /"scripts":\s*\{([^}]*)\}/.exec(text);
  assert.ok(block, "a scripts block");
  const names = [...block![1].matchAll(/"([^"]+)"\s*:/g)].map((m) => m[1]);
  assert.equal(names.filter((n, i) => names.indexOf(n) !== i), [], "script names given twice");
  const scripts = JSON.parse(text).scripts as Record<string, string>;
  assert.is(Object.keys(scripts).length, names.length);
  for (const [name, cmd] of Object.entries(scripts)) {
    const files = [...cmd.matchAll(/deno run -A (\S+\.ts)/g)].map((m) => m[1]);
    assert.ok(files.length, `npm run ${name}: no 'deno run -A <file>.ts' in '${cmd}'`);
    for (const f of files) assert.ok(Deno.statSync(new URL(f, ROOT)).isFile, `npm run ${name}: ${f}`);
  }
});

N.run();

const L = suite("params layouts (shaders/preamble.ts)");

L("offsets follow the field lengths and MAX_RANK; pack places each field and refuses what does not fit", async () => {
  const { Layout, MAX_RANK } = await import("../shaders/preamble.ts");
  const { BROADCAST } = await import("../shaders/elementwise.wgsl.ts");
  const { STRIDED } = await import("../shaders/strided.wgsl.ts");
  assert.is(BROADCAST.offset.in1, 2 + 2 * MAX_RANK);
  assert.is(BROADCAST.words, 2 + 4 * MAX_RANK);
  assert.is(STRIDED.offset.inStride, 4 + 5 * MAX_RANK);
  const l = new Layout({ n: 1, dims: 3, v: 1 });
  assert.equal(l.pack({ n: 7, dims: [1, -1], v: 2 }), [7, 1, 0xffffffff, 0, 2]);
  assert.equal(l.pack({ v: 5 }), [0, 0, 0, 0, 5]);
  assert.is(l.u("dims", 2), "P[3u]");
  assert.is(l.f("v"), "pf(4u)");
  assert.is(l.declare("n", "v"), "let n = P[0u]; let v = P[4u];");
  assert.throws(() => l.pack({ dims: [1, 2, 3, 4] }), /4 words for dims \(length 3\)/);
  assert.throws(() => l.pack({ nope: 1 } as never), /no field nope/);
  assert.throws(() => l.u("dims", 3), /word 3 of dims/);
});

L.run();
