// A progress bar (cli-progress) that also logs periodically when stdout is not a terminal.
import cliProgress from "cli-progress";

export function progressBar(label: string, fields: string): InstanceType<typeof cliProgress.SingleBar> {
  return new cliProgress.SingleBar({
    format: `${label} [{bar}] {value}/{total} | ${fields} | ETA {eta_formatted}`,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 15000,
    etaBuffer: 50,
    barsize: 24,
  }, cliProgress.Presets.shades_classic);
}
