// A shipped model from the bytes of its safetensors file (a browser has no file system; the
// metadata carries kind and config, as for loadModel).
import type { Backend } from "../kernels/backend.ts";
import { decodeSafetensors, loadInto } from "../io/safetensors.ts";
import type { GenerativeModel } from "./model.ts";
import { createModel } from "./registry.ts";

export interface LoadedModel {
  model: GenerativeModel;
  metadata: Record<string, string>;
}

export async function loadModelBytes(bytes: Uint8Array, backend: Backend, file = "model.safetensors"): Promise<LoadedModel> {
  const d = decodeSafetensors(bytes, file);
  const kind = d.metadata.kind;
  if (!kind) throw new Error(`checkpoint ${file}: no 'kind' in __metadata__ (not a fimscope model checkpoint)`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(d.metadata.config ?? "{}");
  } catch {
    throw new Error(`checkpoint ${file}: __metadata__.config is not valid JSON`);
  }
  const model = await createModel(kind, config, backend);
  loadInto(d, file, model.namedParameters(), { allowExtra: true });
  (model as { markInitialized?: () => void }).markInitialized?.();
  model.eval();
  return { model, metadata: d.metadata };
}
