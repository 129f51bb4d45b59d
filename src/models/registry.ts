// Building models by kind and loading them from checkpoints (whose metadata carries kind and config).
// Configs are checked by config_check.ts before anything is allocated.
import * as T from "../autograd/index.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import { checkTensors, type Decoded, loadInto, readCheckpoint } from "../io/safetensors.ts";
import { checkConfig, CONFIG_RULES } from "./config_check.ts";
import type { GenerativeModel } from "./model.ts";
import type { Init } from "../nn/module.ts";
import { VAE, VAE_DEFAULT, type VaeConfig } from "./vae.ts";

/**
 * How each kind is built. A new kind adds one entry here and one to CONFIG_RULES
 * (config_check.ts: its keys' ranges, image shape and parameter count).
 */
const KINDS: Record<string, {
  defaults: () => Promise<Record<string, unknown>>;
  build: (config: Record<string, unknown>, init: Init) => Promise<GenerativeModel>;
  /** Rewrites a config as given (e.g. nested keys) into the flat form the rules check; optional. */
  normalize?: (config: Record<string, unknown>) => Promise<Record<string, unknown>>;
  /** Named configs of this kind (`train --config glow-paper`): what each is, and the config. */
  presets?: Record<string, { about: string; config: () => Promise<Record<string, unknown>> }>;
  /** `train`'s defaults for this kind: learning rate, optimiser, and whether the image shape comes from the data files when the config has none. */
  training: { lr: number; optimizer: "adam" | "adamax"; imageFromData: boolean };
}> = {
  vae: {
    defaults: () => Promise.resolve({ ...VAE_DEFAULT }),
    build: (c, init) => Promise.resolve(new VAE(c as unknown as VaeConfig, init)),
    training: { lr: 2e-3, optimizer: "adam", imageFromData: false },
    presets: {
      // The authors' VAE (SamD770/Generative-Models-Knowledge, LargeEncoder/LargeDecoder) has five
      // stride-2 convs of widths 32..512 with BatchNorm and latent 64; ours has two stride-2 convs and
      // no BatchNorm, so the paper size here is the latent and the outer widths (docs/paper-grid.md).
      "vae-paper": {
        about: "the paper's VAE size on 3x32x32 images: latent 64, encoder widths 32 and 256 (the authors': 32..512 over five convs, 3.25M parameters)",
        config: () => Promise.resolve({ image: [3, 32, 32], latent: 64, channels: [32, 256], outChannels: 32 }),
      },
    },
  },
  glow: {
    defaults: async () => ({ ...(await import("./glow.ts")).GLOW_DEFAULT }),
    build: async (c, init) => {
      const { Glow } = await import("./glow.ts");
      return new Glow(c as unknown as ConstructorParameters<typeof Glow>[0], init);
    },
    training: { lr: 1e-3, optimizer: "adamax", imageFromData: true },
    presets: {
      "glow-paper": {
        about: "the paper's Glow (y0ast/Glow-PyTorch defaults): L = 3 levels, K = 32 steps, 512 hidden channels, affine coupling, LU 1x1 convolutions, on 3x32x32 pixels minus 1/2",
        config: () => Promise.resolve({ image: [3, 32, 32], levels: 3, steps: 32, hidden: 512 }),
      },
    },
  },
  diffusion: {
    defaults: async () => ({ ...(await import("./diffusion.ts")).DIFFUSION_DEFAULT }),
    build: async (c, init) => {
      const { Diffusion } = await import("./diffusion.ts");
      return new Diffusion(c as unknown as ConstructorParameters<typeof Diffusion>[0], init);
    },
    normalize: async (c) => (await import("./diffusion.ts")).flattenConfig(c),
    training: { lr: 1e-3, optimizer: "adam", imageFromData: false },
    presets: {
      "diffusion-paper": {
        about: "the paper's diffusion model: a U-Net of dim 32 and widths x(1, 2, 4, 8) on 3x32x32 images (denoising-diffusion-pytorch 1.5.5's Unet(dim=32, dim_mults=(1,2,4,8))), L1 loss, 1000 steps",
        config: async () => ({ ...(await import("./diffusion.ts")).DIFFUSION_PAPER }),
      },
    },
  },
};
for (const k of Object.keys(KINDS)) if (!CONFIG_RULES[k]) throw new Error(`registry: model kind '${k}' has no entry in CONFIG_RULES`);
export const MODEL_KINDS = Object.keys(KINDS);

