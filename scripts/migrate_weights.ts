// Adds the stored constants (the models' buffers: Glow's 1x1-convolution permutation matrices and
// signs, `<...>.invconv.perm` and `<...>.invconv.sign`) to model files written before they were
// stored, which the loaders now refuse. The constants are computed exactly as the code that wrote
// and loaded those files did: a model of the file's kind and config built from the init generator
// seeded with the run's seed (__metadata__.seed, 0 if absent; the loader used seed 0, and every
// shipped file was trained with seed 0). Every tensor and the metadata are kept as they are; the
// new tensors are appended; each file is written atomically and checked to load first.
//
//   deno run -A scripts/migrate_weights.ts FILE... [--detectors a.detector.json,...] [--check]
//
// Files of kinds without buffers (vae, diffusion) and files that already hold them are left alone.
// --detectors: detector files whose model SHA-256 is a migrated file's old hash get the new hash
// (the parameters are unchanged, so the fitted detector still holds). --check: report, write nothing.
import { createHash } from "node:crypto";
import * as T from "../src/autograd/index.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { type Decoded, decodeSafetensors, encodeSafetensors, type NamedTensor, readCheckpoint } from "../src/io/safetensors.ts";
import { checkModelTensors, createModel, modelSpecOf } from "../src/models/registry.ts";

export interface Migration {
  /** Every tensor of the file, in its order, then the added constants. */
  tensors: NamedTensor[];
  added: string[];
  seed: number;
}

/**
 * The file's tensors with the model's constants added, or null when there is nothing to add (a
 * kind without buffers, or a file that holds them all). A file holding only some is refused.
 */
export async function withConstants(d: Decoded, file: string): Promise<Migration | null> {
  const { kind, config } = await modelSpecOf(d, file);
  const seedText = d.metadata.seed ?? "0";
  const seed = Number(seedText);
  if (!/^\d+$/.test(seedText) || seed > 2 ** 32 - 1) throw new Error(`checkpoint ${file}: __metadata__.seed '${seedText}' is not a seed (an integer from 0 to 2^32-1)`);
  const model = await createModel(kind, config, T.cpu, seed, `checkpoint ${file}: __metadata__.config`);
  const buffers = model.namedBuffers();
  const present = buffers.filter(([n]) => d.tensors.has(n));
  if (present.length === buffers.length) return null;
  if (present.length) throw new Error(`checkpoint ${file}: holds ${present.length} of the model's ${buffers.length} stored constants (e.g. '${present[0][0]}'); a file is migrated whole, not in part`);
  const added: NamedTensor[] = buffers.map(([name, t]) => ({ name, shape: [...t.shape], data: Float32Array.from(t.dataSync()) }));
  const tensors = [...d.tensors.values(), ...added];
  // The result must load: exactly the model's tensors (and a checkpoint's moments), the constants valid.
  checkModelTensors(decodeSafetensors(encodeSafetensors(tensors, d.metadata), file), file, model);
  return { tensors, added: added.map((t) => t.name), seed };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

if (import.meta.main) {
  await import("../src/cli/errors.ts"); // one error line, exit 1 (only when run, not when a test imports withConstants)
  const files: string[] = [], detectors: string[] = [];
  let check = false;
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a === "--check") check = true;
    else if (a === "--detectors" || a.startsWith("--detectors=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : Deno.args[++i];
      if (!v) throw new Error("migrate_weights: --detectors needs a comma list of detector files");
      detectors.push(...v.split(","));
    } else if (a.startsWith("--")) throw new Error(`migrate_weights: unknown option '${a}' (allowed: --detectors, --check)`);
    else files.push(a);
  }
  if (!files.length) throw new Error("migrate_weights: no files given (usage: scripts/migrate_weights.ts FILE... [--detectors a.json,...] [--check])");
  // Everything is checked before anything is written.
  const plans: { file: string; bytes: Uint8Array; oldHash: string; newHash: string; m: Migration }[] = [];
  for (const file of files) {
    const d = readCheckpoint(file);
    const m = await withConstants(d, file);
    if (!m) {
      console.log(`${file}: nothing to add (${d.metadata.kind} model; its file holds every constant the model uses)`);
      continue;
    }
    const bytes = encodeSafetensors(m.tensors, d.metadata);
    plans.push({ file, bytes, oldHash: sha256(Deno.readFileSync(file)), newHash: sha256(bytes), m });
  }
  const texts = detectors.map((f) => [f, Deno.readTextFileSync(f)] as const);
  for (const p of plans) {
    if (!check) writeFileAtomic(p.file, p.bytes);
    console.log(`${p.file}: ${check ? "would add" : "added"} ${p.m.added.length} constants (${p.m.added.slice(0, 2).join(", ")}, ...) from seed ${p.m.seed}; sha256 ${p.oldHash.slice(0, 16)}... -> ${p.newHash.slice(0, 16)}...`);
  }
  for (const [f, text] of texts) {
    const hit = plans.find((p) => text.includes(`"${p.oldHash}"`));
    if (!hit) continue;
    if (!check) writeFileAtomic(f, text.replace(`"${hit.oldHash}"`, `"${hit.newHash}"`));
    console.log(`${f}: model sha256 ${check ? "would be updated" : "updated"} for ${hit.file}`);
  }
}
