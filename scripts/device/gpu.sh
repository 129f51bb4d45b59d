#!/usr/bin/env bash
# One-command GPU measurement (issue 22), from the repository root on a bare Linux x86-64 machine
# with an NVIDIA GPU (root, no network, Node/npm possibly absent), in at most 5 minutes:
#   scripts/device/gpu.sh [--allow-cpu]          (OUT=dir, default ./gpu-out)
# It makes Vulkan work from files carried with the tree, then runs scripts/device/gpu.ts with Deno's
# WebGPU: the WebGPU kernel parity suite, the bench's WebGPU rows (GFLOP/s, every matmul and conv
# variant, the winner recorded), bench/features.ts (batched vs loop) and bench/train_step.ts for each
# shipped model, and writes $OUT/gpu.json and $OUT/gpu.md. Its first output line names the adapter.
# A CPU adapter (lavapipe) counts as no GPU: every check says "skipped: no GPU adapter", unless
# --allow-cpu (or FIMSCOPE_GPU_ALLOW_CPU=1) asks for a dry run of every step on it at small sizes.
# Exit status: 0 every step ran, 1 a check failed, 2 no GPU adapter (nothing measured).
#
# What it needs beside the tree (prepare once on a machine with the network, in the repo root):
#  - the Vulkan loader and GL dispatch libraries as .deb files in .gl/ (not committed: .git/info/exclude):
#      echo /.gl/ >>.git/info/exclude; mkdir -p .gl /tmp/amd64/partial
#      o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#      apt-get $o update; (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#    this script unpacks them into / (dpkg -x) when libvulkan.so.1 is missing there, and points
#    VK_DRIVER_FILES at the NVIDIA ICD when the loader finds no driver manifest of its own.
#  - Deno and the npm packages: node_modules as `npm ci` makes it (Deno is node_modules/deno/deno),
#    or, where node_modules cannot travel (the device tool's 64 MiB), the bundle that
#    scripts/device/pack.sh writes to .gpu/ (Deno xz-compressed, the few packages the run imports,
#    the FashionMNIST cache); carry .gl and .gpu.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT"
LOG="$OUT/setup.log"
: >"$LOG"
ALLOW=()
if [[ "${1:-}" == "--allow-cpu" || "${FIMSCOPE_GPU_ALLOW_CPU:-}" == "1" ]]; then ALLOW=(--allow-cpu); fi

# Vulkan: the loader from .gl/ where the system has none.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" / >>"$LOG" 2>&1; done
    ldconfig >>"$LOG" 2>&1 || true
  else
    echo "setup: no libvulkan.so.1 and no .gl/*.deb to install it from (see this script's header)" >>"$LOG"
  fi
fi
# A driver manifest: the system's, else the NVIDIA container's.
if ! compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null && ! compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null \
  && [[ -z "${VK_DRIVER_FILES:-}" && -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
# NVIDIA's manifest may sit beside the system's but the system may also carry lavapipe's: prefer NVIDIA.
if [[ -z "${VK_DRIVER_FILES:-}" ]]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f "$f" ]]; then export VK_DRIVER_FILES="$f"; break; fi
  done
fi
echo "setup: VK_DRIVER_FILES=${VK_DRIVER_FILES:-<loader default>}" >>"$LOG"

# The packed bundle, where node_modules did not travel.
if [[ -d .gpu ]]; then
  if [[ ! -x .gpu/deno && -f .gpu/deno.xz ]]; then xz -dc .gpu/deno.xz >.gpu/deno && chmod +x .gpu/deno; fi
  if [[ ! -e node_modules && -d .gpu/node_modules ]]; then ln -s .gpu/node_modules node_modules; fi
  if [[ -f .gpu/fashion-mnist.bin.xz && ! -f .gpu/fashion-mnist.bin ]]; then xz -dc .gpu/fashion-mnist.bin.xz >.gpu/fashion-mnist.bin; fi
  if [[ -f .gpu/fashion-mnist.bin ]]; then export FIMSCOPE_FASHION_CACHE="$PWD/.gpu/fashion-mnist.bin"; fi
fi
# Deno: $DENO, the npm package's binary (what `npx deno` runs: node_modules/.bin/deno -> ../deno/deno), the bundle's, or PATH's.
DENO_BIN="${DENO:-}"
for c in node_modules/deno/deno node_modules/@deno/linux-x64-glibc/deno .gpu/deno; do
  if [[ -z "$DENO_BIN" && -x "$c" ]]; then DENO_BIN="$c"; fi
done
if [[ -z "$DENO_BIN" ]]; then DENO_BIN="$(command -v deno || true)"; fi
if [[ -z "$DENO_BIN" ]]; then
  echo "adapter: unknown (no Deno: node_modules/deno/deno, .gpu/deno or deno on PATH; see scripts/device/gpu.sh)"
  exit 1
fi
echo "setup: deno $DENO_BIN" >>"$LOG"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-gpu}"
mkdir -p "$XDG_RUNTIME_DIR"
export NO_COLOR=1
exec timeout 300 "$DENO_BIN" run -A scripts/device/gpu.ts --out "$OUT" "${ALLOW[@]}"
