// A shipped model from the bytes of its safetensors file (a browser has no file system; the
// metadata carries kind and config, as for loadModel).
import type { Backend } from "../kernels/backend.ts";
import { decodeSafetensors, loadInto } from "../io/safetensors.ts";
import type { GenerativeModel } from "./model.ts";
import { checkModelTensors, createModel, modelSpecOf } from "./registry.ts";

export interface LoadedModel {
  model: GenerativeModel;
  metadata: Record<string, string>;
}

export async function loadModelBytes(bytes: Uint8Array, backend: Backend, file = "model.safetensors"): Promise<LoadedModel> {
  const d = decodeSafetensors(bytes, file);
  const { kind, config } = await modelSpecOf(d, file);
  const model = await createModel(kind, config, backend, 0, `checkpoint ${file}: __metadata__.config`);
  checkModelTensors(d, file, model);
  loadInto(d, file, model.namedState());
  (model as { markInitialized?: () => void }).markInitialized?.();
  model.eval();
  return { model, metadata: d.metadata };
}
