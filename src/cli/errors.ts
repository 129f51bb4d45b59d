// Imported first by every CLI: an error ends the command with one line naming what went wrong
// (the stack too with FIMSCOPE_DEBUG=1) and exit code 1; --help prints the command's header comment.
const failureHooks: (() => void)[] = [];

/** Runs f when the command fails (before the exit): e.g. removing a reserved output name's empty placeholder. */
export function onFailure(f: () => void): void {
  failureHooks.push(f);
}

function report(err: unknown): void {
  const e = err as Error | undefined;
  for (const f of failureHooks) {
    try {
      f();
    } catch { /* the error below is what matters */ }
  }
  // One line, always: a multi-line message (e.g. from a dependency) is joined.
  console.error(`error: ${String(e?.message ?? err).split("\n").map((l) => l.trim()).filter(Boolean).join("; ")}`);
  if (Deno.env.get("FIMSCOPE_DEBUG") && e?.stack) console.error(e.stack);
  Deno.exit(1);
}

globalThis.addEventListener("unhandledrejection", (ev) => {
  ev.preventDefault();
  report(ev.reason);
});
globalThis.addEventListener("error", (ev) => {
  ev.preventDefault();
  report(ev.error);
});

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  const src = Deno.readTextFileSync(new URL(Deno.mainModule));
  const head = src.split("\n").filter((_l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith("//")));
  console.log(head.map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  Deno.exit(0);
}

/** Prints a library notice (a slower backend chosen, a cache rebuilt) as one `notice:` line on stderr; the CLIs pass it as `onNotice`. */
export function notice(message: string): void {
  console.error(`notice: ${message}`);
}

/**
 * Marks the end of validation. With FIMSCOPE_STOP_BEFORE_WORK=1 the command stops here (exit 0,
 * "checked" on stderr): the bad-input tests run every refused case this way, so a check that only
 * fires once work has started makes its case exit 0 and fail.
 */
export function workStarts(): void {
  if (Deno.env.get("FIMSCOPE_STOP_BEFORE_WORK") === "1") {
    console.error("checked: all options valid; stopping before work (FIMSCOPE_STOP_BEFORE_WORK=1)");
    Deno.exit(0);
  }
}