/** `train`'s defaults for a kind (see KINDS). */
export const trainingDefaults = (kind: string) => kindOf(kind).training;

/** Every named config, with its kind and what it is. */
export const PRESETS: Record<string, { kind: string; about: string }> = Object.fromEntries(
  Object.entries(KINDS).flatMap(([kind, k]) => Object.entries(k.presets ?? {}).map(([name, p]) => [name, { kind, about: p.about }])),
);
export const PRESET_NAMES = Object.keys(PRESETS);

/** A named config: its kind and its config (checked as any config is when used). */
export async function presetConfig(name: string): Promise<{ kind: string; config: Record<string, unknown> }> {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown named config '${name}' (allowed: ${PRESET_NAMES.join(", ")})`);
  return { kind: p.kind, config: await KINDS[p.kind].presets![name].config() };
}

function kindOf(kind: string) {
  const k = KINDS[kind];
  if (!k) throw new Error(`unknown model kind '${kind}' (allowed: ${MODEL_KINDS.join(", ")})`);
  return k;
}

/** Checks a config for a kind (throws one line naming `source` and the key); returns it merged with the defaults. */
export async function resolveConfig(kind: string, config: unknown, source: string): Promise<Record<string, unknown>> {
  const k = kindOf(kind), base = await k.defaults();
  if (k.normalize && config && typeof config === "object" && !Array.isArray(config)) config = await k.normalize(config as Record<string, unknown>);
  const merged = { ...base, ...(config && typeof config === "object" && !Array.isArray(config) ? config as object : {}) };
  checkConfig(kind, config ?? {}, merged, source);
  return merged;
}

/** A model of a kind from its config, with initial weights (dtype: float64 on the CPU backend is for gradient checks). */
export async function createModel(kind: string, config: Record<string, unknown> | undefined, backend: Backend, seed = 0, source = `${kind} config`, dtype?: DType): Promise<GenerativeModel> {
  const merged = await resolveConfig(kind, config, source);
  return kindOf(kind).build(merged, { backend, gen: new T.Generator(seed), dtype });
}

export interface ModelFile {
  decoded: Decoded;
  kind: string;
  config: Record<string, unknown>;
  /** The model's parameter names and shapes (all present in the file). */
  shapes: [string, number[]][];
  /** The model's buffers (stored constants, e.g. Glow's permutations): names and shapes, all present in the file. */
  buffers: [string, number[]][];
  /**
   * The model built on the CPU from the metadata with initial weights (not the file's): what a
   * command asks before any work, such as its objectives (probe.objective(name) throws on a bad one).
   */
  probe: GenerativeModel;
}

/** The command that adds the stored constants to a file written before they were stored. */
export const MIGRATE_COMMAND = "deno run -A scripts/migrate_weights.ts";

/**
 * Checks that a file holds exactly what the model uses: every parameter and buffer with its shape,
 * nothing else, except that a training checkpoint (a step in its metadata) holds both optimiser
 * moments of every parameter (optimizer.m.<name>, optimizer.v.<name>) and nothing else extra. Each
 * buffer's values pass its check (Glow's permutations are permutation matrices, its signs +1 or -1).
 * A file without the buffers is one from before they were stored: the error says how to migrate it.
 */
export function checkModelTensors(d: Decoded, file: string, model: GenerativeModel): void {
  const shapesOf = (ts: [string, T.Tensor][]) => ts.map(([n, t]) => [n, [...t.shape]] as [string, number[]]);
  const params = shapesOf(model.namedParameters()), buffers = shapesOf(model.namedBuffers());
  const absent = buffers.filter(([n]) => !d.tensors.has(n));
  if (absent.length === buffers.length && absent.length > 0) {
    throw new Error(`checkpoint ${file}: the model's stored constants are missing (tensor '${absent[0][0]}'${absent.length > 1 ? ` and ${absent.length - 1} more` : ""}): a file written before they were stored; migrate it with ${MIGRATE_COMMAND} ${file}`);
  }
  const expected = [...params, ...buffers];
  if ([...d.tensors.keys()].some((n) => n.startsWith("optimizer."))) {
    if (!/^\d+$/.test(d.metadata.step ?? "")) throw new Error(`checkpoint ${file}: holds optimiser moments but no step in __metadata__ (a training checkpoint records its step)`);
    expected.push(...params.flatMap(([n, s]) => [[`optimizer.m.${n}`, s], [`optimizer.v.${n}`, s]] as [string, number[]][]));
  }
  checkTensors(d, file, expected);
  for (const [name, check] of model.bufferChecks()) {
    const why = check(d.tensors.get(name)!.data);
    if (why) throw new Error(`checkpoint ${file}: tensor '${name}' ${why}`);
  }
}

