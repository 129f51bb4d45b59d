// The --old option of the A/B benches: another checkout of the code, loaded by dynamic import
// beside this one. Checked before any work (it must hold `marker`, a file the bench imports), and
// made absolute: a relative path in a dynamic import resolves against bench/, not the working
// directory.
import { usageError } from "../src/io/options.ts";

/** The checkout's absolute path, or one usage error naming --old and the file it lacks. */
export function oldCheckout(cmd: string, path: string, marker: string): string {
  const root = path.replace(/\/$/, "");
  try {
    Deno.statSync(`${root}/${marker}`);
    return Deno.realPathSync(root);
  } catch {
    throw usageError(cmd, "--old", path, `the path of another checkout (with ${marker})`);
  }
}
