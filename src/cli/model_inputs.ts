// Checks shared by compare-models, dynamics and novelty, all before any work: model files (read and
// checked, each once, of a kind the commands take, images of the data's shape), the in-distribution
// data they agree on, report labels from file names, and the report folder.
import { protectedReason } from "../io/atomic.ts";
import { checkApart, type PathUse, usageError } from "../io/options.ts";
import { DATASETS, imageShapeOf } from "../data/mnist.ts";
import { checkImageShape, checkModelFile, type ModelFile } from "../models/registry.ts";

export interface CheckedModel {
  path: string;
  file: ModelFile;
  label: string;
  /** The training step from the metadata (checkpoints: step, weights: steps), or NaN. */
  step: number;
}

/** A report label from a file name (parent folder added, then a number, until it is unique). */
function labelOf(path: string, taken: string[]): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
  const stem = clean(path.replace(/^.*\//, "").replace(/\.safetensors$/, "").replace(/\.ckpt$/, ""));
  let label = stem;
  if (taken.includes(label)) label = `${clean(path.split("/").slice(-2, -1)[0] ?? "")}-${stem}`;
  for (let k = 2; taken.includes(label); k++) label = `${stem}-${k}`;
  return label;
}

/**
 * Reads and checks every model file (once each), finds the in-distribution data
 * (`data` if given, else the files' metadata, which must agree) and checks each model takes its images.
 */
export async function checkModels(cmd: string, option: string, paths: string[], data: string | undefined): Promise<{ models: CheckedModel[]; inName: string }> {
  const models: CheckedModel[] = [], seen = new Map<string, string>();
  for (const path of paths) {
    const real = Deno.realPathSync(path);
    if (seen.has(real)) throw usageError(cmd, option, paths.join(","), `${path} and ${seen.get(real)} are the same file (allowed: each model once)`);
    seen.set(real, path);
    const file = await checkModelFile(path);
    const m = file.decoded.metadata, step = Number(m.step ?? m.steps ?? NaN);
    models.push({ path, file, label: labelOf(path, models.map((x) => x.label)), step: Number.isInteger(step) && step >= 0 ? step : NaN });
  }
  const stored = [...new Set(models.map((m) => m.file.decoded.metadata.data).filter((d) => d !== undefined))];
  const inName = data ?? (stored.length === 1 ? stored[0] : undefined);
  if (inName === undefined) {
    throw usageError(cmd, option, paths.join(","), stored.length ? `the models were trained on different data (${stored.join(", ")}); give --data to name the in-distribution set` : "no model names its training data; give --data");
  }
  if (!(DATASETS as readonly string[]).includes(inName)) throw usageError(cmd, data ? "--data" : option, data ?? paths.join(","), `the in-distribution data '${inName}' is not one of ${DATASETS.join(", ")}`);
  for (const m of models) checkImageShape(m.file.kind, m.file.config, imageShapeOf(inName), inName, `${cmd}: ${option} ${m.path}`);
  return { models, inName };
}

/**
 * A report folder must not hold shipped weights or tracked files unless --force; and, as it is
 * replaced as a whole, it must be new, empty or one this project wrote, and neither hold nor lie
 * inside an input.
 */
export function checkReportFolder(cmd: string, out: string, force: boolean, inputs: PathUse[]): void {
  const why = force ? null : protectedReason(out);
  if (why) throw usageError(cmd, "--out", out, `${why}; the report goes to its own folder (e.g. reports/${cmd}), or add --force`);
  checkApart(cmd, [{ option: "--out", path: out, kind: "dir" }], inputs);
}

/**
 * A comma list of files and glob patterns (* and ? within a path segment, e.g.
 * /work/runs/glow-fashion-h32/step*.safetensors), expanded in sorted order; a pattern that matches
 * no file, or a file that does not exist, is refused.
 */
export function expandFiles(cmd: string, option: string, raw: string): string[] {
  const out: string[] = [];
  for (const item of raw.split(",").map((s) => s.trim())) {
    if (item === "") throw usageError(cmd, option, raw, "empty item in the list (allowed: files or glob patterns, separated by commas)");
    const found = /[*?]/.test(item) ? glob(item) : [item];
    if (!found.length) throw usageError(cmd, option, raw, `the pattern '${item}' matches no file`);
    for (const f of found) {
      let st: Deno.FileInfo;
      try {
        st = Deno.statSync(f);
      } catch {
        throw usageError(cmd, option, raw, `'${f}': no such file`);
      }
      if (!st.isFile) throw usageError(cmd, option, raw, `'${f}': not a regular file`);
      if (!out.includes(f)) out.push(f);
    }
  }
  return out;
}

function glob(pattern: string): string[] {
  const abs = pattern.startsWith("/"), parts = pattern.split("/").filter((p, i) => p !== "" || i === 0);
  let paths = [abs ? "/" : "."];
  for (const [k, part] of parts.entries()) {
    if (part === "" || part === ".") continue;
    const last = k === parts.length - 1, next: string[] = [];
    const join = (d: string, n: string) => (d === "/" ? `/${n}` : d === "." && !abs ? n : `${d}/${n}`);
    if (!/[*?]/.test(part)) {
      for (const d of paths) next.push(join(d, part));
    } else {
      const re = new RegExp(`^${part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
      for (const d of paths) {
        try {
          for (const e of Deno.readDirSync(d)) if (re.test(e.name) && (last || e.isDirectory) && !e.name.startsWith(".")) next.push(join(d, e.name));
        } catch { /* not a folder */ }
      }
    }
    paths = next.sort();
  }
  return paths.filter((p) => { try { return Deno.statSync(p).isFile; } catch { return false; } });
}
