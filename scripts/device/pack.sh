#!/usr/bin/env bash
# Packs what scripts/device/gpu.sh needs beside the tree into .gpu/ (git-ignored through
# .git/info/exclude), for machines the node_modules folder cannot travel to (the device tool carries
# at most 64 MiB): Deno xz-compressed, the npm packages the run imports (wgsl-preprocessor, tinybench,
# uvu and its dependencies, @webgpu/types), and the FashionMNIST cache xz-compressed. Then carry
# .gl and .gpu. Run from the repository root after `npm ci` (and one run that built the cache):
#   scripts/device/pack.sh [--no-data]
# Sizes: Deno 31 MB and the cache 26 MB compressed, the packages 1 MB; the tracked tree is 32 MB.
# The device tool carries 64 MiB in all: the tree and Deno fit, the cache does not beside them
# (--no-data leaves it out; gpu.sh then runs the parity suite and the WebGPU rows, and says the
# feature and training steps are skipped for want of the FashionMNIST data).
set -euo pipefail
cd "$(dirname "$0")/../.."
exclude="$(git rev-parse --git-path info/exclude)"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo /.gpu/ >>"$exclude"
rm -rf .gpu && mkdir -p .gpu/node_modules/@webgpu
for p in wgsl-preprocessor tinybench uvu kleur dequal diff sade mri; do cp -rL "node_modules/$p" .gpu/node_modules/; done
cp -rL node_modules/@webgpu/types .gpu/node_modules/@webgpu/
xz -T0 -6 -c node_modules/deno/deno >.gpu/deno.xz
if [[ "${1:-}" != "--no-data" ]]; then
  cache="${FIMSCOPE_FASHION_CACHE:-node_modules/.cache/fimscope-fashion-mnist.bin}"
  if [[ -f "$cache" ]]; then xz -T0 -6 -c "$cache" >.gpu/fashion-mnist.bin.xz; else echo "pack: no FashionMNIST cache at $cache (run any bench once to build it)" >&2; exit 1; fi
fi
du -sh .gpu
