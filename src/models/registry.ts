// Building models by kind and loading them from checkpoints (whose metadata carries kind and config).
import * as T from "../autograd/index.ts";
import type { Backend } from "../kernels/backend.ts";
import { loadInto, readCheckpoint } from "../io/safetensors.ts";
import type { GenerativeModel } from "./model.ts";
import { VAE, VAE_DEFAULT, type VaeConfig } from "./vae.ts";

export async function createModel(kind: string, config: Record<string, unknown> | undefined, backend: Backend, seed = 0): Promise<GenerativeModel> {
  const init = { backend, gen: new T.Generator(seed) };
  if (kind === "vae") return new VAE({ ...VAE_DEFAULT, ...(config as Partial<VaeConfig>) }, init);
  if (kind === "glow") {
    const { Glow, GLOW_DEFAULT } = await import("./glow.ts");
    return new Glow({ ...GLOW_DEFAULT, ...(config as object) }, init);
  }
  throw new Error(`unknown model kind '${kind}' (expected vae or glow)`);
}

/** A model rebuilt from a checkpoint's metadata, with its weights loaded. */
export async function loadModel(path: string, backend: Backend): Promise<GenerativeModel> {
  const d = readCheckpoint(path);
  const kind = d.metadata.kind;
  if (!kind) throw new Error(`checkpoint ${path}: no 'kind' in __metadata__ (not a fimscope model checkpoint)`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(d.metadata.config ?? "{}");
  } catch {
    throw new Error(`checkpoint ${path}: __metadata__.config is not valid JSON`);
  }
  const model = await createModel(kind, config, backend);
  loadInto(d, path, model.namedParameters(), { allowExtra: true });
  (model as { markInitialized?: () => void }).markInitialized?.();
  model.eval();
  return model;
}
