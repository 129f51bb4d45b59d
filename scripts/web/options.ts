// What the page scripts (bench_fallback.ts, first_result.ts) share: a count option, and building
// the bundles (unless --no-build) before serving the page.
import { build } from "./build.ts";
import { serve } from "./serve.ts";

/** The value of `--flag N` (a positive integer), `fallback` when absent; one `error:` line and exit 1 otherwise. */
export function positiveIntOption(flag: string, fallback: number): number {
  const i = Deno.args.indexOf(flag);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!(Number.isInteger(v) && v >= 1)) {
    console.error(`error: ${flag} ${Deno.args[i + 1]} is not a positive integer`);
    Deno.exit(1);
  }
  return v;
}

/** Builds the bundles unless --no-build is given, then serves the page on 127.0.0.1:port. */
export async function buildAndServe(port: number): Promise<Deno.HttpServer> {
  if (!Deno.args.includes("--no-build")) await build();
  return serve(port);
}
