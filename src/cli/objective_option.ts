// The --objective option every feature command shares: what the features differentiate
// (src/models/objective.ts). Checked against the model file before any work.
import { usageError } from "../io/options.ts";
import type { ModelFile } from "../models/registry.ts";

/** The objective's name for a checked model file: the one given, or the model's default; refused (one line) if the model does not offer it. */
export function objectiveFor(cmd: string, file: ModelFile, path: string, given?: string): string {
  const name = given ?? file.probe.defaultObjective;
  try {
    file.probe.objective(name);
  } catch (e) {
    throw usageError(cmd, "--objective", name, `${(e as Error).message.replace(/^objective '[^']*' ?:? ?/, "")} (${path})`);
  }
  return name;
}
