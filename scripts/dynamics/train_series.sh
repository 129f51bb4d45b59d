#!/usr/bin/env bash
# The models behind docs/dynamics.md: logit-space Glows (the large Glow's recipe: L = 2, logit
# alpha 1e-6, Adam 1e-3, batch 64) of three widths, and for hidden 32 a checkpoint series at
# roughly geometric steps from 50 to 4000, trained in resumed segments (exact resume), on each
# dataset given. Usage: scripts/dynamics/train_series.sh OUT_DIR [fashion mnist] [--sizes]
# Each segment's weights: OUT_DIR/glow-<data>-h32/step<k>.safetensors (+ its .ckpt.safetensors).
set -euo pipefail
out=${1:?usage: train_series.sh OUT_DIR [datasets...] [--sizes]}
shift
sizes=0
sets=()
for a in "$@"; do if [ "$a" = --sizes ]; then sizes=1; else sets+=("$a"); fi; done
[ ${#sets[@]} -eq 0 ] && sets=(fashion)
cd "$(dirname "$0")/../.."
cfg() { echo "{\"levels\":2,\"steps\":4,\"hidden\":$1,\"image\":[1,28,28],\"logit\":0.000001}"; }
common=(--model glow --lr 1e-3 --optimizer adam --batch 64 --backend wasm --eval-n 1000)
for data in "${sets[@]}"; do
  d="$out/glow-$data-h32"
  mkdir -p "$d"
  prev=""
  for s in 50 100 150 250 400 650 1000 1600 2500 4000; do
    if [ -f "$d/step$s.safetensors" ]; then prev="$d/step$s.ckpt.safetensors"; continue; fi
    if [ -z "$prev" ]; then
      npx deno run -A src/cli/train.ts "${common[@]}" --data "$data" --config "$(cfg 32)" --steps $s --checkpoint-every 1000000 --out "$d/step$s.safetensors"
    else
      npx deno run -A src/cli/train.ts --resume "$prev" --steps $s --backend wasm --eval-n 1000 --checkpoint-every 1000000 --out "$d/step$s.safetensors"
    fi
    prev="$d/step$s.ckpt.safetensors"
  done
done
if [ $sizes = 1 ]; then
  for h in 16 64; do
    d="$out/glow-fashion-h$h"
    mkdir -p "$d"
    [ -f "$d/step4000.safetensors" ] || npx deno run -A src/cli/train.ts "${common[@]}" --data fashion --config "$(cfg $h)" --steps 4000 --checkpoint-every 500 --out "$d/step4000.safetensors"
  done
fi