/** A file's model kind and its config merged with the defaults, from its metadata (checked; errors name the file and key). */
export async function modelSpecOf(d: Decoded, path: string): Promise<{ kind: string; config: Record<string, unknown> }> {
  const kind = d.metadata.kind;
  if (!kind) throw new Error(`checkpoint ${path}: no 'kind' in __metadata__ (not a fimscope model checkpoint)`);
  if (!MODEL_KINDS.includes(kind)) throw new Error(`checkpoint ${path}: __metadata__.kind '${kind}' is not a model kind (allowed: ${MODEL_KINDS.join(", ")})`);
  let config: unknown;
  try {
    config = JSON.parse(d.metadata.config ?? "{}");
  } catch {
    throw new Error(`checkpoint ${path}: __metadata__.config is not valid JSON`);
  }
  return { kind, config: await resolveConfig(kind, config, `checkpoint ${path}: __metadata__.config`) };
}

/**
 * Reads and checks a model file without building the model: the reader's checks (layout, finite
 * values), a known kind and a valid config. Commands call it for every input before any work.
 */
export async function checkModelFile(path: string): Promise<ModelFile> {
  const decoded = readCheckpoint(path);
  const { kind, config: merged } = await modelSpecOf(decoded, path);
  // The tensors must fit the model the metadata describes: built on the CPU only to read its shapes.
  const probe = await createModel(kind, merged, T.cpu, 0, `checkpoint ${path}: __metadata__.config`);
  checkModelTensors(decoded, path, probe);
  const shapes = probe.namedParameters().map(([n, p]) => [n, [...p.shape]] as [string, number[]]);
  const buffers = probe.namedBuffers().map(([n, p]) => [n, [...p.shape]] as [string, number[]]);
  return { decoded, kind, config: merged, shapes, buffers, probe };
}

/** A model rebuilt from a checkpoint's metadata, with its weights and stored constants loaded (pass `file` if already checked). */
export async function loadModel(path: string, backend: Backend, file?: ModelFile): Promise<GenerativeModel> {
  const f = file ?? await checkModelFile(path);
  const model = await createModel(f.kind, f.config, backend, 0, `checkpoint ${path}: __metadata__.config`);
  loadInto(f.decoded, path, model.namedState());
  (model as { markInitialized?: () => void }).markInitialized?.();
  model.eval();
  return model;
}

/** Throws unless a model of this kind and config takes images of the dataset's shape; `source` names the option or file. */
export { checkImageShape, modelImageShape } from "./config_check.ts";

/** Whether a file is a training checkpoint (step in the metadata and the optimiser's moments), not shipped weights. */
export function isTrainingCheckpoint(d: Decoded): boolean {
  return /^\d+$/.test(d.metadata.step ?? "") && [...d.tensors.keys()].some((n) => n.startsWith("optimizer.m."));
}
